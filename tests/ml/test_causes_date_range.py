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
        held = np.mean([first <= DATES[AT] <= last for first, last, _ in ranges])
        assert held >= 0.9, held
    width = {k: np.median([(b - a).days for a, b, _ in v]) for k, v in (("small", small), ("large", large))}
    assert width["large"] < width["small"] <= 10 * 7, width


def test_when_text_gives_the_range_only_when_it_is_wider_than_the_date() -> None:
    e = {"date": "2025-03-03", "date_range": ["2025-02-17", "2025-03-17"]}
    assert when_text(e) == "2025-03-03 (between 2025-02-17 and 2025-03-17)"
    assert when_text({**e, "date_range": ["2025-03-03", "2025-03-03"]}) == "2025-03-03"
    assert when_text({**e, "date_range": None}) == "2025-03-03"


def _holds_own_date(res: list[dict[str, object]]) -> bool:
    spans = [(r["date_range"], r["date"]) for r in res if r["date_range"]]
    return bool(spans) and all(span[0] <= date <= span[1] for span, date in spans)  # type: ignore[index,operator]


def test_the_range_holds_the_shift_date_where_the_series_has_no_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The detector dates shifts on the regular grid; a week missing at the step, or the weekend of a daily export
    of weekdays, is still inside the range, and the forecaster artifact that stores them is written and loads."""
    from ml.indicators.forecasting import fit_many
    from ml.registry.forecaster_runtime import ForecasterRuntime, write_forecaster_artifacts

    for seed, gap in (
        (0, 1),
        (1, 2),
        (2, 3),
    ):  # weeks missing from week AT - 1 (most of these dated inside them)
        frame = _series(seed, 5.0, phi=0.0)
        frame = frame[~frame.index.isin(range(AT - 1, AT - 1 + gap))]
        res = explain_signals(frame)
        assert _holds_own_date(res), res
    days = pd.bdate_range("2024-01-01", periods=300)  # weekdays only
    rng = np.random.default_rng(3)
    weekdays = pd.DataFrame(
        {
            "indicator": "mttr_hours",
            "ds": days,
            "y": 10 + rng.normal(0, 1, 300) + np.where(np.arange(300) >= 183, 3.0, 0),
        }
    )
    res = explain_signals(weekdays)
    assert _holds_own_date(res), res
    history = frame.assign(series="mttr_hours")
    bundle = fit_many(
        history[["series", "ds", "y"]], {"candidates": ["seasonal_naive"], "n_windows": 2}, map_fn=map
    )
    root = write_forecaster_artifacts(
        tmp_path / "model", bundle=bundle, history=history, config={}, explanations=explain_signals(frame)
    )
    assert ForecasterRuntime(root).explanations_by_id()


def test_a_trend_change_has_no_range() -> None:
    y = (
        10.0
        + np.random.default_rng(0).normal(0.0, 1.0, N)
        + np.where(np.arange(N) >= 50, 0.15 * (np.arange(N) - 50), 0)
    )
    res = explain_signals(pd.DataFrame({"indicator": "mttr_hours", "ds": DATES, "y": y}))
    kinks = [r for r in res if "trend change" in str(r["detail"])]
    assert kinks and all(r["date_range"] is None for r in kinks), res
