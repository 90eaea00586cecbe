"""The HTTP API under load, per deployment: p50/p95/p99 latency and requests/s.

    python benchmarks/api.py [--events 100000] [--seconds 10] [--connections 16] [--workers 2]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/14]
        [--endpoints stats,detail,keyword,semantic,hybrid,similar,predict]
        [--vectors PATH.parquet | --random-vectors]
        [--deployments embedded,PostgreSQL]
        [--write docs/benchmarks.md]

Needs ``wrk`` (Debian: ``apt-get install wrk``). Generates N events and, for each
deployment (embedded: DuckDB + the serving snapshot; production: PostgreSQL marts), loads
them, runs dbt build, archives, builds the features, trains the severity model and
registers it in a scratch MLflow store, writes the batch predictions and (embedded)
publishes the snapshot. The model trained on generated outcomes cannot pass its checks
(they are at chance level), so the benchmark records them as passed and promotes it by
hand: what is measured here is serving, not model quality.

Then ``ntsb api`` runs with ``--workers`` uvicorn processes (production: rate limits in
Redis), and wrk drives each endpoint twice for ``--seconds``:

- closed loop: ``--connections`` connections, each sending its next request as soon as
  the answer arrives (the most the server does);
- paced: 64 connections, each pausing a random time between requests so that together
  they send a set rate (the goal's 1,000/s for statistics and event detail; 200/s for
  predictions, 100/s for search); the mean pause is calibrated by short runs. wrk has no
  open-loop mode (wrk2 is not packaged for Debian): a slow
  answer delays that connection's next request instead of queueing behind it, so the
  paced percentiles are a little optimistic under overload; the closed-loop rows show the
  overload side.

Each request asks for a random event of all N (similar: of those with a narrative), a random
pair of narrative words (in each search mode), or a random valid feature row, so the
response cache (one per data version and worker) mostly misses on detail, search and
similar; statistics are one cached answer. Each wrk thread of each run draws its own
sequence (docs/benchmarks.md says what the runs that drew one for all measured). The
generated narratives are embedded once (36-46 minutes for 100,000 events on two cores) and
the second deployment reuses the vectors; ``--vectors`` keeps them for the next run.
``--random-vectors`` gives the model's windows random unit vectors instead (about a minute):
the same windows are scanned, and the same number of candidates scored again and fused, so a
search costs about what it costs with the model's vectors (the candidates' windows and the
hits' documents differ), but what it finds means nothing; the table's heading says so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, scratch_database
from dbt_build import dbt, load
from query_paths import write_archive

# Each wrk thread runs the script in a Lua state of its own: seeded alike, the threads would
# ask for the same events and words in the same order, and the second asking would be a hit of
# the response cache. So each thread of each run draws its own sequence.
WRK_SCRIPT = r"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  math.randomseed(%(seed)d * 1000 + tid)
end
%(delay)s
local ids = {%(ids)s}
local narrated = {%(narrated)s}
local words = {%(words)s}
local rows = {%(rows)s}
local kind = "%(kind)s"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  if kind == "detail" then
    return wrk.format("GET", "/api/v1/events/" .. ids[math.random(#ids)])
  elseif kind == "keyword" or kind == "semantic" or kind == "hybrid" then
    local q = words[math.random(#words)] .. "+" .. words[math.random(#words)]
    return wrk.format("GET", "/api/v1/search?limit=10&mode=" .. kind .. "&q=" .. q)
  elseif kind == "similar" then
    return wrk.format("GET", "/api/v1/events/" .. narrated[math.random(#narrated)] .. "/similar?limit=10")
  elseif kind == "predict" then
    wrk.headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/api/v1/predictions/severity", nil, rows[math.random(#rows)])
  end
  return wrk.format("GET", "/api/v1/stats/summary")
end
local errors = 0
response = function(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f %%f %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
"""
ENDPOINTS = {
    "stats": "GET /api/v1/stats/summary",
    "detail": "GET /api/v1/events/{ev_id}",
    "keyword": "GET /api/v1/search?mode=keyword&q=w1+w2",
    "semantic": "GET /api/v1/search?mode=semantic&q=w1+w2",
    "hybrid": "GET /api/v1/search?mode=hybrid&q=w1+w2",
    "similar": "GET /api/v1/events/{ev_id}/similar",
    "predict": "POST /api/v1/predictions/severity (with SHAP)",
}
# requests/s: the load of each paced run
PACED = {"stats": 1000, "detail": 1000, "keyword": 100, "semantic": 100, "hybrid": 100, "similar": 100, "predict": 200}
PACED_CONNECTIONS = 64


