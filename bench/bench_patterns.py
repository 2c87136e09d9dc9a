"""Failure-pattern mining: quality against ground truth, BERTopic side by side, speed, memory, real data.

    python bench/bench_patterns.py [--quick] [--seeds 42 1 2] [--no-bertopic] [--no-scale] [--no-github]

1. Sample (``data/sample/incidents.jsonl``, generated into a temporary folder when absent): ARI / NMI against
   the generator's ``pattern`` labels, on the incidents whose truth is a real pattern ("masked": "one-off"
   left out) and overall (noise is one more label), and the unclustered share.
2. Side by side on the same documents and the same embeddings: Recur's ``PatternModel`` and BERTopic's default
   pipeline (``BERTopic()``: UMAP 15 neighbours / 5 dims unseeded, HDBSCAN min_cluster_size 10, c-TF-IDF);
   also BERTopic with its UMAP seeded, for a reproducible reference. Each pipeline runs once untimed first
   (imports, numba compilation), then the fit time is the best of 2 runs (1 with --quick).
3. Speed on this machine: embedding throughput (no cache); cold training (empty embedding cache, no previous
   model) of 1,000 and 10,000 synthetic incidents (sample sentences recombined within each pattern); a retrain
   with 1% new incidents (embedding cache + UMAP warm-started from the previous layout) as a share of the cold
   run; peak RSS of the process doing the run. Each size runs in its own process (``--worker N``).
4. Real GitHub status-page incidents (``../shared/data/github-status/incidents.jsonl``, HTML stripped): number
   of patterns, unclustered share, the biggest patterns' keywords. Skipped when the file is absent.

``--quick``: one seed, 1,000 incidents for the speed part, the 400 latest GitHub incidents.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.io.schemas import Incident  # noqa: E402
from ml.patterns.clustering import PatternClusterer, clustering_metrics  # noqa: E402
from ml.patterns.ids import ONE_OFF  # noqa: E402
from ml.patterns.model import PatternModel  # noqa: E402
from ml.text.documents import DocumentBuilder, strip_html  # noqa: E402
from ml.text.embedding import Embedder  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"
GITHUB = ROOT.parent / "shared" / "data" / "github-status" / "incidents.jsonl"
CACHE = ROOT / ".cache" / "embeddings"


# --- helpers -----------------------------------------------------------------------------------------------
def quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("sentence_transformers", "transformers", "numba", "umap", "BERTopic", "bertopic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def table(rows: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}")
    if not rows:
        print("  (nothing)")
        return
    cols = list(rows[0])
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def load_sample() -> list[Incident]:
    path = SAMPLE
    if not path.is_file():
        out = Path(tempfile.mkdtemp(prefix="recur-sample-"))
        subprocess.run(
            [sys.executable, str(ROOT / "data" / "generate.py"), "--seed", "7", "--out", str(out)], check=True
        )
        path = out / "incidents.jsonl"
        print(f"(sample not in the repository: generated with seed 7 into {out})")
    return [
        Incident.model_validate(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    ]


def warm_numba() -> float:
    """Compile UMAP's and HDBSCAN's numba code once, so that no timed run pays for it."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    PatternClusterer(min_cluster_size=5).fit(rng.normal(size=(60, 16)))
    PatternClusterer(min_cluster_size=5).fit(rng.normal(size=(60, 16)), init=rng.normal(size=(60, 5)))
    return time.perf_counter() - t0


def truth_mask(incidents: list[Incident]) -> tuple[list[str], np.ndarray]:
    truth = [inc.pattern or ONE_OFF for inc in incidents]
    return truth, np.asarray([t != ONE_OFF for t in truth])


