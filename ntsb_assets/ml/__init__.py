"""The ml group: the severity model's features (training, registry and predictions are to
come). Built from the archived marts, like the analytics; see docs/ml.md."""

import hashlib
import json
from contextlib import closing

import dagster as dg

from ..archive import archive_key
from ..lib import analytics as an
from ..lib import archive, features
from ..resources import NtsbResource
from ..resources.markdown import md_table

FEATURES_KEY = "ml/features/features.parquet"


def data_version(lake, con) -> dict:
    """What the features came from: the releases in the archived fact table and the
    fingerprint of each archived fact year."""
    releases = sorted(r[0] for r in con.execute("SELECT DISTINCT release_id FROM fact_accidents").fetchall() if r[0])
    years = archive.archived_fingerprints(lake, "fact_accidents")
    digest = hashlib.sha256(json.dumps([releases, sorted(years.items())], default=str).encode()).hexdigest()[:16]
    return {"version": digest, "releases": releases}


@dg.asset(key=["ml", "features"], group_name="ml", kinds={"duckdb", "parquet"},
          deps=[archive_key(t) for t in ("fact_accidents", "dim_aircraft", "dim_crew", "dim_time")])
def ml_features(ntsb: NtsbResource) -> dg.MaterializeResult:
    """Leakage-safe features, one row per event with a known severity, and both targets."""
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        df = features.build(con)
        version = data_version(lake, con)
    features.assert_allowed(c for c in df.columns if not c.startswith("target_"))
    size = an.put_frame(lake, FEATURES_KEY, df, {"ntsb.data_version": version["version"],
                                                 "ntsb.releases": json.dumps(version["releases"])})
    missing = [(f.name, f.group, f"{df[f.name].isna().mean():.0%}") for f in features.FEATURES]
    balance = df["target_severity"].value_counts()
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version["version"]),
        metadata={
            "dagster/row_count": len(df), "features": len(features.FEATURES), "bytes": size,
            "path": dg.MetadataValue.path(lake.uri(FEATURES_KEY)),
            "data version": version["version"], "releases": ", ".join(version["releases"]),
            "fatal share": float(df["target_fatal"].mean()) if len(df) else 0.0,
            "classes": dg.MetadataValue.md(md_table(["highest injury", "events"], balance.items())),
            "missing values": dg.MetadataValue.md(md_table(["feature", "group", "missing"], missing, numeric_from=2)),
        })
