"""Search by meaning in the API process (``lib/narratives.VectorIndex``): the exhaustive float32
product against the int8 scan whose candidates are scored again in float32, on the same
vectors; time per query (p50, p95) and how many of the first events agree.

    python benchmarks/vector_scan.py --vectors PATH.parquet [--queries 200] [--threads 1,2,4,8,16]
        [--seconds 5] [--write docs/benchmarks.md]

The vectors are a ``ml/narrative_embeddings`` Parquet file (``benchmarks/api.py --vectors``
keeps the generated events', ``benchmarks/narrative_search.py --vectors`` the real ones).
Queries are windows' vectors with noise added, made unit length again: near some events,
as a real query is. One thread, as in the API (requests run side by side).

Then the same searches from several threads at once, as a worker's thread pool runs them:
queries a second with numpy's BLAS (OpenBLAS) on its own thread team, as a process gets it by
default, and on one thread, as the API and the dashboard run it (``ntsb_api.store.one_thread_per_request``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import REPO, emit, machine


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", default="1,2,4,8,16", help="thread counts of the concurrent runs, comma-separated")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each concurrent run")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    import numpy as np
    import pyarrow.parquet as pq
    import threadpoolctl

    from ntsb_assets.lib import narratives as N

    table = pq.read_table(args.vectors)
    t = time.perf_counter()
    index = N.VectorIndex(table)
    load = time.perf_counter() - t
    scan = index._scan
    if scan is None:
        raise SystemExit(f"{len(index):,} windows: under {N.INT8_SCAN_FROM:,}, the index does not scan in int8")
    rng = np.random.default_rng(1)
    queries = index.vectors[rng.integers(0, len(index), args.queries)]
    queries = queries + rng.normal(0, 0.08, queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sources = [str(e) for e in index.events[rng.integers(0, len(index.events), min(args.queries, 50))]]

    def timed(fn, items) -> tuple[list, float, float]:
        out, times = [], []
        for x in items:
            t = time.perf_counter()
            out.append(fn(x))
            times.append(time.perf_counter() - t)
        ms = np.asarray(times) * 1000
        return out, float(np.percentile(ms, 50)), float(np.percentile(ms, 95))

    rows = []
    with threadpoolctl.threadpool_limits(1, "blas"):
        for what, fn, items in (
            ("search, 10 events", lambda q: [h.ev_id for h in index.search(q, 10)], queries),
            ("search, 100 events (the hybrid's depth)", lambda q: [h.ev_id for h in index.search(q, 100)], queries),
            ("similar, 10 events", lambda e: [h.ev_id for h in index.similar(e, 10)], sources),
        ):
            index._scan = scan
            fast, p50, p95 = timed(fn, items)
            index._scan = None
            exact, e50, e95 = timed(fn, items)
            same = np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(fast, exact, strict=True)])
            rows.append((what, e50, e95, p50, p95, same))
    lines = [
        f"### Search by meaning in the API process: {len(index):,} windows of {len(index.events):,} events",
        "",
        f"`python benchmarks/vector_scan.py --vectors PATH --queries {args.queries}` on {machine()}, "
        f"{time.strftime('%Y-%m-%d')}; one thread; index loaded (int8 graph built) in {load:.1f} s.",
        "",
        "| query | float32 product p50 (ms) | p95 | int8 scan + float32 rescoring p50 (ms) | p95 | same events |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {w} | {a:.1f} | {b:.1f} | {c:.1f} | {d:.1f} | {s:.3f} |" for w, a, b, c, d, s in rows),
    ]
    index._scan = scan
    counts = [int(n) for n in args.threads.split(",")]
    team = max((i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"), default=1)
    lines += [
        "",
        f"The same searches from several threads at once ({args.seconds:g} s each; `--threads {args.threads}`): "
        f"queries a second, with numpy's BLAS on its default team of {team} threads / on one thread.",
        "",
        "| query | " + " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for what, fn, items in (
        ("search, 100 events (the hybrid's depth)", lambda q: index.search(q, 100), queries),
        ("similar, 10 events", lambda e: index.similar(e, 10), sources),
    ):
        cells = []
        for n in counts:
            default = concurrent(fn, items, n, args.seconds)
            with threadpoolctl.threadpool_limits(1, "blas"):
                one = concurrent(fn, items, n, args.seconds)
            cells.append(f"{default:,.0f} / {one:,.0f}")
            print(f"{what}, {n} threads: {default:,.0f} / {one:,.0f} a second", file=sys.stderr, flush=True)
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    emit("\n".join(lines) + "\n", args.write)


def concurrent(fn, items, threads: int, seconds: float) -> float:
    """Calls of ``fn`` a second, ``threads`` threads calling it on ``items`` in turn."""
    import threading

    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        j = i
        while time.perf_counter() < stop:
            fn(items[j % len(items)])
            j += threads
            done[i] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
