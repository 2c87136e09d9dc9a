"""Seeded generator for Recur's sample data (incidents, postmortems, indicators, experiments, truth).

    python data/generate.py --seed 7 --out data/sample

The same seed gives byte-identical files. Only the standard library, numpy and pyyaml are used.
See data/README.md for the formats and the ground truth.

Incident texts are built from per-pattern template pools (several titles, summaries, root causes, timeline
events, contributing factors and action items per failure pattern), slots filled per incident (services,
versions, regions, numbers, people, hosts, IPs) and a shared vocabulary pool used by every pattern, so that
patterns overlap in wording the way real postmortems do.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

UTC = dt.UTC
WINDOW_START = dt.datetime(2024, 11, 1, tzinfo=UTC)
WINDOW_END = dt.datetime(2026, 10, 31, 23, 59, tzinfo=UTC)  # also the "as of" date of the sample
N_DAYS = (WINDOW_END.date() - WINDOW_START.date()).days + 1
WEEK0 = dt.date(2024, 11, 4)  # first Monday of the indicator series
N_WEEKS = 104  # last week: 2026-10-26
N_INCIDENTS = 600
ONE_OFF_SHARE = 0.10
N_POSTMORTEMS = 12
ONE_OFF = "one-off"
# How much of the text says nothing about the cause (difficulty knobs for pattern mining)
GENERIC_TITLE_SHARE = 0.45  # titles that are symptom-only ("Elevated errors on payments-api")
GENERIC_SUMMARY_SHARE = 0.35  # summaries that are symptom-only

TEAM_SERVICES: dict[str, tuple[str, str]] = {
    "payments": ("payments-api", "billing-worker"),
    "identity": ("auth-service", "session-store"),
    "platform": ("api-gateway", "edge-proxy"),
    "data": ("etl-pipeline", "search-indexer"),
    "growth": ("web-frontend", "notifications"),
    "storage": ("orders-db", "object-store"),
}
TEAMS = list(TEAM_SERVICES)
SERVICES = [s for pair in TEAM_SERVICES.values() for s in pair]
OWNER = {s: t for t, pair in TEAM_SERVICES.items() for s in pair}

PEOPLE = [
    ("Maria", "Lopez"),
    ("Jun", "Chen"),
    ("Aarav", "Kumar"),
    ("Sofia", "Rossi"),
    ("Liam", "OBrien"),
    ("Fatima", "Haddad"),
    ("Noah", "Schmidt"),
    ("Yuki", "Tanaka"),
    ("Amara", "Okafor"),
    ("Lucas", "Silva"),
    ("Elena", "Petrova"),
    ("Omar", "Farouk"),
    ("Chloe", "Martin"),
    ("Mateo", "Garcia"),
    ("Priya", "Nair"),
    ("Ethan", "Walker"),
    ("Hana", "Kim"),
    ("Jonas", "Berg"),
    ("Zoe", "Dubois"),
    ("Kwame", "Mensah"),
    ("Ines", "Costa"),
    ("Daniel", "Cohen"),
    ("Mei", "Wong"),
    ("Samir", "Patel"),
]
EMAIL_DOMAINS = ["example.com", "corp.example.com", "example.org"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]

# DST transitions in the window (EU and US) and other clock-sensitive days.
DST_DATES = [
    dt.date(2025, 3, 9),
    dt.date(2025, 3, 30),
    dt.date(2025, 10, 26),
    dt.date(2025, 11, 2),
    dt.date(2026, 3, 8),
    dt.date(2026, 3, 29),
    dt.date(2026, 10, 25),
]

# ---------------------------------------------------------------------------------------------- text pools
# Template syntax: {name} is a slot (an incident-level value or a pool, rendered recursively), {^name}
# capitalises its first letter, {,name} lower-cases it; <<a|b|c>> picks one alternative (may be empty).

SHARED: dict[str, list[str]] = {
    "symptom": [
        "elevated 5xx errors",
        "a spike in HTTP 503 responses",
        "request timeouts",
        "p99 latency above {ms} ms",
        "an error rate of roughly {pct}%",
        "failed requests",
        "intermittent 502s from the load balancer",
        "slow responses and timeouts",
        "connection resets",
        "degraded performance",
    ],
    "symptom_short": ["5xx errors", "timeouts", "high latency", "errors", "503s", "failures", "slowness"],
    "alert": [
        "the {service} availability SLO alert",
        "a synthetic check in {region}",
        "a high-latency page",
        "a burn-rate alert on the error budget",
        "an anomaly alert on the {service} dashboard",
        "the p99 latency alert",
        "a Datadog monitor on 5xx rate",
    ],
    "detect_generic": [
        "{^alert} fired and paged {handle}.",
        "On-call ({handle}) paged by {alert}.",
        "Support escalated reports of {symptom_short} from {users}.",
        "Monitoring flagged {symptom} on {service}.",
        "{handle} noticed {symptom_short} on the {service} dashboard.",
    ],
    "investigate_generic": [
        "Incident declared ({severity}); {handle} is incident commander.",
        "Opened #inc-{chan} and started a bridge call.",
        "Checked recent deploys and config changes for {service}.",
        "Dashboards show {symptom} concentrated in {region}.",
        "{handle2} joined to help with the investigation.",
        "Initial suspicion: {red_herring}. Ruled out after checking.",
        "Status page updated: investigating {symptom_short} on {service}.",
        "Escalated to the {dep} owners.",
        "Looked at logs on {host} ({ip}); nothing obvious at first.",
        "Traffic from {ip} looked unusual; it turned out to be a health checker.",
        "Customer {email} reported the problem through support.",
    ],
    "resolve_generic": [
        "Error rates back to baseline; incident resolved.",
        "Metrics recovered; monitored for 30 minutes, then closed.",
        "All clear given by {handle}.",
        "Service fully recovered; incident closed.",
        "Latency and error rate normal again. Resolved.",
    ],
    "generic_title": [
        "{service} degraded",
        "Elevated errors on {service}",
        "{service} outage in {region}",
        "{service} partial outage",
        "Incident: {service} {symptom_short}",
        "{^symptom_short} on {service}",
        "Degraded performance for {service}",
    ],
    "summary_generic": [
        "{^users} experienced {symptom} on {service} between {start_time} and {end_time} UTC.",
        "{service} was degraded for {duration}, with {symptom} in {region}.",
        "Between {start_time} UTC and {end_time} UTC, {pct}% of requests to {service} failed.",
        "{service} returned {symptom_short} to {users} for {duration}. The team mitigated the issue and "
        "monitored until recovery.",
        "We had an outage of {service} affecting {users} in {region}.",
        "Partial outage of {service}: {symptom} for about {duration}.",
        "Our {service} service had {symptom} for {duration}; {dep} was affected as well.",
        "At {start_time} UTC {service} began timing out. Error rates stayed high until {end_time} UTC.",
    ],
    "summary_follow": [
        "{^users} saw {symptom} for about {duration}.",
        "The incident lasted {duration} and was handled as {severity}.",
        "{handle} led the response.",
        "Impact was limited to {region}.",
        "We updated our status page shortly after {start_time} UTC.",
        "Support received {n_tickets} tickets.",
        "No data was lost.",
        "Report written by {email}.",
    ],
    "filler": [
        "This was the {nth} incident on {service} this quarter.",
        "The incident overlapped with the weekly release window, which made the first diagnosis noisier.",
        "{n_tickets} support tickets were opened during the incident.",
        "The response was slower than it should have been because the runbook link in the alert was stale.",
        "Paging worked as expected and the first responder acknowledged within {ack} minutes.",
        "Questions about this review can go to {email}.",
        "Thanks to {handle} and {handle2} for the quick response.",
        "We communicated with affected {users} through the status page and by e-mail.",
        "The on-call engineer was new to {service}, and escalating to the owning team took {minutes_small} minutes.",
        "Timeouts and retries made the blast radius larger than the trigger alone.",
        "A deploy of {dep} went out during the incident; it was unrelated but confused the timeline.",
        "Several dashboards disagreed about when the problem started.",
    ],
    "impact_generic": [
        "{pct}% of requests to {service} failed for {duration}.",
        "About {n_users} {users} were affected, mostly in {region}.",
        "{n_tickets} support tickets; no data loss.",
        "Checkout conversion dropped by {pct_small}% during the window.",
        "Jobs in {dep} that depend on {service} were delayed by {duration}.",
        "SLO burn: {budget}% of the monthly error budget was used.",
        "Roughly {n_req} requests failed or timed out.",
        "Latency-sensitive endpoints on {service} were unusable; background jobs were fine.",
    ],
    "factor_generic": [
        "Runbook for {service} was out of date",
        "Alert fired later than it should have",
        "On-call was not familiar with {service}",
        "Dashboards lacked a per-region breakdown",
        "Escalation to the {dep} owners took {minutes_small} minutes",
        "Insufficient load testing",
        "Timeouts not aligned between {service} and {dep}",
        "Change was made outside business hours with no second reviewer",
        "Missing ownership for a shared component",
    ],
    "action_generic": [
        "Update the {service} runbook",
        "Add a dashboard panel for {service} error budget",
        "Review alert thresholds for {service}",
        "Run a game day for this failure mode",
        "Document the escalation path to {dep} owners",
        "Add an end-to-end synthetic check for {service}",
        "Review timeouts between {service} and {dep}",
        "Write a postmortem summary for the engineering all-hands",
    ],
    "tag_generic": [
        "customer-facing",
        "internal",
        "sev-review",
        "needs-followup",
        "{team}",
        "{region}",
        "latency",
        "availability",
        "postmortem-done",
    ],
    "users": [
        "customers",
        "users",
        "merchants",
        "API clients",
        "mobile users",
        "internal callers",
        "partners",
    ],
    "timeout_word": ["timeouts", "timed-out requests", "slow calls"],
}

# Red herrings: (pattern they belong to, phrase). A pattern never uses its own.
RED_HERRINGS: list[tuple[str, str]] = [
    ("bad-deploy-rollback", "a deploy of {dep} that went out around the same time"),
    ("dns-change", "a DNS problem"),
    ("connection-pool-exhaustion", "the database connection pool"),
    ("certificate-expiry", "a certificate issue"),
    ("autoscaling-lag", "a traffic spike from a single customer"),
    ("third-party-outage", "the CDN provider"),
    ("config-push-no-canary", "a recent config change"),
    ("disk-full", "disk pressure on the nodes"),
    ("cache-stampede", "a cache problem"),
    ("retry-storm", "retries from the mobile app"),
    ("", "a network partition between zones"),
    ("", "a noisy neighbour on the shared nodes"),
    ("", "the load balancer"),
]


# Secondary mechanisms: (pattern whose vocabulary they borrow, sentence). Real incidents rarely have one cause;
# these put other patterns' words into a postmortem. A pattern never gets its own.
SECONDARY: list[tuple[str, str]] = [
    ("retry-storm", "Client retries amplified the load while {service} was struggling."),
    (
        "bad-deploy-rollback",
        "A rollback of the latest {service} deploy was tried first, which did not help.",
    ),
    ("autoscaling-lag", "The autoscaler added pods, but they came up too slowly to make a difference."),
    (
        "connection-pool-exhaustion",
        "Connection pools on {dep} filled up while requests waited, spreading the timeouts.",
    ),
    ("cache-stampede", "Caches on {service} went cold after the restarts, which added load on the database."),
    ("disk-full", "Error logging grew quickly and disk usage on {host} climbed during the incident."),
    ("config-push-no-canary", "A config change raising timeouts was pushed during the incident to buy time."),
    ("dns-change", "DNS caching delayed recovery for some clients after the fix."),
    ("third-party-outage", "We checked our vendors' status pages first; they were all green."),
    (
        "credential-expiry",
        "Expired credentials on an unrelated integration showed up in the logs and distracted responders.",
    ),
    (
        "certificate-expiry",
        "A certificate warning on an unrelated internal endpoint added noise to the alerts.",
    ),
    (
        "clock-timezone-bug",
        "Log timestamps from two hosts disagreed by a few seconds, which confused the timeline.",
    ),
    ("bad-deploy-rollback", "A rollback was considered, but nothing had been deployed recently."),
    ("", "Restarting pods reset the state but the problem came back within minutes."),
    ("", "Timeouts between {service} and {dep} were not aligned, so callers gave up before the server did."),
    ("", "Our alerting was noisy at the time, so the first page was missed for a few minutes."),
    ("", "Health checks failed under the load and the orchestrator recycled healthy pods."),
]


@dataclass(frozen=True)
class PatternSpec:
    """Everything the generator knows about one recurring failure pattern."""

    slug: str
    description: str
    base_rate: float
    trend: str  # flat | rising | fading | emerging | seasonal | spiky | bursty
    services: tuple[str, ...]
    hours: str  # business | uniform | night | peak | midnight
    detect_median_min: float
    resolve_median_min: float
    severity: tuple[float, float, float, float, float]
    reopen_p: float
    texts: dict[str, list[str]]
    key_action: str | None = None
    key_date: dt.date | None = None
    emerge_date: dt.date | None = None


def _p(**pools: list[str]) -> dict[str, list[str]]:
    return pools


PATTERNS: list[PatternSpec] = [
    PatternSpec(
        slug="config-push-no-canary",
        description="Runtime configuration or feature-flag change pushed to the whole fleet at once, no canary",
        base_rate=1.25,
        trend="fading",
        services=("api-gateway", "edge-proxy", "payments-api", "notifications", "web-frontend"),
        hours="business",
        detect_median_min=3,
        resolve_median_min=45,
        severity=(0.07, 0.22, 0.38, 0.28, 0.05),
        reopen_p=0.05,
        key_action="Add a canary stage to config pushes",
        key_date=dt.date(2025, 8, 14),
        texts=_p(
            title=[
                "{service} errors after runtime config change",
                "Fleet-wide settings push broke {service}",
                "{service}: {config_key} change caused {symptom_short}",
                "Bad config value reached all {service} hosts at once",
                "{^symptom_short} on {service} after a feature-flag flip",
                "Outage of {service} in all regions after configuration rollout",
                "{service} degraded - change {change_id}",
            ],
            summary=[
                "A change to `{config_key}` was pushed to every {service} instance at once and {symptom} "
                "followed within {minutes_small} minutes. <<Reverting the value|Rolling the setting back|"
                "Restoring the previous value>> restored service.",
                "{service} <<started failing|began returning errors|degraded badly>> after a "
                "<<configuration|config|settings>> update went out to all regions <<at the same time|"
                "simultaneously|in a single step>>. {^users} saw {symptom} for {duration}.",
                "We flipped a feature flag for {flag_feature} in production for everyone instead of a small "
                "cohort, and {symptom} started on {service} almost immediately.",
                "Settings change {change_id} to {service} had a bad value for {config_key}; it went out "
                "globally without a staged rollout and caused {symptom}.",
                "{service} went down in every region after {handle} applied a config update through {tool}. "
                "The value was rolled back after {duration}.",
                "config push to {service}, no staged rollout, broke everywhere. rolled back.",
                "An operator changed `{config_key}` from {old_val} to {new_val}. Because the change skipped "
                "<<staging|the canary fleet|progressive delivery>>, the bad value reached every host in under "
                "a minute and {service} began <<timing out|rejecting requests|crash-looping>>.",
            ],
            root_cause=[
                "The `{config_key}` value was changed from {old_val} to {new_val} and applied to all hosts at "
                "once through {tool}. {cfg_effect} Dynamic configuration has no staged rollout, so nothing "
                "caught the problem before it was global.",
                "{tool} propagates changes to the whole fleet within seconds. A bad value for `{config_key}` "
                "<<was accepted without validation|passed schema validation but was wrong|was not validated "
                "at all>>, and {,cfg_effect}",
                "Runtime configuration changes do not go through the deploy pipeline: no canary, no bake time, "
                "no automated rollback. The `{config_key}` change was reviewed for syntax only, and "
                "{,cfg_effect}",
                "A settings change meant for {region} only was applied everywhere because the <<scope "
                "selector|target filter|environment label>> in {tool} was left empty. {cfg_effect}",
                "The new `{config_key}` limit was far below what production traffic needs. Every instance "
                "picked it up at the same moment and started <<shedding|rejecting|throttling>> legitimate "
                "requests, which clients retried, making latency worse.",
                "`{config_key}` was set in <<seconds where the code expects milliseconds|bytes where the code "
                "expects kilobytes|the wrong unit>>. The value looked reasonable in review ({ticket}) but "
                "{,cfg_effect}",
                "A feature flag gating {flag_feature} was switched on for 100% of traffic instead of "
                "1%. The new path failed on {pct_small}% of requests, and because every host had it at once "
                "there was no healthy capacity left to absorb retries.",
            ],
            cfg_effect=[
                "Workers began timing out on every upstream call.",
                "The service failed its health checks and was restarted in a loop.",
                "Requests were routed to a backend pool that did not exist.",
                "Every request was rejected with HTTP 429.",
                "Latency jumped from {ms_low} ms to several seconds.",
                "The process crashed on start-up while parsing the new value.",
            ],
            detail=[
                "Code deploys of {service} go through a canary stage and automated analysis, but configuration "
                "is stored separately and pushed by {tool}, which has no such gate. The change was reviewed by "
                "one person, who checked the syntax but not the effect.",
                "We detected the problem quickly, but rolling back took longer than it should have: {tool} had "
                "no one-click revert, and {handle} had to find the previous value in the audit log.",
                "The same class of problem happened before; the follow-up to add progressive rollout for "
                "configuration was still in the backlog.",
                "Because all regions received the change within seconds, failing over to another region was "
                "not an option.",
            ],
            impact=[
                "All regions were affected at once, so regional failover did not help.",
                "{pct}% of requests to {service} failed until the value was reverted.",
            ],
            start_event=[
                "Change {change_id} applied via {tool} ({config_key}: {old_val} -> {new_val}).",
                "{handle} flips the flag for {flag_feature} to 100%.",
                "Config update for {service} rolled out to all regions.",
            ],
            detect_event=["{^symptom} in all regions at once; {alert} fired."],
            diagnose_event=[
                "Correlated the start of errors with change {change_id} in the audit log.",
                "Every region failed at the same moment, which pointed at a global change rather than a deploy.",
                "Diffed running config against the previous version; `{config_key}` changed.",
            ],
            mitigate_event=[
                "Reverted `{config_key}` to {old_val} through {tool}.",
                "Turned the flag off; error rate dropped within a minute.",
                "Restarted {service} pods to pick up the reverted config.",
            ],
            factor=[
                "No canary or staged rollout for runtime configuration",
                "Config validation only checks syntax, not value ranges",
                "Change reviewed by a single person",
                "No automatic rollback on error-rate increase after a config change",
                "Audit log of {tool} is hard to search during an incident",
                "Flag defaulted to 100% instead of 0%",
                "Config and code changes use different pipelines",
            ],
            action=[
                "Roll out runtime settings region by region with bake time",
                "Validate value ranges for {config_key} before apply",
                "Add one-click revert to {tool}",
                "Require two reviewers for production config changes",
                "Alert on error rate within 5 minutes of any config change",
                "Default new feature flags to 0%",
            ],
            tag=["config", "feature-flags", "change-management", "global", "rollout"],
        ),
    ),
    PatternSpec(
        slug="certificate-expiry",
        description="A TLS/mTLS certificate (leaf, intermediate or client) expired or was not reloaded",
        base_rate=1.3,
        trend="fading",
        services=("edge-proxy", "api-gateway", "auth-service", "object-store"),
        hours="uniform",
        detect_median_min=4,
        resolve_median_min=70,
        severity=(0.10, 0.28, 0.35, 0.22, 0.05),
        reopen_p=0.04,
        key_action="Move all certificates to automated renewal (cert-manager)",
        key_date=dt.date(2025, 5, 20),
        texts=_p(
            cert=["certificate", "cert", "TLS certificate", "SSL cert", "certificate"],
            title=[
                "Expired {cert} on {cert_domain}",
                "TLS handshake failures calling {service}",
                "{service} unreachable: x509 errors",
                "mTLS between {dep} and {service} broken",
                "HTTPS errors on {cert_domain} after cert lapsed",
                "Clients rejected {service} endpoint ({cert} not valid)",
            ],
            summary=[
                "The {cert_kind} for {cert_domain} expired at {start_time} UTC and clients calling {service} "
                "started failing TLS handshakes. A renewed {cert} was deployed after {duration}.",
                "{^users} could not connect to {service}: <<browsers|clients|SDKs>> reported `x509: "
                "certificate has expired or is not yet valid`. <<Renewal had been manual|Nobody renewed it in "
                "time|The renewal job had been failing silently>>.",
                "Requests from {dep} to {service} failed with handshake errors because the {cert_kind} "
                "presented by {service} was past its notAfter date.",
                "cert on {cert_domain} lapsed; {symptom} until we rotated it.",
                "At {start_time} UTC the chain served by {service} became invalid. Mobile clients, which pin "
                "the intermediate, failed hardest, and their retries pushed latency up on the rest of the fleet.",
                "{service} was up but unusable for {duration}: clients refused every TLS connection because the "
                "serving cert had run out.",
            ],
            root_cause=[
                "The {cert_kind} for {cert_domain} was issued by hand from {issuer} {cert_age} ago and never "
                "added to automated renewal. The calendar reminder went to {email}, a mailbox nobody reads.",
                "Automatic renewal for {cert_domain} had been failing for weeks because <<the ACME challenge "
                "path was blocked by a new WAF rule|the DNS-01 challenge credentials were rotated|the renewal "
                "job's service account lost permission>>. Failures were logged but not alerted on, so the old "
                "certificate simply ran out.",
                "A renewed {cert} existed in the secret store, but {service} only reads {cert}s at "
                "start-up. The pods had not restarted since before the renewal, so they kept serving the old, "
                "expired one.",
                "The intermediate CA {cert} bundled with {service} expired. The leaf was valid, but "
                "clients could not build a trust chain and rejected the connection.",
                "The client {cert} {dep} uses for mTLS to {service} expired. {dep} started failing every "
                "call, and its retries added load to {service}.",
                "Expiry monitoring only covered public endpoints. {cert_domain} is internal, so its certificate "
                "reached its expiry time without any warning.",
            ],
            detail=[
                "We have an expiry dashboard, but it only lists {cert}s issued through {issuer}; this one "
                "was created by hand during the {dep} migration.",
                "The renewal runbook assumed access to a bastion host that was decommissioned, so {handle} spent "
                "{minutes_small} minutes finding another way to push the new {cert}.",
                "Some clients cache TLS sessions, which is why errors grew gradually rather than all at once.",
                "The first alert was a generic timeout alert from {dep}; the TLS error only appeared in client "
                "logs.",
            ],
            impact=[
                "All HTTPS traffic to {cert_domain} failed; no data was lost.",
                "Mobile apps showed a generic network error for {duration}.",
            ],
            start_event=["Certificate for {cert_domain} reaches its expiry time."],
            detect_event=[
                "Synthetic check on {cert_domain} fails with a TLS error; {handle} paged.",
                "{^alert} fired; {dep} logs full of handshake failures.",
            ],
            diagnose_event=[
                "`openssl s_client` shows the served {cert} expired at {start_time} UTC.",
                "Found the renewal job had been failing since {old_date}.",
                "Confirmed the pods still serve the old certificate although the secret was updated.",
            ],
            mitigate_event=[
                "Issued a new {cert} from {issuer} and uploaded it to the load balancer.",
                "Rolled {service} pods so they pick up the renewed {cert}.",
                "Replaced the expired intermediate in the bundle and redeployed.",
            ],
            factor=[
                "Certificate renewal was manual",
                "Renewal failures were logged but not alerted",
                "Expiry monitoring did not cover internal endpoints",
                "{service} reads certificates only at start-up",
                "Reminder went to an unowned mailbox",
                "No inventory of certificates and their owners",
            ],
            action=[
                "Alert 21 days before any certificate expires",
                "Hot-reload certificates without restarting pods",
                "Build a certificate inventory with owners",
                "Add internal endpoints to expiry monitoring",
                "Alert on renewal job failures",
            ],
            tag=["tls", "certificates", "security", "mtls", "expiry"],
        ),
    ),
    PatternSpec(
        slug="dns-change",
        description="A DNS record or resolver change sent traffic to the wrong place or broke resolution",
        base_rate=0.75,
        trend="flat",
        services=("edge-proxy", "api-gateway", "search-indexer", "orders-db"),
        hours="business",
        detect_median_min=7,
        resolve_median_min=80,
        severity=(0.05, 0.20, 0.40, 0.28, 0.07),
        reopen_p=0.08,
        texts=_p(
            rec_word=["record", "entry", "DNS entry", "name"],
            title=[
                "{service} unreachable after DNS update",
                "Name resolution failures for {record}",
                "Traffic sent to decommissioned hosts after DNS change",
                "{service} errors: stale DNS answers after migration",
                "NXDOMAIN for internal names in {region}",
                "Partial outage: {record} pointed at the wrong target",
            ],
            summary=[
                "A DNS change to {record} pointed {service} traffic at <<an old load balancer|a "
                "decommissioned cluster|the wrong region>>, and {users} saw {symptom} until the {rec_word} was "
                "corrected and the {ttl}s TTL ran out.",
                "After {record} was updated with {dns_tool}, clients in {region} kept resolving the old "
                "address for much longer than expected, and calls to {service} timed out.",
                "Internal resolvers returned NXDOMAIN for {record} for {duration} after a zone change, "
                "breaking calls from {dep} to {service}.",
                "dns update broke {service}; reverted the {rec_word} and waited out the TTL.",
                "We moved {service} behind a new load balancer and switched the {record_type} record. The new "
                "target was missing a listener for one port, so {pct}% of requests failed.",
                "A cleanup of unused DNS records deleted {record}, which {dep} still used. Lookups started "
                "failing as cached answers expired.",
            ],
            root_cause=[
                "The {record_type} record for {record} was changed to point at <<the new load balancer|a new "
                "cluster|{ip}>> before that target was ready to serve traffic. The change was applied with "
                "{dns_tool} and went live everywhere at once.",
                "The old {rec_word} had a TTL of {ttl} seconds, and some clients ignore TTLs entirely. Rolling the "
                "change back did not help quickly because resolvers kept the bad answer cached.",
                "A Terraform run removed {record} because it had been created by hand and was not in state. "
                "{dep} resolves it on every new connection, so calls failed as caches expired.",
                "A typo in the new target of {record} produced NXDOMAIN responses; the change had no step that "
                "resolves and probes the target before applying.",
                "The resolver at {ip} in {region} was reconfigured as part of the change and began forwarding "
                "queries for the internal zone to a public resolver, which returned NXDOMAIN.",
                "Split-horizon setup: the change updated the public view of the zone but not the private one, "
                "so internal callers in {region} were sent to a public address that blocks them.",
            ],
            detail=[
                "Rollback was slowed down by negative caching: NXDOMAIN answers were cached for the zone's SOA "
                "minimum of {ttl} seconds.",
                "The change was part of the {region} migration plan ({ticket}) and was reviewed, but the "
                "review did not check that the new target served every port.",
                "Some Java clients in {dep} cache lookups forever by default, so they needed a restart to "
                "recover.",
                "Errors were spread thinly across many callers, which made the first twenty minutes look like "
                "a general network problem.",
            ],
            impact=[
                "{^users} in {region} could not reach {service}.",
                "Error rates stayed high after the revert because of cached answers.",
            ],
            start_event=["DNS change applied with {dns_tool}: {record} -> new target."],
            detect_event=["Spike in connection errors from {dep} to {service}; {alert} fired."],
            diagnose_event=[
                "`dig {record}` from a {region} pod returns the new target.",
                "`dig {record}` returns NXDOMAIN from the {region} resolvers.",
                "Errors limited to clients that looked up the name after {start_time} UTC.",
            ],
            mitigate_event=[
                "Reverted the DNS record.",
                "Flushed resolver caches in {region}.",
                "Restarted {dep} pods to drop cached answers.",
            ],
            factor=[
                "DNS changes are not staged or canaried",
                "High TTL on a record that was being migrated",
                "Records created by hand outside Terraform",
                "No pre-check that the new target serves traffic",
                "Clients cache lookups beyond the TTL",
            ],
            action=[
                "Lower TTLs before planned DNS migrations",
                "Import hand-made records into Terraform",
                "Add a pre-apply check that resolves and probes new targets",
                "Configure the JVM lookup cache TTL in {dep}",
                "Document DNS rollback in the runbook",
            ],
            tag=["dns", "network", "migration", "resolver"],
        ),
    ),
    PatternSpec(
        slug="connection-pool-exhaustion",
        description="Database connection pool exhausted (leaks, slow queries, too many pods, long transactions)",
        base_rate=0.95,
        trend="flat",
        services=("payments-api", "orders-db", "billing-worker", "auth-service"),
        hours="peak",
        detect_median_min=5,
        resolve_median_min=55,
        severity=(0.04, 0.18, 0.40, 0.30, 0.08),
        reopen_p=0.10,
        texts=_p(
            conns=["connections", "sessions", "database sessions", "DB handles", "pooled connections"],
            conn_word=["connection", "DB connection", "database session", "pool slot"],
            title=[
                "{service} timeouts: database connection pool exhausted",
                "{service} could not get a {conn_word}",
                "Latency spike on {service} (pool saturation)",
                "{^symptom_short} on {service} - all connections busy",
                "{db} max_connections reached",
                "Requests to {service} queued behind slow queries",
            ],
            summary=[
                "{service} ran out of {conns} at {start_time} UTC. Requests waited for a "
                "connection until they timed out, so {users} saw {symptom} for {duration}.",
                "All {pool_size} {conns} in the {service} pool were held by <<slow queries|long "
                "transactions|a stuck batch job>>, and new requests <<timed out|failed|queued>>. <<Restarting "
                "the pods|Killing the long transactions|Raising the limit temporarily>> recovered the service.",
                "{db} hit max_connections after {service} scaled out; each new pod opened {pool_size} "
                "connections and the database refused the rest.",
                "pool exhausted on {service}, restarted. root cause was a slow query.",
                "A slow query introduced in {version} held connections for seconds instead of milliseconds. "
                "The pool drained within minutes of the traffic peak and {service} returned {symptom_short}.",
                "Connection leak in {service}: an error path never released its {conns}, so the pool emptied "
                "slowly over {leak_hours} hours and then everything timed out.",
            ],
            root_cause=[
                "A code path added in {version} did not close its database connection when {dep} returned an "
                "error. Each failure leaked one connection, and after {leak_hours} hours the pool of "
                "{pool_size} was empty.",
                "A report query without an index took {query_s} seconds and ran inside a transaction held "
                "open by the request. Under peak load every connection in {pool_lib} was busy with it.",
                "Autoscaling added pods to {service}, and each pod opens up to {pool_size} {conns}. "
                "Together they exceeded max_connections on {db}, which refused new sessions.",
                "{db} failed over to its replica; old connections were not recycled, and {pool_lib} kept "
                "handing out dead connections until the pool was full of them.",
                "The pool acquire timeout was {timeout_s} seconds, longer than the upstream request timeout, so "
                "requests kept waiting for a slot after callers had given up, and retries multiplied "
                "the demand.",
                "A batch job sharing the pool with online traffic opened long transactions at {start_time} UTC "
                "and starved the request path.",
            ],
            detail=[
                "Pool metrics were exported but not alerted on; the dashboard showed 100% utilisation for "
                "{minutes_small} minutes before the first timeout page.",
                "We first suspected the database itself, but CPU on {db} was normal; the waits were all on the "
                "client side.",
                "The pool size was set years ago and never revisited while traffic grew {growth}x.",
                "Because requests held threads while waiting, the health endpoint also timed out and the "
                "orchestrator restarted pods, which briefly made things worse.",
            ],
            impact=[
                "{pct}% of {service} requests failed with connection-acquire timeouts.",
                "Writes to {db} were delayed; no data was lost.",
            ],
            start_event=["Pool utilisation on {service} reaches 100%."],
            detect_event=["{^alert} fired; logs show `timeout acquiring connection from pool`."],
            diagnose_event=[
                "`pg_stat_activity` shows {n_conns} sessions idle in transaction from {service}.",
                "Heap dump shows connections checked out by the error path.",
                "Connection count on {db} at max_connections.",
            ],
            mitigate_event=[
                "Killed long-running transactions on {db}.",
                "Rolling restart of {service} to reset the pool.",
                "Raised max_connections on {db} temporarily.",
                "Paused the batch job.",
            ],
            factor=[
                "Pool utilisation was not alerted on",
                "Pool size not reviewed as traffic grew",
                "Batch and online traffic share one pool",
                "Missing index on a hot query",
                "Pool acquire timeout longer than the request timeout",
                "No cap on total DB connections across pods",
            ],
            action=[
                "Alert when pool utilisation stays above 80%",
                "Put pgbouncer in front of {db}",
                "Give the batch job its own pool",
                "Enable leak detection in {pool_lib}",
                "Set the acquire timeout below the request timeout",
                "Add an index for the report query",
            ],
            tag=["database", "postgres", "capacity", "connections"],
        ),
    ),
    PatternSpec(
        slug="disk-full",
        description="A disk or volume filled up (logs, WAL, temp files, snapshots) and writes failed",
        base_rate=1.15,
        trend="fading",
        services=("orders-db", "object-store", "etl-pipeline", "search-indexer"),
        hours="night",
        detect_median_min=14,
        resolve_median_min=65,
        severity=(0.03, 0.14, 0.38, 0.33, 0.12),
        reopen_p=0.08,
        key_action="Alert at 80% disk usage and on fill rate",
        key_date=dt.date(2026, 1, 15),
        texts=_p(
            title=[
                "{host} out of disk space",
                "{service} writes failing: no space left on device",
                "Disk full on {service} nodes",
                "{service} degraded after {volume} filled up",
                "Log volume exhausted storage on {service}",
                "Database stopped accepting writes (storage full)",
            ],
            summary=[
                "{volume} on {host} reached 100% and {service} started failing writes with `ENOSPC`. We freed "
                "space and the service recovered after {duration}.",
                "Debug logging left on after the {version} release filled the disks on {service} nodes over "
                "{fill_hours} hours; once full, {service} <<crashed|stopped writing|returned errors>>.",
                "The {db} data volume filled up because <<WAL archiving was failing|a replication slot was "
                "left behind|old partitions were never dropped>>, and the database refused writes.",
                "disk full on {host}. cleaned up and added space.",
                "{service} pods were evicted for ephemeral-storage pressure after a temp directory grew without "
                "bound, leaving too few replicas and causing {symptom}.",
                "A backup job wrote {disk_gb} GB of local snapshots to {volume} and never cleaned them up, so "
                "the node ran out of space at {start_time} UTC.",
            ],
            root_cause=[
                "Log rotation on {host} broke after the base-image update: logrotate ran but {service} kept the "
                "old file handle open, so deleted logs still used space until {volume} was full.",
                "A retry loop in {service} logged the full request body on every attempt. Log volume went from "
                "{log_gb_small} GB to {log_gb_big} GB per hour and filled {volume} in {fill_hours} hours.",
                "An inactive replication slot on {db} prevented WAL segments from being recycled. WAL grew "
                "until the data volume was full and Postgres stopped accepting writes.",
                "Usage alerts were set at 95%, which on a {disk_gb} GB volume growing {growth_gb} GB per hour "
                "gives less than an hour of warning, at night.",
                "The temp directory used for uploads was never cleaned. {service} writes there on every "
                "request, the node ran out of ephemeral storage and the kubelet evicted the pods.",
                "The retention job for {volume} had been failing since {old_date} after a permissions change, "
                "so old data was never removed.",
            ],
            detail=[
                "Once the disk was full, {service} could not even write its pid file, so restarts failed until "
                "space was freed by hand.",
                "The volume can be grown online, but nobody on call had the permissions to do it, which added "
                "{minutes_small} minutes.",
                "Usage had been climbing for two weeks on the capacity dashboard, but there was no alert on the "
                "growth rate.",
                "Write failures surfaced to clients as timeouts because the service retried them internally.",
            ],
            impact=[
                "Writes failed for {duration}; some {users} had to resubmit.",
                "No data loss; {n_req} requests failed.",
            ],
            start_event=["{volume} on {host} reaches 100%."],
            detect_event=["`No space left on device` errors in {service} logs; {alert} fired."],
            diagnose_event=[
                "`du` shows {log_gb_big} GB of logs under {volume}.",
                "Found deleted-but-open log files with `lsof`.",
                "WAL directory on {db} is {disk_gb} GB.",
            ],
            mitigate_event=[
                "Deleted old logs and restarted {service}.",
                "Expanded the volume to {disk_gb2} GB.",
                "Dropped the stale replication slot.",
                "Turned debug logging off and redeployed.",
            ],
            factor=[
                "Disk alert threshold too close to full",
                "No alert on growth rate",
                "Log rotation broken after image update",
                "Debug logging enabled in production",
                "Retention job failed silently",
            ],
            action=[
                "Enforce log retention and size caps",
                "Ship logs off-host instead of writing locally",
                "Alert on inactive replication slots",
                "Give on-call permission to grow volumes",
                "Clean temp directories on a schedule",
            ],
            tag=["storage", "logging", "disk", "capacity"],
        ),
    ),
    PatternSpec(
        slug="retry-storm",
        description="A dependency slowdown or timeout amplified by aggressive client retries into an outage",
        base_rate=0.95,
        trend="rising",
        services=("payments-api", "notifications", "web-frontend", "api-gateway"),
        hours="peak",
        detect_median_min=4,
        resolve_median_min=60,
        severity=(0.08, 0.25, 0.37, 0.25, 0.05),
        reopen_p=0.14,
        texts=_p(
            title=[
                "Retry storm after {dep} slowdown",
                "{service} overloaded by client retries",
                "Cascading timeouts between {service} and {dep}",
                "{dep} latency triggered a {service} meltdown",
                "Traffic amplification took down {service}",
                "{^symptom_short} across {service} and {dep}",
            ],
            summary=[
                "{dep} became slow for a few minutes; {service} retried every timed-out call {retry_count} "
                "times without backoff, multiplying load on {dep} until it stopped responding altogether.",
                "A brief latency spike in {dep} turned into an outage of {duration} because clients retried "
                "aggressively. {^users} saw {symptom}.",
                "Timeouts from {dep} made {service} retry, and those retries kept {dep} saturated after the "
                "original problem was gone. We had to shed load to recover.",
                "retries amplified a small {dep} blip into a full outage of {service}.",
                "At {start_time} UTC {dep} had a GC pause of a few seconds. {service}, the mobile app and the "
                "batch workers all retried at once; request rate to {dep} went to {amp}x normal and stayed "
                "there.",
                "{service} calls {dep} with a {timeout_ms} ms timeout and {retry_count} retries at every layer. "
                "When {dep} slowed down, the retries stacked up and the whole call chain timed out.",
            ],
            root_cause=[
                "{service} retries failed calls to {dep} {retry_count} times with a fixed {retry_ms} ms delay "
                "and no jitter. When {dep} slowed down, {service} sent {amp}x the normal traffic, which kept "
                "{dep} overloaded long after the trigger passed.",
                "Retries happen at three layers (SDK, {service}, the gateway), so one user request could become "
                "{amp} calls to {dep}. A short slowdown in {dep} was enough to saturate it.",
                "The client timeout of {timeout_ms} ms was below the p99 of {dep} under load, so a normal peak "
                "caused timeouts, and every timeout was retried immediately.",
                "There is no circuit breaker between {service} and {dep}. When {dep} degraded, {service} kept "
                "every thread waiting on it and retrying, which exhausted its own worker pool as well.",
                "The mobile client retries on any network error without backoff. After {dep} recovered, the "
                "reconnect wave from {n_users} devices overloaded it again.",
                "{dep} returned 503s without a Retry-After header during a routine {dep_change}. Callers treated "
                "this as transient and retried in tight loops.",
            ],
            detail=[
                "The trigger itself was small and would have been invisible without the retries: {dep} was "
                "slow for about {minutes_small} minutes.",
                "Load shedding at the gateway is what finally broke the loop; scaling {dep} up did not help "
                "because new instances were flooded as they came up.",
                "We have a retry budget library, but {service} was on an old version that does not use it.",
                "The deploy of {version} earlier that day was investigated and ruled out.",
            ],
            impact=[
                "{^users} saw {symptom} for {duration}.",
                "{dep} was unavailable for every caller, not only {service}.",
            ],
            start_event=["{dep} latency rises (slow dependency / GC pause)."],
            detect_event=["{^alert} fired; request rate to {dep} at {amp}x normal."],
            diagnose_event=[
                "Most traffic traced to retries from {service} (retry-attempt header > 1).",
                "Request rate stayed high after {dep} latency recovered.",
                "Thread pools on {service} saturated waiting on {dep}.",
            ],
            mitigate_event=[
                "Enabled load shedding at the gateway.",
                "Disabled retries in {service} with a flag.",
                "Scaled {dep} and drained queues.",
                "Opened the circuit breaker manually.",
            ],
            factor=[
                "Retries without backoff or jitter",
                "Retries at several layers",
                "No circuit breaker between {service} and {dep}",
                "Client timeout below the dependency's p99",
                "No retry budget",
                "Missing Retry-After header on 503",
            ],
            action=[
                "Add exponential backoff with jitter to the {service} client",
                "Adopt retry budgets across services",
                "Add a circuit breaker for calls to {dep}",
                "Retry at one layer only",
                "Send Retry-After on 503 responses",
            ],
            tag=["retries", "dependencies", "resilience", "timeout", "cascading-failure"],
        ),
    ),
    PatternSpec(
        slug="bad-deploy-rollback",
        description="A code release introduced a regression and was rolled back",
        base_rate=1.5,
        trend="flat",
        services=tuple(SERVICES),
        hours="business",
        detect_median_min=6,
        resolve_median_min=40,
        severity=(0.04, 0.18, 0.38, 0.32, 0.08),
        reopen_p=0.14,
        texts=_p(
            title=[
                "{service} {version} rolled back",
                "Regression in {service} release {version}",
                "Bad deploy of {service}",
                "{^symptom_short} after {service} deployment",
                "{service} release broke {feature}",
                "Rollback of {version}: {bug_short}",
            ],
            summary=[
                "{service} {version} shipped a <<regression|bug|breaking change>> in {feature}; {users} saw "
                "{symptom} until we rolled back to {prev_version} after {duration}.",
                "The deploy of {service} at {start_time} UTC introduced {bug_short}. Rollback restored service.",
                "After release {version} of {service}, {feature} failed for {pct}% of requests. The canary "
                "caught it <<but the alert was ignored|but auto-rollback was disabled|only after it was "
                "promoted>>.",
                "bad deploy of {service}, rolled back.",
                "A change merged in {pr} passed tests but broke {feature} in production because of {bug_cause}. "
                "We reverted the deploy and shipped a fix the next day.",
                "{service} pods crash-looped after the {version} deploy because of {bug_cause}; the rollout "
                "stalled half-way and the remaining old pods could not carry the traffic.",
            ],
            root_cause=[
                "{pr} changed {feature} and introduced {bug_cause}. Unit tests mocked the affected call, so "
                "the bug only showed up against real traffic.",
                "Release {version} included a database migration that {migration_bug}. Code and migration went "
                "out together, so rolling back the code alone did not fully fix it.",
                "A dependency bump in {version} changed the default of {lib_default}, which {bug_effect}.",
                "The new build of {service} had {bug_cause}. The canary stage ran for only {canary_min} minutes "
                "at {canary_pct}% traffic, too short to see the error rate move.",
                "{service} {version} assumed a field that older clients do not send. Requests from those "
                "clients failed with 500s, which tests missed because fixtures only include the latest client.",
                "A serialization change in {version} was not backward compatible with messages written by "
                "{prev_version}, so queue consumers failed during the rollout while both versions ran.",
            ],
            detail=[
                "The rollback itself took {rollback_min} minutes because the pipeline rebuilt the old image "
                "instead of reusing it.",
                "Auto-rollback on error rate exists in {deploy_tool} but had been disabled for {service} during "
                "an earlier incident and never turned back on.",
                "The change was large ({pr_lines} lines across {pr_files} files), which made review harder.",
                "Timeouts in {dep} were a side effect: it retried calls that {service} failed.",
            ],
            impact=[
                "{^users} saw {symptom} while {version} was live.",
                "{n_tickets} support tickets about {feature}.",
            ],
            start_event=["{deploy_tool} starts the rollout of {service} {version}."],
            detect_event=["Error rate on {feature} rises during rollout; {alert} fired."],
            diagnose_event=[
                "Diffed {version} against {prev_version}; suspect {pr}.",
                "Errors only on pods running {version}.",
                "Stack traces point at {feature} code changed in this release.",
            ],
            mitigate_event=[
                "Rolled back {service} to {prev_version}.",
                "Paused the rollout in {deploy_tool}.",
                "Fix deployed after review.",
            ],
            factor=[
                "Canary too short or too little traffic",
                "Tests mocked the failing dependency",
                "Auto-rollback disabled",
                "Large change set",
                "Migration deployed together with code",
            ],
            action=[
                "Lengthen canary analysis for {service}",
                "Re-enable automated rollback for {service}",
                "Add contract tests for old client versions",
                "Split migrations from code deploys",
                "Make rollbacks reuse the previous image",
            ],
            tag=["deploy", "rollback", "regression", "release"],
        ),
    ),
    PatternSpec(
        slug="autoscaling-lag",
        description="Traffic grew faster than autoscaling could add capacity (limits, slow nodes, wrong metric)",
        base_rate=0.8,
        trend="seasonal",
        services=("web-frontend", "api-gateway", "payments-api", "search-indexer"),
        hours="peak",
        detect_median_min=5,
        resolve_median_min=50,
        severity=(0.04, 0.20, 0.40, 0.30, 0.06),
        reopen_p=0.08,
        texts=_p(
            title=[
                "{service} slow during traffic spike",
                "Autoscaler too slow for {traffic_event}",
                "Capacity shortfall on {service}",
                "{^symptom_short} at peak: {service} could not scale out fast enough",
                "{service} saturated; new nodes took {scale_min} minutes",
                "Peak-load latency on {service}",
            ],
            summary=[
                "Request volume to {service} jumped {amp}x in a few minutes after {traffic_event}. The autoscaler "
                "added pods, but new nodes took {scale_min} minutes to join, and {users} saw {symptom} in the "
                "meantime.",
                "{service} hit its CPU limits during {traffic_event}; scaling lagged the load by about "
                "{scale_min} minutes and requests queued up.",
                "The cluster ran out of schedulable capacity in {node_pool} during the peak, so new {service} "
                "replicas stayed Pending and latency climbed.",
                "slow scale-out on {service} at peak, {symptom_short} for {duration}.",
                "We knew about {traffic_event} but nobody pre-scaled {service}. The autoscaler reacts to "
                "average CPU over {hpa_window} minutes, which was too slow for the ramp.",
                "{service} scaled from {hpa_min} to {hpa_max} replicas, hit the maximum and stayed saturated "
                "for {duration}.",
            ],
            root_cause=[
                "The HPA for {service} scales on average CPU with a {hpa_window}-minute window. New pods need "
                "{warmup_s} seconds to warm caches and new nodes need {scale_min} minutes to boot, so capacity "
                "arrived long after the spike began.",
                "maxReplicas for {service} was {hpa_max}, set when traffic was half of today's. During "
                "{traffic_event} it reached the cap and could not grow further.",
                "{node_pool} has a cluster-autoscaler limit of {node_max} nodes and was already near it, so new "
                "replicas stayed Pending.",
                "Scaling is driven by CPU, but {service} is bound by <<I/O|downstream latency|worker "
                "threads>>; CPU stayed low while requests queued, so the autoscaler did nothing.",
                "The readiness probe marked new pods ready before the JVM had warmed up, so each new pod timed "
                "out its first requests, failed health checks and was cycled.",
                "Planned events are supposed to be pre-scaled, but {traffic_event} was not on the capacity "
                "calendar.",
            ],
            detail=[
                "Spot capacity for the instance type was scarce in {region} at the time, which doubled node "
                "start-up time.",
                "Load tests run at {lt_x}x normal traffic, well below the {amp}x we saw.",
                "The same lag shows up every year around the end of November.",
                "Retries from clients during the slow period added to the load the new pods had to absorb.",
            ],
            impact=[
                "{pct}% of requests took more than {ms} ms.",
                "{^users} saw {symptom} during the peak; some orders were abandoned.",
            ],
            start_event=["{^traffic_event} starts; request rate on {service} rises {amp}x."],
            detect_event=["{^alert} fired; CPU on {service} pods at 100%."],
            diagnose_event=[
                "New pods Pending: insufficient capacity in {node_pool}.",
                "HPA at maxReplicas ({hpa_max}).",
                "Queue depth on {service} growing while CPU looks normal.",
            ],
            mitigate_event=[
                "Scaled {service} by hand to {hpa_max2} replicas.",
                "Raised the node pool limit.",
                "Rate-limited non-critical endpoints.",
            ],
            factor=[
                "Scaling on CPU instead of request concurrency",
                "maxReplicas too low",
                "Slow node start-up",
                "Event missing from the capacity calendar",
                "Readiness probe passes before warm-up",
            ],
            action=[
                "Scale {service} on requests in flight instead of CPU",
                "Raise maxReplicas and node pool limits",
                "Keep warm spare nodes during peak season",
                "Add planned events to the capacity calendar",
                "Make the readiness probe wait for warm-up",
            ],
            tag=["capacity", "autoscaling", "kubernetes", "peak", "scaling"],
        ),
    ),
    PatternSpec(
        slug="credential-expiry",
        description="An API key, token, password or secret expired, was revoked after a leak, or was not reloaded",
        base_rate=0.65,
        trend="flat",
        services=("billing-worker", "notifications", "etl-pipeline", "auth-service"),
        hours="uniform",
        detect_median_min=9,
        resolve_median_min=75,
        severity=(0.06, 0.22, 0.38, 0.28, 0.06),
        reopen_p=0.06,
        texts=_p(
            title=[
                "{service} calls to {cred_target} failing: 401 Unauthorized",
                "Expired {cred_kind} broke {service}",
                "Leaked {cred_kind} revoked, {service} lost access",
                "{service} authentication errors after secret rotation",
                "{cred_target} rejected {service} credentials",
                "Access denied errors in {service}",
            ],
            summary=[
                "The {cred_kind} that {service} uses for {cred_target} expired at {start_time} UTC. Every call "
                "returned 401/403 until a new one was issued and rolled out, {duration} later.",
                "A {cred_kind} was found in a public <<repository|paste|CI log>> and revoked by security. "
                "{service} still used it, so calls to {cred_target} failed until the replacement was deployed.",
                "Secret rotation updated {secret_store} but {service} kept the old {cred_kind} in memory. When "
                "the old one was disabled, {service} got <<auth errors|access denied|403s>> from {cred_target}.",
                "creds for {service} expired, 401s, rotated.",
                "{cred_target} started rejecting requests from {service} with `invalid_client`. The {cred_kind} "
                "had a {cred_ttl}-day lifetime and renewal was a manual task assigned to {handle}, who had "
                "moved teams.",
                "After {handle} rotated the {cred_kind} for {cred_target}, only half of the {service} pods "
                "picked up the new value; the rest failed auth until restarted.",
            ],
            root_cause=[
                "The {cred_kind} had a fixed {cred_ttl}-day expiry. Renewal was manual and tracked in a "
                "spreadsheet; the owner changed teams and nobody picked it up.",
                "A developer pasted a debug log containing the {cred_kind} into a public issue. Secret scanning "
                "flagged it and it was revoked within minutes, which is correct, but {service} had no second "
                "credential to fall back to.",
                "{service} reads secrets from {secret_store} only at start-up. The rotation job disabled the "
                "old {cred_kind} {grace_min} minutes after issuing the new one, long before pods restarted.",
                "The service-account token for {service} was bound to a node pool that was replaced; tokens "
                "issued by the old pool became invalid and {service} could not authenticate to {cred_target}.",
                "The password for {db} was rotated in {secret_store}, but a legacy {service} config file had "
                "the connection string hard-coded and was not updated.",
                "{cred_target} enforces a maximum key age of {cred_ttl} days, announced in their changelog "
                "months earlier; we did not track it.",
            ],
            detail=[
                "The failure showed up as timeouts in some callers because {service} retried 401s as if they "
                "were transient.",
                "Revoking the leaked key was the right call; the gap is that we had no quick way to issue and "
                "roll out a replacement.",
                "Expiry dates are visible in {secret_store} but nothing alerts on them.",
                "A deploy of {service} earlier that day was rolled back first, which cost {minutes_small} "
                "minutes and did not help.",
            ],
            impact=[
                "{^users} could not <<pay|log in|receive notifications|sync data>> for {duration}.",
                "Calls to {cred_target} failed 100% for {duration}.",
            ],
            start_event=["{^cred_kind} for {cred_target} expires / is revoked."],
            detect_event=["401 Unauthorized from {cred_target} in {service} logs; {alert} fired."],
            diagnose_event=[
                "Confirmed with {cred_target} that the key was expired.",
                "Found pods still using the old secret version.",
                "Auth errors started at exactly {start_time} UTC.",
            ],
            mitigate_event=[
                "Issued a new {cred_kind} and updated {secret_store}.",
                "Restarted {service} to reload secrets.",
                "Temporarily re-enabled the old credential.",
            ],
            factor=[
                "Manual credential renewal",
                "No alert on secret expiry",
                "Secrets loaded only at start-up",
                "Single credential, no overlap during rotation",
                "Hard-coded secret in a config file",
            ],
            action=[
                "Automate rotation of the {cred_kind} with an overlap window",
                "Alert 14 days before secret expiry",
                "Reload secrets without a restart",
                "Remove hard-coded secrets from config",
                "Add a secret-scanning pre-commit hook",
            ],
            tag=["security", "secrets", "auth", "credentials"],
        ),
    ),
    PatternSpec(
        slug="cache-stampede",
        description="Cache flush, cold start or synchronized expiry sent a miss storm to the database",
        base_rate=1.2,
        trend="emerging",
        services=("web-frontend", "session-store", "search-indexer", "payments-api"),
        hours="peak",
        detect_median_min=3,
        resolve_median_min=45,
        severity=(0.04, 0.20, 0.40, 0.30, 0.06),
        reopen_p=0.09,
        emerge_date=dt.date(2025, 5, 12),
        texts=_p(
            title=[
                "{db} overloaded after cache flush",
                "Cache stampede on {cache_key_desc}",
                "{service} latency after {cache_kind} restart",
                "Thundering herd on {db} when entries expired",
                "Cold cache took down {service}",
                "{^symptom_short} on {service}: miss storm",
            ],
            summary=[
                "{cache_kind} for {cache_key_desc} was flushed during <<maintenance|a deploy|a failover>>, and "
                "every request from {service} went to {db} at once. {db} saturated and {users} saw {symptom} "
                "for {duration}.",
                "A popular <<key|entry|set of keys>> for {cache_key_desc} expired at the same time on every "
                "node; thousands of requests recomputed it concurrently and overloaded {db}.",
                "{service} restarted with an empty in-process cache after the {version} deploy; the resulting "
                "miss storm pushed {db} CPU to 100%.",
                "stampede on {db} after cache went cold, recovered once warmed.",
                "All {cache_key_desc} entries were written with the same TTL of {ttl} seconds at start-up, so "
                "they expired together. At the {start_time} UTC expiry under peak load {db} could not keep up.",
                "After failing over {cache_kind}, the new primary came up cold; hit rate dropped from "
                "{hit_before}% to near zero and the database took the full read load.",
            ],
            root_cause=[
                "Entries for {cache_key_desc} share one TTL and no jitter, so they expire in the same second. "
                "With no request coalescing, each miss triggers its own {query_s}-second query on {db}.",
                "The cache layer ({cache_kind}) was flushed as part of {cache_reason}. The read path has no "
                "protection against a cold cache, so {db} received {amp}x its normal query rate.",
                "The key format changed in {version} (a new prefix), which made every existing entry "
                "unreachable: effectively a full flush at peak time.",
                "A single hot key ({cache_key_desc}) expired and {n_conc} concurrent requests recomputed it; the "
                "computation locks rows in {db}, so they queued and timed out.",
                "{cache_kind} evicted most keys after its memory limit was hit by a large new value, and the "
                "miss storm overloaded {db}.",
                "The CDN purged {cache_key_desc} globally after a content update, and the origin ({service}) "
                "received all traffic directly.",
            ],
            detail=[
                "{db} was sized for the read rate with a warm cache, not for misses; it has no headroom for a "
                "cold start.",
                "The hit-ratio dashboard exists but nobody was looking at it; the first page was for database "
                "CPU.",
                "The caching layer was added in {old_month} and this failure mode was not considered in its "
                "design review.",
                "Client retries on the slow requests doubled the load on {db} during the worst minutes.",
            ],
            impact=[
                "{^users} saw {symptom}; pages took more than {sec} seconds.",
                "{db} CPU at 100% for {duration}.",
            ],
            start_event=["{^cache_kind} flushed / keys for {cache_key_desc} expire."],
            detect_event=["{^alert} fired; {db} CPU at 100%."],
            diagnose_event=[
                "Cache hit rate dropped to {hit_after}%.",
                "Slow-query log full of queries for {cache_key_desc}.",
                "Request rate to {db} {amp}x the usual.",
            ],
            mitigate_event=[
                "Pre-warmed the cache from a snapshot.",
                "Rate-limited recomputation on misses.",
                "Added read replicas for {db}.",
            ],
            factor=[
                "No TTL jitter",
                "No request coalescing on misses",
                "Database sized only for the warm-cache read rate",
                "Key format change deployed at peak",
                "No warm-up after a cache restart",
            ],
            action=[
                "Add jitter to cache TTLs",
                "Coalesce concurrent misses (single-flight)",
                "Warm {cache_kind} before sending traffic",
                "Alert on a drop in cache hit ratio",
                "Serve stale entries while recomputing",
            ],
            tag=["cache", "redis", "database", "thundering-herd"],
        ),
    ),
    PatternSpec(
        slug="clock-timezone-bug",
        description="Clock skew, DST, timezone or calendar arithmetic bug (jobs run twice, wrong day, token skew)",
        base_rate=1.5,
        trend="spiky",
        services=("billing-worker", "etl-pipeline", "auth-service", "session-store"),
        hours="midnight",
        detect_median_min=90,
        resolve_median_min=180,
        severity=(0.02, 0.14, 0.40, 0.34, 0.10),
        reopen_p=0.12,
        texts=_p(
            title=[
                "{^job} ran twice after the clock change",
                "Timezone bug in {service}",
                "Wrong dates in {service} around {time_event}",
                "{service} rejected valid tokens: clock skew",
                "Scheduled jobs missed at {time_event}",
                "Off-by-one-day error in {job}",
            ],
            summary=[
                "At {time_event}, {job} in {service} used local time instead of UTC and <<ran twice|skipped "
                "a run|processed the wrong day>>. {^users} were affected until we fixed the data {duration} "
                "later.",
                "Clock skew of {skew_s} seconds on {host} made {service} reject freshly issued tokens as not "
                "yet valid, and logins failed intermittently.",
                "{service} computed the billing period in {tz}, so customers in other timezones were charged "
                "for the wrong day at {time_event}.",
                "tz bug in {job}; ran twice.",
                "A date comparison in {service} mixed timezone-aware and naive timestamps. It worked until "
                "{time_event}, when the offset changed and {job} treated an hour of records as duplicates.",
                "NTP stopped syncing on some {service} hosts after a base-image change; their clocks drifted "
                "{skew_s} seconds and signed requests to {dep} were rejected as expired.",
            ],
            root_cause=[
                "{^job} is scheduled with a cron expression in {tz}. When clocks went back an hour, 01:30 local "
                "happened twice and the job ran twice, double-processing {n_req} records.",
                "{service} stores timestamps without a zone and interprets them in the server's local time. A "
                "host moved to a region with a different default zone, shifting every date by {tz_hours} "
                "hours.",
                "Token validation allows only {skew_s_small} seconds of skew. NTP on {host} had failed after "
                "<<a firewall change blocked UDP 123|the base image dropped chrony|a VM pause>>, and the clock "
                "drifted beyond the allowed skew.",
                "The end-of-month cutoff was computed as `date + 30 days` rather than the calendar month, so "
                "{job} picked the wrong period in months with 31 days.",
                "A library upgrade in {version} changed how `{date_fn}` handles ambiguous local times, and the "
                "code relied on the old behaviour.",
                "The code computed 'today' in UTC while the business day is defined in {tz}; for {tz_hours} "
                "hours each night the two disagree, and the new report rolled over early.",
            ],
            detail=[
                "The bug had been present for a year but only triggers on days when the UTC offset changes.",
                "Tests run in UTC in CI, so they never exercised the non-UTC path.",
                "Fixing the code was quick; cleaning up the double-processed {job} records took most of the "
                "time.",
                "Downstream, {dep} saw timeouts because it was waiting on records that had been filed under "
                "the wrong day.",
            ],
            impact=[
                "{n_req} records were processed twice; refunds were issued.",
                "Intermittent login failures for {pct_small}% of users.",
            ],
            start_event=["{^time_event} ({tz})."],
            detect_event=[
                "{^users} report <<duplicate charges|wrong dates|missing reports|login failures>>; {handle} "
                "paged."
            ],
            diagnose_event=[
                "Scheduler log shows {job} ran at 01:30 twice.",
                "Clock on {host} {skew_s} seconds ahead of NTP.",
                "Found naive timestamps compared with aware ones.",
            ],
            mitigate_event=[
                "Disabled {job} and reverted the duplicates.",
                "Restarted chrony and resynced clocks.",
                "Deployed a fix that uses UTC throughout.",
            ],
            factor=[
                "Schedules defined in local time",
                "Naive timestamps in storage",
                "CI tests only run in UTC",
                "No alert on clock drift",
                "Tight clock-skew tolerance",
            ],
            action=[
                "Store and schedule everything in UTC",
                "Alert on NTP drift over 1 second",
                "Run the test suite in a non-UTC timezone",
                "Make {job} idempotent",
                "Add DST dates to the test calendar",
            ],
            tag=["time", "dst", "scheduler", "data-quality", "billing"],
        ),
    ),
    PatternSpec(
        slug="third-party-outage",
        description="An external provider (payments, SMS, e-mail, CDN, identity, cloud region) had an outage",
        base_rate=0.9,
        trend="bursty",
        services=("payments-api", "notifications", "billing-worker", "auth-service"),
        hours="uniform",
        detect_median_min=8,
        resolve_median_min=110,
        severity=(0.08, 0.26, 0.36, 0.24, 0.06),
        reopen_p=0.12,
        texts=_p(
            title=[
                "{vendor} outage affected {service}",
                "{^vendor_kind} degraded: {service} errors",
                "Upstream provider incident ({vendor})",
                "{service} failures caused by {vendor_kind} downtime",
                "Partial outage of {feature} due to {vendor}",
                "Elevated errors from the {vendor} API",
            ],
            summary=[
                "{vendor}, our {vendor_kind}, had an outage from {start_time} UTC; {service} calls to it "
                "<<failed|timed out|returned errors>> and {users} could not {vendor_action} for {duration}.",
                "Elevated error rates and latency from {vendor} caused {symptom} on {service}. Nothing changed "
                "on our side; we waited for the provider to recover and turned on the fallback where we had one.",
                "{vendor} returned 5xx for {pct}% of requests in {region}. {service} had no fallback "
                "{vendor_kind}, so {feature} was unavailable.",
                "{vendor} down, {service} degraded, nothing we could do on our side.",
                "The {vendor_kind} ({vendor}) had a regional incident. Their status page stayed green for the "
                "first {minutes_small} minutes, so we spent that time debugging our own network.",
                "An outage at {vendor} made {service} slow: calls waited the full {timeout_ms} ms timeout before "
                "failing, which tied up workers and hurt unrelated endpoints too.",
            ],
            root_cause=[
                "{vendor} had an incident on their side (their postmortem cites <<a bad deploy|a database "
                "failover|a network partition|capacity problems>>). Our integration has no fallback provider, "
                "so {feature} depends entirely on them.",
                "The outage at {vendor} was the trigger. With our normal call volume, impact was larger than necessary because {service} "
                "calls {vendor} synchronously in the request path with a {timeout_ms} ms timeout and no circuit "
                "breaker.",
                "{vendor} degraded in {region} only. We use a single regional endpoint, and failing over to "
                "another one needs a config change and a deploy.",
                "A provider-side change at {vendor} (an undocumented rate limit of {rate_limit} requests/s) "
                "started rejecting our traffic during the peak.",
                "Our {vendor_kind} contract includes a secondary provider, but the failover path had not been "
                "exercised in a year and its credentials had expired.",
                "{vendor} had a DNS problem on their side, so their API hostname did not resolve for some of our "
                "resolvers.",
            ],
            detail=[
                "Their status page acknowledged the incident {minutes_small} minutes after our alerts fired.",
                "Queued {feature} work was processed once {vendor} recovered; no data was lost.",
                "We get no alert when a third-party dependency degrades, only when our own error rate rises.",
                "Retries against {vendor} during the outage counted against our quota and slowed recovery.",
            ],
            impact=[
                "{^users} could not {vendor_action} for {duration}.",
                "{^feature} unavailable; other features normal.",
            ],
            start_event=["{vendor} begins returning errors."],
            detect_event=["{^alert} fired; errors from the {vendor} API."],
            diagnose_event=[
                "Confirmed on the {vendor} status page and support ticket.",
                "No changes on our side in the previous hours.",
                "Errors limited to calls to {vendor}.",
            ],
            mitigate_event=[
                "Enabled the fallback {vendor_kind}.",
                "Queued requests for later processing.",
                "Reduced the timeout to {timeout_ms_small} ms to protect workers.",
            ],
            factor=[
                "No fallback provider",
                "Synchronous call in the request path",
                "Vendor status page slow to update",
                "Single-region vendor endpoint",
                "Failover path never tested",
            ],
            action=[
                "Add a secondary {vendor_kind}",
                "Make {vendor} calls asynchronous with a queue",
                "Add a circuit breaker for {vendor}",
                "Test the provider failover every quarter",
                "Subscribe to {vendor} status notifications",
            ],
            tag=["third-party", "vendor", "dependencies", "external"],
        ),
    ),
]
PATTERN_BY_SLUG = {p.slug: p for p in PATTERNS}

# One-off incidents: (title, summary, root cause, mitigation, action item). Each is used at most twice.
ONE_OFFS: list[tuple[str, str, str, str, str]] = [
    (
        "Network partition in {region} after fibre cut",
        "A construction crew cut a fibre bundle serving one zone in {region}. {service} depended on a "
        "single-zone instance of {db} and was down for {duration}.",
        "The primary of {db} was pinned to the affected zone; failover required a manual promotion that "
        "nobody on call had done before.",
        "Promoted the replica in another zone.",
        "Make {db} multi-zone with automatic failover",
    ),
    (
        "Kernel bug caused node hangs on {service} hosts",
        "Nodes running kernel {kernel} hung under heavy network load, taking {service} replicas with them.",
        "A known bug in the network driver of kernel {kernel} deadlocks under a specific interrupt pattern; "
        "the new node image picked up that kernel automatically.",
        "Cordoned affected nodes and rolled back the node image.",
        "Pin kernel versions in the node image",
    ),
    (
        "Billing job charged {n_req} customers twice",
        "The monthly billing job crashed half-way and was restarted from the beginning, charging some "
        "customers twice.",
        "The job had no checkpointing and no idempotency key on charges.",
        "Refunded duplicate charges.",
        "Add idempotency keys to charge requests",
    ),
    (
        "Search index undersized after re-sharding",
        "After re-sharding the product index, {service} queries slowed to several seconds and search "
        "timed out for {pct}% of users.",
        "The new index was sized for the document count, not for the query load; each shard got a single "
        "replica.",
        "Added replicas and rebalanced shards.",
        "Load-test index layouts before switching aliases",
    ),
    (
        "Cloud API quota exhausted during migration",
        "A migration script hit the cloud provider's API rate limit, which also blocked the autoscaler and "
        "deploys for {duration}.",
        "The script and production tooling share one account-level API quota.",
        "Stopped the script and requested a quota increase.",
        "Run migrations from a separate account",
    ),
    (
        "Domain registration lapsed for a marketing domain",
        "A secondary domain used in e-mail links expired at the registrar; links in sent e-mails broke.",
        "Auto-renew was disabled when the company card on file was replaced.",
        "Renewed the domain with the registrar.",
        "Move all domains to one registrar account with auto-renew",
    ),
    (
        "Office power failure took down the VPN concentrator",
        "A power failure at the {office} office took down the VPN appliance; remote engineers lost access "
        "to internal tools for {duration}.",
        "The VPN appliance had no redundant power supply and no cloud fallback.",
        "Switched to the backup VPN endpoint.",
        "Move VPN to a managed cloud service",
    ),
    (
        "Route leak at upstream ISP",
        "An upstream ISP leaked routes and part of our traffic from {region} was black-holed.",
        "A BGP route leak at a transit provider; we had no filtering on that session.",
        "Withdrew announcements on that transit link.",
        "Add RPKI validation and prefix filters",
    ),
    (
        "Terraform destroy removed a production bucket",
        "A `terraform destroy` meant for a staging workspace ran against production and deleted a bucket "
        "used by {service}.",
        "Workspace selection was implicit and production had no deletion protection.",
        "Restored the bucket from versioned backups.",
        "Enable deletion protection on production buckets",
    ),
    (
        "Emergency library patch caused downtime",
        "An emergency patch for a critical library vulnerability was rolled out fleet-wide in one step and "
        "broke start-up of {service}.",
        "The patched library version changed a default that {service} relied on.",
        "Pinned the previous minor version with a backported fix.",
        "Keep an emergency patch process with a canary",
    ),
    (
        "Order ID column overflowed",
        "Inserts into the orders table failed once IDs passed 2,147,483,647.",
        "The primary key was a 32-bit integer created years ago.",
        "Migrated the column to bigint online.",
        "Audit all 32-bit identifier columns",
    ),
    (
        "Data-retention job deleted active users' data",
        "The GDPR retention job deleted profile data for {n_users} active users.",
        "The job used last-login date, which was not updated for users on the new mobile SSO flow.",
        "Restored profiles from backup.",
        "Add a dry-run report and a cap to deletion jobs",
    ),
    (
        "Marketing e-mail sent to the wrong segment",
        "A campaign meant for {n_users} trial users went to the whole customer base.",
        "The segment filter was saved as a draft and the send used the default segment.",
        "Sent an apology e-mail.",
        "Require a segment preview before send",
    ),
    (
        "Stale exchange rates from feed provider",
        "Prices in EUR were computed with rates three days old after the feed stopped updating.",
        "The import job treated an empty response as 'no change'.",
        "Re-ran the import with the backup feed.",
        "Alert when exchange rates are older than 24 hours",
    ),
    (
        "Mobile release pointed at staging API",
        "Version {app_version} of the Android app shipped with the staging API URL for one endpoint.",
        "A build flavour override was committed by mistake and the release checklist did not cover it.",
        "Shipped a hotfix release and enabled a server-side redirect.",
        "Add an automated check of endpoints in release builds",
    ),
    (
        "Kafka partition reassignment stalled consumers",
        "A partition reassignment on the events cluster throttled replication and consumer lag grew to "
        "{lag_min} minutes.",
        "The reassignment throttle was set too low and moved too many partitions at once.",
        "Raised the throttle and split the reassignment.",
        "Script partition reassignments in small batches",
    ),
    (
        "Search cluster split brain",
        "Two masters were elected in the search cluster after a network blip and writes diverged.",
        "minimum_master_nodes was misconfigured after scaling the cluster from 3 to 5 nodes.",
        "Stopped one side and reindexed from the source of truth.",
        "Upgrade to a version with automatic quorum handling",
    ),
    (
        "Rate limiter blocked a large customer",
        "A new per-IP rate limit blocked a customer whose traffic comes from one NAT address.",
        "The rate limit was sized from median traffic and had no allow-list for known partners.",
        "Added the customer to the allow-list.",
        "Rate-limit by API key rather than IP",
    ),
    (
        "Unicode normalisation broke logins",
        "Users with accented characters in their usernames could not log in after the auth library upgrade.",
        "The new library normalised input to NFC while stored usernames were NFD.",
        "Normalised stored usernames in a migration.",
        "Add non-ASCII usernames to the login test suite",
    ),
    (
        "A/B test assignment skewed results",
        "A bug in the experiment framework assigned {pct}% of users to variant B, invalidating two weeks "
        "of results.",
        "A hash seed was reused across experiments.",
        "Stopped the experiment and re-randomised.",
        "Add a sample-ratio-mismatch check to the experiment framework",
    ),
    (
        "GPU driver update broke the recommendation model",
        "Inference pods for recommendations failed after a node driver update; the widget fell back to "
        "popular items.",
        "The CUDA runtime in the image was older than the new driver supports.",
        "Rolled back the driver on the GPU node pool.",
        "Pin GPU drivers and test images against them",
    ),
    (
        "Corrupted backups discovered in restore test",
        "A quarterly restore test found that {db} backups from the last month could not be restored.",
        "The backup tool was upgraded and silently changed its compression format.",
        "Took a fresh full backup and verified it.",
        "Restore-test backups automatically every week",
    ),
    (
        "Cooling failure in colocation rack",
        "A cooling failure in the colocation facility throttled CPUs on the {service} hosts in that rack.",
        "All replicas of {service} were in the same rack.",
        "Moved replicas to other racks.",
        "Spread replicas across racks with anti-affinity",
    ),
    (
        "Paging provider outage delayed response",
        "Our paging provider had an outage, so an unrelated alert on {service} was not delivered for "
        "{minutes_small} minutes.",
        "Paging has no secondary channel.",
        "Paged manually by phone.",
        "Add a secondary paging channel",
    ),
    (
        "Partner webhooks rejected after signature change",
        "Partners stopped accepting our webhooks after we switched signing algorithms.",
        "The change was announced but two large partners had not upgraded their verification code.",
        "Sent both signatures for a transition period.",
        "Support dual signatures during algorithm changes",
    ),
    (
        "Container registry pull limits blocked deploys",
        "Deploys failed for {duration} because the public registry rate-limited image pulls from our NAT.",
        "Base images were pulled from the public registry on every build.",
        "Mirrored base images to the internal registry.",
        "Use a pull-through cache for public images",
    ),
    (
        "Suspicious access from a CI runner",
        "Security detected unusual API calls from a CI runner and shut down all runners for {duration}.",
        "A third-party build plugin was compromised upstream.",
        "Rebuilt runners and pinned plugin versions.",
        "Pin and review CI plugins",
    ),
    (
        "Hot partition in the sessions table",
        "Writes to the sessions table throttled because one partition key took most of the traffic.",
        "A bot used a single session ID for millions of requests.",
        "Blocked the bot and added a write rate cap per key.",
        "Add per-key write caps",
    ),
    (
        "IPv6 rollout broke some mobile clients",
        "After enabling AAAA records, clients on one carrier could not reach {service}.",
        "The carrier's IPv6 path dropped large packets and our edge did not clamp MSS.",
        "Removed AAAA records for the affected hostnames.",
        "Clamp MSS on the IPv6 edge",
    ),
    (
        "MTU mismatch after VPN change",
        "Cross-region replication stalled after the site-to-site VPN was reconfigured.",
        "The new tunnel had a smaller MTU and path MTU discovery was blocked by a firewall rule.",
        "Lowered the MTU on the replication hosts.",
        "Allow ICMP fragmentation-needed through the firewall",
    ),
    (
        "Deprecated API removed while a partner still used it",
        "We removed the v1 orders endpoint on schedule; one partner was still calling it and their "
        "integration broke.",
        "Usage metrics for v1 excluded calls authenticated with legacy keys.",
        "Re-enabled v1 for that partner for 30 days.",
        "Check per-key usage before removing endpoints",
    ),
    (
        "Bulk import from a customer locked tables",
        "A customer's bulk import of {n_req} rows locked the catalogue tables and slowed {service}.",
        "The import ran as one transaction.",
        "Cancelled the import and re-ran it in batches.",
        "Batch customer imports",
    ),
    (
        "Invoices issued in the wrong currency",
        "Invoices for customers in Switzerland showed EUR instead of CHF.",
        "A locale fallback chose the region default instead of the account's currency.",
        "Re-issued the invoices.",
        "Use the account currency explicitly in invoice rendering",
    ),
    (
        "Chat outage disrupted incident response",
        "The chat provider was down during an unrelated {service} alert, so responders coordinated by "
        "phone and the timeline was lost.",
        "No backup channel was defined for incident coordination.",
        "Used a conference bridge.",
        "Define a backup incident channel",
    ),
    (
        "SMS country quota blocked one-time passwords",
        "Users in {country} could not receive login codes for {duration}.",
        "The SMS account had a per-country daily quota that a marketing send used up.",
        "Raised the quota and paused the campaign.",
        "Separate transactional and marketing SMS accounts",
    ),
    (
        "WAF rule blocked legitimate checkout requests",
        "A new WAF rule flagged checkout requests containing apostrophes in addresses as SQL injection.",
        "The rule was enabled in blocking mode without a monitoring period.",
        "Switched the rule to count mode.",
        "Run new WAF rules in count mode for a week",
    ),
    (
        "Scraper traffic overloaded product pages",
        "A scraper sent {amp}x normal traffic to product pages from rotating IPs.",
        "Bot detection only covered the login and checkout paths.",
        "Enabled bot management on product pages.",
        "Extend bot detection to catalogue pages",
    ),
    (
        "Disk firmware bug degraded RAID array",
        "Two disks in the {db} storage array dropped out within an hour; the array ran degraded.",
        "A firmware bug in one disk model caused false failure reports.",
        "Replaced disks and updated firmware.",
        "Track firmware advisories for storage hardware",
    ),
    (
        "Regex backtracking pinned CPU on {service}",
        "A crafted input made the e-mail validation regex backtrack catastrophically, pinning CPU on "
        "{service}.",
        "The regex had nested quantifiers; input length was not limited.",
        "Deployed a linear-time validator.",
        "Lint regexes for catastrophic backtracking",
    ),
    (
        "Query plan regression after database upgrade",
        "After upgrading {db}, a core query switched to a sequential scan and latency rose tenfold.",
        "Table statistics were not re-analysed after the upgrade.",
        "Ran ANALYZE on the affected tables.",
        "Add ANALYZE to the upgrade runbook",
    ),
    (
        "File descriptor limit reached on {service}",
        "{service} stopped accepting connections with `too many open files`.",
        "The container's ulimit was lower than the host default after a base-image change.",
        "Raised the limit and restarted.",
        "Set file descriptor limits explicitly in manifests",
    ),
    (
        "Postgres sequence exhausted",
        "Inserts into the events table failed when its sequence reached its maximum value.",
        "The sequence was created with an explicit small MAXVALUE in an old migration.",
        "Altered the sequence.",
        "Check sequence headroom in the weekly database report",
    ),
    (
        "Poison message blocked the notifications queue",
        "One malformed message made the consumer crash and restart in a loop; {n_req} notifications were "
        "delayed.",
        "No dead-letter queue; the consumer retried the same message forever.",
        "Moved the message aside by hand.",
        "Add a dead-letter queue to the consumer",
    ),
    (
        "Shard key migration wrote data to the wrong shard",
        "During the shard key migration some orders were written to the wrong shard and disappeared from "
        "order history.",
        "Old and new routers disagreed for a few minutes during the cut-over.",
        "Moved misplaced rows back.",
        "Use a single routing table with a version switch",
    ),
    (
        "Sandbox payment key configured in production",
        "Payments in {country} were processed against the sandbox for {duration}; no money moved.",
        "A new country config was copied from staging, including the sandbox key.",
        "Swapped the key and re-ran the payments.",
        "Validate production configs against sandbox key patterns",
    ),
    (
        "Leap in traffic from a viral post overloaded the blog",
        "A post went viral and the blog, which shares a database with {service}, slowed both down.",
        "The blog and a production service shared a database instance.",
        "Put the blog behind a CDN with long cache times.",
        "Move the blog to a separate database",
    ),
    (
        "Accidental deletion of a Kubernetes namespace",
        "An engineer deleted the namespace of {service} while cleaning up a test cluster context.",
        "kubectl context pointed at production; no admission rule protects production namespaces.",
        "Recreated the namespace from GitOps state.",
        "Add an admission policy protecting production namespaces",
    ),
    (
        "Dependency license check blocked all builds",
        "All builds failed for {duration} after the license scanner flagged a transitive dependency.",
        "The scanner was set to fail builds on unknown licenses without an override path.",
        "Added the package to the allow-list.",
        "Add an override path for the license scanner",
    ),
    (
        "Wrong tax rate applied after a rules update",
        "Orders in one state were taxed at the wrong rate for {duration} after a rules update.",
        "The tax rules file was edited by hand and the test used last year's rates.",
        "Corrected the rules and refunded the difference.",
        "Generate tax rule tests from the provider's tables",
    ),
    (
        "Load balancer connection-tracking table full",
        "The internal load balancer dropped new connections once its conntrack table filled.",
        "A client opened short-lived connections without keep-alive, tens of thousands per second.",
        "Raised the table size and fixed the client.",
        "Enable keep-alive in the internal HTTP client",
    ),
]

# ---------------------------------------------------------------------------------------------- helpers


class Rand:
    """Thin wrapper around a numpy Generator with the draws the generator needs."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        self.g = np.random.default_rng(seed)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.g.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.g.random() < p)

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return int(self.g.integers(lo, hi + 1))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.g.uniform(lo, hi))

    def weighted(self, seq: Sequence[Any], weights: Sequence[float]) -> Any:
        w = np.asarray(weights, dtype=float)
        return seq[int(self.g.choice(len(seq), p=w / w.sum()))]

    def sample(self, seq: Sequence[Any], k: int) -> list[Any]:
        k = min(k, len(seq))
        idx = self.g.choice(len(seq), size=k, replace=False)
        return [seq[int(i)] for i in idx]


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(minutes: float) -> str:
    m = int(round(minutes))
    if m < 60:
        return f"{m} minutes"
    h, r = divmod(m, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        return f"{d} day{'s' if d > 1 else ''} {h} hours" if h else f"{d} day{'s' if d > 1 else ''}"
    hours = f"{h} hour{'s' if h > 1 else ''}"
    return f"{hours} {r} minutes" if r >= 5 else hours


_TOKEN = re.compile(r"<<([^<>]*)>>|\{([\^,]?)(\w+)\}")


class Renderer:
    """Fills templates: incident-level values (computed once, on first use) and pools (drawn per use)."""

    def __init__(
        self,
        rng: Rand,
        values: dict[str, Callable[[], Any]],
        pools: list[dict[str, list[str]]],
    ) -> None:
        self.rng = rng
        self._factories = values
        self._values: dict[str, str] = {}
        self._pools = pools

    def value(self, name: str) -> str:
        if name not in self._values:
            produced = self._factories[name]()
            if isinstance(produced, dict):  # a factory that sets several related values at once
                for k, v in produced.items():
                    self._values.setdefault(k, self.render(str(v)))
            else:
                self._values[name] = self.render(str(produced))
        return self._values[name]

    def has_value(self, name: str) -> bool:
        return name in self._values

    def used(self) -> dict[str, str]:
        return dict(self._values)

    def render(self, template: str, depth: int = 0) -> str:
        if depth > 8:
            raise RuntimeError(f"template nesting too deep: {template!r}")

        def repl(m: re.Match[str]) -> str:
            if m.group(1) is not None:
                return self.render(self.rng.pick(m.group(1).split("|")), depth + 1)
            mod, name = m.group(2), m.group(3)
            if name in self._factories or name in self._values:
                text = self.value(name)
            else:
                for pool in self._pools:
                    if name in pool:
                        text = self.render(self.rng.pick(pool[name]), depth + 1)
                        break
                else:
                    raise KeyError(f"unknown template slot {{{name}}} in {template!r}")
            if mod == "^" and text:
                text = text[0].upper() + text[1:]
            elif mod == "," and text and not text[:2].isupper():
                text = text[0].lower() + text[1:]
            return text

        return _TOKEN.sub(repl, template)


# ---------------------------------------------------------------------------------------------- values


def _person(rng: Rand) -> tuple[str, str]:
    first, last = rng.pick(PEOPLE)
    return first, last


def _handle(first: str, last: str, style: int) -> str:
    if style == 0:
        return f"@{first[0].lower()}{last.lower()}"
    if style == 1:
        return f"@{first.lower()}.{last[0].lower()}"
    return f"@{first.lower()}"


def _email(first: str, last: str, rng: Rand) -> str:
    dom = rng.pick(EMAIL_DOMAINS)
    local = rng.pick([f"{first}.{last}", f"{first[0]}{last}", f"{first}"]).lower()
    return f"{local}@{dom}"


def _ip(rng: Rand) -> str:
    kind = rng.int(0, 4)
    if kind == 0:
        return f"10.{rng.int(0, 255)}.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 1:
        return f"172.{rng.int(16, 31)}.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 2:
        return f"192.168.{rng.int(0, 255)}.{rng.int(1, 254)}"
    if kind == 3:
        return f"203.0.113.{rng.int(1, 254)}"
    return f"198.51.100.{rng.int(1, 254)}"


def _version(rng: Rand) -> dict[str, str]:
    style = rng.int(0, 2)
    if style == 0:
        a, b, c = rng.int(1, 9), rng.int(0, 40), rng.int(0, 12)
        prev = f"v{a}.{b}.{c - 1}" if c > 0 else f"v{a}.{max(b - 1, 0)}.{rng.int(3, 9)}"
        return {"version": f"v{a}.{b}.{c}", "prev_version": prev}
    if style == 1:
        n = rng.int(1000, 9999)
        return {"version": f"r{n}", "prev_version": f"r{n - rng.int(1, 3)}"}
    sha = "".join(rng.pick("0123456789abcdef") for _ in range(7))
    old = "".join(rng.pick("0123456789abcdef") for _ in range(7))
    return {"version": f"build {sha}", "prev_version": f"build {old}"}


_CONFIG_KEYS = [
    ("max_inflight_requests", "800", "80"),
    ("upstream_timeout_ms", "2000", "20"),
    ("rate_limit.per_client", "500", "5"),
    ("routing.weights.blue", "0", "100"),
    ("feature.new_pricing.enabled", "false", "true"),
    ("grpc.keepalive_time", "30s", "30ms"),
    ("allowed_origins", "a list of 14 origins", "an empty list"),
    ("worker_threads", "64", "4"),
    ("cache.ttl_seconds", "300", "0"),
    ("log_level", "info", "debug"),
]
_VENDORS = [
    ("Paystream", "payment processor", "pay"),
    ("Notifly", "SMS provider", "receive login codes"),
    ("MailPost", "e-mail delivery API", "receive e-mails"),
    ("GeoLookup", "geocoding API", "see delivery estimates"),
    ("EdgeNet", "CDN", "load images and scripts"),
    ("IdentiKit", "identity provider", "log in with SSO"),
    ("TaxCalc", "tax calculation service", "complete checkout"),
    ("CloudStore", "object storage provider", "upload files"),
]
_CERT_DOMAINS = [
    "api.example.com",
    "checkout.example.com",
    "auth.example.com",
    "internal-gw.corp.example.com",
    "*.svc.example.net",
    "cdn.example.com",
    "partners.example.com",
]


def _time_event(started: dt.datetime) -> str:
    d = started.date()
    if any(abs((d - x).days) <= 2 for x in DST_DATES):
        return "the daylight-saving change"
    if (d.month, d.day) in ((12, 31), (1, 1), (1, 2)):
        return "the new year"
    if d.day >= 28 or d.day == 1:
        return "month end"
    return ["midnight UTC", "the nightly rollover", "the hourly boundary", "the start of the billing day"][
        (d.day + started.hour) % 4
    ]


def _traffic_event(rng: Rand, started: dt.datetime) -> str:
    d = started.date()
    if d.month == 11 and d.day >= 20 or d.month == 12 and d.day <= 2:
        return rng.pick(["Black Friday traffic", "the Cyber Monday peak", "the Black Friday campaign"])
    if d.month == 12:
        return rng.pick(["the holiday sale", "end-of-year traffic"])
    return rng.pick(
        [
            "a marketing e-mail",
            "a flash sale",
            "a push notification to all users",
            "the morning peak",
            "a partner's batch import",
            "a TV ad",
            "a product launch",
        ]
    )


def make_values(
    rng: Rand,
    service: str,
    team: str,
    started: dt.datetime,
    duration_min: float | None,
    severity: str,
    pattern: str,
) -> dict[str, Callable[[], Any]]:
    """Factories for every incident-level slot; each runs at most once per incident (on first use)."""
    others = [s for s in SERVICES if s != service]
    people = rng.sample(PEOPLE, 3)
    hstyle = rng.int(0, 2)
    herrings = [h for p, h in RED_HERRINGS if p != pattern]
    f: dict[str, Callable[[], Any]] = {
        "service": lambda: service,
        "team": lambda: team,
        "severity": lambda: severity,
        "dep": lambda: rng.pick(others),
        "region": lambda: rng.pick(REGIONS),
        "users": lambda: rng.pick(SHARED["users"]),
        "handle": lambda: _handle(*people[0], hstyle),
        "handle2": lambda: _handle(*people[1], hstyle),
        "email": lambda: _email(*people[2], rng),
        "ip": lambda: _ip(rng),
        "host": lambda: rng.pick(
            [
                f"{service}-{rng.int(1, 40)}",
                f"{service}-{rng.pick(['a', 'b', 'c'])}{rng.int(1, 9)}.{rng.pick(REGIONS)}.internal",
                f"ip-10-{rng.int(0, 255)}-{rng.int(0, 255)}-{rng.int(1, 254)}",
                f"node-{rng.int(100, 999)}",
            ]
        ),
        "start_time": lambda: started.strftime("%H:%M"),
        "end_time": lambda: (started + dt.timedelta(minutes=duration_min or 240)).strftime("%H:%M"),
        "duration": lambda: human_duration(duration_min) if duration_min is not None else "several hours",
        "chan": lambda: f"{started:%m%d}-{service}",
        "red_herring": lambda: rng.pick(herrings),
        "ms": lambda: rng.int(8, 90) * 100,
        "ms_low": lambda: rng.int(4, 25) * 10,
        "pct": lambda: rng.int(3, 95),
        "pct_small": lambda: rng.int(1, 20),
        "minutes_small": lambda: rng.int(2, 25),
        "n_req": lambda: f"{rng.int(2, 900) * 100:,}",
        "n_users": lambda: f"{rng.int(1, 400) * 50:,}",
        "n_tickets": lambda: rng.int(3, 250),
        "budget": lambda: rng.int(5, 60),
        "ack": lambda: rng.int(1, 9),
        "nth": lambda: rng.pick(["second", "third", "fourth"]),
        "amp": lambda: rng.int(3, 20),
        "retry_count": lambda: rng.int(3, 10),
        "retry_ms": lambda: rng.pick([50, 100, 200, 500]),
        "timeout_ms": lambda: rng.pick([500, 1000, 2000, 5000, 10000, 30000]),
        "timeout_ms_small": lambda: rng.pick([200, 300, 500]),
        "pool_size": lambda: rng.pick([10, 20, 32, 50, 100]),
        "pool_lib": lambda: rng.pick(["HikariCP", "pgbouncer", "SQLAlchemy", "the database/sql pool"]),
        "n_conns": lambda: rng.int(40, 600),
        "leak_hours": lambda: rng.int(3, 40),
        "query_s": lambda: rng.int(2, 45),
        "timeout_s": lambda: rng.pick([10, 30, 60]),
        "growth": lambda: rng.int(2, 6),
        "db": lambda: rng.pick(["orders-db", "ledger-db", "pg-main", "users-db", "catalog-db"]),
        "disk_gb": lambda: rng.pick([50, 100, 200, 500, 1000, 2000]),
        "disk_gb2": lambda: rng.pick([1500, 3000, 4000]),
        "log_gb_small": lambda: rng.int(1, 5),
        "log_gb_big": lambda: rng.int(20, 120),
        "fill_hours": lambda: rng.int(2, 30),
        "growth_gb": lambda: rng.int(10, 80),
        "volume": lambda: rng.pick(
            ["/var/log", "/var/lib/postgresql", "/data", "the root volume", "the Kafka log dir", "/tmp"]
        ),
        "ttl": lambda: rng.pick([60, 300, 900, 3600, 86400]),
        "skew_s": lambda: rng.int(30, 600),
        "skew_s_small": lambda: rng.pick([5, 30, 60]),
        "tz_hours": lambda: rng.int(1, 11),
        "tz": lambda: rng.pick(
            ["Europe/Berlin", "America/New_York", "Australia/Sydney", "local server time"]
        ),
        "time_event": lambda: _time_event(started),
        "job": lambda: rng.pick(
            [
                "the billing run",
                "the settlement batch",
                "the report scheduler",
                "the token refresh",
                "the subscription renewal job",
                "the nightly export",
            ]
        ),
        "date_fn": lambda: rng.pick(["parse_datetime", "localize()", "Date.parse", "fromisoformat"]),
        "cred_kind": lambda: rng.pick(
            [
                "API key",
                "service-account token",
                "database password",
                "OAuth client secret",
                "IAM access key",
                "webhook signing secret",
            ]
        ),
        "cred_target": lambda: rng.pick(
            ["the payment processor", "the SMS provider", "{dep}", "the object store", "the data warehouse"]
        ),
        "cred_ttl": lambda: rng.pick([30, 60, 90, 365]),
        "grace_min": lambda: rng.pick([5, 15, 60]),
        "secret_store": lambda: rng.pick(
            ["Vault", "AWS Secrets Manager", "a Kubernetes secret", "CI variables"]
        ),
        "cache_kind": lambda: rng.pick(["Redis", "Memcached", "the Redis cluster", "the Memcached tier"]),
        "cache_key_desc": lambda: rng.pick(
            [
                "the product catalogue",
                "user sessions",
                "pricing rules",
                "the feature-flag snapshot",
                "home page",
            ]
        ),
        "cache_reason": lambda: rng.pick(
            ["a version upgrade", "a routine restart", "a failover test", "a deploy of {service}"]
        ),
        "hit_before": lambda: rng.int(85, 99),
        "hit_after": lambda: rng.int(1, 20),
        "n_conc": lambda: f"{rng.int(2, 50) * 100:,}",
        "sec": lambda: rng.int(5, 30),
        "old_month": lambda: (started - dt.timedelta(days=rng.int(40, 200))).strftime("%B %Y"),
        "old_date": lambda: (started - dt.timedelta(days=rng.int(5, 40))).strftime("%Y-%m-%d"),
        "hpa_window": lambda: rng.pick([3, 5, 10]),
        "warmup_s": lambda: rng.int(3, 18) * 10,
        "scale_min": lambda: rng.int(4, 15),
        "hpa_min": lambda: rng.int(3, 10),
        "hpa_max": lambda: rng.pick([12, 20, 24, 30, 40]),
        "hpa_max2": lambda: rng.pick([60, 80, 100]),
        "node_max": lambda: rng.pick([20, 30, 50, 80]),
        "node_pool": lambda: rng.pick(
            ["the general node pool", "the spot pool", "pool-c5-large", "the app pool"]
        ),
        "lt_x": lambda: rng.int(2, 4),
        "traffic_event": lambda: _traffic_event(rng, started),
        "canary_min": lambda: rng.pick([5, 10, 15]),
        "canary_pct": lambda: rng.pick([1, 5, 10]),
        "rollback_min": lambda: rng.int(10, 60),
        "pr_lines": lambda: f"{rng.int(6, 60) * 50:,}",
        "pr_files": lambda: rng.int(12, 90),
        "pr": lambda: rng.pick([f"PR #{rng.int(1000, 9999)}", f"merge request !{rng.int(100, 999)}"]),
        "deploy_tool": lambda: rng.pick(["Argo CD", "Spinnaker", "the deploy pipeline", "Jenkins"]),
        "feature": lambda: rng.pick(
            [
                "checkout",
                "login",
                "search",
                "order history",
                "refunds",
                "the notification fan-out",
                "image uploads",
                "invoice generation",
            ]
        ),
        "bug_cause": lambda: rng.pick(
            [
                "a null pointer on an empty cart",
                "an off-by-one in pagination",
                "an unbounded query",
                "a missing feature-flag check",
                "a race in the session cache",
                "a wrong currency rounding rule",
                "a wrong default timeout",
            ]
        ),
        "bug_short": lambda: rng.pick(
            [
                "500s on checkout",
                "broken login for some users",
                "a memory leak",
                "duplicate notifications",
                "wrong prices on the product page",
                "slow search responses",
            ]
        ),
        "migration_bug": lambda: rng.pick(
            [
                "locked the orders table for minutes",
                "dropped a column still read by the previous version",
                "added a NOT NULL constraint without a default",
            ]
        ),
        "lib_default": lambda: rng.pick(
            [
                "the HTTP client's connection timeout",
                "JSON number parsing",
                "the gRPC max message size",
                "the TLS minimum version",
            ]
        ),
        "bug_effect": lambda: rng.pick(
            [
                "made calls to {dep} fail",
                "made large responses fail",
                "caused timeouts under load",
                "broke older clients",
            ]
        ),
        "dep_change": lambda: rng.pick(["deploy", "failover", "node rotation", "schema migration"]),
        "flag_feature": lambda: rng.pick(
            [
                "the new checkout flow",
                "v2 pricing",
                "the recommendation widget",
                "batch refunds",
                "new search",
            ]
        ),
        "tool": lambda: rng.pick(
            ["the config service", "Consul", "our feature-flag system", "a Helm values change"]
        ),
        "change_id": lambda: f"CHG-{rng.int(1000, 9999)}",
        "ticket": lambda: f"{rng.pick(['OPS', 'INFRA', 'PLAT', 'SRE'])}-{rng.int(100, 4999)}",
        "record": lambda: rng.pick(
            [
                "api.internal.example.com",
                f"{service}.svc.example.net",
                "db-primary.internal",
                "payments.example.com",
                "search.internal",
                f"{rng.pick(others)}.internal",
            ]
        ),
        "record_type": lambda: rng.pick(["CNAME", "A", "SRV", "ALIAS"]),
        "dns_tool": lambda: rng.pick(["Terraform", "the DNS console", "external-dns", "our Route 53 module"]),
        "cert_kind": lambda: rng.pick(
            [
                "TLS cert",
                "server certificate",
                "wildcard cert",
                "mTLS client cert",
                "serving cert",
                "x509 certificate",
            ]
        ),
        "cert_domain": lambda: rng.pick(_CERT_DOMAINS),
        "issuer": lambda: rng.pick(["the internal CA", "Let's Encrypt", "DigiCert", "the Vault PKI"]),
        "cert_age": lambda: rng.pick(["13 months", "two years", "a year", "90 days"]),
        "rate_limit": lambda: rng.pick([50, 100, 500, 2000]),
        "kernel": lambda: f"5.{rng.int(4, 19)}.{rng.int(0, 120)}",
        "office": lambda: rng.pick(["Berlin", "Austin", "Singapore", "Lisbon"]),
        "app_version": lambda: f"{rng.int(3, 9)}.{rng.int(0, 30)}.{rng.int(0, 9)}",
        "lag_min": lambda: rng.int(20, 180),
        "country": lambda: rng.pick(["Brazil", "India", "Germany", "Mexico", "Indonesia"]),
    }
    f["version"] = lambda: _version(rng)
    f["prev_version"] = lambda: _version(rng)

    def vendor() -> dict[str, str]:
        name, kind, action = rng.pick(_VENDORS)
        return {"vendor": name, "vendor_kind": kind, "vendor_action": action}

    for k in ("vendor", "vendor_kind", "vendor_action"):
        f[k] = vendor

    def config() -> dict[str, str]:
        key, old, new = rng.pick(_CONFIG_KEYS)
        return {"config_key": key, "old_val": old, "new_val": new}

    for k in ("config_key", "old_val", "new_val"):
        f[k] = config
    return f


# ---------------------------------------------------------------------------------------------- incidents

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4", "SEV5")
ONE_OFF_SEVERITY = (0.04, 0.14, 0.36, 0.34, 0.12)
HOUR_PROFILES: dict[str, np.ndarray] = {
    "business": np.array([0.4] * 8 + [1.5] * 5 + [3.0] * 10 + [0.4]),
    "uniform": np.ones(24),
    "night": np.array([2.5] * 7 + [1.0] * 17),
    "peak": np.array([0.7] * 12 + [3.0] * 10 + [0.7] * 2),
    "midnight": np.array([4.0, 4.0] + [0.5] * 20 + [4.0, 4.0]),
}
WEEKEND_FACTOR = {"business": 0.25, "uniform": 0.9, "night": 0.9, "peak": 0.8, "midnight": 1.0}


def _day(d: int) -> dt.date:
    return WINDOW_START.date() + dt.timedelta(days=d)


def pattern_day_weights(spec: PatternSpec, rng: Rand) -> np.ndarray:
    """Expected incidents per day (up to a common scale) for a pattern: trend shape x weekday effect."""
    days = [_day(d) for d in range(N_DAYS)]
    t = np.arange(N_DAYS) / (N_DAYS - 1)
    if spec.trend == "flat":
        shape = np.ones(N_DAYS)
    elif spec.trend == "rising":
        shape = 0.35 + 1.3 * t
    elif spec.trend == "fading":
        if spec.key_date is None:
            raise ValueError(f"pattern {spec.slug!r}: a fading pattern needs key_date")
        shape = np.array([1.0 if d <= spec.key_date else 0.15 for d in days])
    elif spec.trend == "emerging":
        if spec.emerge_date is None:
            raise ValueError(f"pattern {spec.slug!r}: an emerging pattern needs emerge_date")
        e = (spec.emerge_date - WINDOW_START.date()).days
        shape = np.array([0.0 if i < e else 0.4 + 1.4 * (i - e) / (N_DAYS - e) for i in range(N_DAYS)])
    elif spec.trend == "seasonal":
        peak = np.array(
            [min(abs(d.timetuple().tm_yday - 332), 365 - abs(d.timetuple().tm_yday - 332)) for d in days]
        )
        shape = (0.5 + 3.0 * np.exp(-0.5 * (peak / 12.0) ** 2)) * (0.85 + 0.3 * t)
    elif spec.trend == "spiky":
        shape = np.array(
            [
                0.25
                + 5.0 * any(abs((d - x).days) <= 1 for x in DST_DATES)
                + 1.2 * (d.day == 1 or (d + dt.timedelta(days=1)).day == 1)
                + 4.0 * ((d.month, d.day) in ((12, 31), (1, 1)))
                for d in days
            ]
        )
    elif spec.trend == "bursty":
        shape = np.ones(N_DAYS)
        for start in rng.sample(range(N_DAYS - 2), 5):
            shape[start : start + 2] += 8.0
    else:
        raise ValueError(f"unknown trend {spec.trend!r}")
    weekend = np.array([WEEKEND_FACTOR[spec.hours] if d.weekday() >= 5 else 1.0 for d in days])
    return spec.base_rate * shape * weekend


def sample_start(rng: Rand, day: int, hours: str) -> dt.datetime:
    prof = HOUR_PROFILES[hours]
    hour = int(rng.weighted(list(range(24)), prof))
    base = dt.datetime.combine(_day(day), dt.time(hour), tzinfo=UTC)
    return base + dt.timedelta(minutes=rng.int(0, 59))


@dataclass
class Draft:
    """An incident before ids are assigned (action items carry no id yet)."""

    pattern: str
    title: str
    summary: str
    impact: str | None
    timeline: str | None
    root_cause: str | None
    contributing_factors: list[str]
    action_items: list[dict[str, Any]]
    service: str
    team: str
    severity: str
    started_at: dt.datetime
    detected_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reopened: int
    tags: list[str]
    pii: list[tuple[str, str, str]] = field(default_factory=list)  # (field, kind, value)
    one_off: int | None = None
    id: str = ""


def _lognormal_minutes(rng: Rand, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(min(max(median * math.exp(sigma * rng.g.standard_normal()), lo), hi))


def _timeline(
    rng: Rand,
    r: Renderer,
    texts: dict[str, list[str]],
    n: int,
    started: dt.datetime,
    detected: dt.datetime | None,
    resolved: dt.datetime | None,
    mitigation: str | None = None,
) -> str:
    det = detected or started + dt.timedelta(minutes=rng.int(2, 20))
    end = resolved or det + dt.timedelta(hours=rng.int(2, 8))
    span = max((end - det).total_seconds() / 60.0, 4.0)
    events: list[tuple[dt.datetime, str]] = []
    if "start_event" in texts and rng.chance(0.6):
        events.append((started, r.render(rng.pick(texts["start_event"]))))
    det_pool = texts.get("detect_event", []) if rng.chance(0.5) else []
    events.append((det, r.render(rng.pick(det_pool or SHARED["detect_generic"]))))
    n_mid = max(n - len(events) - 2, 1)
    offsets = sorted(rng.uniform(0.03, 0.55) for _ in range(n_mid))
    diagnose = list(texts.get("diagnose_event", []))
    investigate = list(SHARED["investigate_generic"])
    for i, off in enumerate(offsets):
        use_pattern = diagnose and (i == len(offsets) - 1 or rng.chance(0.35))
        pool = diagnose if use_pattern else investigate
        text = pool.pop(int(rng.g.integers(len(pool))))
        events.append((det + dt.timedelta(minutes=off * span), r.render(text)))
        if not investigate:
            investigate = list(SHARED["investigate_generic"])
    mit_t = det + dt.timedelta(minutes=rng.uniform(0.6, 0.9) * span)
    if mitigation is not None:
        events.append((mit_t, r.render(mitigation)))
    elif "mitigate_event" in texts:
        events.append((mit_t, r.render(rng.pick(texts["mitigate_event"]))))
    if resolved is not None:
        events.append((resolved, r.render(rng.pick(SHARED["resolve_generic"]))))
    else:
        events.append((end, "Still monitoring; incident remains open."))
    style = rng.int(0, 3)
    lines = []
    for t, text in events:
        if style == 0:
            lines.append(f"{t:%H:%M} UTC - {text}")
        elif style == 1:
            lines.append(f"[{t:%Y-%m-%d %H:%M}] {text}")
        elif style == 2:
            lines.append(f"{t:%H:%M}Z {text}")
        else:
            lines.append(f"T+{int((t - started).total_seconds() // 60)}m: {text}")
    return "\n".join(lines)


def _action_items(
    rng: Rand, r: Renderer, pattern_actions: list[str], k: int, created_from: dt.datetime
) -> list[dict[str, Any]]:
    titles: list[str] = []
    pool_p = list(pattern_actions)
    pool_g = list(SHARED["action_generic"])
    while len(titles) < k and (pool_p or pool_g):
        pool = pool_p if pool_p and (not pool_g or rng.chance(0.7)) else pool_g
        title = r.render(pool.pop(int(rng.g.integers(len(pool)))))
        if title not in titles:
            titles.append(title)
    items = []
    for title in titles:
        created = created_from + dt.timedelta(hours=rng.uniform(4, 120))
        status = rng.weighted(["done", "open", "wontfix"], [0.55, 0.30, 0.15])
        closed: dt.datetime | None = None
        if status != "open":
            closed = created + dt.timedelta(days=_lognormal_minutes(rng, 18.0, 0.9, 0.5, 240.0))
            if closed > WINDOW_END:
                status, closed = "open", None
        items.append({"title": title, "status": status, "created_at": created, "closed_at": closed})
    return sorted(items, key=lambda a: a["created_at"])


def _tags(rng: Rand, r: Renderer, pattern_tags: list[str], k: int) -> list[str]:
    tags: list[str] = []
    for _ in range(k):
        pool = pattern_tags if pattern_tags and rng.chance(0.55) else SHARED["tag_generic"]
        tag = r.render(rng.pick(pool))
        if tag not in tags:
            tags.append(tag)
    return tags


def _pick_service(rng: Rand, preferred: Sequence[str]) -> tuple[str, str]:
    service = rng.pick(preferred) if rng.chance(0.65) else rng.pick(SERVICES)
    team = OWNER[service] if rng.chance(0.92) else rng.pick(TEAMS)
    return service, team


def _times(
    rng: Rand, started: dt.datetime, detect_median: float, resolve_median: float
) -> tuple[dt.datetime | None, dt.datetime | None]:
    detect = _lognormal_minutes(rng, detect_median, 1.0, 1.0, 36 * 60.0)
    resolve = _lognormal_minutes(rng, resolve_median, 0.9, 5.0, 72 * 60.0)
    detected: dt.datetime | None = started + dt.timedelta(minutes=round(detect))
    resolved: dt.datetime | None = started + dt.timedelta(minutes=round(detect + resolve))
    if resolved is not None and resolved > WINDOW_END:
        resolved = None
    if rng.chance(0.01):
        detected = None
    return detected, resolved


def _find_pii(r: Renderer, d: Draft) -> list[tuple[str, str, str]]:
    used = r.used()
    values = [(k, used[k]) for k in ("handle", "handle2", "email", "ip") if k in used]
    fields: dict[str, str] = {
        "title": d.title,
        "summary": d.summary,
        "impact": d.impact or "",
        "timeline": d.timeline or "",
        "root_cause": d.root_cause or "",
        "contributing_factors": "\n".join(d.contributing_factors),
        "action_items": "\n".join(a["title"] for a in d.action_items),
    }
    out = []
    for fname, text in fields.items():
        for key, value in values:
            if value and value in text:
                kind = {"handle": "handle", "handle2": "handle", "email": "email", "ip": "ip"}[key]
                out.append((fname, kind, value))
    return out


def build_incident(
    rng: Rand, spec: PatternSpec | None, started: dt.datetime, form: str, one_off: int | None = None
) -> Draft:
    """Write one postmortem. `spec` None means a one-off incident (scenario index `one_off`)."""
    if spec is None:
        if one_off is None:
            raise ValueError("a one-off incident needs its scenario index")
        service, team = _pick_service(rng, SERVICES)
        severity = rng.weighted(SEVERITIES, ONE_OFF_SEVERITY)
        detected, resolved = _times(rng, started, 8.0, 90.0)
        reopened = 1 if rng.chance(0.07) else 0
        slug = ONE_OFF
        texts: dict[str, list[str]] = {}
    else:
        service, team = _pick_service(rng, spec.services)
        severity = rng.weighted(SEVERITIES, spec.severity)
        detected, resolved = _times(rng, started, spec.detect_median_min, spec.resolve_median_min)
        reopened = (2 if rng.chance(0.2) else 1) if rng.chance(spec.reopen_p) else 0
        slug = spec.slug
        texts = spec.texts
    duration = (resolved - started).total_seconds() / 60.0 if resolved else None
    r = Renderer(rng, make_values(rng, service, team, started, duration, severity, slug), [texts, SHARED])
    # the body, by length
    if spec is None:
        title_t, summary_t, root_t, mitigation, action_t = ONE_OFFS[one_off or 0]
        title = r.render(title_t if rng.chance(0.8) else rng.pick(SHARED["generic_title"]))
        summary_parts = [r.render(summary_t)]
        root_parts = [r.render(root_t)]
        actions_pool = [action_t]
    else:
        title = r.render(
            rng.pick(SHARED["generic_title"] if rng.chance(GENERIC_TITLE_SHARE) else texts["title"])
        )
        generic_summary = rng.chance(GENERIC_SUMMARY_SHARE)
        summary_parts = [
            r.render(rng.pick(SHARED["summary_generic"] if generic_summary else texts["summary"]))
        ]
        root_parts = [r.render(rng.pick(texts["root_cause"]))]
        mitigation = None
        actions_pool = texts["action"]
    if form == "short":
        root_cause = root_parts[0] if (spec is not None and generic_summary) or rng.chance(0.5) else None
        impact = None
        timeline = None
        n_factors, n_actions, n_tags = rng.int(0, 1), rng.int(0, 2), rng.int(0, 2)
    else:
        long = form == "long"
        if rng.chance(0.8 if long else 0.4):
            summary_parts.append(r.render(rng.pick(SHARED["summary_follow"])))
        if long and rng.chance(0.3):
            summary_parts.append(r.render(rng.pick(SHARED["filler"])))
        n_detail = (rng.int(1, 2) if long else int(rng.chance(0.3))) if "detail" in texts else 0
        for d in rng.sample(texts.get("detail", []), n_detail):
            root_parts.append(r.render(d))
        secondary = [text for p, text in SECONDARY if p != slug]
        for text in rng.sample(
            secondary, int(rng.chance(0.7 if long else 0.5)) + int(long and rng.chance(0.3))
        ):
            root_parts.insert(1, r.render(text))
        if long and rng.chance(0.4):
            root_parts.append(
                r.render(
                    rng.pick(
                        [
                            "We initially suspected {red_herring}, which turned out to be unrelated.",
                            "Early in the response {red_herring} looked like the cause; it was not.",
                            "Part of the first half hour went into ruling out {red_herring}.",
                        ]
                    )
                )
            )
        if long and rng.chance(0.3):
            root_parts.append(r.render(rng.pick(SHARED["filler"])))
        root_cause = "\n\n".join(root_parts) if long else " ".join(root_parts)
        impact_pool = texts.get("impact", []) + SHARED["impact_generic"]
        impact = " ".join(r.render(x) for x in rng.sample(impact_pool, 2 if long else 1))
        timeline = _timeline(
            rng, r, texts, rng.int(7, 11) if long else rng.int(4, 6), started, detected, resolved, mitigation
        )
        n_factors = rng.int(2, 5) if long else rng.int(1, 3)
        n_actions = rng.int(2, 5) if long else rng.int(1, 3)
        n_tags = rng.int(1, 4)
    summary = " ".join(summary_parts)
    factors: list[str] = []
    for _ in range(n_factors):
        pool = texts["factor"] if "factor" in texts and rng.chance(0.7) else SHARED["factor_generic"]
        fac = r.render(rng.pick(pool))
        if fac not in factors:
            factors.append(fac)
    created_from = resolved or (detected or started)
    items = _action_items(rng, r, list(actions_pool), n_actions, created_from) if resolved else []
    tags = _tags(rng, r, texts.get("tag", []), n_tags)
    draft = Draft(
        pattern=slug,
        title=title,
        summary=summary,
        impact=impact,
        timeline=timeline,
        root_cause=root_cause,
        contributing_factors=factors,
        action_items=items,
        service=service,
        team=team,
        severity=severity,
        started_at=started,
        detected_at=detected,
        resolved_at=resolved,
        reopened=reopened,
        tags=tags,
        one_off=one_off,
    )
    for text in [draft.title, draft.summary, draft.root_cause or "", draft.timeline or ""]:
        if "{" in text or "<<" in text or ">>" in text:
            raise RuntimeError(f"unrendered template text: {text!r}")
    draft.pii = _find_pii(r, draft)
    return draft


def _forms(rng: Rand) -> str:
    return rng.weighted(["short", "medium", "long"], [0.2, 0.5, 0.3])


def generate_incidents(rng: Rand) -> tuple[list[Draft], dict[str, dict[str, Any]]]:
    """The ~600 JSONL incidents (chronological) and, per fading pattern, its key action item."""
    weights = np.stack([pattern_day_weights(p, rng) for p in PATTERNS])  # (patterns, days)
    n_one = int(round(N_INCIDENTS * ONE_OFF_SHARE))
    n_rec = N_INCIDENTS - n_one
    counts = rng.g.multinomial(n_rec, (weights / weights.sum()).ravel()).reshape(weights.shape)
    plan: list[tuple[dt.datetime, PatternSpec | None, int | None]] = []
    for pi, spec in enumerate(PATTERNS):
        for day in np.flatnonzero(counts[pi]):
            for _ in range(int(counts[pi, day])):
                plan.append((sample_start(rng, int(day), spec.hours), spec, None))
    reserved = set(rng.sample(range(len(ONE_OFFS)), 2))  # kept for the Markdown postmortems
    avail = [i for i in range(len(ONE_OFFS)) if i not in reserved]
    scenario_uses = avail + rng.sample(avail, max(n_one - len(avail), 0))
    for idx in scenario_uses[:n_one]:
        plan.append((sample_start(rng, rng.int(0, N_DAYS - 1), "uniform"), None, int(idx)))
    plan.sort(key=lambda x: (x[0], x[1].slug if x[1] else ONE_OFF))
    drafts = [build_incident(rng, spec, started, _forms(rng), idx) for started, spec, idx in plan]
    drafts.sort(key=lambda d: d.started_at)
    # key action items: created after the last incident of the pattern that precedes the key date
    keys: dict[str, dict[str, Any]] = {}
    for spec in PATTERNS:
        if spec.key_action is None or spec.key_date is None:
            continue
        cutoff = dt.datetime.combine(spec.key_date, dt.time(16, 0), tzinfo=UTC)
        before = [
            d
            for d in drafts
            if d.pattern == spec.slug
            and d.resolved_at is not None
            and d.resolved_at < cutoff - dt.timedelta(days=10)
        ]
        host = before[-1]
        host_resolved = host.resolved_at or host.started_at  # always resolved (filtered above)
        item = {
            "title": spec.key_action,
            "status": "done",
            "created_at": host_resolved + dt.timedelta(hours=rng.uniform(6, 60)),
            "closed_at": cutoff,
            "key": spec.slug,
        }
        host.action_items.insert(0, item)
        host.action_items.sort(key=lambda a: a["created_at"])
        keys[spec.slug] = item
    return drafts, keys


def assign_ids(drafts: list[Draft], prefix: str, width: int, ai_start: int) -> int:
    """Give incidents and their action items ids (in order); return the next free action-item number."""
    n = ai_start
    for i, d in enumerate(drafts, start=1):
        d_id = f"{prefix}{i:0{width}d}"
        d.id = d_id
        for item in d.action_items:
            item["id"] = f"AI-{n:04d}"
            n += 1
    return n


def add_references(rng: Rand, drafts: list[Draft]) -> None:
    """Some postmortems mention an earlier incident of the same pattern, as real ones do."""
    last: dict[str, str] = {}
    for d in drafts:
        if d.pattern != ONE_OFF and d.pattern in last and rng.chance(0.08):
            ref = last[d.pattern]
            d.summary += " " + rng.pick(
                [f"Similar to {ref}.", f"See also {ref}.", f"This looks like a repeat of {ref}."]
            )
        last[d.pattern] = d.id


def incident_record(d: Draft) -> dict[str, Any]:
    return {
        "id": d.id,
        "title": d.title,
        "summary": d.summary,
        "impact": d.impact,
        "timeline": d.timeline,
        "root_cause": d.root_cause,
        "contributing_factors": d.contributing_factors,
        "action_items": [
            {
                "id": a["id"],
                "title": a["title"],
                "status": a["status"],
                "created_at": iso(a["created_at"]),
                "closed_at": iso(a["closed_at"]) if a["closed_at"] else None,
            }
            for a in d.action_items
        ],
        "service": d.service,
        "team": d.team,
        "severity": d.severity,
        "started_at": iso(d.started_at),
        "detected_at": iso(d.detected_at) if d.detected_at else None,
        "resolved_at": iso(d.resolved_at) if d.resolved_at else None,
        "reopened": d.reopened,
        "tags": d.tags,
        "pattern": d.pattern,
    }


def generate_postmortems(rng: Rand, used_one_offs: set[int]) -> list[Draft]:
    slugs = rng.sample([p.slug for p in PATTERNS], N_POSTMORTEMS - 2)
    plan: list[tuple[dt.datetime, PatternSpec | None, int | None]] = []
    for slug in slugs:
        spec = PATTERN_BY_SLUG[slug]
        w = pattern_day_weights(spec, rng)
        day = int(rng.g.choice(N_DAYS, p=w / w.sum()))
        plan.append((sample_start(rng, day, spec.hours), spec, None))
    fresh = [i for i in range(len(ONE_OFFS)) if i not in used_one_offs] or list(range(len(ONE_OFFS)))
    for idx in rng.sample(fresh, 2):
        plan.append((sample_start(rng, rng.int(0, N_DAYS - 40), "uniform"), None, int(idx)))
    plan.sort(key=lambda x: x[0])
    drafts = []
    for started, spec, idx in plan:
        d = build_incident(rng, spec, started, "long", idx)
        while d.resolved_at is None:  # postmortems are written after resolution
            d = build_incident(rng, spec, started - dt.timedelta(days=30), "long", idx)
        drafts.append(d)
    return drafts


def postmortem_markdown(d: Draft) -> str:
    front = {
        "id": d.id,
        "title": d.title,
        "service": d.service,
        "team": d.team,
        "severity": d.severity,
        "started_at": iso(d.started_at),
        "detected_at": iso(d.detected_at) if d.detected_at else None,
        "resolved_at": iso(d.resolved_at) if d.resolved_at else None,
        "reopened": d.reopened,
        "tags": d.tags,
        "pattern": d.pattern,
    }
    fm = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    out = ["---", fm.rstrip("\n"), "---", "", f"# {d.title}", "", "## Summary", "", d.summary, ""]
    if d.impact:
        out += ["## Impact", "", d.impact, ""]
    if d.timeline:
        out += ["## Timeline", ""] + [f"- {line}" for line in d.timeline.splitlines()] + [""]
    if d.root_cause:
        out += ["## Root cause", "", d.root_cause, ""]
    out += ["## Contributing factors", ""] + [f"- {f}" for f in d.contributing_factors] + [""]
    out += ["## Action items", ""]
    for a in d.action_items:
        mark = {"done": "x", "open": " ", "wontfix": "~"}[a["status"]]
        meta = f"created {a['created_at']:%Y-%m-%d}"
        if a["closed_at"] is not None:
            meta += f", closed {a['closed_at']:%Y-%m-%d}"
        out.append(f"- [{mark}] {a['id']}: {a['title']} ({meta})")
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------- indicators


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    kind: str  # count | continuous
    level: tuple[float, float]
    noise: tuple[float, float]  # count: AR sd as a fraction of level; continuous: AR sd in units
    season_frac: float  # common seasonal amplitude, as a fraction of the typical level
    trend_frac: float  # common trend over the two years is within +-trend_frac of the typical level
    decimals: int
    upper: float | None = None


INDICATORS: list[IndicatorSpec] = [
    IndicatorSpec("incidents", "count", (9, 14), (0.05, 0.10), 0.10, 0.25, 0),
    IndicatorSpec("reopens", "count", (7, 11), (0.05, 0.10), 0.08, 0.20, 0),
    IndicatorSpec("skipped_checklist_items", "count", (18, 30), (0.05, 0.10), 0.10, 0.30, 0),
    IndicatorSpec("manual_retries", "count", (25, 45), (0.05, 0.10), 0.12, 0.30, 0),
    IndicatorSpec("mttr_hours", "continuous", (3.0, 7.0), (0.4, 0.8), 0.06, 0.20, 2),
    IndicatorSpec("change_failure_rate", "continuous", (0.10, 0.25), (0.015, 0.03), 0.05, 0.25, 4, 1.0),
]
IND_BY_NAME = {s.name: s for s in INDICATORS}


@dataclass(frozen=True)
class ExperimentText:
    name: str
    indicator: str
    direction: str
    problem: str
    solution: str
    metric: str


EXPERIMENTS: list[ExperimentText] = [
    ExperimentText(
        "Pre-deploy checklist bot",
        "skipped_checklist_items",
        "decrease",
        "Engineers skip deploy checklist items when they are under time pressure.",
        "A chat bot posts the checklist on every deploy and blocks the pipeline until each item is ticked.",
        "Skipped checklist items per week",
    ),
    ExperimentText(
        "Canary stage for config pushes",
        "incidents",
        "decrease",
        "Runtime configuration changes reach the whole fleet at once and cause incidents.",
        "Push configuration to a canary group first and promote after ten minutes without errors.",
        "Incidents per week",
    ),
    ExperimentText(
        "Dedicated incident commander rotation",
        "mttr_hours",
        "decrease",
        "Incidents drag on because nobody coordinates the response.",
        "A weekly incident-commander rotation, separate from the on-call engineer.",
        "Mean time to resolve, in hours",
    ),
    ExperimentText(
        "Retry budget in the shared client library",
        "manual_retries",
        "decrease",
        "Engineers re-run failed jobs and requests by hand after transient errors.",
        "The shared client library retries idempotent calls automatically within a budget.",
        "Manual retries per week",
    ),
    ExperimentText(
        "Rollback plan required in change tickets",
        "change_failure_rate",
        "decrease",
        "Changes without a rollback plan fail more often and take longer to undo.",
        "Change tickets cannot be approved without a tested rollback plan.",
        "Share of changes that cause a failure",
    ),
    ExperimentText(
        "Root-cause review before closing tickets",
        "reopens",
        "decrease",
        "Incidents are closed before the cause is understood and then reopen.",
        "A second engineer reviews the stated root cause before an incident can be closed.",
        "Reopened incidents per week",
    ),
    ExperimentText(
        "Runbook links in every alert",
        "mttr_hours",
        "decrease",
        "Responders lose time finding the right runbook.",
        "Every alert carries a link to its runbook, checked by CI.",
        "Mean time to resolve, in hours",
    ),
    ExperimentText(
        "Small pull requests policy",
        "change_failure_rate",
        "decrease",
        "Large changes are hard to review and fail more often in production.",
        "Pull requests over 400 changed lines need a second reviewer and a split plan.",
        "Share of changes that cause a failure",
    ),
    ExperimentText(
        "Monthly game days",
        "incidents",
        "decrease",
        "Teams meet failure modes for the first time in production.",
        "A monthly game day that rehearses one known failure mode.",
        "Incidents per week",
    ),
    ExperimentText(
        "Idempotent job runner",
        "manual_retries",
        "decrease",
        "Batch jobs fail half-way and must be restarted by hand.",
        "Move batch jobs to a runner with checkpoints and automatic resume.",
        "Manual retries per week",
    ),
    ExperimentText(
        "Near-miss reporting campaign",
        "incidents",
        "increase",
        "Small incidents and near misses go unreported, so we cannot learn from them.",
        "A lightweight form and a monthly shout-out for reported near misses.",
        "Reported incidents per week",
    ),
    ExperimentText(
        "On-call shadowing for new joiners",
        "reopens",
        "decrease",
        "New on-call engineers close incidents with incomplete fixes.",
        "New joiners shadow two on-call weeks before taking the pager alone.",
        "Reopened incidents per week",
    ),
]


def week_dates() -> list[dt.date]:
    return [WEEK0 + dt.timedelta(weeks=i) for i in range(N_WEEKS)]


@dataclass
class Series:
    indicator: str
    team: str
    level: float
    slope: float  # units per week
    season_amp: float
    season_phase: float
    phi: float
    ar_sd: float  # marginal sd of the AR(1) component
    noise_sd: float  # total week-to-week noise sd (AR + Poisson for counts)
    shifts: list[tuple[int, float, str]] = field(default_factory=list)  # (week index, magnitude, kind)
    outliers: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.indicator}/team={self.team}"

    def expected(self, i: int, with_shifts: bool = True) -> float:
        """The mean of the series in week `i` (level + trend + seasonality + shifts)."""
        d = WEEK0 + dt.timedelta(weeks=i)
        season = self.season_amp * math.sin(2 * math.pi * d.timetuple().tm_yday / 365.25 + self.season_phase)
        mean = self.level + self.slope * (i - (N_WEEKS - 1) / 2) + season
        if with_shifts:
            mean += sum(m for j, m, _ in self.shifts if i >= j)
        return mean


def build_series(rng: Rand) -> dict[tuple[str, str], Series]:
    series: dict[tuple[str, str], Series] = {}
    for spec in INDICATORS:
        ref = sum(spec.level) / 2
        slope = rng.uniform(-spec.trend_frac, spec.trend_frac) * ref / (N_WEEKS - 1)
        amp = spec.season_frac * ref
        phase = rng.uniform(0, 2 * math.pi)
        for team in TEAMS:
            level = rng.uniform(*spec.level)
            if spec.kind == "count":
                ar_sd = rng.uniform(*spec.noise) * level
                noise_sd = math.sqrt(level + ar_sd**2)
            else:
                ar_sd = rng.uniform(*spec.noise)
                noise_sd = ar_sd
            series[(spec.name, team)] = Series(
                indicator=spec.name,
                team=team,
                level=level,
                slope=slope + float(rng.g.normal(0, 0.3 * noise_sd / N_WEEKS)),
                season_amp=amp * (1 + float(rng.g.normal(0, 0.1))),
                season_phase=phase + float(rng.g.normal(0, 0.15)),
                phi=rng.uniform(0.3, 0.6),
                ar_sd=ar_sd,
                noise_sd=noise_sd,
            )
    return series


@dataclass
class ExperimentPlan:
    id: str
    text: ExperimentText
    treated: str
    controls: list[str]
    start: int
    end: int | None
    is_null: bool
    wrong_direction: bool
    true_effect: float = 0.0
    true_relative_effect: float = 0.0
    min_effect: float = 0.0
    owner: str = ""


def plan_experiments(rng: Rand, series: dict[tuple[str, str], Series]) -> list[ExperimentPlan]:
    n = len(EXPERIMENTS)
    null_idx = set(rng.sample(range(n), n // 3))
    wrong_idx = rng.pick([i for i in range(n) if i not in null_idx])
    plans: list[ExperimentPlan] = []
    by_indicator: dict[str, list[int]] = {}
    for i, e in enumerate(EXPERIMENTS):
        by_indicator.setdefault(e.indicator, []).append(i)
    assignment: dict[int, tuple[str, list[str]]] = {}
    for indicator in [s.name for s in INDICATORS]:
        idxs = by_indicator.get(indicator, [])
        teams = rng.sample(TEAMS, len(TEAMS))
        treated = teams[: len(idxs)]
        pool = teams[len(idxs) :]
        for i, t in zip(idxs, treated, strict=True):
            k = min(rng.int(2, 3), len(pool))
            assignment[i] = (t, sorted(rng.sample(pool, k)))
    for i, e in enumerate(EXPERIMENTS):
        treated, controls = assignment[i]
        start = rng.int(28, N_WEEKS - 10)
        end = start + rng.int(12, 20) if rng.chance(0.25) else None
        if end is not None and end >= N_WEEKS:
            end = None
        first, last = rng.pick(PEOPLE)
        plans.append(
            ExperimentPlan(
                id=f"EXP-{i + 1:03d}",
                text=e,
                treated=treated,
                controls=controls,
                start=start,
                end=end,
                is_null=i in null_idx,
                wrong_direction=i == wrong_idx,
                owner=_handle(first, last, 0),
            )
        )
    for p in plans:
        s = series[(p.text.indicator, p.treated)]
        spec = IND_BY_NAME[p.text.indicator]
        pre_mean = float(np.mean([s.expected(i) for i in range(p.start - 26, p.start)]))
        p.min_effect = round(s.noise_sd, 1 if spec.kind == "count" else (2 if spec.decimals == 2 else 3))
        if p.is_null:
            continue
        sign = -1.0 if p.text.direction == "decrease" else 1.0
        if p.wrong_direction:
            sign = -sign
        # a decrease may not take more than 60% off the level (counts stay positive)
        hi = 4.0 if sign > 0 else min(4.0, 0.6 * pre_mean / s.noise_sd)
        # 2.5-4 noise SDs: an 8-week post period detects that reliably (about 2 SDs is the 80%-power limit)
        effect = round(sign * rng.uniform(2.5, max(hi, 2.6)) * s.noise_sd, 4)
        p.true_effect = effect
        p.true_relative_effect = round(effect / pre_mean, 4)
        s.shifts.append((p.start, effect, "experiment"))
    return plans


def plan_shifts(rng: Rand, series: dict[tuple[str, str], Series], plans: list[ExperimentPlan]) -> None:
    """Level shifts in about a third of the series together with the experiment effects."""
    involved = {(p.text.indicator, t) for p in plans for t in [p.treated, *p.controls]}
    free = [k for k in series if k not in involved]
    chosen = rng.sample(free, min(5, len(free)))
    for j, key in enumerate(chosen):
        s = series[key]
        n_shifts = 2 if j == 0 else 1
        idxs = sorted(rng.sample(range(12, N_WEEKS - 10, 4), n_shifts))
        if n_shifts == 2 and idxs[1] - idxs[0] < 20:
            idxs[1] = min(idxs[0] + 24, N_WEEKS - 10)
        sign = 1.0 if rng.chance(0.6) else -1.0
        for idx in idxs:
            size = rng.uniform(2.0, 4.0) * s.noise_sd
            if sign < 0 and size > 0.6 * s.expected(idx - 1):
                sign = 1.0  # too big a drop for this level: shift up instead
            s.shifts.append((idx, round(sign * size, 4), "shift"))
            sign = -sign  # a second shift in the same series goes back the other way
        s.shifts.sort()


def simulate(rng: Rand, series: dict[tuple[str, str], Series]) -> None:
    for (name, _team), s in series.items():
        spec = IND_BY_NAME[name]
        innov = s.ar_sd * math.sqrt(1 - s.phi**2)
        e = float(rng.g.normal(0, s.ar_sd))
        values: list[float] = []
        for i in range(N_WEEKS):
            if i > 0:
                e = s.phi * e + float(rng.g.normal(0, innov))
            mean = s.expected(i) + e
            if spec.kind == "count":
                y = float(rng.g.poisson(max(mean, 0.1)))
            else:
                y = max(mean, 0.01 * s.level)
            values.append(y)
        # isolated outliers, away from shifts and from each other
        blocked = {j + k for j, _, _ in s.shifts for k in range(-2, 3)}
        n_out = min(int(rng.g.poisson(1.0)), 3)
        for _ in range(n_out):
            cands = [i for i in range(3, N_WEEKS - 3) if i not in blocked]
            if not cands:
                break
            i = rng.pick(cands)
            up = spec.kind == "count" or rng.chance(0.8)
            size = rng.uniform(4.0, 7.0) * s.noise_sd
            values[i] = values[i] + size if up else max(values[i] - size, 0.0)
            s.outliers.append(i)
            blocked |= {i + k for k in range(-3, 4)}
        s.outliers.sort()
        if spec.upper is not None:
            values = [min(v, spec.upper) for v in values]
        s.values = [round(v) if spec.kind == "count" else round(v, spec.decimals) for v in values]


# ---------------------------------------------------------------------------------------------- writing


class _NoAliasDumper(yaml.SafeDumper):
    """Safe dumper that writes repeated values (the same date object) in full instead of as &anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _fmt(v: float, decimals: int) -> str:
    return str(int(v)) if decimals == 0 else f"{v:.{decimals}f}"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(rows)
    return buf.getvalue()


def generate(out: Path, seed: int = 7) -> dict[str, int]:
    """Write the whole sample under `out`; return a few counts."""
    streams = [Rand(s) for s in np.random.SeedSequence(seed).spawn(4)]
    inc_rng, pm_rng, ind_rng, ref_rng = streams

    drafts, keys = generate_incidents(inc_rng)
    next_ai = assign_ids(drafts, "INC-", 4, 1)
    add_references(ref_rng, drafts)
    used = {d.one_off for d in drafts if d.one_off is not None}
    pms = generate_postmortems(pm_rng, used)
    assign_ids(pms, "PM-", 3, next_ai)

    series = build_series(ind_rng)
    plans = plan_experiments(ind_rng, series)
    plan_shifts(ind_rng, series, plans)
    simulate(ind_rng, series)

    out.mkdir(parents=True, exist_ok=True)
    for old in sorted((out / "postmortems").glob("*.md")) if (out / "postmortems").exists() else []:
        old.unlink()
    lines = [json.dumps(incident_record(d), ensure_ascii=False) for d in drafts]
    _write_text(out / "incidents.jsonl", "\n".join(lines) + "\n")
    for d in pms:
        _write_text(out / "postmortems" / f"{d.id}.md", postmortem_markdown(d))

    dates = week_dates()
    rows: list[list[Any]] = [["indicator", "ds", "y", "team"]]
    for spec in INDICATORS:
        for team in TEAMS:
            s = series[(spec.name, team)]
            rows += [
                [spec.name, dates[i].isoformat(), _fmt(v, spec.decimals), team]
                for i, v in enumerate(s.values)
            ]
    _write_text(out / "indicators.csv", _csv(rows))

    exps = []
    for p in plans:
        e: dict[str, Any] = {
            "id": p.id,
            "name": p.text.name,
            "hypothesis": {"problem": p.text.problem, "solution": p.text.solution, "metric": p.text.metric},
            "indicator": p.text.indicator,
            "dimension": "team",
            "treated": p.treated,
            "controls": p.controls,
            "start": dates[p.start],
        }
        if p.end is not None:
            e["end"] = dates[p.end]
        e.update({"desired_direction": p.text.direction, "min_effect": p.min_effect, "owner": p.owner})
        exps.append(e)
    header = "# Process experiments on the sample indicators (see data/README.md). Generated by data/generate.py.\n"
    _write_text(
        out / "experiments.yaml",
        header + yaml.dump(exps, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100),
    )

    truth = out / "truth"
    all_drafts = drafts + pms
    _write_text(
        truth / "incident_patterns.csv",
        _csv([["incident_id", "pattern"]] + [[d.id, d.pattern] for d in all_drafts]),
    )
    shift_rows: list[list[Any]] = [["series", "date", "magnitude", "kind"]]
    outlier_rows: list[list[Any]] = [["series", "date"]]
    series_rows: list[list[Any]] = [
        [
            "series",
            "indicator",
            "team",
            "kind",
            "level",
            "trend_per_week",
            "season_amplitude",
            "ar_phi",
            "noise_sd",
        ]
    ]
    for spec in INDICATORS:
        for team in TEAMS:
            s = series[(spec.name, team)]
            for idx, mag, kind in s.shifts:
                shift_rows.append([s.key, dates[idx].isoformat(), f"{mag:.4f}", kind])
            outlier_rows += [[s.key, dates[i].isoformat()] for i in s.outliers]
            series_rows.append(
                [
                    s.key,
                    spec.name,
                    team,
                    spec.kind,
                    f"{s.level:.4f}",
                    f"{s.slope:.6f}",
                    f"{s.season_amp:.4f}",
                    f"{s.phi:.3f}",
                    f"{s.noise_sd:.4f}",
                ]
            )
    _write_text(truth / "shifts.csv", _csv(shift_rows))
    _write_text(truth / "outliers.csv", _csv(outlier_rows))
    _write_text(truth / "series.csv", _csv(series_rows))
    _write_text(
        truth / "experiments.csv",
        _csv(
            [["id", "true_effect", "true_relative_effect", "is_null"]]
            + [
                [p.id, f"{p.true_effect:.4f}", f"{p.true_relative_effect:.4f}", str(p.is_null).lower()]
                for p in plans
            ]
        ),
    )
    pat_rows: list[list[Any]] = [
        ["pattern", "trend", "n_incidents", "key_action_item_id", "key_action_closed_at", "description"]
    ]
    for spec in PATTERNS:
        key = keys.get(spec.slug)
        pat_rows.append(
            [
                spec.slug,
                spec.trend,
                sum(d.pattern == spec.slug for d in drafts),
                key["id"] if key else "",
                iso(key["closed_at"]) if key else "",
                spec.description,
            ]
        )
    pat_rows.append([ONE_OFF, "none", sum(d.pattern == ONE_OFF for d in drafts), "", "", "Unique causes"])
    _write_text(truth / "patterns.csv", _csv(pat_rows))
    pii_rows: list[list[Any]] = [["incident_id", "field", "kind", "value"]]
    for d in all_drafts:
        pii_rows += [[d.id, f, k, v] for f, k, v in d.pii]
    _write_text(truth / "pii.csv", _csv(pii_rows))
    return {
        "incidents": len(drafts),
        "postmortems": len(pms),
        "series": len(series),
        "experiments": len(plans),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7, the committed sample)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default data/sample, or data/sample-hard)"
    )
    parser.add_argument("--hard", action="store_true", help="write the hard sample (data/hard.py) instead")
    args = parser.parse_args(argv)
    if args.hard:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from hard import generate_hard  # data/hard.py

        out = args.out or Path(__file__).resolve().parent / "sample-hard"
        counts = generate_hard(out, args.seed)
        print(", ".join(f"{v} {k}" for k, v in counts.items()), f"written to {out}")
        return 0
    args.out = args.out or Path(__file__).resolve().parent / "sample"
    counts = generate(args.out, args.seed)
    print(", ".join(f"{v} {k}" for k, v in counts.items()), f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
