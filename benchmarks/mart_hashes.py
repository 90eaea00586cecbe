"""Row-for-row fingerprints of every mart, to show that a change of the code leaves the marts
as they were.

Builds the marts from scratch in a scratch home (the bundled sample's releases, or a
generated base and a monthly update), with `ntsb ingest` and `ntsb build` as a user runs
them: a first build, then the remaining releases and a second (incremental) build. Then
hashes each mart: its columns and types, and an order-free hash of its rows (each row as
JSON, floats to 12 significant digits, sorted). Columns that hold wall-clock times of the
run (load and snapshot times) are left out and named, and so are columns given with
``--leave-out``. Marts of at most 100 rows also keep their rows: where their hashes differ,
``--compare`` pairs the rows and allows floats a relative 1e-9 (an average summed in another
order). Run it on two checkouts and compare:

    python benchmarks/mart_hashes.py --sample --warehouse embedded --out before.json
    python benchmarks/mart_hashes.py --sample --warehouse embedded --out after.json
    python benchmarks/mart_hashes.py --compare before.json after.json

The generator changes from commit to commit: to feed two checkouts the same generated
releases, generate them once with ``--data DIR`` (kept there, and read from there when they
exist) and copy this script into the other checkout.

The checkout hashed is the one the script runs from (its ntsb_assets and dbt_project)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine, scratch_database  # noqa: E402

SAMPLE = REPO / "data" / "sample" / "landing"
# columns holding the wall-clock time of a load or a build, not data (the aircraft history's
# versions start when the snapshot ran; dbt_scd_id hashes that time; loaded_through is the
# load an incremental model's row was computed through)
RUN_TIME = re.compile(
    r"(^|_)(loaded_at|loaded_through|recorded_at|created_at|updated_at|valid_from|valid_to|dbt_scd_id)$"
)


def _ntsb(env: dict, *args: str) -> None:
    cmd = [sys.executable, "-m", "ntsb_assets.cli", *args]
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"ntsb {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    print(f"  ntsb {' '.join(a if len(a) < 60 else '...' + a[-40:] for a in args)}: {time.perf_counter() - t:.0f} s")


def build(releases: list[Path], first: int, env: dict) -> None:
    """Ingest ``releases[:first]``, build, then ingest the rest and build again."""
    for i, rel in enumerate(releases):
        _ntsb(env, "ingest", "--allow-synthetic", str(rel))
        if i + 1 == first:
            _ntsb(env, "build", "--allow-synthetic", "--auc-margin", "-1", "--max-ece", "1")
    if first < len(releases):
        _ntsb(env, "build", "--allow-synthetic", "--auc-margin", "-1", "--max-ece", "1")


SHOWN_ROWS = 100  # marts this small keep their rows in the output: --compare shows those that differ


def hashes(env: dict, leave_out: frozenset[str] = frozenset()) -> dict:
    """Per mart: its columns and types, the columns left out (run times, and ``leave_out``:
    ``mart.column``), rows, and the rows' hash; the rows themselves of marts of at most
    SHOWN_ROWS rows."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from ntsb_assets.lib.warehouse import q
        from ntsb_assets.settings import get_settings

        out = {}
        with get_settings().warehouse.session(read_only=True) as s:
            tables = sorted(t for (schema, t) in s.describe_relations(["marts"]) if not t.startswith("_"))
            for t in tables:
                cols = s.columns(t, "marts") or {}
                kept = sorted(c for c in cols if not RUN_TIME.search(c) and f"{t}.{c}" not in leave_out)
                data = s.query(f"SELECT {', '.join(q(c) for c in kept)} FROM marts.{q(t)}")
                rows = sorted(json.dumps(_rounded(r), default=str, sort_keys=True) for r in data.to_pylist())
                h = hashlib.sha256()
                for r in rows:
                    h.update(r.encode() + b"\n")
                out[t] = {
                    "columns": {c: cols[c] for c in kept},
                    "left_out": sorted(set(cols) - set(kept)),
                    "rows": len(rows),
                    "sha256": h.hexdigest(),
                }
                if len(rows) <= SHOWN_ROWS:
                    out[t]["row_values"] = rows
        return out
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _rounded(row: dict) -> dict:
    """Floats to 12 significant digits: an average over thousands of rows differs in its last
    bits when the database sums them in another order (a parallel aggregate, another plan)."""
    return {k: float(f"{v:.12g}") if isinstance(v, float) else v for k, v in row.items()}


