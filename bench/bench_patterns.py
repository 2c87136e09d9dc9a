"""Failure-pattern mining: quality against known labels beside the baselines, analyst labels, speed, memory.

    python bench/bench_patterns.py [--quick] [--seeds 42 1 2] [--no-bertopic] [--no-scale] [--no-github] [--no-labels]

1. Quality, side by side on the same documents and the same embeddings, on three corpora: the sample
   (``data/sample``, generated with its truth), the hard sample (``data/sample-hard``: long postmortems, shared
   vocabulary, imbalanced root-cause categories) and the real GitHub status incidents
   (``../shared/data/github-status/``; weak truth: the one affected component, where there is one). Pipelines:
   Recur's ``PatternModel`` with its defaults (root-cause view, template sentences out, hybrid features, the
   most stable cut of an average-linkage tree), once with UMAP + HDBSCAN and its granularity search
   (``algorithm="hdbscan"``, the default before) and once more with HDBSCAN's opt-in ``join_groups=True``;
   TF-IDF + KMeans and MiniLM + KMeans told the true number of labels, on the whole text and on the root-cause
   view; BERTopic's defaults (``BERTopic()``) on both. NMI / ARI on the incidents
   with a known label (Recur's unclustered and BERTopic's outliers count as one more label), the unclustered
   share and the largest pattern's share.
2. Analyst labels on the hard sample: 0%, 10% and 30% of the incidents carry ``root_cause_category``; NMI / ARI
   on a fixed 30% held out and never labelled.
3. Speed on this machine: embedding throughput (no cache); cold training of 1,000 and 10,000 synthetic
   incidents (sample sentences recombined within each pattern); a retrain with 1% new incidents as a share of
   the cold run; peak RSS. Each size runs in its own process (``--worker N``).

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
from ml.patterns.views import RootCauseView  # noqa: E402
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


# --- 1 + 2: quality, side by side with the baselines ---------------------------------------------------------
HARD = ROOT / "data" / "sample-hard" / "incidents.jsonl"


def load_jsonl(path: Path) -> list[Incident]:
    return [
        Incident.model_validate(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    ]


def load_github(path: Path, limit: int | None) -> list[Incident]:
    """GitHub status incidents, HTML stripped; truth (weak) = the single affected component, if one."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: r["started_at"])
    if limit:
        records = records[-limit:]
    out = []
    for r in records:
        body = " ".join(u.get("body") or "" for u in r.get("updates", [])) or r.get("text") or r["name"]
        comps = r.get("components") or []
        out.append(
            Incident(
                id=r["id"],
                title=r["name"],
                summary=strip_html(body) or r["name"],
                tags=comps,
                started_at=r["started_at"],
                pattern=comps[0] if len(comps) == 1 else None,
            )
        )
    return out


def _row(name: str, labels: np.ndarray, truth: list[str], mask: np.ndarray, secs: float) -> dict[str, Any]:
    m = clustering_metrics(labels, true_labels=truth, mask=mask)
    sizes = np.bincount(labels[labels >= 0]) if np.any(labels >= 0) else np.zeros(1)
    return {
        "pipeline": name,
        "patterns": int(m["n_patterns"]),
        "NMI": m["nmi_masked"],
        "ARI": m["ari_masked"],
        "unclustered": m["noise_fraction"],
        "largest": float(sizes.max() / len(labels)),
        "fit s": secs,
    }


