"""The quality gates as multi-asset checks over every raw table.

- ``schema_gate`` and ``business_gate`` (check ``raw_quality_gates``, job ``transform``):
  blocking: a table whose error-level rules fail stops everything downstream of it in the same
  run (the dbt models); warning-level rules report and do not block. Each validates the rows
  loaded since its last run without errors (the whole table the first time or when its rules
  change; a run with errors validates the same rows again next time).
- ``statistical_gate`` (check ``release_statistics``, job ``ingest_release``): the release
  just loaded against the previous release of the same source; warnings only.

The marts are checked by dbt's data tests (checks of the dbt assets), not restated here.

The Data Docs of every run are published to the lake under ``quality/data_docs/<run id>/``."""

import datetime as dt
import json
import shutil

import dagster as dg

from .. import keys
from ..automation import AFTER_UPSTREAM
from ..lib import catalog, quality, registry
from ..lib.lake import copy_tree
from ..resources import NtsbResource, warehouse_writer
from ..resources.markdown import md_table

DOCS_PREFIX = "quality/data_docs"
CHECK_NAMES = {gate: f"{gate}_gate" for gate in quality.GATES}
SPECS = [
    dg.AssetCheckSpec(
        CHECK_NAMES[gate],
        asset=keys.warehouse_raw(table),
        blocking=True,
        automation_condition=AFTER_UPSTREAM,  # in the run of the dbt models after a release
        description=f"Great Expectations, {gate} gate: "
        + (
            "keys, types, references"
            if gate == "schema"
            else "ranges, injury totals, codes against NTSB's code sets (many distinct "
            "unknown values above a share block; a few are dictionary lag, "
            "reported), outliers"
        ),
    )
    for table in catalog.TABLE_ORDER
    for gate in quality.GATES
]


class GateConfig(dg.Config):
    whole_tables: bool = False  # validate every row again, not only the rows loaded since the last run


# a writer: on DuckDB a reader cannot open the file while another process writes
@dg.multi_asset_check(specs=SPECS, name="raw_quality_gates", can_subset=True)
@warehouse_writer
def raw_gates(context: dg.AssetCheckExecutionContext, config: GateConfig, ntsb: NtsbResource):
    settings = ntsb.settings()
    wh, lake = settings.warehouse, settings.lake
    validator = quality.Validator(wh)
    prefix = f"{DOCS_PREFIX}/{context.run.run_id}"
    results = []
    for key in context.selected_asset_check_keys:
        gate = next(g for g, n in CHECK_NAMES.items() if n == key.name)
        results.append(
            (key, validator.validate(_table(key), gate, today=dt.date.today(), incremental=not config.whole_tables))
        )
    validator.record([v for _, v in results], context.run.run_id)
    yield from _publish(validator, results, lake, prefix, settings.docs_url)


RELEASE_SPECS = [
    dg.AssetCheckSpec(
        f"{quality.RELEASE_GATE}_gate",
        asset=keys.warehouse_raw(table),
        blocking=False,
        description="Great Expectations, statistical gate: the release's rows and each column's "
        "null rate against the previous release of the same source (warnings)",
    )
    for table in catalog.TABLE_ORDER
]


@dg.multi_asset_check(specs=RELEASE_SPECS, name="release_statistics", can_subset=True)
@warehouse_writer
def release_statistics(context: dg.AssetCheckExecutionContext, ntsb: NtsbResource):
    """Runs in the ingest_release job, whose runs are one release (partition) each."""
    if not context.has_partition_key:
        raise dg.Failure("the statistical gate checks one release: run it in the ingest_release job")
    settings = ntsb.settings()
    lake = settings.lake
    release_id = context.partition_key
    previous = registry.previous_of(lake, release_id)
    if previous is None:  # the first release of its source: nothing to compare with
        for key in context.selected_asset_check_keys:
            yield _result(key, quality.TableValidation(_table(key), quality.RELEASE_GATE, 0, []), None)
        return
    validator = quality.Validator(settings.warehouse)
    results = [
        (key, validator.validate_release(_table(key), release_id, previous.release_id, lake))
        for key in context.selected_asset_check_keys
    ]
    yield from _publish(validator, results, lake, f"{DOCS_PREFIX}/{context.run.run_id}", settings.docs_url)


