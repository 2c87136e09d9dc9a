"""The sentence embedder (ml/embedding.py) on the real bundled all-MiniLM-L6-v2 model."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ml.errors import InputError
from ml.text.embedding import Embedder, EmbeddingBatcher, default_model_path

LONG = " ".join(
    f"Step {i}: the deploy pipeline rolled the payments service to the canary pool and the health checks passed."
    for i in range(40)
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_model_is_bundled_and_offline(embedder: Embedder) -> None:
    assert (default_model_path() / "model.safetensors").is_file()
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dim == 384


def test_encode_shape_dtype_and_normalised(embedder: Embedder) -> None:
    v = embedder.encode(["TLS certificate expired", "database connection pool exhausted", LONG])
    assert v.shape == (3, 384)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_similar_texts_are_closer(embedder: Embedder) -> None:
    a, b, c = embedder.encode(
        [
            "The TLS certificate expired on the load balancer",
            "SSL cert expiry broke HTTPS",
            "Disk full on the DB",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.1


def test_long_text_is_chunked_not_truncated(embedder: Embedder) -> None:
    windows = embedder.chunk(LONG)
    assert len(windows) >= 3
    assert all(n <= embedder.max_tokens for _, n in windows)
    assert windows[-1][0].endswith("passed.")  # the end of the text is embedded
    tail = LONG + " Finally the root cause was an expired TLS certificate on the database proxy."
    v_long, v_tail = embedder.encode([LONG, tail])
    # A keyword only at the very end changes the vector (a truncating embedder would return the same one).
    assert float(v_long @ v_tail) < 0.999
    np.testing.assert_allclose(np.linalg.norm(v_tail), 1.0, atol=1e-5)
    # The pooled vector is still about the text: closer to its own topic than to an unrelated one.
    topic, other = embedder.encode(
        ["payments deploy rolled to canary, health checks passed", "cafeteria menu"]
    )
    assert float(v_long @ topic) > float(v_long @ other)


def test_short_text_is_one_window(embedder: Embedder) -> None:
    assert embedder.chunk("disk full") == [("disk full", 2)]


def test_cache_hits_on_second_run_and_misses_on_changed_text(tmp_path: Path, embedder: Embedder) -> None:
    texts = ["Redis failover took 10 minutes", "Kafka consumer lag grew after a deploy"]
    first = Embedder(cache_dir=tmp_path)
    v1 = first.encode(texts)
    assert first.stats == {"hits": 0, "misses": 2}

    second = Embedder(cache_dir=tmp_path)
    v2 = second.encode([texts[0], texts[1] + " again", texts[0]])
    assert second.stats == {"hits": 2, "misses": 1}
    np.testing.assert_array_equal(v2[0], v1[0])
    np.testing.assert_array_equal(v2[2], v1[0])
    assert not np.allclose(v2[1], v1[1])
    np.testing.assert_allclose(v2[1], embedder.encode([texts[1] + " again"])[0], atol=1e-6)

    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert all(f.endswith((".npy", ".json")) for f in files)
    index = json.loads(next(tmp_path.rglob("index.json")).read_text())
    assert index["dim"] == 384 and len(index["entries"]) == 3


def test_encode_is_thread_safe(embedder: Embedder) -> None:
    texts = [f"incident {i} on the search cluster" for i in range(8)]
    expected = embedder.encode(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = embedder.encode(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results.values():
        np.testing.assert_allclose(r, expected, atol=1e-5)


@pytest.mark.parametrize("bad", ["one string", [1, "x"], None])
def test_encode_rejects_bad_input(embedder: Embedder, bad: object) -> None:
    with pytest.raises(InputError) as exc:
        embedder.encode(bad)  # type: ignore[arg-type]
    assert exc.value.field is not None and exc.value.field.startswith("texts")


def test_bad_model_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        Embedder(model_path=str(tmp_path)).encode(["x"])
    assert exc.value.field == "model_path"


def test_batcher_coalesces_concurrent_requests_and_keeps_each_result(embedder: Embedder) -> None:
    texts = [f"database failover on shard {i} left writes failing" for i in range(24)]
    expected = {t: embedder.encode([t])[0] for t in texts}
    sizes: list[int] = []
    gate = threading.Event()

    def encode(batch: list[str]) -> np.ndarray:
        sizes.append(len(batch))
        gate.wait(10)  # hold the first call until every caller has queued
        return embedder.encode(batch)

    batcher = EmbeddingBatcher(encode, max_batch=16)
    results: dict[str, np.ndarray] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, batcher(t))) for t in texts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (sizes and batcher._queue.qsize() == len(texts) - sizes[0]):
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(30)
    assert sorted(results) == sorted(texts)
    for t in texts:  # each caller gets the vector of its own text
        np.testing.assert_allclose(results[t], expected[t], atol=1e-5)
    # The first call took what had arrived; the 24 - k others came in batches of up to 16.
    assert sum(sizes) == len(texts) and len(sizes) <= 3 and max(sizes) >= 8
    assert batcher.batches == len(sizes) and batcher.texts == len(texts)


def test_batcher_workers_run_model_calls_side_by_side_and_split_the_queue(embedder: Embedder) -> None:
    texts = [f"certificate expired on edge node {i} and clients failed" for i in range(20)]
    expected = {t: embedder.encode([t])[0] for t in texts}
    lock = threading.Lock()
    running, most, sizes = [0], [0], []
    both = threading.Barrier(2, timeout=10)

    def encode(batch: list[str]) -> np.ndarray:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            sizes.append(len(batch))
            first_two = len(sizes) <= 2
        if first_two:
            both.wait()  # the first two calls must be in flight at the same time
        out = embedder.encode(batch)
        with lock:
            running[0] -= 1
        return out

    batcher = EmbeddingBatcher(encode, max_batch=16, workers=2, idle_s=0.2)
    results: dict[str, np.ndarray] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, batcher(t))) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most[0] == 2 and sum(sizes) == len(texts)
    for t in texts:  # each caller still gets the vector of its own text
        np.testing.assert_allclose(results[t], expected[t], atol=1e-5)
    deadline = time.monotonic() + 5
    while batcher._queue is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher._queue is None  # both idle workers are gone
    assert batcher("again").shape == expected[texts[0]].shape  # and new ones start
    with pytest.raises(InputError):
        EmbeddingBatcher(encode, workers=0)
    with pytest.raises(InputError):
        Embedder(threads=0).encode(["x"])


def test_batcher_hands_an_encoding_error_to_its_callers() -> None:
    def encode(batch: list[str]) -> np.ndarray:
        if "bad" in batch:
            raise ValueError("model failed")
        return np.ones((len(batch), 4), dtype=np.float32)

    batcher = EmbeddingBatcher(encode)
    with pytest.raises(ValueError, match="model failed"):
        batcher("bad")
    assert batcher("good").shape == (4,)  # the worker survives a failed batch
    idle = EmbeddingBatcher(encode, idle_s=0.05)
    assert idle("a").shape == (4,)
    deadline = time.monotonic() + 5
    while idle._queue is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert idle._queue is None  # the idle worker is gone (a replaced model is not kept alive by it)
    assert idle("b").shape == (4,)  # and a new one starts on the next request
    with pytest.raises(InputError):
        EmbeddingBatcher(encode, max_batch=0)
