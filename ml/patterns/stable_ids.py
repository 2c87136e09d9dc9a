"""Stable pattern ids across retrains: new patterns take the ids of the old ones whose centroids they continue
(optimal one-to-one assignment on cosine similarity, the Hungarian method)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ml.errors import InputError

logger = logging.getLogger(__name__)


@dataclass
class PatternMatch:
    """Result of :func:`match_patterns`.

    `ids[i]` is the id given to new pattern i; `similarity[i]` its cosine to the matched old centroid (NaN
    when it got a fresh id); `fresh` the new ids; `vanished` the old ids no new pattern matched.
    """

    ids: list[int]
    similarity: list[float]
    fresh: list[int] = field(default_factory=list)
    vanished: list[int] = field(default_factory=list)

    @property
    def next_id(self) -> int:
        return max([*self.ids, *self.vanished, -1]) + 1


def match_patterns(
    new_centroids: np.ndarray,
    old_centroids: np.ndarray,
    old_ids: list[int] | np.ndarray,
    min_similarity: float = 0.7,
    next_id: int | None = None,
) -> PatternMatch:
    """Give new patterns the ids of the old ones they continue.

    Optimal one-to-one assignment on centroid cosine similarity; a pair counts only when its similarity is
    at least `min_similarity`. Unmatched new patterns get fresh ids from ``max(old_ids) + 1`` (or `next_id`,
    if larger, so that ids retired in earlier retrains are never reused).
    """
    new = np.asarray(new_centroids, dtype=np.float64)
    old = np.asarray(old_centroids, dtype=np.float64)
    old_ids = [int(i) for i in old_ids]
    if new.ndim != 2 or old.ndim != 2:
        raise InputError("centroids must be 2-D arrays (patterns, dim)", field="new_centroids")
    if old.shape[0] != len(old_ids):
        raise InputError(
            f"old_ids has {len(old_ids)} ids for {old.shape[0]} old centroids",
            field="old_ids",
            value=len(old_ids),
        )
    if len(set(old_ids)) != len(old_ids):
        raise InputError("old_ids contains duplicates", field="old_ids", value=old_ids)
    if old.shape[0] and new.shape[0] and old.shape[1] != new.shape[1]:
        raise InputError(
            f"new centroids have dim {new.shape[1]}, old ones {old.shape[1]}", field="new_centroids"
        )
    if not -1.0 <= min_similarity <= 1.0:
        raise InputError(
            f"min_similarity must be in [-1, 1], got {min_similarity!r}",
            field="min_similarity",
            value=min_similarity,
        )

    def unit(a: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.where(n > 0, n, 1.0)

    k_new = new.shape[0]
    ids: list[int | None] = [None] * k_new
    sim_out = [float("nan")] * k_new
    if k_new and old.shape[0]:
        from scipy.optimize import linear_sum_assignment  # training only: the API never imports it (0.3 s)

        sims = unit(new) @ unit(old).T
        rows, cols = linear_sum_assignment(-sims)
        for r, c in zip(rows, cols, strict=True):
            if sims[r, c] >= min_similarity:
                ids[r] = old_ids[c]
                sim_out[r] = float(sims[r, c])
    start = max([*old_ids, -1]) + 1
    if next_id is not None:
        start = max(start, int(next_id))
    fresh: list[int] = []
    for i in range(k_new):
        if ids[i] is None:
            ids[i] = start
            fresh.append(start)
            start += 1
    matched = {i for i in ids if i is not None}
    vanished = [i for i in old_ids if i not in matched]
    out = PatternMatch(
        ids=[int(i) for i in ids if i is not None], similarity=sim_out, fresh=fresh, vanished=vanished
    )
    logger.info(
        "Labelling - pattern ids: %d kept, %d new, %d vanished", k_new - len(fresh), len(fresh), len(vanished)
    )
    return out
