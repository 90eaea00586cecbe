"""Generator and ingestion at NTSB scale.

    python benchmarks/synth_scale.py [--events 100000] [--big 1000000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--write docs/benchmarks.md]

Measures, each phase in its own process (peak RSS is the phase's own: the larger of the
process and its largest worker process):
- generation time and peak RSS for --events and --big events (``ntsb synth``);
- ingestion of the --events release: extraction to Parquet, then the warehouse load with
  change data capture, on DuckDB and on PostgreSQL;
- a monthly update (2,000 new + 1,000 changed events) of that release, on both.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import report, run_phase, scratch_database

PHASE = r"""
import json, sys, time
from pathlib import Path
phase, args = sys.argv[1], json.loads(sys.argv[2])
t = time.perf_counter()
if phase == "generate":
    from ntsb_assets.lib import synth
    m = synth.generate(Path(args["out"]), args["events"], seed=args["seed"])
    rows = sum(m["rows"].values())
elif phase == "update":
    from ntsb_assets.lib import synth
    m = synth.generate_update(Path(args["base"]), Path(args["out"]), args["new"], args["changed"], seed=args["seed"])
    rows = sum(m["rows"].values())
elif phase == "extract":
    from ntsb_assets.lib.extract import extract_release
    from ntsb_assets.lib.lake import Lake
    m = extract_release(Path(args["release"]), Lake(args["lake"]))
    rows = sum(v["rows_in"] for v in m["tables"].values())
else:
    from ntsb_assets.lib.extract import extract_release
    from ntsb_assets.lib.lake import Lake
    from ntsb_assets.lib.load import load_release
    from ntsb_assets.lib.warehouse import Warehouse
    lake = Lake(args["lake"])
    m = extract_release(Path(args["release"]), lake)   # reused from the lake
    t = time.perf_counter()
    r = load_release(m, lake, Warehouse(args["warehouse"]))
    rows = sum(v["rows_in"] for v in r["tables"].values())
    bad = {k: v for k, v in r["tables"].items() if v["quarantined"]}
    assert not bad or "eADMSPUB_DataDictionary" in bad and len(bad) == 1, bad
result = {"rows": rows, "seconds": time.perf_counter() - t}
"""


def run(phase: str, **args) -> dict:
    return run_phase(PHASE, phase, json.dumps(args))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000, help="events for the generation-only run (0 to skip)")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, up, lake = tmp / "base", tmp / "up01", tmp / "lake"
        rows.append((f"generate {args.events:,} events", run("generate", out=str(base), events=args.events, seed=1)))
        rows.append(
            (
                "generate update (2,000 new + 1,000 changed)",
                run("update", base=str(base), out=str(up), new=2000, changed=1000, seed=2),
            )
        )
        rows.append(
            (f"extract {args.events:,}-event release to Parquet", run("extract", release=str(base), lake=str(lake)))
        )
        rows.append(("extract the update", run("extract", release=str(up), lake=str(lake))))
        duck = f"duckdb:///{tmp}/wh.duckdb"
        rows.append(("load DuckDB: base (all inserts)", run("load", release=str(base), lake=str(lake), warehouse=duck)))
        rows.append(("load DuckDB: update (CDC)", run("load", release=str(up), lake=str(lake), warehouse=duck)))
        with scratch_database(args.pg) as pg:
            rows.append(
                ("load PostgreSQL: base (all inserts)", run("load", release=str(base), lake=str(lake), warehouse=pg))
            )
            rows.append(("load PostgreSQL: update (CDC)", run("load", release=str(up), lake=str(lake), warehouse=pg)))
        if args.big:
            big = tmp / "big"
            rows.append((f"generate {args.big:,} events", run("generate", out=str(big), events=args.big, seed=3)))
    report(
        f"Generator and ingestion at scale ({args.events:,} events)",
        f"python benchmarks/synth_scale.py --events {args.events} --big {args.big}",
        rows,
        args.write,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
