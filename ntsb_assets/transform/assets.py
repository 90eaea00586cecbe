"""dbt transforms (dbt_project/) as Dagster assets: staging, marts and aggregates on the
configured warehouse, keyed ``["warehouse", <schema>, <model>]``, downstream of the
``warehouse_raw`` assets; dbt tests become asset checks.

The dbt manifest is built ahead of loading these definitions (``ntsb prepare``, run by
``make setup``), never at import, except under ``dagster dev`` where dagster-dbt refreshes
it for development."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from .. import keys
from ..automation import AFTER_UPSTREAM
from ..lib import dbt_state, faults, progress, quality
from ..resources import NtsbResource, warehouse_writer
from .project import DBT_CHILD_EXECUTABLE, DBT_DIR, NtsbDbtCliResource, dbt_project, run_target

dbt_project.prepare_if_dev()

LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "core": "marts", "aggregates": "aggregates"}
# what each generic test checks, in words (the check's description in Dagster, unless the
# test has its own `description` in the yml); {column} and the test's arguments are filled in
TEST_WORDS = {
    "unique": "every {column} is unique",
    "not_null": "no {column} is null",
    "accepted_values": "{column} is one of {values}",
    "relationships": "every {column} is found in {to}.{field}",
    "ntsb_between": "{column} lies between {low} and {high} (NULL allowed)",
    "ntsb_between/low": "{column} is at least {low} (NULL allowed)",
    "ntsb_between/high": "{column} is at most {high} (NULL allowed)",
    "ntsb_unique_combination": "no two rows share ({columns})",
    "ntsb_one_current_version": "exactly one current version per {key}",
    "ntsb_in_var": "{column} is one of the project's {var_name}",
}


def describe_test(test: Mapping[str, Any]) -> str:
    """A dbt data test in words: its own description, else what its generic test checks
    (TEST_WORDS), with its severity when it only warns."""
    meta = test.get("test_metadata") or {}
    kwargs = {
        k: (", ".join(map(str, v)) if isinstance(v, list) else str(v).replace("ref('", "").replace("')", ""))
        for k, v in (meta.get("kwargs") or {}).items()
    }
    words = (test.get("description") or "").strip()
    if not words:
        name = meta.get("name", "")
        if name == "ntsb_between" and len({"low", "high"} & set(kwargs)) == 1:  # one bound
            name += "/low" if "low" in kwargs else "/high"
        template = TEST_WORDS.get(name)
        words = template.format(column=test.get("column_name") or "", **kwargs) if template else test["name"]
    severity = (test.get("config") or {}).get("severity", "error").lower()
    return words + (" (warns, does not block)" if severity == "warn" else "")


class NtsbDbtTranslator(DagsterDbtTranslator):
    """The one place that maps dbt resources to asset keys and groups."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":  # raw.<table>, written by warehouse_raw
            return spec.replace_attributes(key=keys.warehouse(props["source_name"], props["name"]))
        key = keys.warehouse(props["schema"], props["name"])
        if props["resource_type"] == "snapshot":  # the history behind dim_aircraft
            group = "marts"
        else:
            group = next((g for layer, g in LAYER_GROUPS.items() if layer in props["fqn"]), "transform")
        dbt_group = manifest["groups"].get(f"group.ntsb.{props.get('group')}", {})
        owner = dbt_group.get("owner", {}).get("name")
        owners = [f"team:{owner}"] if owner else []
        return spec.replace_attributes(key=key, group_name=group, automation_condition=AFTER_UPSTREAM, owners=owners)

    def get_asset_check_spec(self, asset_spec, manifest, unique_id, project):
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            additional_deps=spec.additional_deps,
            metadata=spec.metadata,
            blocking=spec.blocking,
            description=describe_test(manifest["nodes"][unique_id]),
            # requested with the models by the automation, so a declaratively launched build
            # runs the tests too
            automation_condition=AFTER_UPSTREAM,
        )


TRANSLATOR = NtsbDbtTranslator()


