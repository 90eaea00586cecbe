"""The whole graph end to end, as a user runs it: `ntsb build` on a new home with one
generated release in its landing zone (the full build), then `ntsb build` again after a
monthly update lands (2,000 new + 1,000 changed events by default), embedded and on
PostgreSQL.

    python benchmarks/end_to_end.py [--events 100000] [--new 2000] [--changed 1000]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--skip-pg] [--vectors PATH.parquet]
        [--write docs/benchmarks.md]
    python benchmarks/end_to_end.py --base REAL_RELEASE --update REAL_UPDATE [...]

With ``--base`` and ``--update`` (release folders or files, as `ntsb ingest` takes them), the
two builds load those instead of generated releases: real data, for example NTSB's 2025
update tables onto a base of real events.

Each build is one `ntsb build --json --auc-margin -1 --max-ece 1` process (the model's checks
relaxed: a generated release is not what docs/ml.md's thresholds are for): its wall time
counts everything a user waits for, the process's start and imports included. `ntsb build`
runs the runs the automation would launch (ntsb_assets/automation.py): the release's
ingestion; the quality gates, dbt and the docs site; the event years of the archive; the
analytics and the model's features; the model only when the features changed beyond
NTSB_RETRAIN_THRESHOLD (the full build: never trained); the predictions and the serving
snapshot. Its peak RSS is the largest of the process and every process it waited for (dbt),
from wait4.

The stages are the steps of those runs, timed from the Dagster event log (STEP_START to
STEP_SUCCESS):

- extract: the release archived, every table to typed Parquet in the lake, the lake's
  schema-drift checks
- load/CDC: the raw schema
- quality: the release's statistical gate and the raw gates (Great Expectations)
- dbt: models, snapshot, data tests
- dbt docs: the docs site (generated only when the project or the warehouse's columns changed)
- archive: Parquet by event year and the whole tables
- analytics: trends, risk, clusters, correlations, topics; the model's features and their check
- embeddings: the narratives' vectors of the new and changed texts, and their warehouse table
- ml: training, its checks and the promotion (when the features changed)
- serving: the batch predictions and the API's snapshot or published version
- process and runs: the rest of the wall time (the process's start and imports, Dagster's
  runs and event log around the steps, the landing-zone scan, the summary)

With ``--vectors``, the narratives' vectors of that Parquet file (``benchmarks/api.py``
writes one for the same generated base) are put in each new home's lake before its full
build: ``ml/narrative_embeddings`` reuses a vector whose text hash matches and embeds only
the others, so the full build's embeddings stage is then the reuse, not the 20 minutes of
embedding 100,000 generated events' narratives (measured on their own in the narrative
embeddings' section of docs/benchmarks.md); when the file does not exist, the first full
build's vectors are written there.

The releases are generated first (not timed). The lake is a local folder in both
deployments (S3 is covered by the tests, not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, scratch_database, timed_cli

sys.path.insert(0, str(REPO))

STAGES = {  # stage -> the steps (op names) it sums; "x__" is a prefix; "x" also covers x's checks ("x_...")
    "extract": ("releases__source", "lake_raw_tables"),
    "load/CDC": ("warehouse_raw_tables",),
    "quality": ("release_statistics", "raw_quality_gates"),
    "dbt": ("ntsb_dbt_models",),
    "dbt docs": ("docs__dbt",),
    "archive": ("archive_tables", "archive_years"),
    "analytics": ("analytics__", "ml__features"),
    "embeddings": ("ml__narrative_embeddings",),
    "ml": ("ml__severity_model", "ml__champion"),
    "serving": ("ml__batch_predictions", "serving__snapshot"),
}
OTHER = "process and runs"
GOALS = {"full build, embedded (s)": 60, "monthly update (s)": 20, "peak RSS (MB)": 2048}  # issue 27
ENV = {
    "DO_NOT_TRACK": "1",
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def stage_of(step: str) -> str:
    for name, steps in STAGES.items():
        if any(step == s or step.startswith(s if s.endswith("__") else s + "_") for s in steps):
            return name
    if step.startswith("freshness_check"):
        return "serving"
    raise SystemExit(f"step {step} belongs to no stage: add it to STAGES")


def build(env: dict) -> dict:
    """One `ntsb build` process: its summary, wall time, peak RSS and the runs it made."""

    started_at = time.time()
    out, seconds, peak = timed_cli(["build", "--json", "--auc-margin", "-1", "--max-ece", "1"], env)
    return {
        "summary": json.loads(out),
        "seconds": seconds,
        "peak_rss_mb": peak,
        "steps": steps_since(env, started_at),
    }


STEPS = """
import json, sys
import dagster as dg
out = []
with dg.DagsterInstance.get() as i:
    for r in i.get_run_records():
        if r.create_timestamp.timestamp() < float(sys.argv[1]):
            continue
        start = {}
        for e in i.all_logs(r.dagster_run.run_id):
            ev = e.dagster_event
            if ev is not None and ev.event_type_value == "STEP_START":
                start[ev.step_key] = e.timestamp
            elif ev is not None and ev.event_type_value == "STEP_SUCCESS":
                out.append((ev.step_key, e.timestamp - start[ev.step_key]))
