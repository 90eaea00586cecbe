"""`dbt build` wall time on both targets, for the bundled sample and for generated events.

    python benchmarks/dbt_build.py [--events 100000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--write docs/benchmarks.md]

The releases are loaded with the ingestion library first (not timed here: see the other
benchmarks); then `dbt build` (models, snapshot, tests) runs once on each warehouse.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, report, scratch_database

LOAD = r"""
import sys
from pathlib import Path
from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.lake import Lake
from ntsb_assets.lib.load import load_release
from ntsb_assets.lib.warehouse import Warehouse
lake, wh = Lake(sys.argv[1]), Warehouse(sys.argv[2])
for release in sys.argv[3:]:
    load_release(extract_release(Path(release), lake), lake, wh)
"""


def load(lake: Path, url: str, releases: list[Path]) -> None:
    subprocess.run([sys.executable, "-c", LOAD, str(lake), url, *map(str, releases)], cwd=REPO, check=True)


def dbt(url: str, *command: str) -> dict:
    """One dbt command on the warehouse at ``url``; rows = events in fact_accidents."""
    from ntsb_assets.lib.warehouse import Warehouse
    from ntsb_assets.settings import Settings

    env = os.environ | Settings(warehouse_url=url).dbt_env()
    exe = str(Path(sys.executable).with_name("dbt"))
    t = time.perf_counter()
    out = subprocess.run(
        [exe, *command, "--quiet", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(out.stdout + out.stderr)
    with Warehouse(url).session(read_only=True) as s:
        rows = s.query("SELECT count(*) AS n FROM marts.fact_accidents").column(0)[0].as_py()
    return {"rows": rows, "seconds": seconds, "peak_rss_mb": None}  # dbt's own processes: not measured


def runs(url: str, target: str, label: str, tmp: Path) -> list:
    """First build, a second build over the same data (on PostgreSQL: marts replaced in place,
    aggregate views refreshed concurrently), and the docs site."""
    docs = ["docs", "generate", "--static", "--target-path", str(tmp / "docs")]
    return [
        (f"dbt build, {target}, {label}", dbt(url, "build")),
        (f"dbt build again, {target}, {label}", dbt(url, "build")),
        (f"dbt docs generate, {target}, {label}", dbt(url, *docs)),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sample = sorted((REPO / "data" / "sample" / "landing").iterdir())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = tmp / "synth"
        subprocess.run(
            [sys.executable, "-m", "ntsb_assets.cli", "synth", "--events", str(args.events), "--seed", "1", str(synth)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        for label, releases in (
            ("bundled sample (6 releases)", sample),
            (f"{args.events:,} generated events", [synth]),
        ):
            duck = f"duckdb:///{tmp}/{len(rows)}.duckdb"
            load(tmp / f"lake{len(rows)}", duck, releases)
            rows += runs(duck, "DuckDB", label, tmp)
            with scratch_database(args.pg) as url:
                load(tmp / f"lake{len(rows)}", url, releases)
                rows += runs(url, "PostgreSQL", label, tmp)
    report(
        "dbt build (models, snapshot, tests); rows = events in fact_accidents",
        f"python benchmarks/dbt_build.py --events {args.events}",
        rows,
        args.write,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
