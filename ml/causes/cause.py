"""A candidate cause of a shift, the explanation settings, and the small scoring helpers every cause kind shares.

Confidence of every kind is built the same way: the strength of its own test (one minus a Bonferroni-corrected
p-value, or a timing/slice agreement score) times how concentrated the change is in it. Concentration compares
the share of the change a candidate explains with its share of the level before: a change spread in proportion
over everything (each slice or pattern moves with its size) concentrates in nothing, so nothing is blamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Cause", "CauseKind", "ExplainConfig", "concentration", "json_safe", "significance"]

CauseKind = Literal["slice", "pattern", "change", "experiment"]


@dataclass(frozen=True)
class ExplainConfig:
    """Settings of :func:`ml.causes.explain_signals`.

    Parameters:
        window_days: length of the before and after windows around a shift (clipped at the neighbouring shifts of
            the same series).
        pattern_baseline_days: length of the before window for incident counts per pattern (sparse counts need a
            longer baseline than the indicator; not clipped at earlier shifts, not before the first incident).
        lookback_days: how long before a shift a change or experiment may start and still be a candidate.
        slack_days: how long after the shift date a change may start (a detected date can be up to two weeks
            early: the same tolerance as ``CARRY_DAYS`` and the bench's).
        full_credit_days: a change that starts at most this long before the shift keeps full timing credit; the
            credit then falls linearly to ``min_timing`` at ``lookback_days``.
        min_timing: timing credit of a change that starts ``lookback_days`` before the shift.
        explained_at: the confidence a best cause needs for the verdict "explained".
        max_causes: causes kept per shift.
        combo_ep: share of what each parent slice explains that a two-dimension combination must explain to be
            preferred over its parents (see :mod:`ml.causes.slices`).
        mean_indicators: indicators whose aggregate is the mean of their parts (not the sum); ``None``: those
            whose name says rate, ratio, share, percent, mean, average, time, hours, latency, a percentile, MTTR,
            a score and the like (:func:`ml.indicators.completion.looks_like_mean`).
        incident_indicators: indicators that count incidents (pattern causes get a contribution); ``None``: those
            whose name contains "incident" and that are summed.
        signal_params: keyword arguments for :class:`ml.indicators.signals.ChangeDetector` when shifts are
            detected here.
        shared_season: take the seasonal profile shared by an indicator's series out of them before shifts are
            searched and measured (:mod:`ml.causes.season`).
    """

    window_days: int = 56
    pattern_baseline_days: int = 182
    lookback_days: int = 42
    slack_days: int = 14
    full_credit_days: int = 21
    min_timing: float = 0.5
    explained_at: float = 0.5
    max_causes: int = 5
    combo_ep: float = 0.7
    mean_indicators: tuple[str, ...] | None = None
    incident_indicators: tuple[str, ...] | None = None
    signal_params: dict[str, Any] = field(default_factory=dict)
    shared_season: bool = True

    def detector_params(self) -> dict[str, Any]:
        """The detector's bars that the targeted tests meet too: ``min_segment``, ``min_confidence`` and
        ``min_shift_sigma``, from ``signal_params`` or the detector's defaults."""
        defaults: dict[str, Any] = {"min_segment": 4, "min_confidence": 0.95, "min_shift_sigma": 1.0}
        return {k: self.signal_params.get(k, v) for k, v in defaults.items()}


@dataclass
class Cause:
    """One candidate cause of one shift (see the module docstring for ``confidence``)."""

    kind: CauseKind
    key: str
    contribution: float | None
    confidence: float
    evidence: dict[str, Any]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "contribution": json_safe(self.contribution),
            "confidence": json_safe(self.confidence),
            "evidence": json_safe(self.evidence),
            "summary": self.summary,
        }


def json_safe(value: Any, digits: int = 4) -> Any:
    """``value`` with numpy scalars as Python numbers, floats rounded and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()  # numpy scalar
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    return str(value)


#: Explanatory power that counts as explaining the whole change (the rest is noise).
FULL_EP = 0.8
#: Bonferroni-corrected p-value that earns full significance; 10x larger earns 2/3 of it, 100x larger 1/3.
FULL_SIGNIFICANCE_P = 1e-3


def significance(p_value: float, n_tests: int = 1) -> float:
    """Strength of a test in [0, 1]: ``-log10(p * n_tests) / 3``, clipped (p = 0.001 after Bonferroni: 1).

    On the log scale so that the confidence bar of 0.8 needs a corrected p-value of about 0.004 (and 0.5 about
    0.03): a candidate that merely passes a 5% test is not blamed with high confidence.
    """
    if not math.isfinite(p_value):
        return 0.0
    p = min(1.0, max(p_value, 0.0) * max(1, n_tests))
    if p <= FULL_SIGNIFICANCE_P:
        return 1.0
    return max(0.0, -math.log10(p) / -math.log10(FULL_SIGNIFICANCE_P))


#: The least room above a proportional change that :func:`concentration` divides by for a pattern cause.
MIN_ROOM = 0.1


def concentration(ep: float, share_before: float, min_room: float = 0.0) -> float:
    """How much more of the change a candidate explains than its size alone would: 0 (proportional) .. 1.

    ``ep`` is the share of the change it explains (explanatory power), ``share_before`` its share of the level
    before. A candidate that explains everything (ep = 1) while holding a small share scores near 1; one whose
    change is in proportion to its size (ep = share) scores 0. The score is also capped by ``ep / FULL_EP``, so
    a candidate that explains half of the change is at most 0.62 of a cause, and one that explains ``FULL_EP``
    (the rest being noise, as in Adtributor's threshold) can be a whole one. With ``min_room`` (patterns:
    :data:`MIN_ROOM`) a candidate that held all of the level before scores 0 (its change is the whole change, in
    proportion: a slice's one catch-all pattern restates its count), one that held 95% at most 0.71. Slices keep no
    such floor: the one service that made nearly all of a team's incidents and rose is still the place to look.
    """
    if not math.isfinite(ep) or ep <= 0:
        return 0.0
    ep_c = min(ep, 1.0)
    s = min(max(share_before, 0.0), 1.0) if math.isfinite(share_before) else 0.0
    if not min_room:
        s = min(s, 0.999)  # a slice that was all of the level still has room to be more than proportional
    # the room above proportional is at least min_room: a candidate that is (nearly) all of the level before (the
    # one pattern of a slice's incidents) explains the change only by restating it
    excess = max(0.0, (ep_c - s) / max(1.0 - s, min_room))
    return float(min(ep_c / FULL_EP, 1.0, math.sqrt(excess)))