def _table(key: dg.AssetCheckKey) -> str:
    return next(t for t in catalog.TABLE_ORDER if keys.warehouse_raw(t) == key.asset_key)


def data_docs_url(docs_url: str, prefix: str, page: str) -> str:
    """The HTTP address of a Data Docs page under ``ntsb docs`` (NTSB_DOCS_URL), which
    serves ``quality/data_docs/`` of the lake at ``/quality/``."""
    return f"{docs_url.rstrip('/')}/quality/{prefix.removeprefix(DOCS_PREFIX + '/')}/{page}"


def _publish(validator: quality.Validator, results, lake, prefix: str, docs_url: str):
    validator.build_docs()
    pages = {v.suite: validator.page(v.suite) for _, v in results if v.suite}
    copy_tree(validator.docs_dir, lake, prefix)
    shutil.rmtree(validator.docs_dir, ignore_errors=True)
    for key, v in results:
        page = pages.get(v.suite)
        result = _result(key, v, data_docs_url(docs_url, prefix, page) if page else None)
        quality.record_check(
            lake,
            quality.check_record(
                key.asset_key.to_user_string(),
                key.name,
                result.passed,
                result.severity.value,
                result.description,
                prefix.rsplit("/", 1)[-1],
                **{k: result.metadata[k].value for k in quality.CHECK_COUNTS},
                data_docs=page and data_docs_url(docs_url, prefix, page),
            ),
        )
        yield result


def _evidence(r: quality.RuleResult) -> str:
    """A few unexpected values with their keys, or the observed value against its bounds."""
    if r.samples:
        return json.dumps(r.samples[:3], default=str)[:200]
    bounds = [r.rule.kwargs.get("min_value"), r.rule.kwargs.get("max_value")]
    return f"observed {json.dumps(r.observed, default=str)}" + (
        f", expected [{bounds[0]}, {bounds[1]}]" if bounds != [None, None] else ""
    )


def _result(key: dg.AssetCheckKey, v: quality.TableValidation, page: str | None) -> dg.AssetCheckResult:
    failed = v.failed
    rows = [
        (
            r.rule.name,
            r.rule.severity,
            r.unexpected_count if r.unexpected_count is not None else "-",
            f"{r.unexpected_percent:.2f}" if r.unexpected_percent is not None else "-",
            _evidence(r),
        )
        for r in failed
    ]
    metadata = {
        "rows": v.rows,
        "expectations_evaluated": len(v.results),
        "expectations_failed": len(failed),
        "errors": len(v.errors),
        "warnings": len(failed) - len(v.errors),
        "unexpected_rows": sum(r.unexpected_count or 0 for r in failed),
        "failed_rules": dg.MetadataValue.md(
            md_table(["rule", "severity", "unexpected", "%", "samples (with keys) or observed"], rows, numeric_from=2)
            if rows
            else "none"
        ),
        "quarantined_at_load": dg.MetadataValue.json(v.quarantined),
        "quarantined_rows": sum(v.quarantined.values()),
    }
    if v.gate in quality.GATES:
        metadata["validated"] = (
            "whole table"
            if v.since is None
            else f"rows loaded after {v.since.isoformat(sep=' ')} and rows sharing their keys"
        )
        metadata["loaded_through"] = v.through.isoformat(sep=" ") if v.through else "never loaded"
    if v.gate == "business":
        lag = [(x["column_name"], x["code"], x["row_count"]) for x in v.code_lag]
        metadata["dictionary_lag"] = dg.MetadataValue.md(
            md_table(["column", "code no NTSB source knows", "rows"], lag[:20], numeric_from=2) if lag else "none"
        )
        metadata["dictionary_lag_rows"] = sum(x["row_count"] for x in v.code_lag)
    if v.gate == quality.RELEASE_GATE:
        metadata["compared_with_release"] = v.compared_with or "none (first release of its source)"
    if page:
        metadata["data_docs"] = dg.MetadataValue.url(page)
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=v.passed,
        severity=dg.AssetCheckSeverity.ERROR if v.errors else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description="; ".join(v.messages())
        or f"{len(v.results)} expectations, {len(v.errors)} errors, {len(failed) - len(v.errors)} warnings",
    )
