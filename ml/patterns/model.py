"""Failure-pattern mining: the pipeline that turns incidents into named, trending, stable patterns.

Stages (each swappable, each a small estimator):

1. `DocumentBuilder` - the redacted text of each incident;
2. `Embedder` - MiniLM sentence vectors (with an on-disk cache, so a retrain embeds only new texts);
3. `PatternClusterer` - UMAP (cosine) + HDBSCAN, warm-started from the previous model on a retrain;
4. `PatternLabeller` - c-TF-IDF keywords, representative incidents, names;
5. `match_patterns` - ids kept stable across retrains; plus a trend per pattern over the last 6 months.

`PatternModel.to_dir` / `from_dir` save and load it as ``.npy`` arrays and JSON (no pickle).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import InputError, NotFittedError, NotFoundError
from ml.io.schemas import Incident, to_utc
from ml.patterns.clustering import (
    PatternClusterer,
    centroids_of,
    clustering_metrics,
    isotropic_transform,
    l2_normalize,
    predict_nearest,
)
from ml.patterns.features import HybridFeatures
from ml.patterns.ids import NOISE, ONE_OFF
from ml.patterns.index_views import view_inputs, weighted_views
from ml.patterns.labelling import PatternLabeller, match_patterns, name_texts
from ml.patterns.layout import attach_rest, warm_init
from ml.patterns.pattern import Pattern
from ml.patterns.persistence import FORMAT, read_model, write_model
from ml.patterns.similarity import SimilarityIndex
from ml.patterns.trends import Trend, pattern_trend
from ml.patterns.views import RootCauseView
from ml.text.boilerplate import BoilerplateFilter
from ml.text.documents import DocumentBuilder
from ml.text.embedding import DEFAULT_MODEL_ID, Embedder
from ml.text.entities import EntityMasker

__all__ = ["FORMAT", "Pattern", "PatternModel", "Trend", "pattern_trend", "split_labels"]

logger = logging.getLogger(__name__)


# --- patterns ---------------------------------------------------------------------------------------------
class PatternModel:
    """Mines failure patterns from incidents.

    Parameters
    ----------
    embedder, document_builder, boilerplate, features, clusterer, labeller:
        The stages; ``None`` uses the default one. The default document is the root-cause view
        (:class:`~ml.patterns.views.RootCauseView`) without its template sentences
        (:class:`~ml.text.boilerplate.BoilerplateFilter`), the default features join MiniLM vectors with a reduced
        TF-IDF (:class:`~ml.patterns.features.HybridFeatures`), the default clusterer chooses its granularity
        from the data (``min_cluster_size="auto"``). Stages passed in are copied before fitting, never
        changed.
    min_similarity:
        Cosine between pattern centres (sentence vectors, centred) at or above which a new pattern keeps the
        id of an old one (see `match_patterns`).
    trend_periods, trend_period_days, trend_alpha:
        Trend window (6 periods of 30 days) and significance level.
    warm_start_min_overlap:
        On a retrain, UMAP starts from the previous layout when at least this share of the incidents was
        in the previous model.
    use_labels:
        Use the analyst labels (``root_cause_category``) that incidents carry to guide the layout and the
        choice of granularity. Labels meant for evaluation must be removed from the incidents passed to
        `fit` (see :func:`split_labels`).
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        document_builder: Any | None = None,
        clusterer: PatternClusterer | None = None,
        labeller: PatternLabeller | None = None,
        features: HybridFeatures | None = None,
        boilerplate: BoilerplateFilter | None = None,
        min_similarity: float = 0.7,
        trend_periods: int = 6,
        trend_period_days: int = 30,
        trend_alpha: float = 0.05,
        warm_start_min_overlap: float = 0.5,
        use_labels: bool = True,
    ) -> None:
        self.embedder = embedder
        self.document_builder = document_builder
        self.clusterer = clusterer
        self.labeller = labeller
        self.features = features
        self.boilerplate = boilerplate
        self.min_similarity = min_similarity
        self.trend_periods = trend_periods
        self.trend_period_days = trend_period_days
        self.trend_alpha = trend_alpha
        self.warm_start_min_overlap = warm_start_min_overlap
        self.use_labels = use_labels

    # -- stages (copies of the parameters, or the defaults) ----------------------------------------------
    def _new_builder(self) -> Any:
        return copy.deepcopy(self.document_builder) if self.document_builder is not None else RootCauseView()

    def _new_clusterer(self) -> PatternClusterer:
        if self.clusterer is not None:
            return copy.deepcopy(self.clusterer)
        return PatternClusterer(min_cluster_size="auto", outlier_threshold="auto")

    def _new_labeller(self) -> PatternLabeller:
        return copy.deepcopy(self.labeller) if self.labeller is not None else PatternLabeller()

    def _new_boilerplate(self) -> BoilerplateFilter:
        return copy.deepcopy(self.boilerplate) if self.boilerplate is not None else BoilerplateFilter()

    def _new_features(self) -> HybridFeatures:
        return copy.deepcopy(self.features) if self.features is not None else HybridFeatures()

    @property
    def embedder_(self) -> Embedder:
        """The embedding stage in use (the parameter, or the default model loaded once)."""
        if self.embedder is not None:
            return self.embedder
        if getattr(self, "_default_embedder", None) is None:
            self._default_embedder = Embedder()
        return self._default_embedder

    # -- fit -------------------------------------------------------------------------------------------
    def fit(
        self,
        incidents: list[Incident],
        embeddings: np.ndarray | None = None,
        previous: PatternModel | None = None,
        as_of: dt.datetime | None = None,
    ) -> PatternModel:
        """Mine patterns from `incidents`.

        `embeddings` (n, dim) skips the embedding stage: the vectors of this model's documents (the
        root-cause view by default; :meth:`documents` gives them), from the same model as later `assign`
        calls. `previous` (a fitted model) keeps pattern ids stable and warm-starts UMAP. `as_of` is the end
        of the trend window (default: the latest incident start). Analyst labels (``root_cause_category``)
        guide the layout when `use_labels` is on.
        Sets ``patterns_``, ``assignments_`` (incident id -> pattern id or -1), ``metrics_``.
        """
        t_start = time.perf_counter()
        incidents = self._check_incidents(incidents, previous)
        ids = [inc.id for inc in incidents]
        timings: dict[str, float] = {}

        t0 = time.perf_counter()
        self.builder_ = self._new_builder().fit(incidents)
        self.boilerplate_ = self._new_boilerplate().fit(
            self.builder_.build_many(incidents), names=_names(incidents)
        )
        docs = self.documents(incidents)
        dense, model_id = self._dense(docs, embeddings)
        # the prepared corpus, kept for the caller (quality gate, similarity index): built and embedded once
        self.documents_, self.vectors_ = docs, dense
        if previous is not None and previous.n_features_ != dense.shape[1]:
            raise InputError(
                f"previous model has {previous.n_features_}-d embeddings, these are {dense.shape[1]}-d",
                field="previous",
            )
        self.features_ = self._new_features().fit(docs, dense)
        Z = self.features_.transform(docs, dense)
        timings["embed_s"] = time.perf_counter() - t0

        y, self.label_classes_ = self._guidance(incidents)
        clusterer = self._new_clusterer()
        init = (
            warm_init(Z, ids, previous, clusterer, self.warm_start_min_overlap)
            if previous is not None
            else None
        )
        t0 = time.perf_counter()
        told = self._told_causes(incidents)
        fit_rows = told if told.sum() >= max(10, 0.5 * len(incidents)) else np.ones(len(incidents), bool)
        clusterer.fit(
            Z[fit_rows],
            y=y[fit_rows] if y is not None else None,
            init=init[fit_rows] if init is not None else None,
        )
        self.clusterer_ = clusterer
        labels, self.reduced_, self.hdbscan_labels_ = attach_rest(Z, fit_rows, clusterer)
        timings["cluster_s"] = time.perf_counter() - t0
        centroids = clusterer.centroids_.copy()
        # sentence-vector centres, kept so that a later retrain (whose lexical basis and centring differ)
        # can match pattern ids in a space that does not change between retrains
        embedding_centroids = centroids_of(dense, labels)

        t0 = time.perf_counter()
        raw_docs = self.builder_.build_many(incidents)
        roots = name_texts(incidents, prepare=self.builder_.build_text)
        # services and teams only: tags often hold cause words ("config", "dns") that names need
        owners = sorted({n for inc in incidents for n in (inc.service, inc.team) if n})
        self.labeller_ = self._new_labeller().fit(
            raw_docs,
            labels,
            embeddings=clusterer.transform(Z),
            centroids=centroids,
            name_texts=roots,
            entities=EntityMasker().fit(raw_docs + roots, names=owners),
            boilerplate=self.boilerplate_,
        )
        timings["label_s"] = time.perf_counter() - t0

        pattern_ids, id_changes, next_id = self._stable_ids(dense, embedding_centroids, previous)
        starts = [inc.started_at for inc in incidents]
        as_of_ = to_utc(as_of) if as_of is not None else max(starts)
        patterns = self._describe(labels, pattern_ids, ids, starts, as_of_)

        label_to_id = {c: int(pattern_ids[c]) for c in range(centroids.shape[0])}
        self.incident_ids_ = ids
        self.labels_ = np.asarray([label_to_id.get(int(lab), NOISE) for lab in labels], dtype=np.int64)
        self.assignments_ = dict(zip(ids, self.labels_.tolist(), strict=True))
        self.patterns_ = sorted(patterns, key=lambda p: (-p.size, p.id))
        self.centroids_ = centroids
        self.embedding_centroids_ = embedding_centroids
        self.mean_ = clusterer.mean_.copy()
        self.components_ = clusterer.components_.copy()
        self.pattern_ids_ = pattern_ids
        self.thresholds_ = clusterer.thresholds_.copy()
        self.n_features_: int = int(dense.shape[1])
        self.next_id_ = int(next_id)
        self.embedding_model_id_ = model_id
        self.as_of_ = as_of_.isoformat()
        self.granularity_ = [c.to_dict() for c in clusterer.search_.candidates_] if clusterer.search_ else []
        self.warnings_ = list(clusterer.search_.warnings_) if clusterer.search_ else []
        self.id_changes_ = id_changes
        self.metrics_ = self._metrics(incidents, labels, clusterer, init is not None, id_changes, patterns)
        self.metrics_.update({**timings, "total_s": time.perf_counter() - t_start})
        for w in self.warnings_:
            logger.warning("Patterns - %s", w)
        logger.info(
            "Patterns - %d patterns over %d incidents (%.1f%% unclustered) in %.1fs",
            len(patterns),
            len(incidents),
            100.0 * self.metrics_["noise_fraction"],
            self.metrics_["total_s"],
        )
        return self

    def documents(self, incidents: list[Incident]) -> list[str]:
        """The documents this model embeds for `incidents` (the view, template sentences removed): built by
        the fitted stages once the model is fitted (as :meth:`assign` builds them), else by stages fitted on
        `incidents` (as :meth:`fit` will)."""
        if hasattr(self, "builder_") and hasattr(self, "boilerplate_"):
            return self.boilerplate_.transform(self.builder_.build_many(incidents))
        raw = self._new_builder().fit(incidents).build_many(incidents)
        return self._new_boilerplate().fit(raw, names=_names(incidents)).transform(raw)

    def _check_incidents(self, incidents: list[Incident], previous: PatternModel | None) -> list[Incident]:
        incidents = list(incidents)
        if not incidents:
            raise InputError("incidents is empty", field="incidents", value=0)
        for i, inc in enumerate(incidents):
            if not isinstance(inc, Incident):
                raise InputError(
                    f"incidents[{i}] must be an ml.io.schemas.Incident, got {type(inc).__name__}",
                    field=f"incidents[{i}]",
                )
        ids = [inc.id for inc in incidents]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InputError(f"incident id {dup!r} appears more than once", field="id", value=dup)
        if previous is not None:
            previous._check_fitted()
        if not 0.0 <= self.warm_start_min_overlap <= 1.0:
            raise InputError(
                f"warm_start_min_overlap must be in [0, 1], got {self.warm_start_min_overlap!r}",
                field="warm_start_min_overlap",
                value=self.warm_start_min_overlap,
            )
        return incidents

    def _dense(self, docs: list[str], embeddings: np.ndarray | None) -> tuple[np.ndarray, str]:
        if embeddings is None:
            embedder = self.embedder_
            X = embedder.encode(docs)
            logger.info("Embedding - %d incidents embedded with %s", len(docs), embedder.model_id)
            return l2_normalize(X), embedder.model_id
        X = np.asarray(embeddings, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] != len(docs) or not np.all(np.isfinite(X)):
            raise InputError(
                f"embeddings must be a finite array of shape ({len(docs)}, dim), got {X.shape}",
                field="embeddings",
                value=X.shape,
            )
        model_id = self.embedder.model_id if self.embedder is not None else DEFAULT_MODEL_ID
        return l2_normalize(X), model_id

    def _told_causes(self, incidents: list[Incident]) -> np.ndarray:
        """Which incidents tell their cause (all, when the view has no notion of it)."""
        has_cause = getattr(self.builder_, "has_cause", None)
        if has_cause is None:
            return np.ones(len(incidents), dtype=bool)
        return np.asarray([bool(has_cause(inc)) for inc in incidents], dtype=bool)

    def _guidance(self, incidents: list[Incident]) -> tuple[np.ndarray | None, list[str]]:
        """Analyst labels as integers (-1: none), when `use_labels` and at least two classes are given."""
        cats = [getattr(inc, "root_cause_category", None) for inc in incidents]
        classes = sorted({c for c in cats if c and c != ONE_OFF})
        if not self.use_labels or len(classes) < 2:
            return None, []
        index = {c: i for i, c in enumerate(classes)}
        y = np.asarray([index.get(c, -1) if c else -1 for c in cats], dtype=np.int64)
        logger.info(
            "Patterns - %d incidents carry analyst labels (%d classes)", int((y >= 0).sum()), len(classes)
        )
        return y, classes

    def _stable_ids(
        self, dense: np.ndarray, embedding_centroids: np.ndarray, previous: PatternModel | None
    ) -> tuple[np.ndarray, dict[str, Any], int]:
        """Pattern ids: matched to the previous model's when their centres agree, fresh ones otherwise."""
        k = embedding_centroids.shape[0]
        if previous is not None and previous.embedding_centroids_.shape[0] and k:
            # compare centres with the genre component removed: raw MiniLM cosines between unrelated
            # postmortem topics are often above 0.8
            mean = dense.mean(axis=0)
            empty = np.zeros((0, dense.shape[1]), dtype=np.float32)
            match = match_patterns(
                isotropic_transform(embedding_centroids, mean, empty),
                isotropic_transform(previous.embedding_centroids_, mean, empty),
                previous.pattern_ids_.tolist(),
                min_similarity=self.min_similarity,
                next_id=previous.next_id_,
            )
            changes = {
                "kept": len(match.ids) - len(match.fresh),
                "fresh": match.fresh,
                "vanished": match.vanished,
            }
            return np.asarray(match.ids, dtype=np.int64), changes, max(previous.next_id_, match.next_id)
        start = previous.next_id_ if previous is not None else 0
        pattern_ids = np.arange(start, start + k, dtype=np.int64)
        vanished = previous.pattern_ids_.tolist() if previous is not None else []
        return pattern_ids, {"kept": 0, "fresh": pattern_ids.tolist(), "vanished": vanished}, int(start + k)

    def _describe(
        self,
        labels: np.ndarray,
        pattern_ids: np.ndarray,
        ids: list[str],
        starts: list[dt.datetime],
        as_of: dt.datetime,
    ) -> list[Pattern]:
        labeller = self.labeller_
        patterns: list[Pattern] = []
        for c in range(pattern_ids.size):
            members = np.flatnonzero(labels == c)
            member_starts = [starts[i] for i in members]
            trend = pattern_trend(
                member_starts, as_of, self.trend_periods, self.trend_period_days, self.trend_alpha
            )
            kw = labeller.keywords_.get(c, [])
            patterns.append(
                Pattern(
                    id=int(pattern_ids[c]),
                    name=labeller.names_[c],
                    keywords=[t for t, _ in kw],
                    keyword_scores=[round(s, 6) for _, s in kw],
                    size=int(members.size),
                    representative_ids=[ids[i] for i in labeller.representatives_.get(c, [])],
                    trend=trend.to_dict(),
                    first_seen=min(member_starts).isoformat() if member_starts else None,
                    last_seen=max(member_starts).isoformat() if member_starts else None,
                )
            )
        return patterns

    def _metrics(
        self,
        incidents: list[Incident],
        labels: np.ndarray,
        clusterer: PatternClusterer,
        warm: bool,
        id_changes: dict[str, Any],
        patterns: list[Pattern],
    ) -> dict[str, float]:
        truth = [inc.pattern for inc in incidents]
        metrics = clustering_metrics(labels, random_state=0)
        # silhouette and DBCV describe the density clustering itself (before outlier reduction)
        dens = clustering_metrics(self.hdbscan_labels_, self.reduced_, random_state=0)
        metrics["noise_fraction_hdbscan"] = dens["noise_fraction"]
        metrics.update({k: dens[k] for k in ("silhouette", "dbcv") if k in dens})
        sizes = np.bincount(labels[labels >= 0]) if np.any(labels >= 0) else np.zeros(1)
        metrics["largest_share"] = float(sizes.max() / max(len(labels), 1))
        if any(t is not None for t in truth):
            sel = np.asarray([t is not None for t in truth])
            t_sel = [t for t in truth if t is not None]
            m = clustering_metrics(
                labels[sel], true_labels=t_sel, mask=np.asarray([t != ONE_OFF for t in t_sel])
            )
            metrics.update(
                {k: v for k, v in m.items() if k.startswith(("ari", "nmi", "noise_fraction_masked"))}
            )
        metrics.update(
            {
                "n_incidents": float(len(incidents)),
                "warm_start": float(warm),
                "ids_kept": float(id_changes["kept"]),
                "ids_fresh": float(len(id_changes["fresh"])),
                "ids_vanished": float(len(id_changes["vanished"])),
                "n_rising": float(sum(p.trend["direction"] == "rising" for p in patterns)),
                "n_falling": float(sum(p.trend["direction"] == "falling" for p in patterns)),
                "min_cluster_size": float(clusterer.min_cluster_size_),
                "min_samples": float(clusterer.min_samples_),
                "leaf_selection": float(clusterer.cluster_selection_method_ == "leaf"),
                "n_dense_groups": float(getattr(clusterer, "n_dense_groups_", 0)),
                "n_labelled": float(sum(1 for inc in incidents if getattr(inc, "root_cause_category", None))),
            }
        )
        return metrics

    # -- use -------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise NotFittedError(
                "PatternModel is not fitted; call fit(incidents) or PatternModel.from_dir(path)"
            )

    @property
    def patterns(self) -> list[Pattern]:
        self._check_fitted()
        return self.patterns_

    def pattern(self, pattern_id: int) -> Pattern:
        """The pattern with this id (raises NotFoundError)."""
        self._check_fitted()
        for p in self.patterns_:
            if p.id == pattern_id:
                return p
        raise NotFoundError(f"no pattern with id {pattern_id!r}", field="pattern_id", value=pattern_id)

    def prepare_text(self, text: str) -> str:
        """A free text (a responder's query) prepared as the model's documents are (redacted, names masked,
        template sentences removed)."""
        self._check_fitted()
        return self.boilerplate_.transform_one(str(self.builder_.build_text(text)))

    def assign(
        self, items: list[str] | list[Incident] | np.ndarray, docs: list[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pattern ids (-1: unclustered) and confidences (cosine to the pattern centre) for new items.

        `items` is a list of incidents, a list of texts (prepared here), or an array of sentence vectors
        (n, dim) of prepared documents `docs` (needed for the lexical side; without them it counts as
        empty, and the vectors alone decide).
        """
        self._check_fitted()
        if isinstance(items, np.ndarray):
            X = np.asarray(items, dtype=np.float32)
            if X.ndim != 2 or X.shape[1] != self.n_features_:
                raise InputError(
                    f"embeddings must have shape (n, {self.n_features_}), got {X.shape}",
                    field="items",
                    value=X.shape,
                )
            if docs is not None and len(docs) != X.shape[0]:
                raise InputError(f"docs must have {X.shape[0]} texts, got {len(docs)}", field="docs")
            texts = list(docs) if docs is not None else [""] * X.shape[0]
        else:
            if isinstance(items, str) or not isinstance(items, (list, tuple)):
                raise InputError(
                    f"items must be a list of texts or incidents, or an array, got {type(items).__name__}",
                    field="items",
                )
            if not items:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if all(isinstance(i, Incident) for i in items):
                texts = self.documents(items)  # type: ignore[arg-type]
            elif all(isinstance(i, str) for i in items):
                texts = [self.prepare_text(t) for t in items]  # type: ignore[arg-type]
            else:
                raise InputError("items must be all texts or all incidents", field="items")
            embedder = self.embedder_
            if embedder.model_id != self.embedding_model_id_:
                raise InputError(
                    f"the embedder is {embedder.model_id!r} but the model was fitted with {self.embedding_model_id_!r}",
                    field="embedder",
                    value=embedder.model_id,
                )
            X = embedder.encode(texts)
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if not np.all(np.isfinite(X)):
            raise InputError("embeddings contain NaN or infinite values", field="items")
        Z = self.features_.transform(texts, l2_normalize(X))
        Z = isotropic_transform(Z, self.mean_, self.components_)
        labels, conf = predict_nearest(Z, self.centroids_, self.thresholds_)
        if self.pattern_ids_.size == 0:
            return np.full(labels.shape, NOISE, dtype=np.int64), conf
        ids = np.where(labels >= 0, self.pattern_ids_[np.maximum(labels, 0)], NOISE).astype(np.int64)
        return ids, conf

    # -- similar incidents ------------------------------------------------------------------------------
    def index_builder(self, incidents: list[Incident]) -> DocumentBuilder:
        """The document builder of the similar-incident index's dense side: the whole text (title, summary,
        root cause, factors) with service names masked, fitted on `incidents`."""
        return DocumentBuilder(mask_entities=True).fit(incidents)

    def similarity_index(
        self,
        incidents: list[Incident],
        embeddings: np.ndarray | None = None,
        views: tuple[str, ...] | None = None,
        **params: Any,
    ) -> SimilarityIndex:
        """The similar-incident index over the incidents this model was fitted on.

        Dense side: sentence vectors of the whole text with service names masked (:meth:`index_builder`;
        ``embeddings`` when given, else from the embedder and its cache). Lexical side: BM25 over the full
        redacted text, service names kept (they matter to a responder). Pattern ids and names come from the
        model. ``params`` go to :class:`SimilarityIndex`. ``views``: the views to index too (symptoms, cause;
        :mod:`ml.patterns.index_views`); ``None``: those the index weighs (weight above 0).
        """
        self._check_fitted()
        builder = self.index_builder(incidents)
        embedder = self.embedder_
        X = embeddings if embeddings is not None else embedder.encode(builder.build_many(incidents))
        views = weighted_views({**SimilarityIndex().get_params(), **params}) if views is None else views
        has_cause = getattr(
            self.builder_, "has_cause", lambda i: bool(i.root_cause or i.contributing_factors)
        )
        fitted_on = getattr(self, "documents_", None) is not None and self.incident_ids_ == [
            i.id for i in incidents
        ]
        docs = (lambda: list(self.documents_)) if fitted_on else (lambda: self.documents(incidents))
        inputs = view_inputs(incidents, views, embedder.encode, docs, has_cause)
        return SimilarityIndex.build(
            incidents,
            DocumentBuilder(fields=builder.fields, strip_html=builder.strip_html).build_many(incidents),
            X,
            pattern_ids=self.assignments_,
            pattern_names={p.id: p.name for p in self.patterns_},
            model_id=embedder.model_id,
            views=inputs,
            **params,
        )

    # -- persistence ----------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            "min_similarity": self.min_similarity,
            "trend_periods": self.trend_periods,
            "trend_period_days": self.trend_period_days,
            "trend_alpha": self.trend_alpha,
            "warm_start_min_overlap": self.warm_start_min_overlap,
            "use_labels": self.use_labels,
        }

    def to_dir(self, path: str | Path) -> Path:
        """Write the fitted model to folder `path`: ``.npy`` arrays and JSON (no pickle). Returns the path."""
        self._check_fitted()
        return write_model(self, Path(path))

    @classmethod
    def from_dir(cls, path: str | Path, embedder: Embedder | None = None) -> PatternModel:
        """Load a model written by :meth:`to_dir`. `embedder` must be the model's embedding model."""
        model: PatternModel = read_model(cls, Path(path), embedder)
        return model


def _names(incidents: list[Incident]) -> list[str]:
    """Service, team and tag names of the incidents (masked in template-sentence keys)."""
    return sorted({n for inc in incidents for n in (inc.service, inc.team, *inc.tags) if n})


def split_labels(
    incidents: list[Incident], held_out: float = 0.3, seed: int = 0
) -> tuple[list[Incident], list[Incident]]:
    """Hide the analyst labels of a seeded `held_out` share of the labelled incidents, for an honest score.

    Returns ``(for_fit, held)``: every incident, with the held-out ones' ``root_cause_category`` removed
    (fit on these), and the held-out incidents with their labels (score on these only).
    """
    if not 0.0 < held_out < 1.0:
        raise InputError(f"held_out must be in (0, 1), got {held_out!r}", field="held_out", value=held_out)
    labelled = [i for i, inc in enumerate(incidents) if getattr(inc, "root_cause_category", None)]
    rng = np.random.default_rng(seed)
    n_held = int(round(held_out * len(labelled)))
    held_idx = set(rng.choice(labelled, n_held, replace=False).tolist()) if n_held else set()
    for_fit = [
        inc.model_copy(update={"root_cause_category": None}) if i in held_idx else inc
        for i, inc in enumerate(incidents)
    ]
    return for_fit, [incidents[i] for i in sorted(held_idx)]