# --- 1 + 2: quality and BERTopic ---------------------------------------------------------------------------
def quality(incidents: list[Incident], seeds: list[int], bertopic: bool, repeats: int) -> None:
    truth, mask = truth_mask(incidents)
    builder = DocumentBuilder(mask_entities=True).fit(incidents)
    docs = builder.build_many(incidents)

    embedder = Embedder(cache_dir=CACHE)
    t0 = time.perf_counter()
    X = embedder.encode(docs)
    print(
        f"\nSample: {len(incidents)} incidents, {int(mask.sum())} with a real pattern, "
        f"{len(set(t for t in truth if t != ONE_OFF))} patterns in truth; embedded in {time.perf_counter() - t0:.1f}s "
        f"({embedder.stats['hits']} from cache)"
    )

    pipelines: list[tuple[str, Any]] = []
    for seed in seeds:
        pipelines.append((f"Recur PatternModel (seed {seed})", _recur(embedder, seed)))
    if bertopic:
        try:
            import bertopic as _  # noqa: F401
        except ImportError:
            print("(bertopic not installed: pip install bertopic to compare)")
        else:
            pipelines.append(("BERTopic default (unseeded UMAP)", _bertopic(None)))
            for seed in seeds:
                pipelines.append((f"BERTopic default, UMAP seed {seed}", _bertopic(seed)))
    # one untimed run of each kind first (imports, numba, caches), then the best of `repeats` timed runs
    for make in {name.split(" ")[0]: fit for name, fit in pipelines}.values():
        make(incidents, docs, X)
    rows: list[dict[str, Any]] = []
    first = None
    for name, fit in pipelines:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            labels, model = fit(incidents, docs, X)
            best = min(best, time.perf_counter() - t0)
        rows.append(_quality_row(name, labels, truth, mask, best))
        if first is None:
            first = model
    table(rows, "Pattern quality on the sample (same documents, same embeddings)")
    for kind in ("Recur", "BERTopic default, UMAP"):
        times = [r["fit s"] for r in rows if r["pipeline"].startswith(kind)]
        if times:
            print(f"  median fit time, {kind.split(',')[0]} seeded runs: {float(np.median(times)):.2f}s")

    if not isinstance(first, PatternModel):
        return
    top = []
    for p in first.patterns_[:15]:
        members = [truth[i] for i, inc in enumerate(incidents) if first.assignments_[inc.id] == p.id]
        major = Counter(sorted(members)).most_common(1)[0][0]
        top.append(
            {
                "id": p.id,
                "size": p.size,
                "name": p.name,
                "majority truth": f"{major} ({members.count(major) / len(members):.0%})",
                "trend": f"{p.trend['direction']} {p.trend['counts']}",
            }
        )
    table(top, f"Recur patterns on the sample (seed {seeds[0]})")


def _recur(embedder: Embedder, seed: int) -> Any:
    def fit(incidents: list[Incident], docs: list[str], X: np.ndarray) -> tuple[np.ndarray, PatternModel]:
        model = PatternModel(
            embedder=embedder,
            document_builder=DocumentBuilder(mask_entities=True),
            clusterer=PatternClusterer(random_state=seed, outlier_threshold="auto"),
        ).fit(incidents, embeddings=X)
        return np.asarray([model.assignments_[inc.id] for inc in incidents]), model

    return fit


def _bertopic(seed: int | None) -> Any:
    def fit(incidents: list[Incident], docs: list[str], X: np.ndarray) -> tuple[np.ndarray, Any]:
        from bertopic import BERTopic
        from umap import UMAP

        if seed is None:
            topic_model = BERTopic()
        else:
            umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
            topic_model = BERTopic(umap_model=umap)
        topics, _ = topic_model.fit_transform(docs, embeddings=X)
        return np.asarray(topics), topic_model

    return fit


def _quality_row(
    name: str, labels: np.ndarray, truth: list[str], mask: np.ndarray, secs: float
) -> dict[str, Any]:
    m = clustering_metrics(labels, true_labels=truth, mask=mask)
    return {
        "pipeline": name,
        "patterns": int(m["n_patterns"]),
        "ARI (patterns)": m["ari_masked"],
        "NMI (patterns)": m["nmi_masked"],
        "ARI (all)": m["ari"],
        "NMI (all)": m["nmi"],
        "unclustered": m["noise_fraction"],
        "fit s": secs,
    }


