"""The archive group: the marts as ZSTD Parquet in the lake (local or S3), Hive layout.

Event-level marts are partitioned by event year (one Dagster partition per year); a run
covers a range of years in one process (single-run backfill policy). Which years to run
comes from :func:`archive_runs`: the years whose rows differ between the warehouse and the
archive, so a release touching three years rewrites three partitions. Dimensions and
all-time aggregates have no event year and are archived whole after each dbt build.
"""

import dagster as dg

from .. import keys
from ..automation import AFTER_UPSTREAM
from ..lib import archive, catalog
from ..lib.warehouse import WarehouseBusy
from ..resources import NtsbResource, warehouse_writer
from ..resources.markdown import md_table

FIRST_YEAR = int(catalog.EARLIEST_EVENT_DATE[:4])  # the year of the oldest event in NTSB's database
YEARS = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *", start=str(FIRST_YEAR), fmt="%Y", end_offset=1
)  # up to the current year


def _spec(table: str, partitioned: bool) -> dg.AssetSpec:
    layout = "one file per event year, year=YYYY/" if partitioned else "one file"
    return dg.AssetSpec(
        keys.archive(table),
        deps=[keys.mart(table)],
        group_name="archive",
        kinds={"parquet"},
        partitions_def=YEARS if partitioned else None,
        # the years: archive_sensor, which knows which of them changed
        automation_condition=None if partitioned else AFTER_UPSTREAM,
        description=f"marts.{table} as ZSTD Parquet in the lake ({layout}).",
    )


def valid_years() -> range:
    keys = YEARS.get_partition_keys()
    return range(int(keys[0]), int(keys[-1]) + 1)


def _metadata(settings, table: str, written: list[archive.Written]) -> dict:
    by = {s: [w for w in written if w.status == s] for s in ("written", "unchanged", "removed", "empty")}
    meta = {
        "dagster/row_count": sum(w.rows for w in written),
        "files written": len(by["written"]),
        "files unchanged": len(by["unchanged"]),
        "files removed": len(by["removed"]),
        "bytes written": sum(w.bytes for w in by["written"]),
        "path": dg.MetadataValue.path(settings.lake.uri(f"{archive.PREFIX}/{table}")),
    }
    if any(w.year is not None for w in written):
        meta["partitions"] = dg.MetadataValue.md(
            md_table(
                ["year", "rows", "file", "fingerprint"], [(w.year, w.rows, w.status, w.fingerprint) for w in written]
            )
        )
    return meta


@dg.multi_asset(
    specs=[_spec(t, True) for t in archive.year_tables()],
    partitions_def=YEARS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="archive_years",
)
@warehouse_writer
def archive_years(context: dg.AssetExecutionContext, ntsb: NtsbResource):
    """Rewrite the year partitions of the event-level marts whose rows changed (a file whose
    fingerprint equals the warehouse's is left alone; a year without rows is removed)."""
    settings = ntsb.settings()
    years = [int(k) for k in context.partition_keys]
    written: dict[str, list[archive.Written]] = {}
    with settings.warehouse.session(read_only=True) as s:
        for table in archive.year_tables():
            written[table] = archive.write(s, settings.lake, table, years)
    context.log.info(
        f"archived years {years[0]}-{years[-1]}: "
        + ", ".join(f"{t} {sum(w.status == 'written' for w in ws)} written" for t, ws in written.items())
    )
    for table, ws in written.items():
        yield dg.MaterializeResult(asset_key=keys.archive(table), metadata=_metadata(settings, table, ws))


@dg.multi_asset(specs=[_spec(t, False) for t in archive.whole_tables()], name="archive_tables")
@warehouse_writer
def archive_tables(context: dg.AssetExecutionContext, ntsb: NtsbResource):
    """Dimensions and all-time aggregates, whole (rewritten only when their rows changed)."""
    settings = ntsb.settings()
    with settings.warehouse.session(read_only=True) as s:
        written = [w for t in archive.whole_tables() for w in archive.write(s, settings.lake, t)]
    for w in written:
        yield dg.MaterializeResult(asset_key=keys.archive(w.table), metadata=_metadata(settings, w.table, [w]))


def archive_runs(settings, lock_wait: float | None = None) -> list[dict[str, str]]:
    """Tags of the runs of the ``archive`` job that bring the archive up to date with the
    warehouse: one run per range of consecutive changed years."""
    with settings.warehouse.session(read_only=True, lock_wait=lock_wait) as s:
        plan = archive.plan(s, settings.lake, valid_years())
    return [
        {keys.PARTITION_RANGE_START: str(a), keys.PARTITION_RANGE_END: str(b)}
        for a, b in plan.ranges(YEARS.get_partition_keys())
    ]


ARCHIVE_JOB = "archive"


@dg.sensor(job_name=ARCHIVE_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def archive_sensor(context: dg.SensorEvaluationContext, ntsb: NtsbResource):
    """After each new build of the marts, request archive runs for the years that changed."""
    records = context.instance.fetch_materializations(keys.FACT, limit=1).records
    if not records:
        return dg.SkipReason("the marts have not been built yet")
    latest = records[0].storage_id
    if context.cursor and int(context.cursor) >= latest:
        return dg.SkipReason("no new build of the marts")
    try:  # a tick does not wait for the embedded warehouse: a writer holds it, the next tick looks again
        runs = archive_runs(ntsb.settings(), lock_wait=0)
    except WarehouseBusy as exc:
        context.log.info(f"the warehouse is busy (a writer holds it); looking again at the next tick: {exc}")
        return dg.SkipReason(f"warehouse busy: {exc}")
    except archive.ArchiveError:
        raise
    except Exception as exc:  # PostgreSQL unreachable for a moment, say: said, and the next tick tries again
        context.log.warning(f"the warehouse cannot be read now; looking again at the next tick: {exc}")
        return dg.SkipReason(f"warehouse not readable now: {exc}")
    context.update_cursor(str(latest))
    if not runs:
        return dg.SkipReason("the archive already matches the marts")
    return [dg.RunRequest(run_key=f"{latest}:{t[keys.PARTITION_RANGE_START]}", tags=t) for t in runs]
