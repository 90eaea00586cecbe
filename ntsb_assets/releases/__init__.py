"""Group ``releases``: one dynamic partition per NTSB release (name + content hash), the
asset that archives its original file(s) in the lake, the landing-zone sensor and the
job that ingests one release through lake_raw and warehouse_raw."""

import json
import tempfile
from pathlib import Path

import dagster as dg

from .. import keys
from ..lib import registry, sources
from ..resources import NtsbResource

RELEASES = dg.DynamicPartitionsDefinition(name="ntsb_releases")


@dg.asset(
    key=keys.RELEASE_SOURCE,
    group_name="releases",
    partitions_def=RELEASES,
    description="The original NTSB release file or folder, verified against its registered "
    "SHA-256 and archived unchanged in the lake under releases/<release_id>/source.",
    kinds={"file"},
)
def release_source(context: dg.AssetExecutionContext, ntsb: NtsbResource) -> dg.MaterializeResult:
    settings = ntsb.settings()
    rel = registry.get_release(settings.lake, context.partition_key)
    with tempfile.TemporaryDirectory() as tmp:
        path = registry.source_path(settings.lake, settings.landing, rel, Path(tmp))
        info = sources.identify(path)
        if info.sha256 != rel.sha256:
            raise sources.SourceError(
                rel.name,
                None,
                None,
                "content_changed",
                f"content hash {info.sha256[:12]} differs from the registered "
                f"{rel.sha256[:12]}: a changed file is a new release, drop it in again",
            )
        keys = registry.archive_source(settings.lake, rel, path)
        tables = [t.name for t in sources.table_sources(path)]
    return dg.MaterializeResult(
        metadata={
            "release_id": rel.release_id,
            "name": rel.name,
            "sha256": rel.sha256,
            "size_bytes": dg.MetadataValue.int(rel.size),
            "kind": rel.kind,
            "family": rel.family,
            "source_uri": rel.source_uri,
            "archived": dg.MetadataValue.json(keys),
            "tables": dg.MetadataValue.json(tables),
        },
        data_version=dg.DataVersion(rel.sha256),
    )


INGEST_JOB = "ingest_release"  # defined in ntsb_assets/jobs.py


@dg.sensor(
    job_name=INGEST_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers new files in the landing zone (NTSB_LANDING_URL) as releases and "
    "requests their ingestion; a file whose content is already known is recorded "
    "as a duplicate and not ingested again.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, ntsb: NtsbResource):
    settings = ntsb.settings()
    seen = json.loads(context.cursor) if context.cursor else {}
    regs, seen = registry.scan_landing(settings.landing, settings.lake, seen)
    new = [r.release for r in regs if r.new]
    for r in regs:
        if r.duplicate_of:
            context.log.warning(f"{r.name}: same content as release {r.duplicate_of}; not ingested again")
        if r.refused:
            context.log.error(f"{r.name}: refused, not registered: {r.refused}")
    known = set(context.instance.get_dynamic_partitions(RELEASES.name))
    missing = [r.release_id for r in registry.all_releases(settings.lake) if r.release_id not in known]
    if not new and not missing:
        return dg.SensorResult(skip_reason="no new release in the landing zone", cursor=json.dumps(seen))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=r.release_id, run_key=r.release_id) for r in new],
        dynamic_partitions_requests=[RELEASES.build_add_request(missing)] if missing else [],
        cursor=json.dumps(seen),
    )