# --- 3: speed and memory -----------------------------------------------------------------------------------
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def synthesize(base: list[Incident], n: int, seed: int, prefix: str) -> list[Incident]:
    """`n` incidents made by recombining sample sentences within each pattern (truth label kept)."""
    rng = np.random.default_rng(seed)
    by_pattern: dict[str, list[Incident]] = defaultdict(list)
    for inc in base:
        by_pattern[inc.pattern or ONE_OFF].append(inc)
    names = sorted(by_pattern)
    weights = np.asarray([len(by_pattern[p]) for p in names], dtype=float)
    weights /= weights.sum()
    start = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)
    out: list[Incident] = []
    for i in range(n):
        pattern = names[int(rng.choice(len(names), p=weights))]
        pool = by_pattern[pattern]
        a, b, c = (pool[int(j)] for j in rng.integers(0, len(pool), size=3))
        sentences = [s for inc in (a, b) for s in _SENT.split(inc.root_cause or inc.summary) if s.strip()]
        k = min(len(sentences), int(rng.integers(2, 5)))
        cause = " ".join(sentences[int(j)] for j in sorted(rng.choice(len(sentences), size=k, replace=False)))
        out.append(
            Incident(
                id=f"{prefix}-{i:06d}",
                title=a.title,
                summary=b.summary,
                root_cause=cause,
                contributing_factors=c.contributing_factors,
                service=c.service,
                team=c.team,
                started_at=start + dt.timedelta(minutes=int(rng.integers(0, 730 * 24 * 60))),
                pattern=pattern,
            )
        )
    return out


