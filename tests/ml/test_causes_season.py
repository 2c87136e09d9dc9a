"""The seasonal profile shared by an indicator's series (ml.causes.season): estimated from the leaves, taken out of
every series and aggregate, a shift hidden by the summed season found, and nothing blamed where nothing moved."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.causes import ExplainConfig, explain_signals
from ml.causes.aggregates import build_series
from ml.causes.season import adjust_for_season, fourier_basis, shared_profile

N = 104
SHIFT = 60
DATES = pd.date_range("2024-01-01", periods=N, freq="W-MON")
SEASON = 1.2 * np.sin(2 * np.pi * DATES.dayofyear.to_numpy() / 365.25 + 0.5)
TREND = 0.01 * (np.arange(N) - N / 2)


def _ar1(rng: np.random.Generator, phi: float = 0.4, sd: float = 1.0) -> np.ndarray:
    e = np.empty(N)
    e[0] = rng.normal(0.0, sd)
    for i in range(1, N):
        e[i] = phi * e[i - 1] + rng.normal(0.0, sd * np.sqrt(1 - phi**2))
    return e


def _teams(seed: int, season: bool = True, n: int = 6) -> dict[str, np.ndarray]:
    """``n`` teams of one indicator: level 10, a shared season (each team's amplitude +-10%), a common trend and
    AR(1) noise of sd 1."""
    rng = np.random.default_rng(seed)
    return {
        f"t{i}": 10.0 + (SEASON * (1 + rng.normal(0.0, 0.1)) if season else 0.0) + TREND + _ar1(rng)
        for i in range(n)
    }


def _long(values: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"indicator": "incidents", "ds": d, "y": float(v), "team": team}
            for team, y in sorted(values.items())
            for d, v in zip(DATES, y, strict=True)
        ]
    )


def _near(res: list[dict[str, object]], series: str, week: int) -> list[dict[str, object]]:
    return [
        r
        for r in res
        if r["series"] == series and abs(pd.Timestamp(str(r["date"])) - DATES[week]) <= pd.Timedelta(weeks=2)
    ]


def test_the_shared_profile_is_recovered_despite_a_large_shift_in_one_series() -> None:
    values = _teams(3)
    values["t1"][SHIFT:] += 6.0
    series = build_series(_long(values))
    fit = shared_profile([s for s in series.values() if not s.is_aggregate])
    assert fit is not None
    theta, period = fit
    assert period == 365.25
    profile = fourier_basis(DATES, period) @ theta
    assert np.corrcoef(profile, SEASON)[0, 1] > 0.95
    assert np.std(profile - SEASON) < 0.3 * np.std(SEASON)
    adjusted = adjust_for_season(series)
    team, agg = adjusted["incidents/team=t1"], adjusted["incidents"]
    assert team.season is not None and agg.season is not None
    # the aggregate (a sum of six) loses the sum of its parts' profiles, and its parts lose theirs
    np.testing.assert_allclose(agg.season.to_numpy(), 6 * team.season.to_numpy())
    assert agg.parts is not None
    np.testing.assert_allclose(agg.parts.sum(axis=1).to_numpy(), agg.values.to_numpy())
    # the step is kept: taking out a profile that sums to about zero moves no level
    step = team.values.iloc[SHIFT:].mean() - team.values.iloc[:SHIFT].mean()
    raw = series["incidents/team=t1"].values
    assert abs(step - (raw.iloc[SHIFT:].mean() - raw.iloc[:SHIFT].mean())) < 0.5


def test_independent_series_share_no_season_and_keep_their_values() -> None:
    series = build_series(_long(_teams(4, season=False)))
    assert shared_profile([s for s in series.values() if not s.is_aggregate]) is None
    adjusted = adjust_for_season(series)
    assert all(adjusted[k].season is None for k in series)
    assert all(adjusted[k].values.equals(series[k].values) for k in series)
    # too few series, or less than two years: none either
    short = build_series(_long(_teams(5))[lambda f: f["ds"] < DATES[80]])
    assert shared_profile([s for s in short.values() if not s.is_aggregate]) is None
    two = build_series(_long(_teams(5, n=2)))
    assert shared_profile([s for s in two.values() if not s.is_aggregate]) is None


def test_a_team_shift_hidden_by_the_summed_season_is_found_on_the_aggregate() -> None:
    """Six teams with a season of 1.2 noise sds each: on their sum the season is 7.2 against noise of about 2.5,
    and one team's step of 3 is lost in it unless the shared profile is taken out first."""
    found, found_raw = 0, 0
    for seed in range(5):
        values = _teams(seed)
        values["t2"][SHIFT:] += 3.0
        frame = _long(values)
        res = explain_signals(frame)
        agg = _near(res, "incidents", SHIFT)
        if agg and agg[0]["causes"]:
            top = agg[0]["causes"][0]  # type: ignore[index]
            found += (top["kind"], top["key"]) == ("slice", "team=t2")
            assert any("seasonal profile shared" in n for n in agg[0]["notes"])  # type: ignore[attr-defined]
        raw = explain_signals(frame, config=ExplainConfig(shared_season=False))
        found_raw += bool(_near(raw, "incidents", SHIFT))
    assert found >= 4
    assert found_raw <= 1


def test_nothing_moved_nothing_blamed_on_seasonal_series_with_a_change_log() -> None:
    """Seasonal, trending series with no shift and a change log of eight entries: no change is blamed, and fewer
    (false) shifts are left unexplained by the season than the detector finds with the season left in."""
    blamed, shifts, shifts_raw = 0, 0, 0
    for seed in range(10, 16):
        rng = np.random.default_rng(seed)
        weeks = rng.choice(np.arange(10, 95), 8, replace=False)
        changes = pd.DataFrame(
            {
                "ds": [DATES[w] for w in weeks],
                "team": [f"t{rng.integers(6)}" for _ in weeks],
                "kind": "deploy",
                "description": "pipeline change",
            }
        )
        frame = _long(_teams(seed))
        res = explain_signals(frame, changes=changes)
        shifts += sum(not any("the season may explain it" in n for n in r["notes"]) for r in res)
        blamed += sum(c["kind"] == "change" and c["confidence"] >= 0.8 for r in res for c in r["causes"])
        shifts_raw += len(explain_signals(frame, config=ExplainConfig(shared_season=False)))
    assert blamed == 0
    assert shifts < shifts_raw, (shifts, shifts_raw)


def test_a_negligible_season_is_left_in_and_mostly_zero_counts_are_left_as_they_are() -> None:
    rng = np.random.default_rng(8)
    weeks = pd.date_range("2014-01-06", periods=520, freq="W-MON")
    tiny = 0.05 * np.sin(2 * np.pi * weeks.dayofyear.to_numpy() / 365.25)
    frame = pd.DataFrame(
        [
            {"indicator": "incidents", "ds": d, "y": float(v), "team": f"t{i}"}
            for i in range(20)
            for d, v in zip(weeks, 10.0 + tiny + rng.normal(0.0, 1.0, len(weeks)), strict=True)
        ]
    )
    series = build_series(frame)
    # significant over 20 series x 10 years, but a swing of 0.1 noise sd hides no shift: not taken out
    assert shared_profile([s for s in series.values() if not s.is_aggregate]) is None
    # a team whose counts are mostly 0 keeps its integer values; the aggregate loses the others' profiles only
    values = _teams(9, n=5)
    values["t9"] = (np.random.default_rng(9).random(N) < 0.1).astype(float)
    adjusted = adjust_for_season(build_series(_long(values)))
    assert adjusted["incidents/team=t9"].season is None
    assert adjusted["incidents/team=t0"].season is not None
    agg = adjusted["incidents"].season
    assert agg is not None
    np.testing.assert_allclose(agg.to_numpy(), 5 * adjusted["incidents/team=t0"].season.to_numpy())


def test_a_team_shift_the_shared_season_explains_keeps_its_id_and_blames_nothing() -> None:
    """A team whose season (2 noise sds) the detector takes for steps: its shifts stay listed at the detector's
    dates (the ids the forecaster's signals carry), say that the season may explain them, and a change just before
    one is not blamed."""
    from ml.causes import signal_id
    from ml.indicators.signals import detect_signals

    season = 2.0 * np.sin(2 * np.pi * DATES.dayofyear.to_numpy() / 365.25 + 0.5)
    rng = np.random.default_rng(0)
    values = {f"t{i}": 10.0 + season * (1 + rng.normal(0.0, 0.1)) + TREND + _ar1(rng) for i in range(6)}
    frame = _long(values)
    raw = [e for e in detect_signals("incidents/team=t4", DATES, values["t4"]) if e["kind"] == "shift"]
    assert len(raw) >= 2
    change = pd.DataFrame(
        {
            "ds": [pd.Timestamp(raw[0]["date"]) - pd.Timedelta(days=7)],
            "team": ["t4"],
            "kind": "deploy",
            "description": "pipeline change",
        }
    )
    res = explain_signals(frame, changes=change)
    mine = {r["id"]: r for r in res if r["series"] == "incidents/team=t4"}
    for e in raw:
        r = mine[signal_id("incidents/team=t4", e["date"])]
        assert any("the season may explain it" in n for n in r["notes"])
        assert r["verdict"] == "no convincing cause"
        assert all(c["confidence"] < 0.5 for c in r["causes"])
