"""Forecast accuracy: MASE, sMAPE, interval coverage and threshold-crossing probability."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from ml.errors import InputError

logger = logging.getLogger(__name__)


def mase_scale(y_train: np.ndarray) -> float:
    """In-sample MAE of the one-step naive forecast (observed consecutive pairs only); 0 when constant."""
    d = np.abs(np.diff(np.asarray(y_train, dtype=float)))
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else 0.0


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error over the observed points of y (NaN if nothing observed or no scale)."""
    ok = np.isfinite(y)
    if not ok.any() or scale <= 0:
        return float("nan")
    return float(np.mean(np.abs(y[ok] - yhat[ok])) / scale)


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); a step where both are 0 counts as 0."""
    ok = np.isfinite(y)
    if not ok.any():
        return float("nan")
    num = np.abs(y[ok] - yhat[ok])
    den = np.abs(y[ok]) + np.abs(yhat[ok])
    frac = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(200.0 * frac.mean())


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    ok = np.isfinite(y)
    if not ok.any():
        return float("nan")
    return float(np.mean((y[ok] >= lower[ok]) & (y[ok] <= upper[ok])))


def crossing_probability(
    paths: np.ndarray, threshold: float, direction: Literal["above", "below"] = "above"
) -> float:
    """Share of sample paths (n, h) that go strictly above (below) ``threshold`` at least once."""
    if direction not in ("above", "below"):
        raise InputError(
            f"direction must be 'above' or 'below', got {direction!r}", field="direction", value=direction
        )
    paths = np.asarray(paths, dtype=float)
    if paths.ndim != 2 or paths.shape[0] == 0:
        raise InputError("paths must be a non-empty (n, h) array", field="paths", value=list(paths.shape))
    hit = (paths > threshold).any(axis=1) if direction == "above" else (paths < threshold).any(axis=1)
    return float(hit.mean())