def worker(n: int) -> None:
    """Cold training of `n` synthetic incidents, then a retrain with 1% new ones; prints one JSON line."""
    quiet()
    base = load_sample()
    corpus = synthesize(base, n, seed=n, prefix="SYN")
    new = synthesize(base, max(1, n // 100), seed=n + 1, prefix="NEW")
    with tempfile.TemporaryDirectory(prefix="recur-emb-") as cache:
        embedder = Embedder(cache_dir=Path(cache))
        t0 = time.perf_counter()
        _ = embedder.dim  # load the model outside the timings
        load_s = time.perf_counter() - t0
        jit_s = warm_numba()
        t0 = time.perf_counter()
        cold = PatternModel(embedder=embedder).fit(corpus)
        cold_s = time.perf_counter() - t0
        rss_cold = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        warm = PatternModel(embedder=embedder).fit(corpus + new, previous=cold)
        retrain_s = time.perf_counter() - t0
        moved = sum(warm.assignments_[i] != cold.assignments_[i] for i in cold.assignments_)
        print(
            json.dumps(
                {
                    "n": n,
                    "load_s": load_s,
                    "jit_s": jit_s,
                    "cold_s": cold_s,
                    "cold_embed_s": cold.metrics_["embed_s"],
                    "cold_cluster_s": cold.metrics_["cluster_s"],
                    "retrain_s": retrain_s,
                    "retrain_embed_s": warm.metrics_["embed_s"],
                    "retrain_cluster_s": warm.metrics_["cluster_s"],
                    "patterns": len(cold.patterns_),
                    "ari_masked": cold.metrics_.get("ari_masked"),
                    "noise": cold.metrics_["noise_fraction"],
                    "ids_kept": warm.metrics_["ids_kept"],
                    "ids_fresh": warm.metrics_["ids_fresh"],
                    "moved": moved / len(cold.assignments_),
                    "rss_cold_mb": rss_cold,
                    "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
        )


def speed(sizes: list[int], incidents: list[Incident], n_throughput: int) -> None:
    docs = DocumentBuilder(mask_entities=True).fit(incidents).build_many(incidents)[:n_throughput]
    embedder = Embedder()  # no cache: every text is embedded
    embedder.encode(docs[:8])  # load and warm up
    t0 = time.perf_counter()
    embedder.encode(docs)
    secs = time.perf_counter() - t0
    words = np.mean([len(d.split()) for d in docs])
    print(
        f"\nEmbedding throughput: {len(docs) / secs:.1f} docs/s ({len(docs)} sample documents, "
        f"{words:.0f} words on average, batch {embedder.batch_size}, no cache, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    rows = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(n)],
            capture_output=True,
            text=True,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            print(f"(worker for {n} failed)\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(lines[-1])
        rows.append(
            {
                "incidents": r["n"],
                "cold s": r["cold_s"],
                "(embed s)": r["cold_embed_s"],
                "(cluster s)": r["cold_cluster_s"],
                "retrain +1% s": r["retrain_s"],
                "(embed s) ": r["retrain_embed_s"],
                "(cluster s) ": r["retrain_cluster_s"],
                "retrain/cold": r["retrain_s"] / r["cold_s"],
                "patterns": r["patterns"],
                "ARI (patterns)": r["ari_masked"],
                "unclustered": r["noise"],
                "ids kept/new": f"{int(r['ids_kept'])}/{int(r['ids_fresh'])}",
                "moved": r["moved"],
                "peak RSS MB": r["rss_peak_mb"],
            }
        )
        print(
            f"  ({r['n']:,}: model load {r['load_s']:.1f}s and numba compilation {r['jit_s']:.1f}s before "
            f"timing; RSS after the cold run {r['rss_cold_mb']:.0f} MB)"
        )
    table(rows, "Training speed on synthetic corpora (cold = empty embedding cache, no previous model)")


# --- 4: real GitHub status incidents -----------------------------------------------------------------------
def github(path: Path, limit: int | None) -> None:
    if not path.is_file():
        print(f"\n(GitHub status data not found at {path}: skipped)")
        return
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: r["started_at"])
    if limit:
        records = records[-limit:]
    incidents = []
    for r in records:
        body = " ".join(u.get("body") or "" for u in r.get("updates", [])) or r.get("text") or r["name"]
        incidents.append(
            Incident(
                id=r["id"],
                title=r["name"],
                summary=strip_html(body) or r["name"],
                tags=r.get("components") or [],
                started_at=r["started_at"],
            )
        )
    t0 = time.perf_counter()
    model = PatternModel(embedder=Embedder(cache_dir=CACHE)).fit(incidents)
    secs = time.perf_counter() - t0
    m = model.metrics_
    print(
        f"\nGitHub status incidents ({path.name}, {len(incidents)} incidents "
        f"{incidents[0].started_at.date()}..{incidents[-1].started_at.date()}): {len(model.patterns_)} patterns, "
        f"{m['noise_fraction']:.1%} unclustered, silhouette {m.get('silhouette', float('nan')):.3f}, "
        f"DBCV {m.get('dbcv', float('nan')):.3f}, fit {secs:.1f}s"
    )
    rows = [
        {
            "id": p.id,
            "size": p.size,
            "name": p.name,
            "keywords": ", ".join(p.keywords[:6]),
            "last 6 x 30 days": f"{p.trend['direction']} {p.trend['counts']}",
        }
        for p in model.patterns_[:10]
    ]
    table(rows, "Biggest GitHub patterns")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 1,000 incidents, 400 GitHub incidents")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="UMAP seeds for the sample comparison")
    ap.add_argument("--no-bertopic", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--no-github", action="store_true")
    ap.add_argument("--github", type=Path, default=GITHUB)
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return
    quiet()
    seeds = args.seeds or ([42] if args.quick else [42, 1, 2])
    t0 = time.perf_counter()
    incidents = load_sample()
    quality(incidents, seeds, bertopic=not args.no_bertopic, repeats=1 if args.quick else 2)
    if not args.no_scale:
        speed([1_000] if args.quick else [1_000, 10_000], incidents, 200 if args.quick else len(incidents))
    if not args.no_github:
        github(args.github, 400 if args.quick else None)
    print(f"\n(total {time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
