"""The UMAP layout across retrains and for incidents left out of the density clustering.

- `warm_init`: a retrain starts UMAP from the previous layout (known incidents keep their place, new ones start
  at the mean of their 5 nearest known), so patterns and their ids move little.
- `attach_rest`: incidents that were not clustered (they tell no cause) join the pattern whose centre they are
  close enough to, as a new postmortem would, and get a layout position from their nearest clustered ones.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ml.patterns.clustering import PatternClusterer
from ml.patterns.ids import NOISE

__all__ = ["attach_rest", "warm_init"]

logger = logging.getLogger(__name__)


def warm_init(
    X: np.ndarray, ids: list[str], previous: Any, clusterer: PatternClusterer, min_overlap: float
) -> np.ndarray | None:
    """Previous UMAP coordinates for known incidents; new ones at the mean of their 5 nearest known."""
    prev_pos = {iid: i for i, iid in enumerate(previous.incident_ids_)}
    known = np.asarray([iid in prev_pos for iid in ids])
    n_components = min(clusterer.n_components, X.shape[0] - 2)
    if previous.reduced_.shape[1] != n_components:
        logger.info("Dimensionality - previous layout has another dimension; cold start")
        return None
    share = float(known.mean())
    if share < min_overlap:
        logger.info(
            "Dimensionality - only %.0f%% of incidents known to the previous model; cold start",
            100 * share,
        )
        return None
    init = np.zeros((X.shape[0], n_components), dtype=np.float32)
    k_idx = np.flatnonzero(known)
    init[k_idx] = previous.reduced_[[prev_pos[ids[i]] for i in k_idx]]
    new_idx = np.flatnonzero(~known)
    if new_idx.size:
        sims = X[new_idx] @ X[k_idx].T
        k = min(5, k_idx.size)
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        init[new_idx] = init[k_idx[near]].mean(axis=1)
    logger.info("Dimensionality - warm start from the previous layout (%d new incidents)", new_idx.size)
    return init


def attach_rest(
    Z: np.ndarray, fit_rows: np.ndarray, clusterer: PatternClusterer
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, layout and density labels for every incident, when only `fit_rows` were clustered.

    Patterns are mined from the postmortems that tell their cause; one that does not (no root cause, no
    factors: its text is only symptoms) joins the pattern whose centre it is close enough to, as a new
    postmortem would, and stays unclustered otherwise. Left in, such texts gather into one "symptoms"
    pattern that mixes every cause. Their layout position is the mean of their 5 nearest clustered ones.
    """
    n = Z.shape[0]
    labels = np.full(n, NOISE, dtype=np.int64)
    dens = np.full(n, NOISE, dtype=np.int64)
    labels[fit_rows] = clusterer.labels_
    dens[fit_rows] = clusterer.hdbscan_labels_
    reduced = np.zeros((n, clusterer.reduced_.shape[1]), dtype=np.float32)
    reduced[fit_rows] = clusterer.reduced_
    rest = np.flatnonzero(~fit_rows)
    if rest.size:
        labels[rest] = clusterer.predict(Z[rest])[0]
        inner = clusterer.transform(Z[fit_rows])
        sims = clusterer.transform(Z[rest]) @ inner.T
        k = min(5, inner.shape[0])
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        reduced[rest] = clusterer.reduced_[near].mean(axis=1)
        logger.info(
            "Clustering - %d incidents without a stated cause: %d joined a pattern",
            rest.size,
            int((labels[rest] >= 0).sum()),
        )
    return labels, reduced, dens
