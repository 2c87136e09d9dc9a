"""Similar-incident API over HTTP: a real uvicorn process serving a champion trained on N synthetic incidents.

Builds N incidents by recombining the sample's sentences within each pattern (so the corpus has real structure),
trains and registers `incident-patterns` in a temporary MLflow store, starts `recur serve`, and reports:

- start-up time to ready (process start to /readyz 200) with that model;
- 16 concurrent clients for a bounded time against POST /v1/incidents/similar: p50/p99 latency, requests/s,
  errors; "warm" queries come from a pool of 300 texts (a live incident's responders and tools repeat
  themselves, and the server caches finished answers per model version), "cold" ones are all distinct (every
  query embedded and searched).
  "max" phases send back to back (the capacity); the paced phase offers ``--rate`` requests/s in all and
  measures latency from each request's scheduled time.
The load generator (aiohttp, the ``bench`` extra) runs on the same 2 cores as the server. Per phase it also
reports the CPU time per request of the server process (``/proc/<pid>/stat``, all threads) and of the load
generator, which other jobs on a shared machine do not change (wall figures do): on an idle 2-core machine the
capacity is about ``2000 / (server + client ms)`` requests/s; and the server's CPU seconds to ready.

Start-up is measured twice: cold (an empty local model cache: the champion comes from the registry) and warm (a
restart that finds the local copy the cold start kept, ``serving.model_cache``), with the warm start's background
registry check (its end and the server's CPU seconds by then). ``--startup-only`` measures only that (``--starts``
pairs), no load phases.

    python bench/bench_api.py [--n 10000] [--clients 16] [--seconds 20] [--rate 150] [--quick] [--workdir DIR]
    python bench/bench_api.py --startup-only [--starts 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from tests.serving.server import Server  # noqa: E402
from training.settings import Settings  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "incidents.jsonl"
_SENT = re.compile(r"(?<=[.!?])\s+")


def synthesise(n: int, out: Path, seed: int = 0) -> list[dict]:
    """N incidents recombined from sample incidents of the same pattern (one-offs kept as they are)."""
    rng = random.Random(seed)
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    by_pattern: dict[str, list[dict]] = {}
    for r in rows:
        by_pattern.setdefault(r["pattern"], []).append(r)
    made = []
    for i in range(n):
        base = rng.choice(rows)
        peers = by_pattern[base["pattern"]]
        a, b = rng.choice(peers), rng.choice(peers)
        summary = " ".join(
            rng.sample(
                _SENT.split(a["summary"]) + _SENT.split(b["summary"]),
                k=min(3, len(_SENT.split(a["summary"]))),
            )
        )
        made.append(
            {
                **base,
                "id": f"SYN-{i:06d}",
                "title": a["title"],
                "summary": summary or base["summary"],
                "root_cause": b.get("root_cause") or base.get("root_cause"),
                "action_items": [],
            }
        )
    with out.open("w") as fh:
        for r in made:
            fh.write(json.dumps(r) + "\n")
    return made


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, all its threads, and of the children it has waited for
    (the registry fetch of a first start, ``serving.prefetch``) (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def measure_start(env: dict[str, str], log_path: Path) -> tuple[Server, dict]:
    """Start a server; wall seconds from process start to /readyz 200 (polled every 0.05 s), the server's CPU
    seconds then and the 1-minute load average. Returns the running server and the figures."""
    srv = Server(env, log_path=log_path)
    wall = srv.start(timeout=600, ready_path="/readyz", poll_s=0.05)
    assert srv.proc is not None
    cpu = cpu_seconds(srv.proc.pid)  # mostly one thread: what an idle machine would take
    r = httpx.get(srv.url + "/readyz", timeout=10).json()["models"]["incident-patterns"]
    return srv, {"wall": wall, "cpu": cpu, "load1": os.getloadavg()[0], "source": r.get("source")}


def wait_checked(srv: Server, started: float, timeout: float = 120.0) -> dict:
    """After a start from the local copy: when the background registry check ended (seconds since the process
    started) and the server's CPU seconds by then."""
    assert srv.proc is not None
    deadline = time.time() + timeout
    with httpx.Client(timeout=10) as client:  # one client: httpx.get costs 29 ms of CPU a call
        while time.time() < deadline:
            model = client.get(srv.url + "/readyz").json()["models"]["incident-patterns"]
            if model.get("source") == "registry" or "checking" not in model.get("detail", "checking"):
                return {"wall": time.perf_counter() - started, "cpu": cpu_seconds(srv.proc.pid)}
            time.sleep(0.1)
    return {"wall": float("nan"), "cpu": float("nan")}


