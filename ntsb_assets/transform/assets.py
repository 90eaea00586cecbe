"""dbt transforms (dbt_project/) as Dagster assets: staging, marts and aggregates on the
configured warehouse, keyed ``["warehouse", <schema>, <model>]``, downstream of the
``warehouse_raw`` assets; dbt tests become asset checks.

The dbt manifest is built ahead of loading these definitions (``ntsb prepare``, run by
``make setup``), never at import, except under ``dagster dev`` where dagster-dbt refreshes
it for development."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from .. import keys
from ..automation import AFTER_UPSTREAM
from ..lib import faults, incremental, progress
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
    "ntsb_injury_totals_match": "the event's injury totals equal the sum of its injury rows ({injury_model})",
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
        owners = [
            f"team:{o}"
            for o in [
                (
                    (
                        props.get("group")
                        and manifest["groups"].get(f"group.ntsb.{props['group']}", {}).get("owner", {}).get("name")
                    )
                    or None
                )
            ]
            if o
        ]
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
        )


TRANSLATOR = NtsbDbtTranslator()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR)
@warehouse_writer
def ntsb_dbt_models(context: dg.AssetExecutionContext, dbt: NtsbDbtCliResource, ntsb: NtsbResource):
    """`dbt build` of the selected models on the configured warehouse, with their data tests.
    dbt's unit tests are left out: their inputs are static, so they check the models' SQL,
    not the data, and run in the test suite instead (as dbt's documentation advises).
    The incremental models compute, and the staging views' tests check, the events changed
    since their watermarks (lib/incremental.py), which the models that succeed and the tests
    that pass then move."""
    settings = ntsb.settings()
    project = incremental.project_fingerprint(DBT_DIR)
    with settings.warehouse.session() as s:
        through = incremental.prepare(s, project)
    built: list[dg.AssetKey] = []
    invocation = None
    with run_target(settings.home, "build") as target:
        try:
            invocation = dbt.cli(
                ["build", "--exclude-resource-type", "unit_test"],
                context=context,
                target_path=target,
                env=settings.dbt_env(),
            )
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
                yield event
        finally:  # also after a failure: the models that succeeded keep what they computed
            _stopped(invocation)
            done = _nodes_done(target)
            with settings.warehouse.session() as s:
                incremental.record(s, done, project, through)
    yield from _profiles(settings, built, context.assets_def)


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


def _nodes_done(target) -> list[str]:
    """The nodes of a dbt invocation that computed or checked every event through the
    build's start: the models that follow the changed events (they call the macro
    ntsb_changed_events) and succeeded, and the data tests that passed (not those that
    warned or failed: they check the same events again next time)."""
    results, manifest = target / "run_results.json", target / "manifest.json"
    if not (results.exists() and manifest.exists()):
        return []
    nodes = json.loads(manifest.read_text())["nodes"]
    done = []
    for r in json.loads(results.read_text())["results"]:
        node = nodes.get(r["unique_id"], {})
        if (r["status"] == "pass" and node.get("resource_type") == "test") or (
            r["status"] == "success"
            and "macro.ntsb.ntsb_changed_events" in node.get("depends_on", {}).get("macros", [])
        ):
            done.append(node["name"])
    return done


dbt_resource = NtsbDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_CHILD_EXECUTABLE)
