"""The jobs: one place, since they select across the groups."""

import dagster as dg

from .analytics import analytics_assets
from .archive import ARCHIVE_JOB, YEARS, archive_tables, archive_years
from .freshness import freshness_checks
from .ml import batch_predictions, ml_assets, ml_features, narrative_embeddings
from .quality import raw_gates, release_statistics
from .releases import INGEST_JOB, RELEASES
from .serving import serving_assets
from .settings import Settings
from .transform.assets import ntsb_dbt_models
from .transform.docs import dbt_docs_site


def executor() -> dg.ExecutorDefinition:
    """In process (the embedded warehouse admits one writer; one process per step costs
    seconds each), or a Kubernetes Job per step when ``NTSB_EXECUTOR=k8s``."""
    if Settings().executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return dg.in_process_executor


EXECUTOR = executor()

ingest_release_job = dg.define_asset_job(
    INGEST_JOB,
    selection=(
        dg.AssetSelection.groups("releases", "lake_raw", "warehouse_raw").without_checks()
        | dg.AssetSelection.groups("lake_raw")  # with the lake's schema-drift checks
        | dg.AssetSelection.checks(release_statistics)
    ),  # the statistical gate of the release
    partitions_def=RELEASES,
    executor_def=EXECUTOR,
    description="Ingest one release: archive the source, extract every table to the lake, "
    "load the warehouse raw schema with change data capture, compare it with the "
    "previous release of its source.",
)

transform_job = dg.define_asset_job(
    "transform",
    selection=(
        dg.AssetSelection.checks(raw_gates)  # blocking quality gates first
        | dg.AssetSelection.assets(ntsb_dbt_models)
        | dg.AssetSelection.assets(dbt_docs_site, archive_tables)
    )
    - dg.AssetSelection.checks(*freshness_checks),  # those run from their own sensor
    executor_def=EXECUTOR,
    description="Quality gates on the raw tables, then dbt build (staging, marts, aggregates, "
    "with dbt tests as checks), then the dbt docs site and the archive of the tables "
    "without an event year.",
)

archive_job = dg.define_asset_job(
    ARCHIVE_JOB,
    selection=dg.AssetSelection.assets(archive_years),
    partitions_def=YEARS,
    executor_def=EXECUTOR,
    description="Write event years of the marts to the Parquet archive (runs over a range of years "
    "are one process); the archive sensor requests the years that changed.",
)

analytics_job = dg.define_asset_job(
    "analytics",
    selection=dg.AssetSelection.assets(*analytics_assets, ml_features, narrative_embeddings),
    executor_def=EXECUTOR,
    description="Trends, make/model risk, geospatial clusters and correlations: DuckDB over the archive; "
    "the severity model's features and their changed_since_training check (failing retrains the model); "
    "the narratives' embeddings.",
)

ml_job = dg.define_asset_job(
    "ml",
    selection=dg.AssetSelection.assets(*ml_assets),
    executor_def=EXECUTOR,
    description="The severity model: features from the archive, training with its blocking checks, "
    "promotion to champion, batch predictions into the warehouse.",
)

serving_job = dg.define_asset_job(
    "serving",
    selection=dg.AssetSelection.assets(batch_predictions, *serving_assets)
    - dg.AssetSelection.checks(*freshness_checks),
    executor_def=EXECUTOR,
    description="What the API reads: the champion's batch predictions, then the embedded deployment's snapshot "
    "(on PostgreSQL the API reads the marts).",
)
