"""Pattern names people read (ml/patterns/labelling.py) and the names kept out of them (ml/text/entities.py)."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest

from ml.errors import InputError, NotFittedError
from ml.io.schemas import Incident
from ml.patterns.labelling import PatternLabeller, name_texts
from ml.text.boilerplate import BoilerplateFilter
from ml.text.documents import STOP_WORDS, DocumentBuilder, redact, strip_html
from ml.text.entities import EntityMasker
from ml.text.stemming import stem

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"

SERVICES = ["payments-api", "auth-service", "ledger-db", "search-indexer"]
TEAMS = ["payments", "identity", "storage"]
VENDORS = ["IdentiKit", "PayStream", "Notifly"]
PEOPLE = ["Elena Petrova", "Mateo Garcia"]

# Three planted mechanisms; a vendor or service is named in almost every cause, so names built from raw
# keywords would carry them ("identikit / provider").
MECHANISMS: dict[str, list[str]] = {
    "certificate": [
        "The TLS certificate for {svc} expired overnight because renewal at {vendor} was manual.",
        "An expired TLS certificate on {svc} broke every handshake with {vendor}.",
        "Nobody renewed the TLS certificate of {svc}; the expired TLS certificate took it down.",
    ],
    "pool": [
        "Connection pool exhaustion in {svc}: slow {vendor} calls held every connection.",
        "The connection pool of {svc} was exhausted while requests to {vendor} waited.",
        "{svc} hit connection pool exhaustion after {vendor} latency doubled.",
    ],
    "disk": [
        "The disk filled up on {svc} nodes when {vendor} webhooks were logged in full.",
        "Disk full on {svc}: a debug log of {vendor} payloads grew without rotation.",
        "{svc} stopped writing because the disk was full of {vendor} export files.",
    ],
}
FILLER = [
    "{person} noticed the alert from {vendor} first.",
    "The {team} team paged {person} and the {svc} owners.",
    "Traffic on {svc} was normal for a {day}.",
    "Support tickets mentioned {vendor} twice.",
]
TEMPLATES = [
    "We apologise for the inconvenience.",
    "Report written by {person}.",
    "Thank you for your patience.",
]
DAYS = ["Monday", "Tuesday", "Friday"]


def _fill(text: str, rng: random.Random, vendor: str | None = None) -> str:
    return text.format(
        svc=rng.choice(SERVICES),
        vendor=vendor if vendor is not None and rng.random() < 0.8 else rng.choice(VENDORS),
        team=rng.choice(TEAMS),
        person=rng.choice(PEOPLE),
        day=rng.choice(DAYS),
    )


def planted_corpus(per: int = 20, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """Root-cause texts of `per` incidents per mechanism, with fillers and report templates; labels.

    Each mechanism mostly involves one vendor (as a real third-party outage names its provider), so that
    c-TF-IDF alone would put the vendor in the keywords."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    for c, variants in enumerate(MECHANISMS.values()):
        for _ in range(per):
            parts = [_fill(rng.choice(variants), rng, VENDORS[c]), _fill(rng.choice(FILLER), rng)]
            parts += [_fill(t, rng) for t in TEMPLATES]
            rng.shuffle(parts)
            texts.append(redact(" ".join(parts)))
            labels.append(c)
    return texts, np.asarray(labels), list(MECHANISMS)


def _fitted(per: int = 20) -> tuple[PatternLabeller, list[str], np.ndarray, list[str], BoilerplateFilter]:
    texts, labels, mechanisms = planted_corpus(per)
    names = SERVICES + TEAMS
    bp = BoilerplateFilter().fit(texts, names=names)
    entities = EntityMasker().fit(texts, names=names)
    lab = PatternLabeller(min_df=2).fit(texts, labels, entities=entities, boilerplate=bp)
    return lab, texts, labels, mechanisms, bp


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)}


FORBIDDEN = {w.lower() for n in SERVICES + TEAMS + VENDORS + PEOPLE for w in re.split(r"[-\s]", n)} - {
    "api",
    "service",
    "db",
}


def test_planted_mechanisms_give_their_names() -> None:
    lab, _, _, mechanisms, _ = _fitted()
    want = {"certificate": {"certificate", "tls"}, "pool": {"pool", "connection"}, "disk": {"disk"}}
    for c, mech in enumerate(mechanisms):
        name = lab.names_[c]
        assert _words(name) & want[mech], (mech, name)
        assert name[0].isupper() and 1 <= len(name.split()) <= 4
        assert " / " not in name  # one phrase, not two keywords
    assert "TLS" in lab.names_[0]  # acronyms keep their capitals


