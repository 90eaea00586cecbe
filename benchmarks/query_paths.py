"""One query, every path: "aggregate N events by year and severity".

    python benchmarks/query_paths.py [--events 100000] [--repeat 21]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--write docs/benchmarks.md]

Generates N events, loads them into a DuckDB and a PostgreSQL warehouse, runs dbt build on
both, writes the Parquet archive from the DuckDB warehouse, then times the same answer
(event count per year and highest injury) on:

- PostgreSQL, raw.events (the loaded NTSB table);
- PostgreSQL, the staging view over it;
- PostgreSQL, the materialized view marts.agg_yearly_stats (one row per year, counts per
  severity already summed);
- DuckDB, the embedded warehouse's marts.fact_accidents;
- DuckDB in-process over the Parquet archive (year from the Hive path).

Each query runs once cold (first after connecting), then ``--repeat`` times; the median and
the 95th percentile of the repeats are reported. Every path must return the same counts.

A second table times, on the same data, writing the whole archive (from each warehouse),
planning when nothing changed, and each analytics function in its own process (peak RSS).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, report, run_phase, scratch_database
from dbt_build import dbt, load

SEVERITY_COLUMNS = {
    "FATL": "fatal_events",
    "SERS": "serious_events",
    "MINR": "minor_events",
    "NONE": "no_injury_events",
}
QUERIES = {
    "PostgreSQL, raw.events": (
        "postgres",
        "SELECT CAST(extract(year FROM ev_date) AS INTEGER) AS year, ev_highest_injury AS severity, "
        "count(*) AS events FROM raw.events GROUP BY 1, 2",
    ),
    "PostgreSQL, staging view": (
        "postgres",
        "SELECT CAST(extract(year FROM event_date) AS INTEGER) AS year, severity, count(*) AS events "
        "FROM staging.stg_ntsb__events GROUP BY 1, 2",
    ),
    "PostgreSQL, materialized view": (
        "postgres",
        "SELECT year, fatal_events, serious_events, minor_events, no_injury_events, events FROM marts.agg_yearly_stats",
    ),
    "DuckDB, embedded warehouse": (
        "duckdb",
        "SELECT CAST(year(event_date) AS INTEGER) AS year, severity, count(*) AS events "
        "FROM marts.fact_accidents GROUP BY ALL",
    ),
    "DuckDB over the Parquet archive": (
        "archive",
        "SELECT CAST(year AS INTEGER) AS year, severity, count(*) AS events FROM fact_accidents GROUP BY ALL",
    ),
}


def normalize(name: str, rows: list[tuple]) -> dict:
    """(year, severity) -> events, whatever shape the path answers in."""
    out = {}
    if "materialized" in name:
        for year, *counts, total in rows:
            for sev, n in zip(SEVERITY_COLUMNS, counts, strict=True):
                if n:
                    out[(year, sev)] = n
            if total - sum(counts):
                out[(year, None)] = total - sum(counts)
        return out
    for year, sev, n in rows:
        sev = sev.strip() if isinstance(sev, str) and sev.strip() in SEVERITY_COLUMNS else None
        out[(year, sev)] = out.get((year, sev), 0) + n
    return out


def time_query(run, repeat: int) -> dict:
    t = time.perf_counter()
    rows = run()
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    return {
        "rows": rows,
        "cold_ms": cold * 1000,
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))] * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import duckdb
    import psycopg2

    from ntsb_assets.lib import analytics, archive
    from ntsb_assets.lib.lake import Lake
    from ntsb_assets.lib.warehouse import Warehouse

    results = {}
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.pg) as pg_url:
        tmp = Path(tmp)
        synth = tmp / "synth"
        subprocess.run(
            [sys.executable, "-m", "ntsb_assets.cli", "synth", "--events", str(args.events), "--seed", "1", str(synth)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        duck_url = f"duckdb:///{tmp}/warehouse.duckdb"
        for url, lake in ((duck_url, tmp / "lake"), (pg_url, tmp / "lake_pg")):
            load(lake, url, [synth])
            dbt(url, "build")
        stages = []
        for label, url in (("PostgreSQL", pg_url), ("DuckDB", duck_url)):
            stages.append((f"archive everything from {label}", write_archive(url, Lake(str(tmp / f"archive_{label}")))))
        lake = Lake(str(tmp / "archive_DuckDB"))
        t = time.perf_counter()
        with Warehouse(duck_url).session(read_only=True) as s:
            assert not archive.plan(s, lake, range(1900, 2100)).years
        stages.append(
            (
                "plan the archive when nothing changed (DuckDB)",
                {"rows": args.events, "seconds": time.perf_counter() - t, "peak_rss_mb": None},
            )
        )
        files = lake.list("archive/fact_accidents")
        for name, call in ANALYTICS.items():
            stages.append((f"analytics: {name}", run_phase(ANALYTICS_PHASE, str(lake.root), call)))

        pg = psycopg2.connect(pg_url)
        pg.set_session(readonly=True, autocommit=True)
        duck = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
        parquet = analytics.connect(lake)
        runners = {
            "postgres": lambda sql: lambda: _pg(pg, sql),
            "duckdb": lambda sql: lambda: duck.execute(sql).fetchall(),
            "archive": lambda sql: lambda: parquet.execute(sql).fetchall(),
        }
        for name, (where, sql) in QUERIES.items():
            results[name] = time_query(runners[where](sql), args.repeat)
        events = {n: sum(normalize(n, r["rows"]).values()) for n, r in results.items()}
        answers = {n: normalize(n, r["rows"]) for n, r in results.items()}
        first = next(iter(answers.values()))
        for n, a in answers.items():
            if a != first:
                raise SystemExit(
                    f"{n} answers differently from {next(iter(answers))}: "
                    f"{sorted(set(a.items()) ^ set(first.items()))[:5]}"
                )
        pg.close()
        duck.close()

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        f"### Aggregate {args.events:,} events by year and severity",
        "",
        f"`python benchmarks/query_paths.py --events {args.events} --repeat {args.repeat}` on {machine}, "
        f"{time.strftime('%Y-%m-%d')}. Archive: {len(files)} year files. Every path returned the same "
        f"{len(first)} (year, severity) counts over {next(iter(events.values())):,} events.",
        "",
        "| path | cold (ms) | median (ms) | p95 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['cold_ms']:.1f} | {r['median_ms']:.2f} | {r['p95_ms']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    report(
        f"Archive and analytics, {args.events:,} events; rows = events",
        f"python benchmarks/query_paths.py --events {args.events}",
        stages,
        args.write,
    )
    return 0


def write_archive(url: str, lake) -> dict:
    """Every table, every year, from the warehouse at ``url`` into ``lake``."""
    from ntsb_assets.lib import archive
    from ntsb_assets.lib.warehouse import Warehouse

    t = time.perf_counter()
    with Warehouse(url).session(read_only=True) as s:
        plan = archive.plan(s, lake, range(1900, 2100))
        written = [w for table in archive.year_tables() for w in archive.write(s, lake, table, plan.years)]
        written += [w for table in archive.whole_tables() for w in archive.write(s, lake, table)]
    rows = sum(w.rows for w in written if w.table == "fact_accidents")
    return {"rows": rows, "seconds": time.perf_counter() - t, "peak_rss_mb": None}


ANALYTICS = {
    "trends": "an.trends(con)",
    "make/model risk": "an.make_model_risk(con, 10)",
    "geospatial clusters (DBSCAN)": "an.geo_clusters(con, 25.0)",
    "correlations": "an.correlations(con, 30)",
}
ANALYTICS_PHASE = r"""
import json, sys, time
from contextlib import closing
from ntsb_assets.lib import analytics as an
from ntsb_assets.lib.lake import Lake
t = time.perf_counter()
with closing(an.connect(Lake(sys.argv[1]))) as con:
    eval(sys.argv[2])
    rows = con.execute("SELECT count(*) FROM fact_accidents").fetchone()[0]
result = {"rows": rows, "seconds": time.perf_counter() - t}
"""


def _pg(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


if __name__ == "__main__":
    raise SystemExit(main())
