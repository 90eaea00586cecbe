"""`ntsb ingest` of a release in one of NTSB's other forms at its real size: the flat
AviationData export (about 80,000 rows) or PRE1982 (87,039 events).

    python benchmarks/form_ingest.py [--form flat|pre1982] [--events 78000]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--skip-pg] [--write docs/benchmarks.md]

Generates a release of --events events (`ntsb synth`) and writes it in the form: flat (`ntsb
synth --flat`, one row per aircraft, so a little more rows than events) or PRE1982's tables
(`ntsb synth --pre1982`, one record per event), then times one `ntsb ingest --json` process per
deployment on a new home: what a user waits for, the process's start and imports, the
Dagster run, the mapping, the extraction to Parquet and the warehouse load included. Peak
RSS is the largest of the process and the processes it waited for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from common import report, scratch_database, synth, timed_cli

ENV = {"DO_NOT_TRACK": "1", "DAGSTER_DISABLE_TELEMETRY": "1", "GX_ANALYTICS_ENABLED": "false"}


# form -> (the synth option, the file or folder it writes, what the report calls a row)
FORMS = {
    "flat": ("--flat", "AviationData.csv", "flat rows (one per aircraft)", "the flat CSV"),
    "pre1982": ("--pre1982", "PRE1982", "PRE1982 records (one per event)", "the PRE1982 tables"),
}


def ingest(path: Path, home: Path, extra: dict) -> dict:
    env = {**os.environ, **ENV, "NTSB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra}
    out, seconds, peak = timed_cli(["ingest", "--json", str(path)], env)
    return {"rows": json.loads(out)["tables"]["aircraft"]["rows_in"], "seconds": seconds, "peak_rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--form", choices=FORMS, default="flat")
    ap.add_argument("--events", type=int, default=78_000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    option, name, unit, what = FORMS[args.form]
    with tempfile.TemporaryDirectory(prefix="ntsb-form-") as tmp:
        release = Path(tmp) / name
        synth("--events", str(args.events), "--seed", "1", option, str(release))
        rows = [(f"ntsb ingest of {what}, embedded (DuckDB, local lake)", ingest(release, Path(tmp) / "embedded", {}))]
        if not args.skip_pg:
            with scratch_database(args.pg) as url:
                rows.append(
                    (
                        f"ntsb ingest of {what}, PostgreSQL",
                        ingest(release, Path(tmp) / "pg", {"NTSB_WAREHOUSE_URL": url, "NTSB_MLFLOW_URI": url}),
                    )
                )
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--write" and (i == 0 or sys.argv[i] != "--write")]
    report(
        f"{'The flat AviationData export' if args.form == 'flat' else 'PRE1982'}, {args.events:,} generated "
        f"events; rows = {unit}",
        " ".join(["python benchmarks/form_ingest.py", *shown]),
        rows,
        args.write,
    )


if __name__ == "__main__":
    main()
