"""dbt transforms (dbt_project/) as Dagster assets: staging, marts and aggregates on the
configured warehouse, keyed ``["warehouse", <schema>, <model>]``, downstream of the
``warehouse_raw`` assets; dbt tests become asset checks.

The dbt manifest is built ahead of loading these definitions (``ntsb prepare``, run by
``make setup``), never at import, except under ``dagster dev`` where dagster-dbt refreshes
it for development."""

import json
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ..automation import AFTER_UPSTREAM
from ..lib import faults, incremental
from ..resources import NtsbResource, warehouse_writer
from .project import DBT_CHILD_EXECUTABLE, DBT_DIR, NtsbDbtCliResource, dbt_project, run_target

dbt_project.prepare_if_dev()

LAYER_GROUPS = {"staging": "staging", "intermediate": "intermediate", "core": "marts", "aggregates": "aggregates"}


class NtsbDbtTranslator(DagsterDbtTranslator):
    """The one place that maps dbt resources to asset keys and groups."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":  # raw.<table>, written by warehouse_raw
            return spec.replace_attributes(key=dg.AssetKey(["warehouse", props["source_name"], props["name"]]))
        key = dg.AssetKey(["warehouse", props["schema"], props["name"]])
        if props["resource_type"] == "snapshot":   # the history behind dim_aircraft
            group = "marts"
        else:
            group = next((g for layer, g in LAYER_GROUPS.items() if layer in props["fqn"]), "transform")
        return spec.replace_attributes(key=key, group_name=group, automation_condition=AFTER_UPSTREAM)


TRANSLATOR = NtsbDbtTranslator()


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=TRANSLATOR)
@warehouse_writer
def ntsb_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ntsb: NtsbResource):
    """`dbt build` of the selected models on the configured warehouse, with their data tests.
    dbt's unit tests are left out: their inputs are static, so they check the models' SQL,
    not the data, and run in the test suite instead (as dbt's documentation advises).
    The incremental models compute, and the staging views' tests check, the events changed
    since their watermarks (lib/incremental.py), which the models that succeed and the tests
    that pass then move."""
    settings = ntsb.settings()
    os.environ.update(settings.dbt_env())
    project = incremental.project_fingerprint(DBT_DIR)
    with settings.warehouse.session() as s:
        through = incremental.prepare(s, project)
    with run_target(settings.home, "build") as target:
        try:
            for event in dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context,
                                 target_path=target).stream():
                faults.point("dbt")
                yield event
        finally:   # also after a failure: the models that succeeded keep what they computed
            done = _nodes_done(target)
            with settings.warehouse.session() as s:
                incremental.record(s, done, project, through)


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
                r["status"] == "success" and "macro.ntsb.ntsb_changed_events" in node.get("depends_on", {}).get("macros", [])):
            done.append(node["name"])
    return done


dbt_resource = NtsbDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_CHILD_EXECUTABLE)
