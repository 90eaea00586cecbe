"""`ntsb ingest` of NTSB's flat AviationData export at the size of the full export.

    python benchmarks/flat_ingest.py [--events 78000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--skip-pg] [--write docs/benchmarks.md]

Generates a release of --events events (`ntsb synth`; one aircraft row per aircraft, so a
little more rows than events, as in NTSB's export of about 80,000 rows) and writes it in the
flat form (`ntsb synth --flat`), then times one `ntsb ingest --json FILE` process per
deployment on a new home: what a user waits for, the process's start and imports, the
Dagster run, the mapping, the extraction to Parquet and the warehouse load included. Peak
RSS is the largest of the process and the processes it waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, report, scratch_database, timed_cli

ENV = {"DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1", "GX_ANALYTICS_ENABLED": "false"}


def ingest(path: Path, home: Path, extra: dict) -> dict:
    env = {**os.environ, **ENV, "NTSB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra}
    out, seconds, peak = timed_cli(["ingest", "--json", str(path)], env)
    return {"rows": json.loads(out)["tables"]["aircraft"]["rows_in"], "seconds": seconds, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=78_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ntsb-flat-") as tmp:
        flat = Path(tmp) / "AviationData.csv"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ntsb_assets.cli",
                "synth",
                "--events",
                str(args.events),
                "--seed",
                "1",
                "--flat",
                str(flat),
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        rows = [
            ("ntsb ingest of the flat CSV, embedded (DuckDB, local lake)", ingest(flat, Path(tmp) / "embedded", {}))
        ]
        if not args.skip_pg:
            with scratch_database(args.pg) as url:
                rows.append(
                    (
                        "ntsb ingest of the flat CSV, PostgreSQL",
                        ingest(flat, Path(tmp) / "pg", {"NTSB_WAREHOUSE_URL": url, "NTSB_MLFLOW_URI": url}),
                    )
                )
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--write" and (i == 0 or sys.argv[i] != "--write")]
    report(
        f"The flat AviationData export, {args.events:,} generated events; rows = flat rows (one per aircraft)",
        " ".join(["python benchmarks/flat_ingest.py", *shown]),
        rows,
        args.write,
    )


if __name__ == "__main__":
    main()