def startups(env: dict[str, str], root: Path, cache: Path) -> dict:
    """One cold start (empty local cache) and one warm start (the copy the cold start kept)."""
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "RECUR_MODEL_CACHE_DIR": str(cache)}
    srv, cold = measure_start(env, root / "server-cold.log")
    srv.stop()
    t0 = time.perf_counter()
    srv, warm = measure_start(env, root / "server-warm.log")
    try:
        warm["check"] = wait_checked(srv, t0)
    finally:
        srv.stop()
    return {"cold": cold, "warm": warm}


def print_startups(runs: list[dict]) -> None:
    print(
        "start-up to ready (process start to /readyz 200, polled every 0.05 s by one client; CPU: the server"
        " process's, with its registry fetch on a cold start):"
    )
    for i, r in enumerate(runs, 1):
        c, w = r["cold"], r["warm"]
        print(
            f"  {i}: cold (from the registry) {c['wall']:.2f} s wall, {c['cpu']:.2f} CPU-s, load {c['load1']:.2f}; "
            f"warm (from the {w['source']}) {w['wall']:.2f} s wall, {w['cpu']:.2f} CPU-s, load {w['load1']:.2f}; "
            f"registry check done at {w['check']['wall']:.2f} s, {w['check']['cpu']:.2f} CPU-s"
        )


def phase(pid: int, run: Any) -> dict:
    """Run one load phase; add the server's CPU seconds per request and the 1-minute load average after it."""
    before, client = cpu_seconds(pid), time.process_time()
    out = asyncio.run(run)
    out["cpu_ms_per_req"] = 1000 * (cpu_seconds(pid) - before) / max(1, out["requests"])
    out["client_ms_per_req"] = 1000 * (time.process_time() - client) / max(1, out["requests"])
    out["load1"] = os.getloadavg()[0]
    return out