def test_names_and_keywords_hold_no_service_team_vendor_or_person() -> None:
    lab, _, _, _, _ = _fitted()
    for c, name in lab.names_.items():
        assert not _words(name) & FORBIDDEN, name
        for kw in lab.keywords(c):
            assert not _words(kw) & FORBIDDEN, kw
        assert lab.keywords(c), "keywords stay as a secondary field"


def test_raw_keyword_names_leak_vendors_on_the_same_corpus() -> None:
    # the reason for the masking: without it, vendor and service names rise to the top
    texts, labels, _ = planted_corpus()
    lab = PatternLabeller(min_df=2, mask_entities=False).fit(texts, labels)
    leaked = {w for c in lab.names_ for kw in lab.keywords(c)[:5] for w in _words(kw)} & FORBIDDEN
    assert leaked


def test_boilerplate_sentences_never_reach_keywords_or_names() -> None:
    lab, _, _, _, bp = _fitted()
    assert {"we apologise for the inconvenience", "thank you for your patience"} <= set(bp.sentences_)
    # each cause is written the same way in 7 of 60 incidents: a template by frequency, but all in one
    # pattern, so the labeller keeps it
    assert any("connection pool" in k for k in bp.sentences_)
    assert any("connection pool" in k for k in lab.kept_sentences_)
    assert not any("apologise" in k or "written by" in k for k in lab.kept_sentences_)
    template_words = {"apologise", "inconvenience", "patience", "report", "written", "thank"}
    for c, name in lab.names_.items():
        assert not _words(name) & template_words
        assert not {w for kw in lab.keywords(c) for w in kw.split()} & template_words


def test_names_are_unique_and_duplicates_are_reported() -> None:
    # two patterns of the same mechanism, told apart only by a secondary cause in part of their incidents
    base = "An expired TLS certificate broke the handshakes."
    docs = [f"{base} The renewal job was disabled." if i % 2 else base for i in range(8)]
    docs += [f"{base} The client bundle shipped an old intermediate." if i % 2 else base for i in range(8)]
    docs += [f"Disk full on the log volume, case {w}." for w in ("alpha", "beta", "gamma", "delta", "omega")]
    labels = np.array([0] * 8 + [1] * 8 + [2] * 5)
    lab = PatternLabeller(min_df=1).fit(docs, labels)
    assert len(set(lab.names_.values())) == 3
    assert lab.duplicate_names_ == {"Expired TLS certificate": [0, 1]}
    assert lab.names_[0].startswith("Expired TLS certificate (") and "renewal job" in lab.names_[0]
    assert lab.names_[1].startswith("Expired TLS certificate (") and re.search(
        "client|bundle|intermediate", lab.names_[1]
    )
    assert lab.names_[2] == "Disk full" or lab.names_[2] == "Log volume"


def test_the_shared_snowball_stemmer_merges_inflections() -> None:
    docs = [
        "Retries piled up.",
        "Retry piled up again.",
        "Retried calls piled up.",
        "Disk full.",
        "Disk full now.",
    ]
    lab = PatternLabeller(min_df=1).fit(docs, np.array([0, 0, 0, 1, 1]))
    assert stem("retries") == stem("retry") == stem("retried")
    assert lab.names_[0].lower().startswith("retr")
    assert lab.names_[1] == "Disk full"


def test_to_dict_from_dict_round_trip_through_json() -> None:
    lab, *_ = _fitted()
    data = json.loads(json.dumps(lab.to_dict()))
    again = PatternLabeller.from_dict(data)
    assert again.names_ == lab.names_
    assert again.keywords_ == lab.keywords_
    assert again.representatives_ == lab.representatives_
    assert again.duplicate_names_ == lab.duplicate_names_
    assert again.get_params() == lab.get_params()
    assert again.entities_ is not None and lab.entities_ is not None
    assert again.entities_.words_ == lab.entities_.words_
    assert again.entities_.mask("IdentiKit failed") == "[SERVICE] failed"
    with pytest.raises(InputError) as err:
        PatternLabeller.from_dict({"format": "pickle"})
    assert err.value.field == "format"


