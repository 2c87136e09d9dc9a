"""Redaction: personal data and secrets replaced by placeholders, in time linear in the text's length.

Recur is blameless: people are not features, and a postmortem pasted with a token in it must not carry the
token into a model, a report or an API response. :func:`redact` replaces e-mail addresses, IP addresses, phone
numbers, secrets and ``@handles`` with placeholders; :func:`redact_incident` applies it to every free-text field
of an :class:`~ml.io.schemas.Incident`. The training jobs and the report call :func:`redact_incident` once, when
they read incidents (``training/ingest.py``), so the pattern model, the similarity index, the report and every
MLflow artifact only ever see redacted text; the API redacts its query text once.

Linear time. Every pattern here is safe on adversarial text at the maximum length (a test times 128 KiB runs
of colons, dots, ``@``, base64, ``password is`` ...):

- a pattern that scans a run of characters starts only where such a run starts (a negative lookbehind on the
  run's own class), so a failed match is never retried from inside the run;
- repeated groups are bounded (``{0,4}``, ``{2,5}``) and never nest an unbounded repetition;
- candidates that need real parsing (IPv6) are found by a bounded token regex and checked in Python with
  :mod:`ipaddress`.

Secrets: the regex detectors of `detect-secrets` (AWS, Azure storage, GitHub, GitLab, Slack, Stripe, SendGrid,
Discord, Telegram, Twilio, Mailchimp, Square, Artifactory, PyPI) run beside our own patterns, and its Shannon
entropy measure flags random quoted strings. Its other plugins are not used, each for a reason given in
``_UNUSED_PLUGINS``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable
from typing import cast

from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

from ml.errors import InputError
from ml.io.schemas import Incident

log = logging.getLogger(__name__)

__all__ = [
    "EMAIL",
    "HANDLE",
    "IP",
    "PHONE",
    "PLACEHOLDERS",
    "SECRET",
    "redact",
    "redact_incident",
]

EMAIL = "[EMAIL]"
IP = "[IP]"
PHONE = "[PHONE]"
SECRET = "[SECRET]"
HANDLE = "[HANDLE]"
PLACEHOLDERS: tuple[str, ...] = (EMAIL, IP, PHONE, SECRET, HANDLE)
# A value that is already a placeholder is not redacted again (redact is idempotent).
_NOT_PLACEHOLDER = r"(?!\[(?:EMAIL|IP|PHONE|SECRET|HANDLE|SERVICE|REGION)\])"

# --- detect-secrets ------------------------------------------------------------------------------------
# Detectors whose every regex is linear time: literal prefixes and bounded or non-overlapping quantifiers.
_PLUGINS: tuple[type[RegexBasedDetector], ...] = (
    AWSKeyDetector,
    AzureStorageKeyDetector,
    GitHubTokenDetector,
    GitLabTokenDetector,
    SlackDetector,  # (?:\d+-)+ is unambiguous: every repetition ends at "-", which \d cannot match
    StripeDetector,
    SendGridDetector,
    DiscordBotTokenDetector,
    TelegramBotTokenDetector,
    TwilioKeyDetector,
    MailchimpDetector,
    SquareOAuthDetector,
    ArtifactoryDetector,
    PypiTokenDetector,
)
# Why the other plugins are not used (each is covered by a pattern of ours, which the tests check).
_UNUSED_PLUGINS: dict[str, str] = {
    "KeywordDetector": "nested unbounded alternations (quadratic); our key=value and 'password is' rules",
    "JwtTokenDetector": "eyJ[...]+ restarts inside a run of eyJeyJ... (quadratic); our JWT rule",
    "OpenAIDetector": "[A-Za-z0-9-_]*[A-Za-z0-9]{20} overlap (quadratic on sk-sk-...); our sk- rule",
    "NpmDetector": r"//.+/ backtracks from every // (quadratic); our key=value rule covers _authToken=",
    "BasicAuthDetector": "redacts the password only; our URL rule redacts user and password",
    "PrivateKeyDetector": "matches the header line only; our rule redacts the whole PEM block",
    "IbmCloudIamDetector": "assignment regex ' *(=| +) *' (cubic on a run of spaces); key=value rule",
    "IbmCosHmacDetector": "same assignment regex (cubic on spaces); key=value and long-hex rules",
    "CloudantDetector": "same assignment regex (cubic on spaces); URL and key=value rules",
    "SoftlayerDetector": "same assignment regex (cubic on spaces); key=value rule",
    "IPPublicDetector": "public IPv4 only; our IP rules redact every IPv4 and IPv6 address",
}
# detect-secrets declares `denylist` as a property returning the patterns; its annotation reads as a method
_PLUGIN_REGEXES: tuple[re.Pattern[str], ...] = tuple(
    rx for p in _PLUGINS for rx in cast(Iterable[re.Pattern[str]], p.denylist)
)
_EDGE = " \t\r\n=:\"'"  # separators some plugin regexes consume around the token (Artifactory); kept
_B64_ENTROPY = Base64HighEntropyString()
_HEX_ENTROPY = HexHighEntropyString()
_MIN_QUOTED = 20  # shorter quoted strings are identifiers, not keys


def _plugin_repl(m: re.Match[str]) -> str:
    # A long capture group is the secret inside its context (AWS: aws ... key ... "<40 chars>"); otherwise
    # the whole match is (a capture group there is a prefix such as GitLab's "glpat").
    if m.lastindex is not None:
        g = m.lastindex
        if m.group(g) and len(m.group(g)) >= 16:
            s, e = m.span(g)
            whole_s = m.start()
            return m.string[whole_s:s] + SECRET + m.string[e : m.end()]
    text = m.group(0)
    core = text.strip(_EDGE)
    if not core:
        return text
    i = text.index(core)
    return text[:i] + SECRET + text[i + len(core) :]


def _quoted_entropy_repl(m: re.Match[str]) -> str:
    value = m.group(2)
    if len(value) >= _MIN_QUOTED and (
        _B64_ENTROPY.calculate_shannon_entropy(value) > _B64_ENTROPY.entropy_limit
        or (
            all(c in "0123456789abcdefABCDEF" for c in value)
            and _HEX_ENTROPY.calculate_shannon_entropy(value) > _HEX_ENTROPY.entropy_limit
        )
    ):
        return m.group(1) + SECRET + m.group(3)
    return m.group(0)


# detect-secrets' own quoted-string regex, ([\'"])([charset]+)(\1): the charset has no quote, so it is linear.
_QUOTED = _B64_ENTROPY.regex

# --- our secret patterns -------------------------------------------------------------------------------
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.S,
)
# scheme://user:password@host - user and password both go.
_URL_USERINFO = re.compile(
    r"(?i)(?<![A-Za-z0-9+.-])([a-z][a-z0-9+.-]{0,20}://)[^\s/@:]{1,256}:[^\s/@]{1,256}@"
)
# Authorization schemes: the credential must look random (a digit or a symbol), so "basic auth" stays.
_AUTH_SCHEME = re.compile(
    r"(?i)\b(bearer|basic)[ \t]{1,4}(?=[A-Za-z0-9\-._~+/]{0,512}[0-9\-._~+/=])([A-Za-z0-9\-._~+/]{8,}=*)"
)
_KNOWN_TOKENS = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[A-Za-z0-9_-]{20,}"  # GitLab tokens
    r"|xox[abposre]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|sk-[A-Za-z0-9_-]{20,}"  # API secret keys of the sk- family
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWTs
    r")(?![A-Za-z0-9])"
)
_SECRET_KEYS = (
    r"password|passwd|passphrase|pwd|secret|client[_-]?secret|secret[_-]?key|api[_-]?key|apikey"
    r"|access[_-]?key(?:[_-]?id)?|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|private[_-]?key"
    r"|aws_secret_access_key|credentials?|account[_-]?key|shared[_-]?access[_-]?(?:key|signature)|sig"
)
# A key name starts where its run of name characters starts (not at every "a" of "a_a_a_..."): DB_PASSWORD,
# x-api-key, --password.
_KEY = rf"(?<![A-Za-z0-9_-])(?=[A-Za-z_-])((?:[A-Za-z0-9]{{0,32}}+[_-]){{0,4}}(?:{_SECRET_KEYS}))"
# key=value: whatever follows "=" is the secret.
_KV_EQUALS = re.compile(
    rf"(?i){_KEY}([ \t]{{0,8}}=[ \t]{{0,8}}){_NOT_PLACEHOLDER}"
    r"(\"[^\"\n]{0,512}\"|'[^'\n]{0,512}'|[^\s,;&\"')\]}]+)"
)
# key: value and "password is value": only when the value looks like a credential (quoted, or has a digit, a
# symbol or an inner capital), so that prose such as "root cause: token expiry" or "the password is expired"
# is kept.
_CREDENTIAL = r"(?=[^\s,;]{0,512}(?:[0-9!#$%^&*+/=?~_@]|[a-z][A-Z]))[^\s,;\"')\]}]+"
_KV_COLON = re.compile(
    rf"(?i){_KEY}([ \t]{{0,8}}:[ \t]{{0,8}}){_NOT_PLACEHOLDER}"
    rf"(\"[^\"\n]{{0,512}}\"|'[^'\n]{{0,512}}'|(?-i:{_CREDENTIAL}))"
)
_KV_IS = re.compile(
    r"(?i)(?<![A-Za-z0-9])((?:pass(?:word|wd|phrase|code)?|pwd|pin|secret|api[ _-]?key|token)"
    r"[ \t]{1,4}(?:is|was|(?:is |was )?(?:set|changed|reset) to)[ \t]{1,4})"
    + _NOT_PLACEHOLDER
    + r"(\"[^\"\n]{0,512}\"|'[^'\n]{0,512}'|(?-i:"
    + _CREDENTIAL
    + "))"
)
_LONG_HEX = re.compile(r"(?<![A-Za-z0-9_])[0-9a-fA-F]{32,}(?![A-Za-z0-9_])")
# base64/base64url runs with upper case, lower case and digits mixed: random, not words or paths.
_B64_RUN = r"[A-Za-z0-9+/_-]"
_LONG_B64 = re.compile(
    rf"(?<![A-Za-z0-9+/_-])(?={_B64_RUN}*[0-9])(?={_B64_RUN}*[a-z])(?={_B64_RUN}*[A-Z])"
    rf"{_B64_RUN}{{32,}}={{0,2}}(?![A-Za-z0-9+/=_-])"
)

# --- e-mail, IP, phone, handles -------------------------------------------------------------------------
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Matches start where a run of local-part characters starts (linear time on long tokens).
_LOCAL = r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@"
_EMAIL = re.compile(
    r"(?:mailto:)?" + _LOCAL + r"(?:" + _LABEL + r"(?:\." + _LABEL + r")+|\[[0-9A-Fa-f:.]{2,45}\])"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(
    rf"(?<![A-Za-z0-9_.])(?:{_OCTET}\.){{3}}{_OCTET}(?::[0-9]{{1,5}})?(?:/[0-9]{{1,2}})?(?![A-Za-z0-9_]|\.[0-9])"
)
# IPv6: a bounded token of hex digits, colons and dots that starts where such a run starts, validated with
# the ipaddress module (so times such as 10:30:00 and scopes such as std::io are kept). An address is at most
# 45 characters (IPv4-mapped) and has a colon within its first five; a longer run of these characters is not an
# address and costs 45 steps.
_IPV6 = re.compile(
    r"(?<![A-Za-z0-9_:.\[])(?P<open>\[?)(?=[0-9A-Fa-f]{0,4}:)(?P<addr>[0-9A-Fa-f:.]{2,45})"
    r"(?P<zone>%[A-Za-z0-9_.-]{1,32})?(?P<close>\]?)(?P<tail>(?::[0-9]{1,5})?(?:/[0-9]{1,3})?)"
    r"(?![A-Za-z0-9_:.])"
)
_PHONE = re.compile(
    r"(?<![A-Za-z0-9_+.:/-])(?:"
    r"\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}"  # international, +CC ...
    r"|(?:1[ .-])?\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}"  # North American 555-123-4567
    r"|\([0-9]{2,5}\)[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}"  # (020) 7946 0018
    r")(?![A-Za-z0-9_]|[.:/-][0-9])"
)
_HANDLE = re.compile(r"(?<![A-Za-z0-9_.@/\\\]])@[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_SLACK_MENTION = re.compile(r"<@[A-Z0-9]{1,32}(?:\|[^<>\n]{0,80})?>")

_HEX = frozenset("0123456789abcdefABCDEF")


def _valid_ipv6(addr: str) -> bool:
    if addr.count(":") < 2 or not any(c in _HEX for c in addr):
        return False
    # Identifiers such as Foo::Add are valid IPv6 spellings; real addresses carry a digit or are lower case.
    if not any(c.isdigit() for c in addr) and addr != addr.lower():
        return False
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    return True


def _ipv6_repl(m: re.Match[str]) -> str:
    addr, zone, tail = m.group("addr"), m.group("zone") or "", m.group("tail")
    opened, closed = bool(m.group("open")), bool(m.group("close"))
    if _valid_ipv6(addr):
        if opened == closed:
            return IP
        return (IP + "]") if closed else ("[" + IP)  # a bracket of the sentence, not of the address
    if zone or tail or closed:
        return m.group(0)
    # "host ::1: down", "mapped ::ffff:1.2.3.4." - punctuation of the sentence after the address.
    end = len(addr)
    while end > 2 and addr[end - 1] in ":.":
        end -= 1
        if _valid_ipv6(addr[:end]):
            return m.group("open") + IP + addr[end:]
    return m.group(0)


def _phone_repl(m: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in m.group(0))
    return PHONE if 7 <= digits <= 15 else m.group(0)


def _plugins(text: str) -> str:
    for rx in _PLUGIN_REGEXES:
        text = rx.sub(_plugin_repl, text)
    return text


# Applied in this order: whole blocks and URL credentials first, then tokens of known shape, key=value pairs,
# the detect-secrets detectors, then addresses and numbers, and last the generic high-entropy runs and handles.
_STEPS: tuple[tuple[re.Pattern[str] | None, str | Callable[[re.Match[str]], str] | None], ...] = (
    (_PRIVATE_KEY, SECRET),
    (_URL_USERINFO, lambda m: m.group(1) + SECRET + "@"),
    (_AUTH_SCHEME, lambda m: f"{m.group(1)} {SECRET}"),
    (_KNOWN_TOKENS, SECRET),
    (_KV_EQUALS, lambda m: f"{m.group(1)}{m.group(2)}{SECRET}"),
    (_KV_COLON, lambda m: f"{m.group(1)}{m.group(2)}{SECRET}"),
    (_KV_IS, lambda m: f"{m.group(1)}{SECRET}"),
    (None, None),  # the detect-secrets plugins
    (_QUOTED, _quoted_entropy_repl),
    (_EMAIL, EMAIL),
    (_SLACK_MENTION, HANDLE),
    (_IPV6, _ipv6_repl),
    (_IPV4, IP),
    (_LONG_HEX, SECRET),
    (_LONG_B64, SECRET),
    (_PHONE, _phone_repl),
    (_HANDLE, HANDLE),
)


def redact(text: str) -> str:
    """Return `text` with personal data and secrets replaced by placeholders (idempotent, linear time).

    Replaced: e-mail addresses (``[EMAIL]``), IPv4/IPv6 addresses with optional port or prefix (``[IP]``),
    phone numbers (``[PHONE]``), secrets (``[SECRET]``: private keys, credentials in URLs, bearer/basic
    tokens, AWS/GitHub/GitLab/Slack/Azure/Stripe/... keys, JWTs, ``password=...``, ``password: ...`` and
    ``password is ...`` values, random quoted strings, long hex or base64 strings) and ``@handles``
    (``[HANDLE]``). Kept: ordinary words, version numbers (1.2.3), dates, times and durations.
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}", field="text", value=text)
    if not text:
        return text
    out = text
    for pattern, repl in _STEPS:
        if pattern is None:
            out = _plugins(out)
        else:
            out = pattern.sub(repl, out)  # type: ignore[arg-type]
    return out


def _redact_optional(value: str | None) -> str | None:
    return None if value is None else redact(value)


def redact_incident(incident: Incident) -> Incident:
    """A copy of `incident` with every free-text field redacted: title, summary, impact, timeline, root cause,
    contributing factors, action-item titles and tags. Ids, service, team, severity and times are kept."""
    if not isinstance(incident, Incident):
        raise InputError(
            f"incident must be an ml.io.schemas.Incident, got {type(incident).__name__}",
            field="incident",
            value=incident,
        )
    return incident.model_copy(
        update={
            "title": redact(incident.title),
            "summary": redact(incident.summary),
            "impact": _redact_optional(incident.impact),
            "timeline": _redact_optional(incident.timeline),
            "root_cause": _redact_optional(incident.root_cause),
            "contributing_factors": [redact(f) for f in incident.contributing_factors],
            "action_items": [a.model_copy(update={"title": redact(a.title)}) for a in incident.action_items],
            "tags": [redact(t) for t in incident.tags],
        }
    )