async def load(url: str, texts: list[str], clients: int, seconds: float, rate: float | None = None) -> dict:
    """``clients`` concurrent clients for ``seconds``: back to back (closed loop, the server's capacity), or,
    with ``rate``, each sending on a fixed schedule so that together they offer ``rate`` requests/s (open
    loop); latency is then measured from the scheduled send time, so a stalled server is not hidden by
    clients that wait for it (no coordinated omission). aiohttp, not httpx: the load generator shares the 2
    cores with the server and httpx cost as much CPU per request as the server itself."""
    import aiohttp

    lat: list[float] = []
    errors = 0
    start = time.perf_counter()
    stop = start + seconds
    interval = clients / rate if rate else 0.0

    async def worker(session: aiohttp.ClientSession, wid: int) -> None:
        nonlocal errors
        i, n = wid, 0
        while True:
            t0 = start + wid * interval / clients + n * interval if rate else time.perf_counter()
            if t0 >= stop:
                return
            if rate:
                await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
            try:
                async with session.post(
                    url + "/v1/incidents/similar", json={"text": texts[i % len(texts)], "k": 5}
                ) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            lat.append(time.perf_counter() - t0)
            i += clients
            n += 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session, w) for w in range(clients)))
        wall = time.perf_counter() - start
    lat.sort()
    return {
        "requests": len(lat),
        "errors": errors,
        "rps": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=150.0, help="offered load of the paced phase, requests/s")
    ap.add_argument("--quick", action="store_true", help="2,000 incidents, 8 s per phase")
    ap.add_argument(
        "--startup-only", action="store_true", help="measure cold and warm start-ups only (no load phases)"
    )
    ap.add_argument("--starts", type=int, default=1, help="cold + warm start-up pairs to measure")
    ap.add_argument(
        "--query-runtime",
        choices=("onnx-int8", "onnx", "torch", "auto"),
        help="RECUR_QUERY_RUNTIME of the server (default: the server's own, onnx-int8)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        help="keep the trained store here and reuse it on the next run (default: a temporary folder)",
    )
    args = ap.parse_args()
    if args.starts < 1:
        ap.error(f"--starts takes a whole number >= 1, got {args.starts}")
    if args.quick:
        args.n, args.seconds = 2000, 8.0
    from training.patterns import train_patterns

    with tempfile.TemporaryDirectory(prefix="recur-bench-api-") as tmp:
        root = Path(args.workdir or tmp) / f"n{args.n}"
        root.mkdir(parents=True, exist_ok=True)
        corpus = root / "incidents.jsonl"
        rows = synthesise(args.n, corpus)
        settings = Settings(
            mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
            mlflow_artifact_root=root / "artifacts",
            cache_dir=ROOT / ".cache" / "bench-api",
        )
        trained = root / "trained.json"
        if trained.is_file():  # --workdir from an earlier run: serve the champion it trained
            result, train_s = json.loads(trained.read_text()), float("nan")
        else:
            t0 = time.perf_counter()
            result = train_patterns(settings, [corpus], promote=True, show_progress=False)
            train_s = time.perf_counter() - t0
            trained.write_text(json.dumps({"metrics": result["metrics"]}))
        env = {
            "RECUR_MLFLOW_TRACKING_URI": settings.tracking_uri,
            "RECUR_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
            "RECUR_CACHE_DIR": str(settings.cache_dir),
            "RECUR_QUERY_CACHE_SIZE": "4096",
            **({"RECUR_QUERY_RUNTIME": args.query_runtime} if args.query_runtime else {}),
        }
        starts = [startups(env, root, root / "model-cache") for _ in range(args.starts)]
        if args.startup_only:
            print(f"\nSimilar-incident API, {args.n:,} indexed incidents, 2-core machine")
            print_startups(starts)
            print("target: start-up to ready <= 3 s")
            return
        env["RECUR_MODEL_CACHE_DIR"] = str(root / "model-cache")
        srv = Server(env, log_path=root / "server.log")
        srv.start(timeout=600, ready_path="/readyz")
        assert srv.proc is not None
        try:
            rng = random.Random(1)
            pool = [
                f"{r['title']}. {r.get('root_cause') or r['summary']}"[:600] for r in rng.sample(rows, 300)
            ]
            with httpx.Client(base_url=srv.url, timeout=60) as c:  # every pool text once: the cache is warm
                for text in pool:
                    c.post("/v1/incidents/similar", json={"text": text, "k": 5})
            assert srv.proc is not None
            pid = srv.proc.pid
            phases = {
                "warm, max": phase(pid, load(srv.url, pool, args.clients, args.seconds)),
                f"warm, {args.rate:.0f}/s": phase(
                    pid, load(srv.url, pool, args.clients, args.seconds, rate=args.rate)
                ),
            }
            cold_texts = [
                f"{r['title']} {r['summary'][:300]} #{i}"
                for i, r in enumerate(rng.sample(rows, min(len(rows), 5000)))
            ]
            phases["cold, max"] = phase(pid, load(srv.url, cold_texts, args.clients, args.seconds / 2))
        finally:
            srv.stop()
    print(
        f"\nSimilar-incident API, {args.n:,} indexed incidents, {args.clients} concurrent clients, 2-core machine"
    )
    trained_how = f"{train_s:.1f} s" if train_s == train_s else "reused from --workdir"
    print(f"train + register: {trained_how} ({result['metrics']['n_patterns']:.0f} patterns)")
    print_startups(starts)
    print(
        f"{'phase':<14}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv CPU ms/req':>16}{'client ms/req':>15}{'load1':>7}"
    )
    for name, r in phases.items():
        print(
            f"{name:<14}{r['requests']:>10}{r['errors']:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['cpu_ms_per_req']:>16.2f}{r['client_ms_per_req']:>15.2f}{r['load1']:>7.2f}"
        )
    print(
        "max: clients back to back (capacity; latency there is queueing, clients / throughput); "
        f"{args.rate:.0f}/s: the clients together offer that rate (latency from the scheduled send time)"
    )
    print(
        "srv CPU ms/req: the server process's CPU time (all threads, /proc/<pid>/stat) per request, which other "
        "load does not change; client ms/req: the load generator's; with both on an idle 2-core machine, about "
        "2000 / (srv + client) req/s. load1: 1-minute load average after the phase (the machine is shared)"
    )
    print(
        "targets: warm >= 400 req/s; cold >= 150 req/s with p99 <= 250 ms; start-up to ready <= 3 s; zero errors"
    )


if __name__ == "__main__":
    main()
