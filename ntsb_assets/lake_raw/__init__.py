"""Group ``lake_raw``: every table of a release as typed, immutable ZSTD Parquet in the lake,
with a blocking schema-drift check against the previous release of the same source."""

import tempfile
from pathlib import Path

import dagster as dg

from .. import keys
from ..lib import catalog, progress, registry
from ..lib.extract import MANIFEST, extract_release, previous_manifest, release_prefix, schema_diff
from ..releases import RELEASES
from ..resources import NtsbResource
from ..resources.markdown import md_table

TABLE_SPECS = [
    dg.AssetSpec(
        keys.lake_raw(t),
        group_name="lake_raw",
        deps=[keys.RELEASE_SOURCE],
        partitions_def=RELEASES,
        kinds={"parquet"},
        description=f"NTSB table {t} of one release as typed ZSTD Parquet "
        f"({catalog.key_description(t)}). A release that does "
        "not deliver the table materializes an empty partition (in_release: false).",
    )
    for t in catalog.TABLE_ORDER
]
MANIFEST_SPEC = dg.AssetSpec(
    keys.RELEASE_MANIFEST,
    group_name="lake_raw",
    deps=[keys.RELEASE_SOURCE],
    partitions_def=RELEASES,
    kinds={"json"},
    description="What extraction found in a release: every table (including tables the "
    "catalog does not know, kept as-is), rows, rejects, columns and schema hashes.",
)
DRIFT_CHECKS = [
    dg.AssetCheckSpec(
        "schema_drift",
        asset=keys.lake_raw(t),
        blocking=True,
        description="Columns added, removed or retyped against the previous "
        "release of the same source. Removed or retyped: error "
        "(blocks the warehouse load); only added: warning.",
    )
    for t in catalog.TABLE_ORDER
]


@dg.multi_asset(
    specs=[*TABLE_SPECS, MANIFEST_SPEC],
    check_specs=DRIFT_CHECKS,
    partitions_def=RELEASES,
    can_subset=False,
    name="lake_raw_tables",
)
def lake_raw_tables(context: dg.AssetExecutionContext, ntsb: NtsbResource):
    settings = ntsb.settings()
    lake = settings.lake
    rel = registry.get_release(lake, context.partition_key)
    verified = registry.is_archived(lake, rel)  # by releases/source: its hash is not computed again
    with tempfile.TemporaryDirectory() as tmp:
        path = registry.source_path(lake, settings.landing, rel, Path(tmp))
        manifest = extract_release(
            path,
            lake,
            release_id=rel.release_id,
            info=rel.info if verified else None,
            on_table=lambda t: (context.log.info(f"extracting {t}"), progress.step("ingest", f"extract {t}")),
            progress=lambda t, n: progress.step("ingest", f"extract {t}", done=n, unit="rows"),
        )
    prev = previous_manifest(lake, rel.release_id)
    for name in catalog.TABLE_ORDER:
        if name not in manifest["tables"]:
            yield dg.MaterializeResult(
                asset_key=keys.lake_raw(name),
                metadata={"in_release": False, "dagster/row_count": dg.MetadataValue.int(0)},
                data_version=dg.DataVersion(f"{rel.release_id}:absent"),
            )
            yield _absent_result(name, prev)
    for name, t in manifest["tables"].items():
        if not t["known"]:
            continue
        yield dg.MaterializeResult(
            asset_key=keys.lake_raw(name),
            metadata={
                "in_release": True,
                "dagster/row_count": dg.MetadataValue.int(t["rows_out"]),
                "rows_in": dg.MetadataValue.int(t["rows_in"]),
                "rejected": dg.MetadataValue.int(t["rejected"]),
                "bytes": dg.MetadataValue.int(t["bytes"]),
                "schema_hash": t["schema_hash"],
                "columns": dg.MetadataValue.md(md_table(["column", "type"], t["columns"].items(), numeric_from=2)),
                "extra_columns": dg.MetadataValue.json(t["extra_columns"]),
                "encoding": t["encoding"],
                "source_file": t["file"],
                "uri": dg.MetadataValue.path(lake.uri(t["parquet_key"])),
            },
            data_version=dg.DataVersion(f"{rel.release_id}:{t['schema_hash']}"),
        )
        yield _drift_result(name, t, prev)
    yield dg.MaterializeResult(
        asset_key=keys.RELEASE_MANIFEST,
        metadata={
            "release_id": rel.release_id,
            "reused_existing_extraction": manifest.get("reused", False),
            "unknown_tables": dg.MetadataValue.json(manifest["unknown_tables"]),
            "tables": dg.MetadataValue.md(
                md_table(
                    ["table", "rows in", "rows out", "rejected", "columns"],
                    [
                        (
                            n if t["known"] else f"{n} (unknown)",
                            t["rows_in"],
                            t["rows_out"],
                            t["rejected"],
                            len(t["columns"]),
                        )
                        for n, t in manifest["tables"].items()
                    ],
                )
            ),
            "uri": dg.MetadataValue.path(lake.uri(f"{release_prefix(rel.release_id)}/{MANIFEST}")),
        },
        data_version=dg.DataVersion(rel.release_id),
    )


def _absent_result(name: str, prev: dict | None) -> dg.AssetCheckResult:
    """A table the release does not deliver: fine, unless the previous release of the same
    source had it (then the release may be incomplete: a warning)."""
    had = prev is not None and name in prev["tables"]
    return dg.AssetCheckResult(
        asset_key=keys.lake_raw(name),
        check_name="schema_drift",
        passed=not had,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "in_this_release": False,
            "compared_with": prev["release_id"] if prev else "nothing: first release of this source",
            "removed_table": had,
        },
    )


def _drift_result(name: str, t: dict, prev: dict | None) -> dg.AssetCheckResult:
    key = keys.lake_raw(name)
    if prev is None or name not in prev["tables"]:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name="schema_drift",
            passed=True,
            metadata={"compared_with": "nothing: first release of this source"},
        )
    diff = schema_diff(prev["tables"][name]["columns"], t["columns"])
    breaking = bool(diff["removed"] or diff["retyped"])
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="schema_drift",
        passed=not (breaking or diff["added"]),
        severity=dg.AssetCheckSeverity.ERROR if breaking else dg.AssetCheckSeverity.WARN,
        metadata={"compared_with": prev["release_id"], **{k: dg.MetadataValue.json(v) for k, v in diff.items()}},
    )
