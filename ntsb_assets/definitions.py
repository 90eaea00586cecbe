"""The Dagster code location: every asset, check, job, schedule, sensor and resource of the project."""

import dagster as dg

from .alerts import failure_alert_sensor
from .analytics import analytics_assets
from .archive import archive_sensor, archive_tables, archive_years
from .automation import automation_sensor
from .freshness import freshness_checks, freshness_sensor
from .jobs import EXECUTOR, analytics_job, archive_job, ingest_release_job, ml_job, serving_job, transform_job
from .lake_raw import lake_raw_tables
from .ml import changed_since_training, ml_assets, narrative_embeddings
from .quality import raw_gates, release_statistics
from .releases import landing_zone_sensor, release_source
from .releases.fetch import fetch_release_job, release_schedule
from .resources import NtsbResource
from .serving import serving_assets
from .transform.assets import dbt_resource, ntsb_dbt_models
from .transform.docs import dbt_docs_site
from .warehouse_raw import warehouse_raw_tables

defs = dg.Definitions(
    assets=[
        release_source,
        lake_raw_tables,
        warehouse_raw_tables,
        ntsb_dbt_models,
        dbt_docs_site,
        archive_years,
        archive_tables,
        *analytics_assets,
        *ml_assets,
        narrative_embeddings,
        *serving_assets,
    ],
    asset_checks=[raw_gates, release_statistics, changed_since_training, *freshness_checks],
    jobs=[ingest_release_job, transform_job, archive_job, analytics_job, ml_job, serving_job, fetch_release_job],
    schedules=[release_schedule],
    sensors=[landing_zone_sensor, archive_sensor, automation_sensor, failure_alert_sensor, freshness_sensor],
    resources={"ntsb": NtsbResource(), "dbt": dbt_resource},
    executor=EXECUTOR,  # also the runs the automation sensor launches
)
