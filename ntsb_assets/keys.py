"""Every asset key of the graph, built in one place. An asset's key is its layer followed
by its name: ``lake/raw/<table>``, ``warehouse/<schema>/<model>``, ``archive/<mart>``,
``analytics/<name>``, ``ml/<name>``, ``serving/<name>``. The dbt translator, the archive,
the serving snapshot, the checks, the freshness policy and the CLI all ask this module."""

from __future__ import annotations

import dagster as dg

from .lib.load import warehouse_table

LAKE, WAREHOUSE, ARCHIVE, ANALYTICS, ML, SERVING = "lake", "warehouse", "archive", "analytics", "ml", "serving"
MARTS = "marts"


def lake_raw(table: str) -> dg.AssetKey:
    """A raw table as extracted into the lake (Parquet per release)."""
    return dg.AssetKey([LAKE, "raw", table])


def warehouse(schema: str, name: str) -> dg.AssetKey:
    """A relation in the warehouse: a raw table, a dbt source or model, by schema."""
    return dg.AssetKey([WAREHOUSE, schema, name])


def warehouse_raw(table: str) -> dg.AssetKey:
    """A raw table as loaded into the warehouse (under its warehouse name)."""
    return warehouse("raw", warehouse_table(table))


def mart(name: str) -> dg.AssetKey:
    """A dbt model in the marts schema."""
    return warehouse(MARTS, name)


def archive(table: str) -> dg.AssetKey:
    return dg.AssetKey([ARCHIVE, table])


def analytics(name: str) -> dg.AssetKey:
    return dg.AssetKey([ANALYTICS, name])


def ml(name: str) -> dg.AssetKey:
    return dg.AssetKey([ML, name])


RELEASE_SOURCE = dg.AssetKey(["releases", "source"])
RELEASE_MANIFEST = lake_raw("release_manifest")
RECONCILIATION = warehouse("raw", "_reconciliation")
CODE_SETS = warehouse("raw", "_code_sets")
RAW_RELEASES = warehouse("raw", "_releases")
FACT = mart("fact_accidents")
FEATURES = ml("features")
MODEL = ml("severity_model")
CHAMPION = ml("champion")
BATCH_PREDICTIONS = ml("batch_predictions")
NARRATIVE_EMBEDDINGS = ml("narrative_embeddings")
SNAPSHOT = dg.AssetKey([SERVING, "snapshot"])

# The tags of a run over a range of partitions (Dagster's single-run backfill of the archive's
# event years), as Dagster documents them.
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"
