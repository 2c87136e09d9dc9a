"""Embedding speed and agreement: plain sentence-transformers, Recur's Embedder on torch and on ONNX Runtime.

    python bench/bench_embedding.py [--docs 600] [--repeats 2] [--train 10000] [--no-train] [--retrieval]

1. Throughput (docs/s, no cache, the model loaded and warmed up first, best of ``--repeats``) on the sample's
   documents (``DocumentBuilder(mask_entities=True)``, as training builds them): a plain
   ``SentenceTransformer.encode`` (batch 32, truncating at 256 word pieces), ``Embedder`` on torch, on ONNX
   fp32 and on ONNX int8.
2. Agreement with ``Embedder`` on torch: cosine per document (worst, 1st percentile, mean), and how often each
   document's nearest other document is the same.
3. Start-up: a fresh process importing the embedder, loading the model and embedding one query, for the
   default runtime (ONNX when exported) and for torch; whether torch was imported.
4. Cold training of ``--train`` synthetic incidents (empty embedding cache): ``bench/bench_patterns.py
   --worker N`` in its own process (embedding and clustering seconds).
5. ``--retrieval``: ``bench/bench_retrieval.py --no-tuning`` once with torch and once with the adopted ONNX
   runtime, the lines of both printed together (several minutes).

The load average is printed at the start and the end: on a shared machine the figures move with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.io.schemas import Incident  # noqa: E402
from ml.text.documents import DocumentBuilder  # noqa: E402
from ml.text.embedding import ADOPTED_ONNX, Embedder, default_model_path  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"

_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
from ml.text.embedding import Embedder
e = Embedder(runtime=sys.argv[1], export=False)
e.encode(["checkout returns 503s after a config push"])
print(json.dumps({"s": time.perf_counter() - t0, "backend": e.backend, "torch": "torch" in sys.modules}))
"""

_RETRIEVAL = """
import functools, sys
sys.path.insert(0, sys.argv[2])
import bench_retrieval as br
from ml.text.embedding import Embedder
br.Embedder = functools.partial(Embedder, runtime=sys.argv[1])
sys.argv = ["bench_retrieval.py", "--no-tuning"]
br.main()
"""


def load_documents(limit: int) -> list[str]:
    incidents = [
        Incident.model_validate(json.loads(line)) for line in SAMPLE.read_text().splitlines() if line
    ]
    return DocumentBuilder(mask_entities=True).fit(incidents).build_many(incidents)[:limit]


def best_rate(fn: object, docs: list[str], repeats: int) -> tuple[float, np.ndarray]:
    best = float("inf")
    out = np.zeros(0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(docs)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return len(docs) / best, np.asarray(out, dtype=np.float32)


def nearest(x: np.ndarray) -> np.ndarray:
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    return s.argmax(axis=1)


def throughput(docs: list[str], repeats: int) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_model_path()), device="cpu")
    st.encode(docs[:8])

    def plain(texts: list[str]) -> np.ndarray:
        return st.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)

    runs: dict[str, tuple[float, np.ndarray]] = {
        "sentence-transformers encode": best_rate(plain, docs, repeats)
    }
    for runtime in ("torch", "onnx", "onnx-int8"):
        emb = Embedder(runtime=runtime)  # no cache
        emb.encode(docs[:8])
        runs[f"Embedder {runtime}"] = best_rate(lambda t, e=emb: e._embed(t), docs, repeats)
    ref = runs["Embedder torch"][1]
    ref_nn = nearest(ref)
    words = np.mean([len(d.split()) for d in docs])
    print(f"\n{len(docs)} sample documents, {words:.0f} words on average, {os.cpu_count()} CPUs")
    print(f"{'runtime':30s} {'docs/s':>8s} {'cos min':>8s} {'cos p1':>8s} {'cos mean':>9s} {'same NN':>8s}")
    for name, (rate, vecs) in runs.items():
        cos = np.sum(vecs * ref, axis=1)
        same = float(np.mean(nearest(vecs) == ref_nn))
        print(
            f"{name:30s} {rate:8.1f} {cos.min():8.4f} {np.percentile(cos, 1):8.4f} {cos.mean():9.4f} {same:8.3f}"
        )
    print(f"(cosines against Embedder torch; the adopted ONNX runtime is {ADOPTED_ONNX})")


def startup() -> None:
    print("\nStart-up of a fresh process: import, load, embed one query")
    for runtime in ("auto", "torch"):
        proc = subprocess.run(
            [sys.executable, "-c", _STARTUP, runtime],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"  {runtime}: failed\n{proc.stderr[-1500:]}")
            continue
        r = json.loads(lines[-1])
        print(f"  runtime={runtime:5s} -> {r['backend']:10s} {r['s']:5.2f} s   torch imported: {r['torch']}")


def training(n: int) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_patterns.py"), "--worker", str(n)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"\nCold training of {n:,} incidents failed:\n{proc.stderr[-3000:]}")
        return
    r = json.loads(lines[-1])
    print(
        f"\nCold training of {n:,} synthetic incidents (empty cache, {ADOPTED_ONNX}): {r['cold_s']:.0f} s "
        f"(embedding {r['cold_embed_s']:.0f} s, clustering {r['cold_cluster_s']:.0f} s; model load "
        f"{r['load_s']:.1f} s and numba {r['jit_s']:.1f} s before timing); retrain +1%: {r['retrain_s']:.0f} s; "
        f"{r['patterns']} patterns, peak RSS {r['rss_peak_mb']:.0f} MB"
    )


def retrieval() -> None:
    for runtime in ("torch", ADOPTED_ONNX):
        print(f"\nbench_retrieval.py --no-tuning with runtime={runtime}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-c", _RETRIEVAL, runtime, str(ROOT / "bench")],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        print(proc.stdout if proc.returncode == 0 else proc.stderr[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=600, help="sample documents to embed")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train", type=int, default=10000, help="incidents of the cold training run")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--retrieval", action="store_true", help="bench_retrieval with torch and with ONNX")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    throughput(load_documents(args.docs), args.repeats)
    startup()
    if not args.no_train:
        training(args.train)
    if args.retrieval:
        retrieval()
    print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
