"""The ONNX Runtime of the embedding model: exported from the bundled weights, agrees with torch, serves
without torch, never mixes its vectors with torch's in the cache, and falls back to torch when absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ml.errors import InputError, ModelUnavailableError
from ml.io.schemas import Incident
from ml.text.documents import DocumentBuilder
from ml.text.embedding import (
    ADOPTED_ONNX,
    Embedder,
    _export_tag,
    _length_batches,
    _windows,
    default_model_path,
)
from ml.text.onnx_runtime import MANIFEST, default_onnx_dir, onnx_files

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"


@pytest.fixture(scope="module")
def documents() -> list[str]:
    incidents = [
        Incident.model_validate(json.loads(line)) for line in SAMPLE.read_text().splitlines() if line
    ]
    docs = DocumentBuilder(mask_entities=True).fit(incidents).build_many(incidents)
    long_doc = " ".join(docs[:6])  # several windows
    return docs[::5] + [long_doc, "disk full", ""]


@pytest.fixture(scope="module")
def torch_vectors(documents: list[str]) -> np.ndarray:
    return Embedder(runtime="torch").encode(documents)


@pytest.mark.parametrize(("runtime", "floor"), [("onnx", 0.9999), ("onnx-int8", 0.99)])
def test_onnx_agrees_with_torch_on_the_sample(
    runtime: str, floor: float, documents: list[str], torch_vectors: np.ndarray
) -> None:
    emb = Embedder(runtime=runtime)
    vectors = emb.encode(documents)
    assert emb.backend == runtime
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:-1], axis=1), 1.0, atol=1e-5)
    cos = np.sum(vectors * torch_vectors, axis=1)
    assert float(cos.min()) >= floor, f"{runtime}: worst cosine with torch {cos.min():.4f}"

    # Neighbours are kept by the adopted runtime: the nearest other document found with it is, by torch's
    # similarity, as close as torch's own nearest one (the sample has near-duplicates, so the index itself may
    # differ). int8 moves some by more than 0.02, one reason it is not adopted (README, "Embedding").
    if runtime != ADOPTED_ONNX:
        return
    sims = torch_vectors[:-3] @ torch_vectors[:-3].T
    np.fill_diagonal(sims, -1)
    mine = vectors[:-3] @ vectors[:-3].T
    np.fill_diagonal(mine, -1)
    rows = np.arange(len(sims))
    assert np.all(sims[rows, mine.argmax(axis=1)] >= sims.max(axis=1) - 0.02)


def test_a_text_vector_does_not_depend_on_its_batch(documents: list[str]) -> None:
    emb = Embedder(runtime=ADOPTED_ONNX)
    together = emb.encode(documents)
    alone = np.stack([emb.encode([d])[0] for d in documents[:6]])
    np.testing.assert_allclose(alone, together[:6], atol=2e-6)


def test_export_is_local_complete_and_tied_to_the_weights() -> None:
    emb = Embedder()  # "auto": the adopted ONNX variant, exported here from the bundled weights if absent
    assert emb.backend == ADOPTED_ONNX
    folder = onnx_files(default_onnx_dir(), default_model_path(), emb.model_id)
    assert folder is not None
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["source"]["model_id"] == emb.model_id
    assert (
        manifest["source"]["files"]["model.safetensors"]
        == (default_model_path() / "model.safetensors").stat().st_size
    )
    assert sorted(manifest["files"]) == ["model-fp32.onnx", "model-int8.onnx"]
    # An export made from other weights is not used.
    assert onnx_files(default_onnx_dir(), default_model_path(), "some/other-model") is None


def test_cache_keeps_runtimes_apart(tmp_path: Path) -> None:
    text = ["Kafka consumer lag grew after a broker restart"]
    v_torch = Embedder(runtime="torch", cache_dir=tmp_path).encode(text)
    onnx = Embedder(runtime=ADOPTED_ONNX, cache_dir=tmp_path)
    v_onnx = onnx.encode(text)
    assert onnx.stats == {"hits": 0, "misses": 1}  # the torch vector was not served for the ONNX key
    again = Embedder(runtime=ADOPTED_ONNX, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.encode(text), v_onnx)
    assert again.stats == {"hits": 1, "misses": 0}
    assert float(v_torch[0] @ v_onnx[0]) > 0.99


def test_auto_falls_back_to_torch_without_an_export(tmp_path: Path) -> None:
    emb = Embedder(onnx_dir=tmp_path / "empty", export=False)
    assert emb.backend == "torch"
    with pytest.raises(ModelUnavailableError) as exc:
        Embedder(runtime="onnx", onnx_dir=tmp_path / "empty", export=False).encode(["x"])
    assert exc.value.field == "runtime"


def test_bad_runtime_names_the_parameter() -> None:
    with pytest.raises(InputError) as exc:
        Embedder(runtime="tensorrt").encode(["x"])
    assert exc.value.field == "runtime"


@pytest.mark.parametrize("n", [1, 254, 255, 300, 500, 1000, 5000])
def test_windows_cost_only_the_tokens_they_add(n: int) -> None:
    limit, overlap = 254, 32
    starts = [i % 3 == 0 for i in range(n)]  # a word every 3 pieces
    spans = _windows(n, starts, limit, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(0 < e - s <= limit for s, e in spans)
    assert all(s2 <= e1 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))  # no gap
    assert len(spans) == -(-n // (limit - overlap)) if n > limit else len(spans) == 1
    assert sum(e - s for s, e in spans) <= n + overlap * (len(spans) - 1)
    if len(spans) > 1:  # balanced: no near-empty tail window
        sizes = [e - s for s, e in spans]
        assert min(sizes) >= 0.5 * max(sizes)


def test_length_batches_pad_little_and_keep_every_window() -> None:
    lengths = [82, 20, 64, 66, 47, 33, 81, 25, 52, 40, 70, 21]
    order = sorted(range(len(lengths)), key=lambda j: -lengths[j])
    batches = _length_batches(order, lengths, size=4, slack=0.8)
    assert sorted(j for b in batches for j in b) == list(range(len(lengths)))
    assert [j for b in batches for j in b] == order  # longest first, order kept
    for b in batches:
        assert len(b) <= 4
        assert all(lengths[j] >= 0.8 * lengths[b[0]] for j in b)  # padded by at most a quarter
    # one batch when everything fits the slack, one per window when nothing does
    assert _length_batches([0, 1, 2], [10, 9, 8], size=8) == [[0, 1, 2]]
    assert _length_batches([0, 1, 2], [10, 7, 5], size=8) == [[0], [1], [2]]


def test_cache_key_names_the_onnx_export(tmp_path: Path) -> None:
    folder = default_onnx_dir()
    emb = Embedder(runtime=ADOPTED_ONNX)
    key = emb._cache_key("disk full")
    sha = json.loads((onnx_files(folder, default_model_path(), emb.model_id) / MANIFEST).read_text())  # type: ignore[operator]
    file = next(f for f in sha["files"] if "fp32" in f)
    assert emb._key_runtime == f"{ADOPTED_ONNX}:{sha['files'][file]['sha256'][:16]}"
    # another export of the same variant (here: another manifest digest) gives other keys
    other = tmp_path / "export"
    other.mkdir()
    (other / file).write_bytes(b"x")
    (other / MANIFEST).write_text(json.dumps({"files": {file: {"sha256": "0" * 64}}}))
    assert _export_tag(other / file, ADOPTED_ONNX) == f"{ADOPTED_ONNX}:{'0' * 16}"
    emb._key_runtime = _export_tag(other / file, ADOPTED_ONNX)
    assert emb._cache_key("disk full") != key


def test_stop_words_are_scikit_learns() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as SKLEARN

    from ml.text.stop_words import ENGLISH_STOP_WORDS

    assert ENGLISH_STOP_WORDS == SKLEARN


_NO_TORCH = textwrap.dedent(
    """
    import asyncio, json, sys
    import httpx
    from ml.registry.names import PATTERNS_MODEL
    from serving.app import create_app

    async def main():
        app = create_app()
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                r = await client.post(
                    "/v1/incidents/similar", json={"text": "checkout 503s after a config push", "k": 3}
                )
        rt = app.state.store.get(PATTERNS_MODEL).runtime
        return r.status_code, rt.embedder.backend

    status, backend = asyncio.run(main())
    print(json.dumps({"status": status, "backend": backend, "torch": "torch" in sys.modules,
                      "transformers": "transformers" in sys.modules, "sklearn": "sklearn" in sys.modules}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "backend"), [(None, "onnx-int8"), ("onnx", ADOPTED_ONNX)])
