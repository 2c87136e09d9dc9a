"""Persistence of the similar-incident index: arrays as ``.npy`` and metadata, vocabulary and parameters as
JSON; no pickle. Everything derived (idf, BM25 weights, postings, filter codes) is rebuilt on load."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from ml.errors import InputError
from ml.patterns.index_views import VIEW_NAMES, IndexView
from ml.patterns.lexical import STEMMER, BM25Index, restem

if TYPE_CHECKING:
    from ml.patterns.similarity import SimilarityIndex

log = logging.getLogger(__name__)

FORMAT = "recur.similarity-index/1"
_ARRAYS = ("embeddings", "tf_data", "tf_indices", "tf_indptr", "pattern_ids", "started_at")
_VIEW_ARRAYS = ("embeddings", "present", "tf_data", "tf_indices", "tf_indptr")


def save_index(index: SimilarityIndex, path: str | Path) -> Path:
    """Write ``index`` to folder ``path``: ``.npy`` arrays plus ``index.json``. Returns the folder."""
    index._check_fitted()
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tf = index.term_counts_
    arrays = {
        "embeddings": np.ascontiguousarray(index.embeddings_),
        "tf_data": tf.data.astype(np.int32),
        "tf_indices": tf.indices.astype(np.int32),
        "tf_indptr": tf.indptr.astype(np.int64),
        "pattern_ids": index.pattern_ids_.astype(np.int64),
        "started_at": index.started_at_.astype(np.int64),
    }
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    meta = {
        "format": FORMAT,
        "params": index.get_params(),
        "n_incidents": len(index.ids_),
        "dim": index.dim_,
        "model_id": index.model_id_,
        "incidents": [
            {"id": i, "title": t, "service": s, "team": m}
            for i, t, s, m in zip(index.ids_, index.titles_, index.services_, index.teams_, strict=True)
        ],
        "pattern_names": {str(k): v for k, v in sorted(index.pattern_names_.items())},
        "vocabulary": index.vocabulary_,
        "display": index.display_,
        "stemmer": STEMMER if index.stemming else None,
        "views": {name: _save_view(view, out) for name, view in sorted(index.views_.items())},
    }
    (out / "index.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    log.info("Similarity - saved %d incidents to %s", len(index.ids_), out)
    return out


def _tf_arrays(tf: sparse.csr_matrix) -> dict[str, np.ndarray]:
    return {
        "tf_data": tf.data.astype(np.int32),
        "tf_indices": tf.indices.astype(np.int32),
        "tf_indptr": tf.indptr.astype(np.int64),
    }


def _save_view(view: IndexView, out: Path) -> dict[str, Any]:
    """Write a view's arrays as ``view-<name>-*.npy``; returns its JSON part (vocabulary and display)."""
    arrays = {
        "embeddings": np.ascontiguousarray(view.embeddings),
        "present": view.present.astype(np.bool_),
        **_tf_arrays(view.lexical.term_counts_),
    }
    for name, arr in arrays.items():
        np.save(out / f"view-{view.name}-{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    stemmer = STEMMER if view.lexical.stemming else None
    return {"vocabulary": view.lexical.vocabulary_, "display": view.lexical.display_, "stemmer": stemmer}


def _load_view(index: SimilarityIndex, name: str, meta: Any, folder: Path, n: int, dim: int) -> IndexView:
    """Read a view written by :func:`_save_view`; shapes checked (one error naming the file)."""
    if name not in VIEW_NAMES or not isinstance(meta, dict):
        raise InputError(
            f"similarity index in {folder} has an unknown view {name!r}", field="views", value=name
        )
    arrays: dict[str, np.ndarray] = {}
    for part in _VIEW_ARRAYS:
        f = folder / f"view-{name}-{part}.npy"
        if not f.is_file():
            raise InputError(f"similarity index file {f} is missing", field="path", value=str(f))
        arrays[part] = np.load(f, allow_pickle=False)
    vocabulary, display = list(meta.get("vocabulary", ())), list(meta.get("display", ()))
    ok = (
        arrays["embeddings"].shape == (n, dim)
        and arrays["present"].shape == (n,)
        and arrays["tf_indptr"].shape == (n + 1,)
        and arrays["tf_data"].shape == arrays["tf_indices"].shape
        and len(display) == len(vocabulary)
    )
    if not ok:
        raise InputError(
            f"view {name} of the similarity index in {folder} is inconsistent",
            field="path",
            value=str(folder),
        )
    tf = sparse.csr_matrix(
        (arrays["tf_data"], arrays["tf_indices"], arrays["tf_indptr"]), shape=(n, len(vocabulary))
    )
    if index.stemming and meta.get("stemmer") != STEMMER:
        tf, vocabulary, display = restem(tf, vocabulary, display)
    lexical = BM25Index(index.k1, index.b, index.k3, index.stemming).set_state(tf, vocabulary, display)
    emb = arrays["embeddings"].astype(np.float32, copy=False)
    return IndexView(name, np.ascontiguousarray(emb.T), lexical, arrays["present"].astype(bool))


def load_index(cls: type[SimilarityIndex], path: str | Path) -> SimilarityIndex:
    """Read an index written by :func:`save_index` (re-stemming one saved with another stemmer)."""
    folder = Path(path)
    meta_file = folder / "index.json"
    if not meta_file.is_file():
        raise InputError(
            f"no similarity index in {folder} (index.json missing)", field="path", value=str(folder)
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{meta_file} is not valid JSON: {exc}", field="path", value=str(meta_file)
        ) from None
    if meta.get("format") != FORMAT:
        raise InputError(
            f"{meta_file} has format {meta.get('format')!r}, expected {FORMAT!r}",
            field="format",
            value=meta.get("format"),
        )
    arrays: dict[str, np.ndarray] = {}
    for name in _ARRAYS:
        f = folder / f"{name}.npy"
        if not f.is_file():
            raise InputError(f"similarity index file {f} is missing", field="path", value=str(f))
        arrays[name] = np.load(f, allow_pickle=False)
    n = int(meta["n_incidents"])
    records = meta["incidents"]
    vocabulary = list(meta["vocabulary"])
    emb = arrays["embeddings"].astype(np.float32, copy=False)
    consistent = (
        len(records) == n
        and emb.shape == (n, int(meta["dim"]))
        and arrays["tf_indptr"].shape == (n + 1,)
        and arrays["pattern_ids"].shape == (n,)
        and arrays["started_at"].shape == (n,)
        and arrays["tf_data"].shape == arrays["tf_indices"].shape
        and len(meta.get("display", ())) == len(vocabulary)
    )
    if not consistent:
        raise InputError(
            f"similarity index in {folder} is inconsistent (array shapes)",
            field="path",
            value=str(folder),
        )
    tf = sparse.csr_matrix(
        (arrays["tf_data"], arrays["tf_indices"], arrays["tf_indptr"]), shape=(n, len(vocabulary))
    )
    index = cls(**meta["params"])
    index._check_params()
    display = list(meta["display"])
    if index.stemming and meta.get("stemmer") != STEMMER:
        tf, vocabulary, display = restem(tf, vocabulary, display)
    lexical = BM25Index(index.k1, index.b, index.k3, index.stemming).set_state(tf, vocabulary, display)
    index._set_state(
        ids=[r["id"] for r in records],
        titles=[r["title"] for r in records],
        services=[r["service"] for r in records],
        teams=[r["team"] for r in records],
        started=arrays["started_at"].astype(np.int64),
        embeddings=np.ascontiguousarray(emb),
        lexical=lexical,
        pattern_ids=arrays["pattern_ids"].astype(np.int64),
        pattern_names={int(k): v for k, v in meta["pattern_names"].items()},
        model_id=meta.get("model_id"),
        views={
            name: _load_view(index, name, v, folder, n, int(meta["dim"]))
            for name, v in (meta.get("views") or {}).items()
        },
    )
    log.info("Similarity - loaded %d incidents from %s", n, folder)
    return index