print(json.dumps(out))
"""


def steps_since(env: dict, started_at: float) -> list[tuple[str, float]]:
    """(step, seconds) of every step of the runs created since ``started_at``, from the
    Dagster instance of the home."""
    res = subprocess.run(
        [sys.executable, "-c", STEPS, str(started_at)], env=env, capture_output=True, text=True, check=True
    )
    return [tuple(x) for x in json.loads(res.stdout.strip().splitlines()[-1])]


def breakdown(result: dict) -> dict[str, float]:
    out = dict.fromkeys([*STAGES, OTHER], 0.0)
    for step, seconds in result["steps"]:
        out[stage_of(step)] += seconds
    out[OTHER] = result["seconds"] - sum(out[s] for s in STAGES)
    return out


def land(release: Path, landing: Path) -> None:
    """A release into the landing zone, as a download would put it there."""
    if release.is_dir():
        shutil.copytree(release, landing / release.name, ignore=shutil.ignore_patterns("*.md", "LICENSE*"))
    else:
        shutil.copy(release, landing / release.name)


def deployment(name: str, base: Path, update: Path, extra: dict, vectors: Path | None = None) -> dict:
    from ntsb_assets.lib import narratives

    with tempfile.TemporaryDirectory(prefix=f"ntsb-e2e-{name}-") as tmp:
        home = Path(tmp) / "var"
        env = {**os.environ, **ENV, "NTSB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **extra}
        env.pop("NTSB_LANDING_URL", None)
        env.pop("NTSB_LAKE_URL", None)
        landing = home / "landing"
        landing.mkdir(parents=True)
        lake_vectors = home / "lake" / narratives.VECTORS_KEY
        if vectors is not None and vectors.exists():
            lake_vectors.parent.mkdir(parents=True)
            shutil.copy(vectors, lake_vectors)
        land(base, landing)
        full = build(env)
        if vectors is not None and not vectors.exists():
            shutil.copy(lake_vectors, vectors)
        land(update, landing)
        monthly = build(env)
    return {"full build": full, "monthly update": monthly}


def table(title: str, command: str, runs: dict[str, dict]) -> str:
    import platform

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    cols = [(d, b) for d in runs for b in ("full build", "monthly update")]
    parts = {c: breakdown(runs[c[0]][c[1]]) for c in cols}
    lines = [
        f"### {title}",
        "",
        f"`{command}` on {machine}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| stage (s) | " + " | ".join(f"{d}, {b}" for d, b in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for s in [*STAGES, OTHER]:
        lines.append(f"| {s} | " + " | ".join(f"{parts[c][s]:.1f}" for c in cols) + " |")
    lines.append("| **total (wall)** | " + " | ".join(f"**{runs[d][b]['seconds']:.1f}**" for d, b in cols) + " |")
    lines.append("| peak RSS (MB) | " + " | ".join(f"{runs[d][b]['peak_rss_mb']:.0f}" for d, b in cols) + " |")
    lines.append(
        "| model retrained | "
        + " | ".join("yes" if runs[d][b]["summary"]["ml"]["retrained"] else "no" for d, b in cols)
        + " |"
    )
    lines += ["", "The monthly update's longest steps (s):", "", "| step | " + " | ".join(runs) + " |"]
    lines.append("|---|" + "---:|" * len(runs))
    steps: dict[str, dict[str, float]] = {}
    for d in runs:
        for step, seconds in runs[d]["monthly update"]["steps"]:
            steps.setdefault(step, {})[d] = steps.get(step, {}).get(d, 0.0) + seconds
    for step, by in sorted(steps.items(), key=lambda kv: -max(kv[1].values()))[:12]:
        lines.append(f"| {step} | " + " | ".join(f"{by.get(d, 0.0):.1f}" for d in runs) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=2000)
    ap.add_argument("--changed", type=int, default=1000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--base", type=Path, help="a real release for the full build (instead of a generated one)")
    ap.add_argument("--update", type=Path, help="with --base: the real release of the update")
    ap.add_argument("--vectors", type=Path, help="reuse (or keep) the base's narrative vectors in this Parquet file")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    if bool(args.base) != bool(args.update):
        ap.error("--base and --update go together")
    from ntsb_assets.lib import synth

    with tempfile.TemporaryDirectory(prefix="ntsb-e2e-releases-") as tmp:
        if args.base:
            base, update = args.base.resolve(), args.update.resolve()
            title = f"End to end on real data: {base.name}, then {update.name}"
        else:
            base, update = Path(tmp) / f"synth{args.events}", Path(tmp) / "up01"
            synth.generate(base, args.events, seed=1)
            synth.generate_update(base, update, args.new, args.changed, seed=2)
            title = f"End to end, {args.events:,} generated events, then {args.new:,} new + {args.changed:,} changed"
        runs = {"embedded": deployment("embedded", base, update, {}, args.vectors)}
        if not args.skip_pg:
            with scratch_database(args.pg) as url:
                runs["PostgreSQL"] = deployment(
                    "postgres", base, update, {"NTSB_WAREHOUSE_URL": url, "NTSB_MLFLOW_URI": url}, args.vectors
                )
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--write" and (i == 0 or sys.argv[i] != "--write")]
    command = " ".join(["python benchmarks/end_to_end.py", *shown])
    text = table(title, command, runs)
    peak = max(r["peak_rss_mb"] for run in runs.values() for r in run.values())
    text += (
        f"\nGoals: full build embedded {runs['embedded']['full build']['seconds']:.0f} s "
        f"(goal < {GOALS['full build, embedded (s)']} s); "
        f"monthly update {max(r['monthly update']['seconds'] for r in runs.values()):.0f} s at most "
        f"(goal < {GOALS['monthly update (s)']} s); peak RSS {peak:.0f} MB (goal < {GOALS['peak RSS (MB)']} MB).\n"
    )
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