def test_server_answers_without_importing_torch(
    store: dict[str, object], setting: str | None, backend: str
) -> None:
    # queries are embedded by the int8 export by default (RECUR_QUERY_RUNTIME), fp32 ONNX when asked
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECUR_"))}
    env.update(store["env"])  # type: ignore[arg-type]
    env["HF_HUB_OFFLINE"] = "1"
    if setting is not None:
        env["RECUR_QUERY_RUNTIME"] = setting
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "status": 200,
        "backend": backend,
        "torch": False,
        "transformers": False,
        "sklearn": False,
    }


def test_cache_compaction_survives_a_shard_another_process_removed(tmp_path: Path) -> None:
    from ml.text.embedding_cache import EmbeddingCache

    first = EmbeddingCache(tmp_path, dim=4, max_shards=2)
    first.put(["x"], np.ones((1, 4)))
    first.put(["y"], np.full((1, 4), 2.0))
    second = EmbeddingCache(tmp_path, dim=4, max_shards=2)
    (tmp_path / second.index["x"][0]).unlink()  # compacted away by another process meanwhile
    second.put(["z"], np.full((1, 4), 3.0))  # compacts over the missing shard
    assert sorted(second.index) == ["y", "z"]
    np.testing.assert_array_equal(second.get(["y", "z"])["z"], np.full(4, 3.0, dtype=np.float32))