BY_MEANING = {"semantic", "hybrid", "similar"}  # the endpoints that need the narratives' vectors


def random_encoder(cache_dir: Path):
    """The model's tokenizer and windows (and its version, so that the API takes the vectors),
    with a random unit vector for each window instead of the model's (``--random-vectors``)."""
    import numpy as np

    from ntsb_assets.lib import embeddings

    class RandomVectors(embeddings.Encoder):
        def encode(self, chunks, progress=None):
            rng = np.random.default_rng(len(chunks))
            vectors = rng.standard_normal((len(chunks), embeddings.DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            if progress:
                progress(len(chunks))
            return vectors

    return RandomVectors(cache_dir=cache_dir)


def prepare(
    url: str, synth: Path, home: Path, vectors: Path | None, embed: bool = True, random_vectors: bool = False
) -> dict:
    """Warehouse, archive, features, a promoted model, predictions, the narratives' vectors
    (embedded, or those of ``vectors`` reused where a text's hash matches; the others are
    embedded and ``vectors`` written; none without ``embed``: no endpoint measured searches
    by meaning) and the publication (DuckDB: the snapshot; PostgreSQL: its keyword index)."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from ntsb_assets.lib import analytics as an
    from ntsb_assets.lib import embeddings, features, narratives, serving, tracking, typemap
    from ntsb_assets.lib import model as M
    from ntsb_assets.lib.lake import Lake
    from ntsb_assets.lib.predictions import prediction_table
    from ntsb_assets.lib.warehouse import Warehouse
    from ntsb_assets.settings import Settings

    load(home / "lake", url, [synth])
    dbt(url, "build")
    lake = Lake(str(home / "lake"))
    write_archive(url, lake)
    con = an.connect(lake)
    df = features.build(con)
    con.close()
    settings = Settings(home=home, warehouse_url=url, lake_url=str(home / "lake"))
    trained = M.train(df[df["target_severity"].notna()], params=M.Params(max_rounds=200))
    store = tracking.Store.from_settings(settings)
    with tracking.session(store) as client:
        _, version = tracking.log_training(client, store, trained, "[]", {}, {})
        tracking.set_checks(client, version, {"recorded as passed by benchmarks/api.py": True})
        tracking.promote(client, version)
    table = prediction_table(trained.model, version, df)
    if embed:
        if vectors is not None and vectors.exists():
            lake.write_parquet(narratives.VECTORS_KEY, pq.read_table(vectors))
        t = time.perf_counter()
        encoder = random_encoder(home / "models") if random_vectors else embeddings.Encoder(cache_dir=home / "models")
        embedded = narratives.refresh(lake, encoder)
        print(
            f"{url.split(':')[0]}: {embedded.texts:,} narrative texts, {embedded.embedded:,} embedded now, "
            f"{embedded.table.num_rows:,} windows, {time.perf_counter() - t:.0f} s",
            file=sys.stderr,
        )
        if vectors is not None:
            pq.write_table(embedded.table, vectors)
        with Warehouse(url).session() as s:
            narratives.store_vectors(s, embedded.table)
        narrated = sorted(set(embedded.table.column("ev_id").to_pylist()))
    else:
        with Warehouse(url).session(read_only=True) as s:
            narrated = sorted(set(s.query("SELECT ev_id FROM marts.narratives").column(0).to_pylist()))
    with Warehouse(url).session() as s:
        s.ensure_schema("ml")
        s.execute("DROP TABLE IF EXISTS ml.batch_predictions")
        s.ensure_table(
            "batch_predictions", {f.name: typemap.of_arrow(f.type) for f in table.schema}, schema="ml", key=("ev_id",)
        )
        s.insert_arrow("batch_predictions", table, schema="ml")
    if url.startswith("duckdb"):
        serving.publish(Warehouse(url).path, settings.serving_dir)
    else:
        serving.record_published(Warehouse(url))
    from ntsb_api.schemas import FeatureRow

    rows = []  # generated values outside the API's ranges are refused (422): keep valid rows only
    for r in (
        df.drop(columns=["ev_id", "event_date", "target_fatal", "target_severity"])
        .sample(400, random_state=1)
        .to_dict("records")
    ):
        body = json.dumps(
            {k: (None if pd.isna(v) else (bool(v) if isinstance(v, (bool, np.bool_)) else v)) for k, v in r.items()},
            default=float,
        )
        try:
            FeatureRow.model_validate_json(body)
        except ValueError:
            continue
        rows.append(body)
    with Warehouse(url).session(read_only=True) as s:
        text = " ".join(
            s.query("SELECT narrative FROM marts.narratives ORDER BY ev_id LIMIT 2000").column(0).to_pylist()
        )
    words = sorted({t for t in serving.tokens(text) if len(t) >= 4 and t.isalpha()})
    return {
        "settings": settings,
        "ids": df["ev_id"].tolist(),
        "narrated": narrated,
        "rows": rows[:200],
        "words": random.Random(1).sample(words, min(300, len(words))),
    }


RUNS = itertools.count(1)  # each wrk run's seed: no run repeats another's requests


def run_wrk(base: str, kind: str, token: str, data: dict, seconds: int, connections: int, delay: int = 0) -> dict:
    script = WRK_SCRIPT % {
        "seed": next(RUNS),
        "kind": kind,
        "token": token,
        "delay": f"delay = function() return math.random(0, {2 * delay}) end" if delay else "",
        "ids": ",".join(json.dumps(i) for i in data["ids"]),
        "narrated": ",".join(json.dumps(i) for i in data["narrated"]),
        "words": ",".join(json.dumps(w) for w in data["words"]),
        "rows": ",".join(json.dumps(r, ensure_ascii=False) for r in data["rows"]),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", fh.name, base], capture_output=True, text=True
    )
    os.unlink(fh.name)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    n, duration, p50, p95, p99, errors = line.split()[1:]
    return {
        "requests": int(n),
        "rps": int(n) / (int(duration) / 1e6),
        "p50": float(p50) / 1000,
        "p95": float(p95) / 1000,
        "p99": float(p99) / 1000,
        "errors": int(errors),
    }


def paced(base: str, kind: str, token: str, data: dict, seconds: int) -> dict:
    """wrk at about PACED[kind] requests/s: each connection pauses a random 0 to 2 x
    ``delay`` ms after an answer (random, so that the connections do not fire in step);
    rate = connections / (delay + latency), so one short run calibrates the pause."""
    target, conns = PACED[kind], PACED_CONNECTIONS
    delay = int(conns * 1000 / target)
    for _ in range(3):
        probe = run_wrk(base, kind, token, data, 3, conns, delay)
        if abs(probe["rps"] - target) < 0.03 * target or (delay == 0 and probe["rps"] < target) or not probe["rps"]:
            break  # on target, or as fast as it goes (no answer at all within the probe: overloaded)
        latency = conns * 1000 / probe["rps"] - delay  # ms per request cycle beyond the pause
        delay = max(0, round(conns * 1000 / target - latency))
    return run_wrk(base, kind, token, data, seconds, conns, delay) | {"delay_ms": delay}


def ready(base: str, token: str, data: dict, kinds: list[str], workers: int) -> None:
    """Each worker has loaded what its searches hold in memory (the vectors, the terms; the
    API loads them in the background at start, and a request waits for them): one request
    of each kind per worker, a few times over, before anything is measured. Keyword and
    semantic searches whatever is measured: a worker loads its index at start anyway
    (PostgreSQL's terms: several seconds of CPU), and that must not fall into the first
    endpoint's run."""
    import httpx

    paths = {
        "keyword": "/api/v1/search?mode=keyword&q=engine",
        "semantic": "/api/v1/search?mode=semantic&q=engine",
        "hybrid": "/api/v1/search?mode=hybrid&q=engine",
        "similar": f"/api/v1/events/{data['narrated'][0]}/similar",
        "detail": f"/api/v1/events/{data['ids'][0]}",
        "stats": "/api/v1/stats/summary",
        "predict": None,
    }
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each: the workers share the socket
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=300, limits=limits) as client:
        for _ in range(4 * workers):
            for kind in ["keyword", "semantic", *(k for k in kinds if k not in ("keyword", "semantic"))]:
                if paths.get(kind):
                    client.get(paths[kind])  # without vectors, semantic answers 503 once the load found none


def serve(settings, env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = random.randint(20000, 40000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntsb_assets.cli", "api", "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the API did not become ready")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    ap.add_argument("--write", type=Path)
    ap.add_argument("--endpoints", default=",".join(ENDPOINTS), help="which of them, comma-separated")
    given = ap.add_mutually_exclusive_group()
    given.add_argument(
        "--vectors", type=Path, help="reuse (and keep) the generated narratives' vectors in this Parquet file"
    )
    given.add_argument(
        "--random-vectors",
        action="store_true",
        help="random unit vectors for the narratives' windows: searches cost what they cost, find nothing meant",
    )
    ap.add_argument("--deployments", default="embedded,PostgreSQL", help="which of them, comma-separated")
    args = ap.parse_args()
    kinds = [k for k in args.endpoints.split(",") if k]
    deployments = [d for d in args.deployments.split(",") if d]
    if unknown := set(kinds) - set(ENDPOINTS):
        ap.error(f"unknown endpoints {sorted(unknown)}; choose among {', '.join(ENDPOINTS)}")
    sys.path.insert(0, str(REPO))
    import platform

    results = []
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.pg) as pg_url:
        tmp = Path(tmp)
        synth = tmp / "synth"
        subprocess.run(
            [sys.executable, "-m", "ntsb_assets.cli", "synth", "--events", str(args.events), "--seed", "1", str(synth)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        shared = args.vectors or tmp / "vectors.parquet"  # the second deployment reuses the first's vectors
        for name, url in (("embedded", f"duckdb:///{tmp}/embedded/warehouse.duckdb"), ("PostgreSQL", pg_url)):
            if name not in deployments:
                continue
            home = tmp / name
            data = prepare(
                url, synth, home, shared, embed=bool(set(kinds) & BY_MEANING), random_vectors=args.random_vectors
            )
            env = {
                **os.environ,
                "NTSB_HOME": str(home),
                "NTSB_WAREHOUSE_URL": url,
                "NTSB_LAKE_URL": str(home / "lake"),
                "NTSB_API_RATE_LIMIT": "100000000",
                "NTSB_API_SECRET": "benchmark-secret-that-is-long-enough-0123456789",
            }
            if name == "PostgreSQL":  # production: the rate limit counts in Redis
                env["NTSB_REDIS_URL"] = args.redis
            from ntsb_api.auth import create_token

            token = create_token(env["NTSB_API_SECRET"], "analyst", 3600)
            proc, base = serve(data["settings"], env, args.workers)
            try:
                ready(base, token, data, kinds, args.workers)
                for kind in kinds:
                    run_wrk(base, kind, token, data, 2, args.connections)  # warm-up
                    results.append(
                        (
                            name,
                            kind,
                            f"closed loop, {args.connections} connections",
                            run_wrk(base, kind, token, data, args.seconds, args.connections),
                        )
                    )
                    results.append(
                        (
                            name,
                            kind,
                            f"paced at {PACED[kind]:,}/s, {PACED_CONNECTIONS} connections",
                            paced(base, kind, token, data, args.seconds),
                        )
                    )
                    for row in results[-2:]:  # as they come: a long run shows its progress
                        print(_row(*row), file=sys.stderr, flush=True)
            finally:
                proc.terminate()
                proc.wait(20)
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"### API under load, {args.events:,} generated events"
        + (" (random vectors for the narratives: searches' costs, not their hits)" if args.random_vectors else ""),
        "",
        f"`python benchmarks/api.py --events {args.events} --seconds {args.seconds} --connections "
        f"{args.connections} --workers {args.workers}"
        + (f" --endpoints {args.endpoints}" if kinds != list(ENDPOINTS) else "")
        + (f" --deployments {args.deployments}" if len(deployments) < 2 else "")
        + (" --random-vectors" if args.random_vectors else "")
        + f"` on {machine}, {time.strftime('%Y-%m-%d')}; wrk "
        f"{_wrk_version()} (2 threads) on the same machine; {args.workers} API workers.",
        "",
        "| deployment | endpoint | load | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | non-200 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [_row(*row) for row in results]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0


def _row(name: str, kind: str, how: str, r: dict) -> str:
    return (
        f"| {name} | {ENDPOINTS[kind]} | {how} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
        f"{r['p99']:.1f} | {r['errors']} |"
    )


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    m = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    raise SystemExit(main())