class DbtBuildConfig(dg.Config):
    """How the marts are built (the launchpad's config of the dbt assets)."""

    full_refresh: bool = False  # every incremental model computes every event again (dbt --full-refresh)


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR)
@warehouse_writer
def ntsb_dbt_models(
    context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: NtsbDbtCliResource, ntsb: NtsbResource
):
    """`dbt build` of the selected models on the configured warehouse, with their data tests.
    dbt's unit tests are left out: their inputs are static, so they check the models' SQL,
    not the data, and run in the test suite instead (as dbt's documentation advises).
    The incremental models compute the events changed since their own watermark
    (macros/incremental.sql). When the dbt project changed since the selected models were
    last built (its fingerprint, kept in their materializations' metadata), the build is a
    --full-refresh: a changed model, macro or view recomputes every event once, as a build
    from scratch would."""
    settings = ntsb.settings()
    project = dbt_state.project_fingerprint(DBT_DIR)
    changed = _built_by_another_project(context, project)
    args = ["build", "--exclude-resource-type", "unit_test"]
    if config.full_refresh or changed:
        args.append("--full-refresh")
        context.log.info(
            "full refresh: " + ("asked for" if config.full_refresh else f"another dbt project built {changed[0]}")
        )
    built: list[dg.AssetKey] = []
    descriptions = {(c.asset_key, c.name): c.description for c in context.assets_def.check_specs}
    invocation = None
    with run_target(settings.home, "build") as target:
        try:
            invocation = dbt.cli(args, context=context, target_path=target, env=settings.dbt_env())
            for event in invocation.stream():
                faults.point("dbt")
                if isinstance(event, dg.Output):
                    built.append(context.asset_key_for_output(event.output_name))
                    progress.step(
                        "dbt",
                        built[-1].path[-1],
                        done=len(built),
                        total=len(context.selected_output_names),
                        unit="models",
                    )
                    event = event.with_metadata({**event.metadata, dbt_state.PROJECT_METADATA: project})
                elif isinstance(event, dg.AssetCheckResult):  # the marts' checks, for the dashboard
                    quality.record_check(settings.lake, _check_record(event, descriptions, context.run_id))
                yield event
        finally:
            _stopped(invocation)
    yield from _profiles(settings, built, context.assets_def)


def _check_record(result: dg.AssetCheckResult, descriptions: dict, run_id: str) -> dict:
    """A dbt test's outcome as the quality checks record theirs (``quality.record_check``)."""
    failed = result.metadata.get("dagster_dbt/failed_row_count")
    return quality.check_record(
        result.asset_key.to_user_string(),
        result.check_name,
        result.passed,
        result.severity.value,
        descriptions.get((result.asset_key, result.check_name)),
        run_id,
        unexpected_rows=failed.value if failed is not None else None,
    )


def _built_by_another_project(context: dg.AssetExecutionContext, project: str) -> list[str]:
    """The selected models whose latest materialization another dbt project built (a
    changed model, macro or view: their rows may be stale). A model never materialized
    is not counted (its first build computes every event anyway)."""
    out = []
    for key in sorted(context.selected_asset_keys):
        event = context.instance.get_latest_materialization_event(key)
        mat = event.asset_materialization if event else None
        if mat is not None and mat.metadata.get(dbt_state.PROJECT_METADATA) != dg.TextMetadataValue(project):
            out.append(key.to_user_string())
    return out


def _stopped(invocation) -> None:
    """dbt has exited: after an error in this process dbt may still run, and hold the
    embedded warehouse that the bookkeeping opens next."""
    process = getattr(invocation, "process", None)
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except Exception:
            process.kill()
            process.wait()


def _profiles(settings, keys: list[dg.AssetKey], assets_def: dg.AssetsDefinition):
    """The row count and the column types of each relation the build made, as an
    observation of its asset (Dagster shows both on the asset's page). Read after dbt has
    exited: while it runs, it holds the embedded warehouse. Views are not counted (that
    would run their query); their columns are listed."""
    schemas = sorted({k.path[1] for k in keys})
    with settings.warehouse.session(read_only=settings.warehouse.dialect == "postgres") as s:
        relations = s.describe_relations(schemas)
    for key in keys:
        rel = relations.get((key.path[1], key.path[2]))
        if rel is None:
            continue
        described = assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
        words = {c.name: c.description for c in described.columns} if described else {}
        schema = dg.TableSchema(
            columns=[dg.TableColumn(name=c, type=t.lower(), description=words.get(c)) for c, t in rel["columns"]]
        )
        metadata = {"dagster/column_schema": schema, "relation": f"{key.path[1]}.{key.path[2]} ({rel['kind']})"}
        if rel["rows"] is not None:
            metadata["dagster/row_count"] = rel["rows"]
        yield dg.AssetObservation(asset_key=key, metadata=metadata)


dbt_resource = NtsbDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_CHILD_EXECUTABLE)