def test_fit_returns_self_and_not_fitted_is_clear() -> None:
    lab = PatternLabeller(min_df=1)
    with pytest.raises(NotFittedError):
        lab.keywords(0)
    with pytest.raises(NotFittedError):
        lab.to_dict()
    assert lab.fit(["disk full", "disk full again"], np.array([0, 0])) is lab


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"labels": np.array([0, 1])}, "labels"),
        ({"labels": np.array([0.5, 1.0, 0.0])}, "labels"),
        ({"labels": np.array([0, -3, 1])}, "labels"),
        ({"name_texts": ["only one"]}, "name_texts"),
        ({"name_texts": ["a", None, "c"]}, "name_texts[1]"),
        ({"docs": "one string"}, "docs"),
        ({"entities": {"words": []}}, "entities"),
        ({"params": {"max_name_words": 0}}, "max_name_words"),
        ({"params": {"min_name_share": 2.0}}, "min_name_share"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    params = kwargs.pop("params", {})
    args: dict[str, object] = {
        "docs": ["disk full", "tls expired", "pool exhausted"],
        "labels": np.array([0, 1, 1]),
    }
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        PatternLabeller(**params).fit(**args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert "\n" not in str(err.value)


# --- entity masking --------------------------------------------------------------------------------------
def test_entity_masker_learns_names_from_the_text() -> None:
    texts = [
        "Calls to Stripe timed out. The TLS certificate expired on the edge. Retries to Stripe piled up.",
        "A slow query at IdentiKit held connections. Kafka lag grew for an hour.",
        "We saw DNS errors and Elena Petrova rolled back. Kafka lag grew again.",
        "Our IPs were blocked by Stripe after the deploy. Certificate renewal failed.",
        "The team paged Elena Petrova; Stripe support answered, and Elena Petrova escalated.",
        "Certificate expired. Disk full on payments-api. Payments were slow.",
        "Stripe webhooks to payments-api failed. Kafka lag grew once more.",
    ]
    m = EntityMasker(min_mentions=2, min_mentions_word=3).fit(
        texts, names=["payments-api", "Git Operations", "Pages"]
    )
    words = set(m.words_)
    assert {"stripe", "identikit", "kafka", "elena", "petrova"} <= words
    assert not words & {"tls", "dns", "ips", "certificate", "disk", "calls", "retries", "payments"}
    assert m.mask("payments api and payments_api via IdentiKit") == "[SERVICE] and [SERVICE] via [SERVICE]"
    # a one-word name given with a capital matches with it only: the ordinary word stays
    assert m.mask("Pages degraded; the pages were slow") == "[SERVICE] degraded; the pages were slow"
    # names of several words match in any case, their plural also in the singular
    assert m.mask("Git Operations and a git operation failed") == "[SERVICE] and a [SERVICE] failed"
    assert m.term_has_entity("stripe outage") and not m.term_has_entity("certificate expiry")
    again = EntityMasker.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.words_ == m.words_ and again.names_ == m.names_


def test_entity_masker_bad_input() -> None:
    with pytest.raises(InputError) as err:
        EntityMasker(min_capitalised_share=0).fit(["x"])
    assert err.value.field == "min_capitalised_share"
    with pytest.raises(InputError) as err:
        EntityMasker().fit(["ok"], names="payments-api")
    assert err.value.field == "names"
    with pytest.raises(NotFittedError):
        EntityMasker().mask("text")


def test_name_work_is_linear_on_hostile_text() -> None:
    hostile = "Aa " * 40_000 + "a-" * 40_000 + "x." * 40_000 + "[" * 40_000 + "IdentiKit" * 5_000
    t0 = time.perf_counter()
    m = EntityMasker().fit([hostile])
    m.mask(hostile)
    PatternLabeller(min_df=1).fit([hostile, "disk full", "disk full"], np.array([0, 1, 1]), entities=m)
    assert time.perf_counter() - t0 < 10.0


# --- real corpora ----------------------------------------------------------------------------------------
def test_sample_names_hold_no_service_or_team_and_are_unique() -> None:
    incidents = [
        Incident(**json.loads(line))
        for line in (ROOT / "data" / "sample" / "incidents.jsonl").read_text().splitlines()
        if line.strip()
    ]
    kinds = sorted({i.pattern for i in incidents if i.pattern and i.pattern != "one-off"})
    labels = np.array([kinds.index(i.pattern) if i.pattern in kinds else -1 for i in incidents])
    builder = DocumentBuilder(mask_entities=True).fit(incidents)
    given = [n for i in incidents for n in (i.service, i.team) if n]
    bp = BoilerplateFilter().fit(builder.build_many(incidents), names=given)
    docs = bp.transform(builder.build_many(incidents), keep_whole=False)
    roots = bp.transform(name_texts(incidents, builder.build_text), keep_whole=False)
    entities = EntityMasker().fit(docs + roots, names=given)
    lab = PatternLabeller().fit(docs, labels, name_texts=roots, entities=entities)
    # one-word services and teams, whole multi-word service names (a part such as "gateway" of
    # "api-gateway" is an ordinary word), and the sample's vendors
    forbidden = {n.lower() for n in given if "-" not in n} | {"identikit", "taxcalc", "paystream"}
    multi = {n.lower().replace("-", " ") for n in given if "-" in n}
    assert len(set(lab.names_.values())) == len(kinds)
    for c in range(len(kinds)):
        name = lab.names_[c].lower().replace("-", " ")
        assert not _words(name) & forbidden and not any(m in name for m in multi), lab.names_[c]
        assert not {w for kw in lab.keywords(c) for w in kw.split()} & forbidden, lab.keywords(c)
        assert not any(m in kw for kw in lab.keywords(c) for m in multi), lab.keywords(c)
    assert not any(
        w in STOP_WORDS for n in lab.names_.values() for w in (n.split()[0].lower(), n.split()[-1].lower())
    )


@pytest.mark.skipif(not GITHUB.is_file(), reason="../shared/data/github-status is not on this machine")
def test_github_status_names_are_not_templates_or_components() -> None:
    records = [json.loads(line) for line in GITHUB.read_text().splitlines() if line.strip()]
    docs = [redact(strip_html(r["text"])) for r in records]
    components = sorted({c for r in records for c in r["components"]})
    main = [r["components"][0] if r["components"] else "" for r in records]
    groups = sorted({m for m in main if m and main.count(m) >= 20})
    labels = np.array([groups.index(m) if m in groups else -1 for m in main])  # one pattern per component
    bp = BoilerplateFilter().fit(docs, names=components)
    cleaned = bp.transform(docs, keep_whole=False)
    lab = PatternLabeller().fit(cleaned, labels, entities=EntityMasker().fit(docs, names=components))
    names = [lab.names_[c] for c in range(len(groups))]
    assert len(set(names)) == len(names)
    for c, name in enumerate(names):
        low = name.lower()
        assert "operating normally" not in low and "this incident" not in low, name
        for comp in components:  # a component name never, a word of one only in its ordinary sense
            assert comp not in name and (" " not in comp or comp.lower() not in low), name
        assert not {w for kw in lab.keywords(c) for w in kw.split()} & {"github", "codespaces", "copilot"}


def test_service_identifiers_in_the_text_are_names() -> None:
    texts = [
        "Calls to events-pg timed out while the feature-flag rollout ran.",
        "The events-pg primary failed over; tenant-registry kept serving.",
        "A feature-flag change and tenant-registry restarts.",
    ]
    m = EntityMasker().fit(texts, names=["payments-api"])
    assert m.slugs_ == ["events-pg", "tenant-registry"]  # "-pg", "-registry": how services end
    assert m.mask(texts[0]) == "Calls to [SERVICE] timed out while the feature-flag rollout ran."
    assert m.term_has_entity("events pg") and not m.term_has_entity("feature flag")


def test_units_time_words_and_narrating_verbs_are_never_a_name() -> None:
    """A pattern whose most distinctive words are a unit and a time word ('milliseconds', 'periods') is named
    by its mechanism, and a one-word name gives way to a phrase of the pattern's own keywords."""
    rng = random.Random(1)
    slow = [
        "Calls took 900 milliseconds for short periods because the retry budget was exhausted.",
        "For short periods every call took milliseconds longer: the retry budget was exhausted.",
        "The retry budget was exhausted, so requests waited milliseconds for short periods.",
    ]
    pool = [
        "The connection pool was exhausted and the worker applies the same settings.",
        "Connection pool exhaustion: every connection was held by slow queries.",
        "Slow queries held the connection pool until it was exhausted.",
    ]
    texts = [rng.choice(v) for v in (slow, pool) for _ in range(20)]
    labels = np.repeat([0, 1], 20)
    lab = PatternLabeller(min_df=2).fit(texts, labels)
    banned = {"milliseconds", "periods", "short", "applies"}
    for c in (0, 1):
        assert not _words(lab.names_[c]) & banned, lab.names_
        assert len(lab.names_[c].split()) >= 2, lab.names_
    assert _words(lab.names_[0]) & {"retry", "budget"} and _words(lab.names_[1]) & {"pool", "connection"}