def quality(name: str, incidents: list[Incident], seeds: list[int], bertopic: bool) -> PatternModel | None:
    """Recur and the baselines on the same incidents; NMI/ARI on incidents with a known label ("one-off"
    and unlabelled left out; Recur's unclustered count as one more label, as BERTopic's outliers do)."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    truth = [inc.pattern or ONE_OFF for inc in incidents]
    mask = np.asarray([t != ONE_OFF for t in truth])
    k = len({t for t in truth if t != ONE_OFF})
    embedder = Embedder(cache_dir=CACHE)
    full = DocumentBuilder(mask_entities=True).fit(incidents).build_many(incidents)
    cause = RootCauseView().fit(incidents).build_many(incidents)
    t0 = time.perf_counter()
    X_full, X_cause = embedder.encode(full), embedder.encode(cause)
    print(
        f"\n{name}: {len(incidents)} incidents, {int(mask.sum())} with a known label, {k} labels; "
        f"embedded in {time.perf_counter() - t0:.1f}s"
    )
    rows: list[dict[str, Any]] = []
    first: PatternModel | None = None
    for seed in seeds:
        t0 = time.perf_counter()
        model = PatternModel(
            embedder=embedder,
            clusterer=PatternClusterer(min_cluster_size="auto", outlier_threshold="auto", random_state=seed),
        ).fit(incidents)
        labels = np.asarray([model.assignments_[inc.id] for inc in incidents])
        rows.append(_row(f"Recur (seed {seed})", labels, truth, mask, time.perf_counter() - t0))
        first = first or model
    for seed in seeds[:1]:  # UMAP + HDBSCAN with its granularity search (the default before the tree cut)
        t0 = time.perf_counter()
        dense = PatternModel(
            embedder=embedder,
            clusterer=PatternClusterer(
                min_cluster_size="auto", outlier_threshold="auto", random_state=seed, algorithm="hdbscan"
            ),
        ).fit(incidents)
        labels = np.asarray([dense.assignments_[inc.id] for inc in incidents])
        rows.append(
            _row(f"Recur, UMAP + HDBSCAN (seed {seed})", labels, truth, mask, time.perf_counter() - t0)
        )
    for seed in seeds[:1]:  # the opt-in joining of dense groups whose centres agree (join_groups=True)
        t0 = time.perf_counter()
        joined = PatternModel(
            embedder=embedder,
            clusterer=PatternClusterer(
                min_cluster_size="auto", outlier_threshold="auto", random_state=seed, join_groups=True
            ),
        ).fit(incidents)
        labels = np.asarray([joined.assignments_[inc.id] for inc in incidents])
        rows.append(_row(f"Recur, join_groups (seed {seed})", labels, truth, mask, time.perf_counter() - t0))
    for view, docs, X in (("whole text", full, X_full), ("root cause", cause, X_cause)):
        t0 = time.perf_counter()
        tfidf = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=2).fit_transform(docs)
        km = KMeans(k, n_init=10, random_state=0).fit_predict(tfidf)
        rows.append(_row(f"TF-IDF + KMeans(k={k}), {view}", km, truth, mask, time.perf_counter() - t0))
        t0 = time.perf_counter()
        km = KMeans(k, n_init=10, random_state=0).fit_predict(X)
        rows.append(_row(f"MiniLM + KMeans(k={k}), {view}", km, truth, mask, time.perf_counter() - t0))
    if bertopic:
        try:
            from bertopic import BERTopic
        except ImportError:
            print("(bertopic not installed: pip install -e '.[bench]' to compare)")
        else:
            for view, docs, X in (("whole text", full, X_full), ("root cause", cause, X_cause)):
                t0 = time.perf_counter()
                topics, _ = BERTopic().fit_transform(docs, embeddings=X)
                rows.append(
                    _row(
                        f"BERTopic defaults, {view}",
                        np.asarray(topics),
                        truth,
                        mask,
                        time.perf_counter() - t0,
                    )
                )
    table(rows, f"{name}: patterns against the known labels (same documents, same embeddings)")
    if first is not None:
        g = first.clusterer_
        print(
            f"  granularity chosen: min_cluster_size={g.min_cluster_size_}, min_samples={g.min_samples_}, "
            f"{g.cluster_selection_method_}, {getattr(g, 'n_dense_groups_', 0)} dense groups"
            f"{' joined' if g.search_ is not None and g.search_.best_.merged else ''} "
            f"of {len(first.granularity_)} candidates; "
            f"silhouette {first.metrics_.get('silhouette', float('nan')):.3f}"
            + "".join(f"; warning: {w}" for w in first.warnings_)
        )
        top = []
        for p in first.patterns_[:15]:
            members = [truth[i] for i, inc in enumerate(incidents) if first.assignments_[inc.id] == p.id]
            major = Counter(sorted(members)).most_common(1)[0][0]
            top.append(
                {
                    "size": p.size,
                    "name": p.name,
                    "keywords": ", ".join(p.keywords[:4]),
                    "majority label": f"{major} ({members.count(major) / len(members):.0%})",
                }
            )
        table(top, f"{name}: the biggest patterns")
    return first


def analyst_labels(name: str, incidents: list[Incident], shares: list[float], seed: int = 0) -> None:
    """Held-out NMI/ARI with a share of the incidents labelled by an analyst (``root_cause_category``).

    A fixed 30% of the incidents is held out and never labelled; the labelled ones are drawn from the rest.
    Scores are on the held-out incidents with a known label only."""
    rng = np.random.default_rng(seed)
    truth = [inc.pattern or ONE_OFF for inc in incidents]
    n = len(incidents)
    held = rng.random(n) < 0.3
    order = rng.permutation(np.flatnonzero(~held))
    mask = held & np.asarray([t != ONE_OFF for t in truth])
    rows = []
    for share in shares:
        chosen = set(order[: int(round(share * n))].tolist())
        labelled = [
            inc.model_copy(update={"root_cause_category": truth[i] if i in chosen else None})
            for i, inc in enumerate(incidents)
        ]
        t0 = time.perf_counter()
        model = PatternModel(embedder=Embedder(cache_dir=CACHE)).fit(labelled)
        labels = np.asarray([model.assignments_[inc.id] for inc in incidents])
        row = _row(
            f"{share:.0%} labelled",
            labels[mask],
            [truth[i] for i in np.flatnonzero(mask)],
            np.ones(int(mask.sum()), bool),
            time.perf_counter() - t0,
        )
        rows.append({"labelled": f"{share:.0%}", **{k: v for k, v in row.items() if k != "pipeline"}})
    table(rows, f"{name}: analyst labels, scored on {int(mask.sum())} held-out incidents never labelled")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 1,000 incidents, 400 GitHub incidents")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="UMAP seeds of Recur's runs")
    ap.add_argument("--no-bertopic", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--no-github", action="store_true")
    ap.add_argument("--no-labels", action="store_true", help="skip the analyst-label runs")
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
    quality("Sample (data/sample)", incidents, seeds, bertopic=not args.no_bertopic)
    if HARD.is_file():
        hard = load_jsonl(HARD)
        quality("Hard sample (data/sample-hard)", hard, seeds, bertopic=not args.no_bertopic)
        if not args.no_labels:
            analyst_labels("Hard sample", hard, [0.0, 0.1, 0.3])
    else:
        print(f"\n(hard sample not found at {HARD}: skipped)")
    if not args.no_github:
        if args.github.is_file():
            gh = load_github(args.github, 400 if args.quick else None)
            quality(
                "GitHub status (truth: the one affected component)",
                gh,
                seeds[:1],
                bertopic=not args.no_bertopic,
            )
        else:
            print(f"\n(GitHub status data not found at {args.github}: skipped)")
    if not args.no_scale:
        speed([1_000] if args.quick else [1_000, 10_000], incidents, 200 if args.quick else len(incidents))
    print(f"\n(total {time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
