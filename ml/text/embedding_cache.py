"""The on-disk embedding cache: sha256(model, runtime, chunking, text) -> vector, as ``.npy`` shards and a JSON
index (no pickle), so a retrain only embeds new or changed texts."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingCache"]


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
        keys, rows = [], []
        for k in sorted(index):
            try:
                rows.append(np.asarray(self._shard(index[k][0])[index[k][1]], dtype=np.float32))
            except (OSError, ValueError, IndexError):  # another process compacted that shard away
                continue  # the vector is embedded again when next needed
            keys.append(k)
        if not rows:
            self._index = {}
            self._write_index(self._index)
            return
        vecs = np.stack(rows)
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
