"""The severity model on real NTSB events: every candidate's metrics, learning curves and the
features' worth, on a split by event year.

    python benchmarks/model_real.py [--data ../shared/data/ntsb/real_1948_2002] [--write docs/benchmarks.md]

Loads the release folder into a DuckDB warehouse, runs dbt build, writes the Parquet archive
and builds the features as the ``ml`` assets do, then:

- trains every candidate family with the project's defaults (``lib/model.train``: the search
  on the validation years, the champion chosen there) and prints each one's validation and
  test ROC-AUC and ECE next to the majority baseline's;
- learning curves of the fatal head: each family trained on the most recent 12.5 %, 25 %,
  50 % and all of the training years' events (the same validation and test years);
- the features' worth: the fatal head of each family without one group of features at a time
  (validation and test ROC-AUC against all features).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from common import REPO
from dbt_build import dbt, load
from query_paths import write_archive

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
GROUPS = {
    "location (state, region, country, near_airport, coordinates)": (
        "state",
        "region",
        "country",
        "near_airport",
        "latitude",
        "longitude",
        "airport_distance_sm",
    ),
    "make and model (and their frequencies)": ("make", "model"),
    "weather": ("weather_condition", "light_condition", "visibility_sm", "wind_speed_kts", "temperature_c"),
    "operation (FAR part, purpose, scheduled)": ("far_part", "flight_purpose", "is_scheduled"),
    "registration and type facts": (
        "is_us_registered",
        "is_homebuilt",
        "engine_count",
        "engine_type",
        "aircraft_category",
        "aircraft_count",
        "aircraft_age",
    ),
    "time (year, month, weekday, holiday, hour)": ("year", "month", "weekday", "is_us_federal_holiday", "hour"),
}


def fatal_auc(M, df, kinds, split, family, train_rows=None):
    """Validation and test ROC-AUC of one family's fatal head on a fixed split."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    years = df["event_date"].dt.year
    part = split.label(years)
    tr, va, te = (df[part == p] for p in ("train", "valid", "test"))
    if train_rows is not None:
        tr = tr.sort_values("event_date").tail(train_rows)
    enc = M.Encoder.fit(tr, kinds)
    target, classes = M.HEADS["fatal"]
    y = {k: M._codes(d[target], classes) for k, d in (("tr", tr), ("va", va), ("te", te))}
    head = M._fit_head(family, "fatal", enc, enc.transform(tr), y["tr"], enc.transform(va), y["va"], M.Params(), 2)
    return tuple(
        float(roc_auc_score(y[k], head.proba(enc.transform(d))[:, 1])) if len(np.unique(y[k])) > 1 else None
        for k, d in (("va", va), ("te", te))
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ntsb" / "real_1948_2002")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import warnings

    import pandas as pd

    from ntsb_assets.lib import analytics as an
    from ntsb_assets.lib import features
    from ntsb_assets.lib import model as M
    from ntsb_assets.lib.lake import Lake

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"duckdb:///{tmp}/warehouse.duckdb"
        load(tmp / "lake", url, [args.data])
        dbt(url, "build")
        lake = Lake(str(tmp / "archive"))
        write_archive(url, lake)
        with closing(an.connect(lake)) as con:
            df = features.build(con)
    df = df[df["target_severity"].notna()].copy()
    df["event_date"] = pd.to_datetime(df["event_date"])
    kinds = {f.name: f.kind for f in features.FEATURES}
    print(
        f"{len(df):,} labelled events, fatal share {df['target_fatal'].mean():.3f} "
        f"({time.perf_counter() - started:.0f} s to build the graph)",
        flush=True,
    )

    t = time.perf_counter()
    trained = M.train(df, features=kinds)
    split = trained.model.split
    lines = [
        f"## Severity model on real events (`{args.data.name}`)",
        "",
        f"Command: `python benchmarks/model_real.py --data {args.data.name}`; {len(df):,} labelled events "
        f"(fatal share {df['target_fatal'].mean():.1%}); split by event year: train {split.describe()['train']} "
        f"({trained.sizes['train']:,}), validation {split.describe()['valid']} ({trained.sizes['valid']:,}), "
        f"test {split.describe()['test']} ({trained.sizes['test']:,}); training of every candidate "
        f"{time.perf_counter() - t:.0f} s.",
        "",
        "| head | model | valid ROC-AUC | valid ECE | test ROC-AUC | test ECE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for head in M.HEADS:
        for m in M.MODELS:
            v, te = trained.valid_metrics[head][m], trained.metrics[head][m]
            star = " (champion)" if m == trained.model.family else ""
            lines.append(
                f"| {head} | {m}{star} | {v['roc_auc']:.3f} | {v['ece']:.3f} | {te['roc_auc']:.3f} | {te['ece']:.3f} |"
            )
    lines += [
        "",
        M.selection_text(trained),
        "",
        "Learning curves, fatal head (ROC-AUC, validation / test), trained "
        "on the most recent part of the training years:",
        "",
        "| training events | " + " | ".join(M.FAMILIES) + " |",
        "|---:|" + "---|" * len(M.FAMILIES),
    ]
    n_train = trained.sizes["train"]
    for frac in FRACTIONS:
        rows = int(n_train * frac)
        cells = [f"{a:.3f} / {b:.3f}" for a, b in (fatal_auc(M, df, kinds, split, f, rows) for f in M.FAMILIES)]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "The features' worth, fatal head (ROC-AUC validation / test without the group; all features first):",
        "",
        "| without | " + " | ".join(M.FAMILIES) + " |",
        "|---|" + "---|" * len(M.FAMILIES),
    ]
    full = {f: fatal_auc(M, df, kinds, split, f) for f in M.FAMILIES}
    lines.append("| (nothing: all features) | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in full.values()) + " |")
    for group, names in GROUPS.items():
        kept = {k: v for k, v in kinds.items() if k not in names}
        cells = [f"{a:.3f} / {b:.3f}" for a, b in (fatal_auc(M, df, kept, split, f) for f in M.FAMILIES)]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    missing = [f.name for f in features.FEATURES if df[f.name].isna().all()]
    lines += [
        "",
        f"Features with no value at all in these events (the export does not carry them): "
        f"{', '.join(missing) or 'none'}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
