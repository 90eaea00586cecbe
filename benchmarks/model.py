"""The severity model at scale: training time and single-row inference latency.

    python benchmarks/model.py [--events 100000] [--rows 1000] [--full-rounds 300] [--write docs/benchmarks.md]

Generates N events, loads them into a DuckDB warehouse, runs dbt build, writes the Parquet
archive, then, each phase in its own process (peak RSS):

- builds the features (DuckDB over the archive);
- trains both heads and both baselines (``lib/model.train``, the tree-shape search included;
  MLflow logging is not part of it), once with early stopping and once with ``--full-rounds``
  rounds per tree shape and no early stopping (a full-size model);

and, in this process, times ``--rows`` single-row calls of each trained model, one random
event at a time: ``predict`` (class and probabilities, no SHAP) and ``explain`` (the same plus the
TreeSHAP contributions: what the API's prediction endpoint calls). p50 and p95 are reported.
The generator's outcomes are independent of the features: the test-year ROC-AUC is
printed as a check that it stays at chance level (no leak through the generator).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, report, run_phase
from dbt_build import dbt, load
from query_paths import write_archive

FEATURES_PHASE = r"""
import json, sys, time
from contextlib import closing
from ntsb_assets.lib import analytics as an, features
from ntsb_assets.lib.lake import Lake
t = time.perf_counter()
with closing(an.connect(Lake(sys.argv[1]))) as con:
    df = features.build(con)
df.to_parquet(sys.argv[2])
result = {"rows": len(df), "seconds": time.perf_counter() - t}
"""

TRAIN_PHASE = r"""
import json, sys, time, warnings
import pandas as pd
from ntsb_assets.lib import model as M
warnings.filterwarnings("ignore")
df = pd.read_parquet(sys.argv[1])
df = df[df["target_severity"].notna()]
rounds = int(sys.argv[4])
params = M.Params(max_rounds=rounds, early_stopping_rounds=0) if rounds else M.Params()
trained = M.train(df, params=params)
trained.model.save(__import__("pathlib").Path(sys.argv[2]))
json.dump({"metrics": trained.metrics, "split": trained.model.split.describe(), "sizes": trained.sizes,
           "family": trained.model.family,
           "trees": {h: [trained.model.heads[h].shape.get("trees", 1),
                         trained.model.heads[h].shape.get("max_depth", "-")] for h in M.HEADS}},
          open(sys.argv[3], "w"))
result = {"rows": len(df), "seconds": trained.seconds}
"""


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--full-rounds", type=int, default=300)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import json
    import warnings

    import pandas as pd

    from ntsb_assets.lib import model as M
    from ntsb_assets.lib.lake import Lake

    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = tmp / "synth"
        subprocess.run(
            [sys.executable, "-m", "ntsb_assets.cli", "synth", "--events", str(args.events), "--seed", "1", str(synth)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        url = f"duckdb:///{tmp}/warehouse.duckdb"
        load(tmp / "lake", url, [synth])
        dbt(url, "build")
        lake = Lake(str(tmp / "archive"))
        write_archive(url, lake)
        stages = [("features from the archive", run_phase(FEATURES_PHASE, str(lake.root), str(tmp / "f.parquet")))]
        df = pd.read_parquet(tmp / "f.parquet")
        rows = [
            r._asdict()
            for r in df.sample(args.rows, random_state=1, replace=len(df) < args.rows)
            .drop(columns=["target_fatal", "target_severity"])
            .itertuples(index=False)
        ]
        timings, summaries = {}, {}
        for label, rounds in (
            ("early stopping", 0),
            (f"{args.full_rounds} rounds per shape, no early stopping", args.full_rounds),
        ):
            out = tmp / f"model_{rounds}"
            stages.append(
                (
                    f"train both heads and both baselines ({label})",
                    run_phase(TRAIN_PHASE, str(tmp / "f.parquet"), str(out), str(out) + ".json", str(rounds)),
                )
            )
            summaries[label] = json.loads(Path(str(out) + ".json").read_text())
            model = M.SeverityModel.load(out)
            for call_label, call in (("predict (no SHAP)", model.predict), ("explain (with SHAP)", model.explain)):
                for row in rows[:20]:  # warm-up
                    call(row)
                times = []
                for row in rows:
                    t = time.perf_counter()
                    call(row)
                    times.append((time.perf_counter() - t) * 1000)
                timings[(label, call_label)] = (statistics.median(times), percentile(times, 0.95))

    command = f"python benchmarks/model.py --events {args.events} --rows {args.rows} --full-rounds {args.full_rounds}"
    text = report(f"Severity model, {args.events:,} generated events; rows = events", command, stages, args.write)
    lines = [
        "",
        f"Single-row inference, {args.rows:,} random events one at a time:",
        "",
        "| model | trees (fatal head; four-class head, per class) | call | p50 (ms) | p95 (ms) |",
        "|---|---|---|---:|---:|",
    ]
    for (label, call_label), (p50, p95) in timings.items():
        trees = summaries[label]["trees"]
        shape = "; ".join(f"{n} of depth {d}" for n, d in trees.values())
        lines.append(f"| {label} | {shape} | {call_label} | {p50:.2f} | {p95:.2f} |")
    summary = summaries["early stopping"]
    auc = {h: summary["metrics"][h][summary["family"]]["roc_auc"] for h in M.HEADS}
    lines += [
        "",
        f"Split: {summary['split']}. The generator draws outcomes independently of the features, so "
        "early stopping ends after a few trees and the test-year ROC-AUC is chance level, as it must be "
        f"({', '.join(f'{h} {a:.3f}' for h, a in auc.items())}); the run without early stopping "
        "gives the cost of a full-size model. Model quality is reported on real data in docs/ml.md.",
        "",
    ]
    extra = "\n".join(lines)
    print(extra)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write(extra)
    return 0 if text else 1


if __name__ == "__main__":
    raise SystemExit(main())
