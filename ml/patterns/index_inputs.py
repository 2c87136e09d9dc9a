"""Input checks of the similar-incident index: parameters, corpus, embeddings, pattern ids, queries and filters.

Each bad value is one :class:`~ml.errors.InputError` naming the field and the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.errors import InputError
from ml.io.schemas import Incident, to_utc
from ml.patterns.ids import UNCLUSTERED_ID
from ml.text.documents import DocumentBuilder

if TYPE_CHECKING:
    from ml.patterns.similarity import SimilarityIndex

FUSIONS: tuple[str, ...] = ("rrf", "zscore")


def check_params(index: SimilarityIndex) -> None:
    """Validate the parameters of an index (at fit and load time): one clear error naming the parameter."""
    if index.fusion not in FUSIONS:
        raise InputError(
            f"fusion must be one of {FUSIONS}, got {index.fusion!r}", field="fusion", value=index.fusion
        )
    checks: list[tuple[str, Any, bool]] = [
        (
            "dense_weight",
            index.dense_weight,
            isinstance(index.dense_weight, int | float) and 0 <= index.dense_weight <= 1,
        ),
        (
            "pattern_weight",
            index.pattern_weight,
            isinstance(index.pattern_weight, int | float) and 0 <= index.pattern_weight <= 1,
        ),
        ("rrf_k", index.rrf_k, isinstance(index.rrf_k, int | float) and index.rrf_k >= 0),
        ("depth", index.depth, isinstance(index.depth, int) and index.depth >= 1),
        ("k1", index.k1, isinstance(index.k1, int | float) and index.k1 >= 0),
        ("b", index.b, isinstance(index.b, int | float) and 0 <= index.b <= 1),
        ("k3", index.k3, isinstance(index.k3, int | float) and index.k3 > 0),
        ("stemming", index.stemming, isinstance(index.stemming, bool)),
        *(
            (
                name,
                getattr(index, name),
                isinstance(getattr(index, name), int | float) and 0 <= getattr(index, name) <= 10,
            )
            for name in ("text_weight", "symptom_weight", "cause_weight")
        ),
        (
            "max_keywords",
            index.max_keywords,
            isinstance(index.max_keywords, int) and index.max_keywords >= 0,
        ),
    ]
    for name, value, ok in checks:
        if not ok or (isinstance(value, bool) and name != "stemming"):
            raise InputError(f"{name} has an invalid value {value!r}", field=name, value=value)


def check_corpus(
    incidents: Sequence[Incident], texts: Sequence[str] | None
) -> tuple[list[Incident], list[str], list[str]]:
    """The incidents, their (unique) ids and their documents (built and redacted when ``texts`` is None)."""
    incidents = list(incidents)
    for i, inc in enumerate(incidents):
        if not isinstance(inc, Incident):
            raise InputError(
                f"incidents[{i}] must be an ml.schemas.Incident, got {type(inc).__name__}",
                field=f"incidents[{i}]",
                value=None,
            )
    n = len(incidents)
    ids = [inc.id for inc in incidents]
    seen_ids: set[str] = set()
    for dup in ids:
        if dup in seen_ids:
            raise InputError(
                f"incident ids must be unique, {dup!r} appears twice", field="incidents", value=dup
            )
        seen_ids.add(dup)
    if texts is None:
        texts = DocumentBuilder().build_many(incidents)
    texts = list(texts)
    if len(texts) != n:
        raise InputError(f"texts has {len(texts)} entries for {n} incidents", field="texts", value=len(texts))
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(
                f"texts[{i}] must be a string, got {type(t).__name__}", field=f"texts[{i}]", value=None
            )
    return incidents, ids, texts


def check_embeddings(embeddings: np.ndarray, n: int) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float32)
    if n == 0 and emb.size == 0:
        dim = emb.shape[1] if emb.ndim == 2 else 0
        return np.zeros((0, dim), dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != n or emb.shape[1] == 0:
        raise InputError(
            f"embeddings must have shape (n_incidents={n}, dim), got {emb.shape}",
            field="embeddings",
            value=emb.shape,
        )
    if not np.all(np.isfinite(emb)):
        row = int(np.flatnonzero(~np.all(np.isfinite(emb), axis=1))[0])
        raise InputError(f"embeddings row {row} has a non-finite value", field="embeddings", value=row)
    norms = np.linalg.norm(emb, axis=1)
    if np.any(norms == 0):
        row = int(np.flatnonzero(norms == 0)[0])
        raise InputError(f"embeddings row {row} is all zeros", field="embeddings", value=row)
    return np.ascontiguousarray(emb / norms[:, None], dtype=np.float32)


def check_pattern_ids(pattern_ids: Sequence[int] | Mapping[str, int] | None, ids: list[str]) -> np.ndarray:
    if pattern_ids is None:
        return np.full(len(ids), UNCLUSTERED_ID, dtype=np.int64)
    if isinstance(pattern_ids, Mapping):
        raw = [pattern_ids.get(i, UNCLUSTERED_ID) for i in ids]
    else:
        raw = (
            list(np.asarray(pattern_ids).tolist())
            if isinstance(pattern_ids, np.ndarray)
            else list(pattern_ids)
        )
        if len(raw) != len(ids):
            raise InputError(
                f"pattern_ids has {len(raw)} entries for {len(ids)} incidents",
                field="pattern_ids",
                value=len(raw),
            )
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < UNCLUSTERED_ID:
            raise InputError(f"pattern ids must be ints >= -1, got {v!r}", field="pattern_ids", value=v)
    return np.asarray(raw, dtype=np.int64).reshape(len(ids))


def check_pattern_names(pattern_names: Mapping[int, str] | None) -> dict[int, str]:
    out: dict[int, str] = {}
    for key, name in (pattern_names or {}).items():
        try:
            pid = int(key)
        except (TypeError, ValueError):
            raise InputError(
                f"pattern_names keys must be ints, got {key!r}", field="pattern_names", value=key
            ) from None
        if not isinstance(name, str):
            raise InputError(
                f"pattern name of {pid} must be a string, got {name!r}", field="pattern_names", value=name
            )
        out[pid] = name
    return out


def check_query_vec(query_vec: np.ndarray | Sequence[float] | None, n: int, dim: int) -> np.ndarray | None:
    """The query vector as float32, L2-normalised; ``None`` stays ``None``."""
    if query_vec is None:
        return None
    try:
        vec = np.asarray(query_vec, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("query_vec must be a vector of numbers", field="query_vec", value=None) from None
    if n and vec.shape[0] != dim:
        raise InputError(
            f"query_vec has {vec.shape[0]} dimensions, the index has {dim}",
            field="query_vec",
            value=vec.shape[0],
        )
    if not np.all(np.isfinite(vec)):
        raise InputError("query_vec has a non-finite value", field="query_vec", value=None)
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        raise InputError("query_vec is all zeros", field="query_vec", value=None)
    return vec / norm


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}", field="k", value=k)
    return int(k)


def as_str_list(value: str | Sequence[str] | None, name: str) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    for v in values:
        if not isinstance(v, str):
            raise InputError(f"{name} must be a string or a list of strings, got {v!r}", field=name, value=v)
    return values


def epoch_seconds(value: dt.date | dt.datetime, name: str) -> int:
    if isinstance(value, dt.datetime):
        return int(to_utc(value).timestamp())
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp())
    raise InputError(f"{name} must be a date or datetime, got {value!r}", field=name, value=value)


def field_codes(values: list[str | None]) -> tuple[dict[str, int], np.ndarray]:
    """A metadata field (service, team) as integer codes per incident (-1: none) and its value-to-code map."""
    vocab: dict[str, int] = {}
    codes = np.full(len(values), -1, dtype=np.int32)
    for i, v in enumerate(values):
        if v is not None:
            codes[i] = vocab.setdefault(v, len(vocab))
    return vocab, codes


def filter_mask(
    fields: Sequence[tuple[str, str | Sequence[str] | None, dict[str, int], np.ndarray]],
    started_at: np.ndarray,
    since: dt.date | dt.datetime | None,
    exclude: int | None,
) -> np.ndarray | None:
    """Incidents passing the filters (``None``: no filter): each field's wanted values, ``since``, and not
    the ``exclude`` position."""
    mask: np.ndarray | None = None
    for name, value, vocab, codes in fields:
        values = as_str_list(value, name)
        if values is None:
            continue
        wanted = [vocab[v] for v in values if v in vocab]
        m = np.isin(codes, np.asarray(wanted, dtype=np.int32)) if wanted else np.zeros(len(codes), dtype=bool)
        mask = m if mask is None else mask & m
    if since is not None:
        m = started_at >= epoch_seconds(since, "since")
        mask = m if mask is None else mask & m
    if exclude is not None:
        if mask is None:
            mask = np.ones(len(started_at), dtype=bool)
        mask[exclude] = False
    return mask
