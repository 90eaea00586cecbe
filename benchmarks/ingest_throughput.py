"""Extraction and warehouse-load throughput (rows/s) and peak RSS, on DuckDB and PostgreSQL.

Until the generator lands (issue 3) the input is the bundled Part 121 release replicated
N times with rewritten event ids, so rows have the real shape and value mix.

    python benchmarks/ingest_throughput.py [--replicas 20] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--write docs/benchmarks.md]

Each phase runs in its own process; its peak RSS is the larger of the process and its
largest worker process.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from common import REPO, report, run_phase, scratch_database

SOURCE = REPO / "data" / "sample" / "landing" / "01_part121_1982_2019"


def make_release(out: Path, replicas: int) -> int:
    """Replicate every table; replica k rewrites ev_id's first four characters."""
    out.mkdir(parents=True)
    rows = 0
    for f in sorted(SOURCE.glob("*.csv")):
        with open(f, newline="", encoding="utf-8") as src, open(out / f.name, "w", newline="", encoding="utf-8") as dst:
            reader = csv.reader(src)
            writer = csv.writer(dst, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            body = list(reader)
            i = header.index("ev_id")
            for k in range(replicas):
                for r in body:
                    r2 = list(r)
                    r2[i] = f"R{k:03d}" + r[i][4:]
                    writer.writerow(r2)
                    rows += 1
    return rows


PHASE = r"""
import json, sys, time
from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.lake import Lake
from ntsb_assets.lib.load import load_release
from ntsb_assets.lib.warehouse import Warehouse
phase, release, lake_dir, wh_url = sys.argv[1:5]
lake = Lake(lake_dir)
t = time.perf_counter()
if phase == "extract":
    m = extract_release(release, lake)
    rows = sum(v["rows_in"] for v in m["tables"].values())
else:
    m = extract_release(release, lake)            # reused: the lake prefix exists
    r = load_release(m, lake, Warehouse(wh_url))
    rows = sum(v["rows_in"] for v in r["tables"].values())
result = {"rows": rows, "seconds": time.perf_counter() - t}
"""


def run(phase: str, release: Path, lake: Path, wh_url: str) -> dict:
    return run_phase(PHASE, phase, str(release), str(lake), wh_url)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL; a scratch database is created and dropped",
    )
    ap.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release = tmp / f"part121_x{args.replicas}"
        rows = make_release(release, args.replicas)
        lake = tmp / "lake"
        ext = run("extract", release, lake, "")
        results.append(("extract CSV -> Parquet (local lake)", ext))
        results.append(
            ("load DuckDB (first load: all inserts)", run("load", release, lake, f"duckdb:///{tmp}/wh.duckdb"))
        )
        results.append(
            ("load DuckDB (reload: all unchanged)", run("load", release, lake, f"duckdb:///{tmp}/wh.duckdb"))
        )
        with scratch_database(args.pg) as url:
            results.append(("load PostgreSQL (first load: all inserts)", run("load", release, lake, url)))
            results.append(("load PostgreSQL (reload: all unchanged)", run("load", release, lake, url)))
    report(
        f"Ingest throughput, {rows:,} rows (Part 121 sample x {args.replicas})",
        f"python benchmarks/ingest_throughput.py --replicas {args.replicas}",
        results,
        args.write,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
