"""The indicator forecaster as registered: its artifact folder and the runtime the API builds from it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ml.errors import InputError, NotFoundError
from ml.registry.artifacts import (
    CAUSES_FILE,
    CAUSES_FORMAT,
    check_forecaster_artifacts,
    read_manifest,
    write_manifest,
)

log = logging.getLogger(__name__)

_DIRECTION = {"up": "increase", "down": "decrease"}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")


def write_forecaster_artifacts(
    out: Path,
    *,
    bundle: Any,
    history: Any,
    config: Mapping[str, Any],
    explanations: list[dict[str, Any]] | None = None,
) -> Path:
    """Forecaster artifact folder: ``bundle.json`` (every series' chosen model, backtest, forecast, signals; Prophet
    as its own JSON), ``history.csv`` (series, ds, y), ``config.json`` and, when given, ``causes.json`` (each
    shift with its ranked causes, :func:`ml.causes.explain_signals`); checked as :class:`ForecasterRuntime` checks
    it on load (:class:`~ml.errors.ArtifactError` otherwise)."""
    out.mkdir(parents=True, exist_ok=True)
    if explanations is not None:
        _write_json(out / CAUSES_FILE, {"format": CAUSES_FORMAT, "signals": explanations})
    (out / "bundle.json").write_text(bundle.to_json(), encoding="utf-8")
    frame = history[["series", "ds", "y"]].copy()
    frame["ds"] = frame["ds"].astype(str).str[:10]
    frame.to_csv(out / "history.csv", index=False)
    _write_json(out / "config.json", dict(config))
    write_manifest(out, "forecaster")
    check_forecaster_artifacts(out)  # what the runtime would refuse on load fails the training instead
    return out


class ForecasterRuntime:
    """A loaded indicator forecaster: series, forecasts with intervals, shifts, early warnings, plots."""

    def __init__(self, root: Path) -> None:

        from ml.indicators.forecasting import ForecastBundle

        self.root = Path(root)
        check_forecaster_artifacts(self.root)
        self.config: dict[str, Any] = json.loads((self.root / "config.json").read_text(encoding="utf-8"))
        self.bundle = ForecastBundle.from_json((self.root / "bundle.json").read_text(encoding="utf-8"))
        hist = pd.read_csv(self.root / "history.csv", dtype={"series": str, "ds": str})
        hist["ds"] = pd.to_datetime(hist["ds"])
        self.history = hist
        # Each shift's causes (checked with the artifact); absent from artifacts written before they were stored.
        self._explanations: list[dict[str, Any]] = []
        if CAUSES_FILE in read_manifest(self.root)["files"]:
            data = json.loads((self.root / CAUSES_FILE).read_text(encoding="utf-8"))
            self._explanations = list(data["signals"])
        # by id, and by the id of the date a re-dated shift was detected at (its aliases: the forecaster lists it
        # there); ids and aliases are all distinct (checked on load)
        self._by_signal = {
            str(i): e for e in self._explanations for i in [e["id"], *(e.get("aliases") or [])]
        }
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        return None

    def _result(self, series: str) -> dict[str, Any]:
        if series not in self.bundle.results:
            raise NotFoundError(f"no series {series!r}; see GET /v1/indicators", field="series", value=series)
        res = self.bundle.results[series]
        if res.get("status") == "error":
            raise NotFoundError(
                f"series {series!r} could not be fitted: {res.get('notes')}", field="series", value=series
            )
        return res

    def series_history(self, series: str) -> Any:
        self._result(series)
        return self.history[self.history["series"] == series][["ds", "y"]]

    def series(self) -> list[dict[str, Any]]:
        from ml.io.schemas import parse_series_key

        out = []
        for sid in self.bundle.series:
            r = self.bundle.results[sid]
            h = self.history[self.history["series"] == sid]
            out.append(
                {
                    "series": sid,
                    **parse_series_key(sid),
                    "status": r.get("status"),
                    "model": r.get("chosen"),
                    "reason": r.get("reason"),
                    "mase": r.get("mase"),
                    "baseline_mase": r.get("baseline_mase"),
                    "n_obs": r.get("n_obs"),
                    "last_ds": h["ds"].max().date().isoformat() if len(h) else None,
                    "last_y": float(h["y"].iloc[-1]) if len(h) else None,
                    "notes": list(r.get("notes") or []),
                }
            )
        return out

    def forecast(self, series: str, horizon: int) -> dict[str, Any]:
        res = self._result(series)
        stored = res.get("forecast") or []
        if horizon <= len(stored):
            rows = stored[:horizon]
        else:
            with self._lock:
                model = self._models.get(series)
                if model is None:
                    model = self.bundle.model(series)
                    self._models[series] = model
            frame = model.predict(horizon)
            rows = [
                {
                    "ds": str(r.ds)[:10],
                    "yhat": float(r.yhat),
                    "yhat_lower": float(r.yhat_lower),
                    "yhat_upper": float(r.yhat_upper),
                }
                for r in frame.itertuples()
            ]
        return {
            "series": series,
            "model": res.get("chosen"),
            "level": self.bundle.config.get("level", 80),
            "points": rows,
        }

    def signals(self, since: dt.date | None = None, series: str | None = None) -> list[dict[str, Any]]:
        """Ranked events of the fitted series, and every other shift the explanations found: those of the
        aggregates (e.g. ``incidents`` summed over teams), and those of a fitted series found at the date of a
        change or experiment, or once the season its team shares is out; each with its ``id`` and how many
        candidate causes it has, so that every id ``causes`` answers is listed."""
        from ml.causes import signal_id
        from ml.indicators.events import EVENT_FIELDS, rank_events

        rows: list[dict[str, Any]] = json.loads(self.bundle.signals().to_json(orient="records"))
        for r in rows:
            r["id"] = signal_id(str(r["series"]), str(r["date"]))
        known = {r["id"] for r in rows}
        # a shift listed at the date it was detected at is not listed again at the date it was re-dated to
        known |= {str(e["id"]) for e in self._explanations if known & set(e.get("aliases") or [])}
        extra = [
            {
                **{f: e.get(f) for f in EVENT_FIELDS},
                "kind": "shift",
                "direction": _DIRECTION.get(str(e["direction"]), e["direction"]),  # the detector's words
                "id": e["id"],
                "detail": "aggregate of its parts"
                if e["series"] not in self.bundle.results
                else str(e.get("detail") or "found by the explanation"),
            }
            for e in self._explanations
            if e["id"] not in known
        ]
        if extra:  # ranked together; the id is the series and date's
            rows = [
                {**r, "id": signal_id(str(r["series"]), str(r["date"]))} for r in rank_events(rows + extra)
            ]
        for r in rows:
            found = self._by_signal.get(r["id"])
            r["verdict"] = found.get("verdict") if found else None
            r["n_causes"] = len(found.get("causes") or []) if found else None
        if series is not None:
            rows = [r for r in rows if r["series"] == series]
        if since is not None:
            rows = [r for r in rows if str(r["date"]) >= since.isoformat()]
        return rows

    def explanations(self, since: dt.date | None = None) -> list[dict[str, Any]]:
        """Every explained shift (newest first) with its ranked causes; empty for an artifact without them."""
        if since is None:
            return list(self._explanations)
        return [e for e in self._explanations if str(e["date"]) >= since.isoformat()]

    def explanations_by_id(self) -> dict[str, dict[str, Any]]:
        """Each explanation by its id and by its aliases (every id :meth:`signals` lists for it)."""
        return dict(self._by_signal)

    def causes(self, signal: str) -> dict[str, Any]:
        """One shift with its causes, by its id (``GET /v1/signals`` lists the ids)."""
        found = self._by_signal.get(signal)
        if found is None:
            raise NotFoundError(
                f"no explained shift with id {signal!r}; see GET /v1/signals (outliers are not explained)",
                field="signal",
                value=signal,
            )
        return found

    def warnings(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.bundle.warnings().to_json(orient="records"))
        return rows

    def plot_png(self, series: str) -> bytes:
        from ml.io.schemas import parse_series_key
        from ml.reporting.plots import forecast_png, unit_of

        res = self._result(series)
        hist = self.series_history(series)
        indicator = str(parse_series_key(series)["indicator"])
        return forecast_png(
            hist,
            res.get("forecast") or [],
            self.signals(series=series),
            title=f"{series}: forecast by {res.get('chosen')}",
            ylabel=unit_of(indicator),
        )

    def predict_frame(self, frame: Any) -> Any:

        if "series" not in frame.columns:
            raise InputError("model input needs a 'series' column (and optionally 'horizon')", field="series")
        rows = []
        for rec in frame.to_dict(orient="records"):
            h = int(rec.get("horizon") or len(self._result(rec["series"]).get("forecast") or []) or 13)
            out = self.forecast(str(rec["series"]), h)
            rows += [{"series": out["series"], "model": out["model"], **p} for p in out["points"]]
        return pd.DataFrame(rows, columns=["series", "model", "ds", "yhat", "yhat_lower", "yhat_upper"])
