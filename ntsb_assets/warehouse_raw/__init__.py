"""Group ``warehouse_raw``: a release merged into the warehouse ``raw`` schema with change
data capture, audit, quarantine and reconciliation, in one transaction. Writers of the
warehouse hold its writer lock (``resources.warehouse_writer``, lib/writer.py)."""

import dagster as dg

from .. import keys
from ..lib import catalog, progress
from ..lib.cdc import COUNTS
from ..lib.extract import MANIFEST, release_prefix
from ..lib.load import load_release, raw_summary, source_coverage, warehouse_table
from ..releases import RELEASES
from ..resources import NtsbResource, warehouse_writer
from ..resources.markdown import md_table

TABLE_SPECS = [
    dg.AssetSpec(
        keys.warehouse_raw(t),
        group_name="warehouse_raw",
        deps=[keys.lake_raw(t)],
        partitions_def=RELEASES,
        kinds={"sql"},
        description=f"raw.{warehouse_table(t)}: NTSB table {t}, merged release by release "
        f"by content hash, {catalog.key_description(t)}.",
    )
    for t in catalog.TABLE_ORDER
]
RECONCILIATION_SPEC = dg.AssetSpec(
    keys.RECONCILIATION,
    group_name="warehouse_raw",
    deps=[keys.RELEASE_MANIFEST],
    partitions_def=RELEASES,
    kinds={"sql"},
    description="Per release and table: rows in = inserted + updated + unchanged + quarantined "
    "(raw._reconciliation), with raw._audit and raw._quarantine beside it.",
)

CODE_SETS_SPEC = dg.AssetSpec(
    keys.CODE_SETS,
    group_name="warehouse_raw",
    deps=[keys.RELEASE_MANIFEST],
    partitions_def=RELEASES,
    kinds={"sql"},
    description="NTSB's code sets (raw._code_sets): every code table the releases shipped (data dictionary, "
    "ct_iaids, ct_seqevt, Country, states) merged with the bundled baseline, the newer release "
    "winning (raw._code_set_changes); and the dictionary-lag report raw._code_lag: the codes a "
    "release uses that no source knows.",
)

RELEASES_SPEC = dg.AssetSpec(
    keys.RAW_RELEASES,
    group_name="warehouse_raw",
    deps=[keys.RELEASE_MANIFEST],
    partitions_def=RELEASES,
    kinds={"sql"},
    description="raw._releases: one row per loaded release, with the system it comes from (avall, "
    "Pre2008, PRE1982, flat export, CAROL); its metadata shows the events and event years each "
    "source system holds.",
)


@dg.multi_asset(
    specs=[*TABLE_SPECS, RECONCILIATION_SPEC, CODE_SETS_SPEC, RELEASES_SPEC],
    partitions_def=RELEASES,
    can_subset=False,
    name="warehouse_raw_tables",
)
@warehouse_writer
def warehouse_raw_tables(context: dg.AssetExecutionContext, ntsb: NtsbResource):
    settings = ntsb.settings()
    manifest = settings.lake.get_json(f"{release_prefix(context.partition_key)}/{MANIFEST}")
    result = load_release(
        manifest,
        settings.lake,
        settings.warehouse,
        on_table=lambda t: (context.log.info(f"loading {t}"), progress.step("ingest", f"load {t}")),
    )
    with settings.warehouse.session(read_only=True) as s:
        quarantine, code_count, totals = raw_summary(s, context.partition_key)
        coverage = source_coverage(s)
    empty = dict.fromkeys(COUNTS, 0)
    for name in catalog.TABLE_ORDER:
        counts = result["tables"].get(name, empty)
        yield dg.MaterializeResult(
            asset_key=keys.warehouse_raw(name),
            metadata={
                **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
                "dagster/row_count": dg.MetadataValue.int(totals[name]),
                "release_id": context.partition_key,
                "in_release": name in result["tables"],
            },
            data_version=dg.DataVersion(f"{context.partition_key}:{counts['inserted']}:{counts['updated']}"),
        )
    yield dg.MaterializeResult(
        asset_key=keys.RECONCILIATION,
        metadata={
            "release_id": context.partition_key,
            "reconciliation": dg.MetadataValue.md(
                md_table(["table", *COUNTS], [(t, *(c[k] for k in COUNTS)) for t, c in result["tables"].items()])
            ),
            "quarantined_by_rule": dg.MetadataValue.md(
                md_table(
                    ["table", "rule", "rows"],
                    [(r["table_name"], r["rule"], r["n"]) for r in quarantine],
                    numeric_from=2,
                )
            ),
            "result": dg.MetadataValue.json(result),
            "unknown_tables": dg.MetadataValue.json([t for t in result["tables"] if t not in catalog.KEYS]),
        },
        data_version=dg.DataVersion(context.partition_key),
    )
    yield dg.MaterializeResult(
        asset_key=keys.RAW_RELEASES,
        metadata={
            "release_id": context.partition_key,
            "coverage_by_source": dg.MetadataValue.md(
                md_table(
                    ["source system", "events", "first year", "last year"],
                    [(c["source_system"], c["events"], c["first_year"], c["last_year"]) for c in coverage],
                    numeric_from=1,
                )
            ),
        },
        data_version=dg.DataVersion(context.partition_key),
    )
    sets, lag = result["code_sets"], result["code_lag"]
    yield dg.MaterializeResult(
        asset_key=keys.CODE_SETS,
        metadata={
            "release_id": context.partition_key,
            **{f"codes_{k}": dg.MetadataValue.int(v) for k, v in sets.items()},
            "dagster/row_count": dg.MetadataValue.int(code_count),
            "dictionary_lag_rows": dg.MetadataValue.int(sum(x["row_count"] for x in lag)),
            "dictionary_lag": dg.MetadataValue.md(
                md_table(
                    ["table", "column", "code no NTSB source knows", "rows", "of the column's rows"],
                    [
                        (x["table_name"], x["column_name"], x["code"], x["row_count"], x["column_rows"])
                        for x in sorted(lag, key=lambda x: -x["row_count"])[:25]
                    ],
                    numeric_from=3,
                )
                if lag
                else "none"
            ),
        },
        data_version=dg.DataVersion(f"{context.partition_key}:{sets['added']}:{sets['changed']}"),
    )
