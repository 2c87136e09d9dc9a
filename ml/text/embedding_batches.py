"""Concurrent uncached queries coalesced into batched model calls by one worker thread (the API's cold path)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from ml.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingBatcher"]


class EmbeddingBatcher:
    """Coalesces concurrent one-text embedding requests into batched model calls.

    A server embeds each uncached query alone; when several arrive together they would queue behind the
    embedder's lock and run one model call each. Here callers (threads) queue their text and wait; one worker
    thread takes everything queued (up to ``max_batch``) and embeds it in one :meth:`Embedder.encode` call. With
    MiniLM on 2 cores a batch of 16 costs about 17 ms per text against 29 ms one by one. A lone request waits for
    no one: the worker starts on whatever is queued as soon as it is free. The worker exits after ``idle_s``
    without work (and starts again on the next request), so a replaced model is not kept alive by it.
    """

    def __init__(self, encode: Any, max_batch: int = 32, idle_s: float = 30.0, workers: int = 1) -> None:
        if not callable(encode):
            raise InputError("encode must be callable (texts -> array)", field="encode")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise InputError(f"max_batch must be a positive integer, got {max_batch!r}", field="max_batch")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InputError(f"workers must be a positive integer, got {workers!r}", field="workers")
        self._encode = encode
        self.max_batch = max_batch
        self.workers = workers
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
                for k in range(self.workers):
                    threading.Thread(
                        target=self._run, args=(self._queue,), name=f"recur-embed-{k}", daemon=True
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
                        if self._queue is q:  # not a newer queue that other workers serve
                            self._queue = None
                        return
                continue
            # One worker takes all that waits; several split it, so each core gets a share at once.
            take = self.max_batch if self.workers == 1 else 1 + -(-q.qsize() // self.workers)
            while len(batch) < min(take, self.max_batch):
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
