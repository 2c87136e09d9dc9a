"""Saving and loading a fitted pattern model: ``.npy`` arrays (``allow_pickle=False``) and JSON, no pickle.

The folder holds the clustering-space arrays (centroids, mean, components, thresholds, layout), the stable ids,
the patterns, the fitted stages' JSON (view, template sentences, features, clusterer, labeller) and the
granularity search. ``model.json`` carries a format version; a folder of another version is refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import InputError
from ml.patterns.clustering import PatternClusterer
from ml.patterns.features import HybridFeatures
from ml.patterns.granularity import GranularitySearch
from ml.patterns.labelling import PatternLabeller
from ml.patterns.pattern import Pattern
from ml.patterns.views import RootCauseView
from ml.text.boilerplate import BoilerplateFilter
from ml.text.documents import DocumentBuilder
from ml.text.embedding import DEFAULT_MODEL_ID, Embedder

__all__ = ["FORMAT", "read_model", "write_model"]

logger = logging.getLogger(__name__)

FORMAT = "recur.patterns/2"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=True) + "\n")


def _builder_params(builder: Any) -> dict[str, Any]:
    if isinstance(builder, RootCauseView):
        return builder.get_params()
    return {
        "fields": list(builder.fields),
        "strip_html": builder.strip_html,
        "mask_entities": builder.mask_entities,
    }


def write_model(model: Any, out: Path) -> Path:
    """Write a fitted :class:`~ml.patterns.model.PatternModel` to folder `out`: ``.npy`` arrays and JSON."""
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "centroids": model.centroids_.astype(np.float32),
        "embedding_centroids": model.embedding_centroids_.astype(np.float32),
        "mean": model.mean_.astype(np.float32),
        "components": model.components_.astype(np.float32),
        "pattern_ids": model.pattern_ids_.astype(np.int64),
        "thresholds": model.thresholds_.astype(np.float32),
        "reduced": model.reduced_.astype(np.float32),
        "labels": model.labels_.astype(np.int64),
    }
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", arr, allow_pickle=False)
    model.features_.to_dir(out / "features")
    _dump(out / "incident_ids.json", model.incident_ids_)
    _dump(out / "patterns.json", [p.to_dict() for p in model.patterns_])
    _dump(out / "assignments.json", model.assignments_)
    _dump(out / "metrics.json", model.metrics_)
    _dump(out / "granularity.json", {"candidates": model.granularity_, "warnings": model.warnings_})
    builder = model.builder_
    _dump(
        out / "model.json",
        {
            "format": FORMAT,
            "embedding_model_id": model.embedding_model_id_,
            "n_features": model.n_features_,
            "n_patterns": len(model.patterns_),
            "next_id": model.next_id_,
            "as_of": model.as_of_,
            "id_changes": model.id_changes_,
            "params": model.get_params(),
            "view": {"kind": type(builder).__name__, "params": _builder_params(builder)},
            "entities": list(getattr(builder, "entities_", [])),
            "label_classes": model.label_classes_,
            "boilerplate": model.boilerplate_.to_dict(),
            "clusterer": model.clusterer_.get_params(),
            "labeller": model.labeller_.get_params(),
        },
    )
    logger.info("Patterns - model written to %s", out)
    return out


def read_model(cls: Any, src: Path, embedder: Embedder | None = None) -> Any:
    """Load a model written by :func:`write_model` as an instance of `cls` (``PatternModel``)."""
    meta_file = src / "model.json"
    if not meta_file.is_file():
        raise InputError(f"{src} holds no pattern model (model.json missing)", field="path", value=str(src))
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise InputError(
            f"{meta_file} has format {meta.get('format')!r}, expected {FORMAT!r}",
            field="format",
            value=meta.get("format"),
        )
    model_id = meta["embedding_model_id"]
    if embedder is None:
        embedder = Embedder() if model_id == DEFAULT_MODEL_ID else Embedder(model_path=model_id)
    lab = dict(meta["labeller"])
    lab["ngram_range"] = tuple(lab["ngram_range"])
    view = meta["view"]
    builder_cls = RootCauseView if view["kind"] == "RootCauseView" else DocumentBuilder
    builder = builder_cls(**view["params"]).set_entities(meta.get("entities", []))
    clu = dict(meta["clusterer"])
    gran = clu.pop("granularity", None)
    if gran is not None:
        gran["k_range"] = tuple(gran["k_range"]) if gran.get("k_range") else None
    model = cls(
        embedder=embedder,
        document_builder=builder,
        clusterer=PatternClusterer(**clu, granularity=GranularitySearch(**gran) if gran else None),
        labeller=PatternLabeller(**lab),
        **meta["params"],
    )
    model.builder_ = builder
    model.boilerplate_ = BoilerplateFilter.from_dict(meta["boilerplate"])
    model.clusterer_ = model.clusterer
    model.labeller_ = model.labeller
    model.features_ = HybridFeatures.from_dir(src / "features")

    def load(name: str) -> np.ndarray:
        return np.asarray(np.load(src / name, allow_pickle=False))

    model.centroids_ = load("centroids.npy")
    model.embedding_centroids_ = load("embedding_centroids.npy")
    model.mean_ = load("mean.npy")
    model.components_ = load("components.npy")
    model.pattern_ids_ = load("pattern_ids.npy")
    model.thresholds_ = load("thresholds.npy")
    model.reduced_ = load("reduced.npy")
    model.labels_ = load("labels.npy")
    model.incident_ids_ = json.loads((src / "incident_ids.json").read_text())
    model.patterns_ = [Pattern.from_dict(d) for d in json.loads((src / "patterns.json").read_text())]
    model.assignments_ = {k: int(v) for k, v in json.loads((src / "assignments.json").read_text()).items()}
    model.metrics_ = json.loads((src / "metrics.json").read_text())
    gran_file = src / "granularity.json"
    gran_meta = json.loads(gran_file.read_text()) if gran_file.is_file() else {}
    model.granularity_ = gran_meta.get("candidates", [])
    model.warnings_ = gran_meta.get("warnings", [])
    model.label_classes_ = list(meta.get("label_classes", []))
    model.n_features_ = int(meta["n_features"])
    model.next_id_ = int(meta["next_id"])
    model.embedding_model_id_ = model_id
    model.as_of_ = meta["as_of"]
    model.id_changes_ = meta.get("id_changes", {})
    k, dim = (
        len(model.pattern_ids_),
        model.features_.n_dense_
        + (model.features_.lexical_.dim if model.features_.lexical_ is not None else 0),
    )
    if model.centroids_.shape != (k, dim) or model.embedding_centroids_.shape != (k, model.n_features_):
        raise InputError(
            f"{src}: centroids.npy has shape {model.centroids_.shape}, expected ({k}, {dim})",
            field="centroids",
        )
    return model