def run(releases: list[Path], first: int, warehouse: str, pg: str, leave_out: frozenset[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="ntsb-hashes-") as tmp:
        env = {
            **os.environ,
            "NTSB_HOME": f"{tmp}/var",
            "DAGSTER_HOME": f"{tmp}/var/dagster",
            "NTSB_LANDING_URL": f"{tmp}/landing",  # empty: only what is ingested here
        }
        os.makedirs(f"{tmp}/var/dagster")
        os.makedirs(f"{tmp}/landing")
        shutil.copy(REPO / "deploy" / "dagster.embedded.yaml", f"{tmp}/var/dagster/dagster.yaml")
        if warehouse == "postgres":
            with scratch_database(pg) as url:
                env |= {"NTSB_WAREHOUSE_URL": url, "NTSB_MLFLOW_URI": url}
                build(releases, first, env)
                return hashes(env, leave_out)
        build(releases, first, env)
        return hashes(env, leave_out)


# An average of thousands of doubles, summed in another order (another scan order after an
# incremental merge, a parallel aggregate), differs in its last bits; rounded to 12 significant
# digits, one of a mart's hundred such values then often lands on the other side of a rounding
# boundary. Small marts keep their rows, and those are compared with this tolerance instead.
FLOAT_TOLERANCE = 1e-9


def _close(x: dict, y: dict) -> bool:
    """Both small marts' rows pair up: equal in every value but floats, and floats within
    FLOAT_TOLERANCE."""
    if "row_values" not in x or "row_values" not in y or x["rows"] != y["rows"]:
        return False

    def keyed(rows: list[str]) -> list[tuple]:  # by the values that are not floats, then the whole row
        parsed = [(json.loads(r), r) for r in rows]
        keys = [
            (json.dumps({k: v for k, v in d.items() if not isinstance(v, float)}, sort_keys=True), r) for d, r in parsed
        ]
        return [(key[0], d) for key, (d, _) in sorted(zip(keys, parsed, strict=True), key=lambda p: p[0])]

    for (kx, rx), (ky, ry) in zip(keyed(x["row_values"]), keyed(y["row_values"]), strict=True):
        if kx != ky or rx.keys() != ry.keys():
            return False
        for k, v in rx.items():
            if isinstance(v, float) and not math.isclose(v, ry[k], rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12):
                return False
    return True


def compare(a: dict, b: dict) -> int:
    """Prints the marts that differ; returns how many."""
    differ = 0
    for w in sorted(set(a["warehouses"]) | set(b["warehouses"])):
        ma, mb = a["warehouses"].get(w, {}), b["warehouses"].get(w, {})
        for t in sorted(set(ma) | set(mb)):
            x, y = ma.get(t), mb.get(t)
            if x is not None and y is not None and all(x[k] == y[k] for k in ("columns", "rows", "sha256")):
                extra = sorted(set(x["left_out"]) ^ set(y["left_out"]))  # run-time or --leave-out columns
                note = f"; columns left out, in one only: {', '.join(extra)}" if extra else ""
                print(f"{w:9s} {t:28s} identical ({x['rows']:,} rows{note})")
                continue
            if x is not None and y is not None and x["columns"] == y["columns"] and _close(x, y):
                print(
                    f"{w:9s} {t:28s} equal within float rounding ({x['rows']:,} rows; floats to a relative "
                    f"{FLOAT_TOLERANCE:g}, the rest exactly)"
                )
                continue
            differ += 1
            if x is None or y is None:
                print(f"{w:9s} {t:28s} only in {'second' if x is None else 'first'}")
                continue
            what = [k for k in ("columns", "rows", "sha256") if x[k] != y[k]]
            print(f"{w:9s} {t:28s} DIFFERS: {', '.join(what)}")
            if "columns" in what:
                print(f"{'':39s} columns: {sorted(set(x['columns'].items()) ^ set(y['columns'].items()))}")
            if "row_values" in x and "row_values" in y:  # a small mart: the rows in one only
                for side, rows in (
                    ("first", set(x["row_values"]) - set(y["row_values"])),
                    ("second", set(y["row_values"]) - set(x["row_values"])),
                ):
                    for r in sorted(rows)[:5]:
                        print(f"{'':39s} only in {side}: {r}")
    print(f"{differ} mart(s) differ")
    return differ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--sample", action="store_true", help="the bundled sample's releases (the default)")
    src.add_argument("--events", type=int, help="a generated base of this many events and a monthly update")
    ap.add_argument("--warehouse", choices=["embedded", "postgres", "both"], default="both")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument(
        "--data", type=Path, help="with --events: keep the generated releases here; read them from here when they exist"
    )
    ap.add_argument(
        "--leave-out",
        nargs="*",
        default=[],
        metavar="MART.COLUMN",
        help="columns not hashed (named in the output): a column another change added on purpose",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("FIRST", "SECOND"))
    args = ap.parse_args()
    if args.compare:
        return 1 if compare(*(json.loads(p.read_text()) for p in args.compare)) else 0
    with tempfile.TemporaryDirectory(prefix="ntsb-hashes-releases-") as tmp:
        if args.events:
            from ntsb_assets.lib import synth

            where = args.data or Path(tmp)
            base, update = where / f"synth{args.events}", where / "up01"
            if not all((d / synth.MANIFEST).exists() for d in (base, update)):  # written last
                synth.generate(base, args.events, seed=1)
                synth.generate_update(base, update, max(args.events // 50, 10), max(args.events // 100, 5), seed=2)
            releases, first, source = [base, update], 1, f"{args.events:,} generated events and an update"
        else:
            releases = sorted(p for p in SAMPLE.iterdir() if not p.name.startswith("."))
            first, source = 2, "the bundled sample"
        result = {"source": source, "machine": machine(), "commit": _commit(), "warehouses": {}}
        for w in ["embedded", "postgres"] if args.warehouse == "both" else [args.warehouse]:
            print(f"{w}: building from {source}")
            result["warehouses"][w] = run(releases, first, w, args.pg, frozenset(args.leave_out))
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
