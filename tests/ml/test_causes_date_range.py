"""The dates a shift may have happened between (ml.causes.explain.date_range): they hold the true date of a step in
AR(1) noise about 95% of the time or more, narrow as the step grows, and name the shift's own date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.causes import explain_signals, when_text

N, AT = 104, 60
DATES = pd.date_range("2024-01-01", periods=N, freq="W-MON")


def _series(seed: int, step: float, phi: float = 0.4) -> pd.DataFrame:
    """One weekly series: AR(1) noise of sd 1 (``phi``) around 10, ``step`` sds more from week ``AT``."""
    rng = np.random.default_rng(seed)
    e = np.empty(N)
    e[0] = rng.normal()
    for i in range(1, N):
        e[i] = phi * e[i - 1] + rng.normal(0.0, np.sqrt(1 - phi**2))
    y = 10.0 + e + np.where(np.arange(N) >= AT, step, 0.0)
    return pd.DataFrame({"indicator": "mttr_hours", "ds": DATES, "y": y})


def _ranges(step: float, seeds: range) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]]:
    """(first, last, date) of the shift found nearest week AT in each draw that finds one within 8 weeks."""
    out = []
    for seed in seeds:
        found = [r for r in explain_signals(_series(seed, step)) if r["date_range"]]
        near = [r for r in found if abs((pd.Timestamp(r["date"]) - DATES[AT]).days) <= 56]
        if near:
            r = min(near, key=lambda r: abs(pd.Timestamp(r["date"]) - DATES[AT]))
            first, last = (pd.Timestamp(x) for x in r["date_range"])
            out.append((first, last, pd.Timestamp(r["date"])))
    return out


def test_the_range_holds_the_true_date_and_narrows_as_the_step_grows() -> None:
    small, large = _ranges(2.0, range(40)), _ranges(4.0, range(40))
    assert (
        len(small) >= 20 and len(large) == 40
    )  # a 2-sd step in this noise is found in about two draws of three
    for ranges in (small, large):
        assert all(first <= date <= last for first, last, date in ranges)  # the shift's own date is inside
        held = np.mean([first <= DATES[AT] <= last for first, last, _ in ranges])
        assert held >= 0.9, held
    width = {k: np.median([(b - a).days for a, b, _ in v]) for k, v in (("small", small), ("large", large))}
    assert width["large"] < width["small"] <= 10 * 7, width


def test_when_text_gives_the_range_only_when_it_is_wider_than_the_date() -> None:
    e = {"date": "2025-03-03", "date_range": ["2025-02-17", "2025-03-17"]}
    assert when_text(e) == "2025-03-03 (between 2025-02-17 and 2025-03-17)"
    assert when_text({**e, "date_range": ["2025-03-03", "2025-03-03"]}) == "2025-03-03"
    assert when_text({**e, "date_range": None}) == "2025-03-03"
