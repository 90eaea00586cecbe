"""The dbt docs site as an asset: ``dbt docs generate`` on the configured warehouse, published
into the lake under ``docs/dbt/`` (``ntsb docs`` serves it). It is requested after every
build of the models, and generated again only when what it shows changed: the project's
files or the warehouse's relations and columns (``dbt_state.docs_inputs``). A monthly
update changes rows only, so it skips the 5-6 s of ``dbt docs generate``."""

import dagster as dg

from ..automation import AFTER_UPSTREAM
from ..lib import dbt_state
from ..lib.lake import copy_tree
from ..resources import NtsbResource, warehouse_writer
from .assets import ntsb_dbt_models
from .project import DBT_DIR, NtsbDbtCliResource, run_target

DOCS_PREFIX = "docs/dbt"
# What `dbt docs generate --static` writes: the single-file site, and the classic one with
# the artifacts it loads.
SITE_FILES = ("static_index.html", "index.html", "manifest.json", "catalog.json")


@dg.asset(
    key=["docs", "dbt"],
    group_name="docs",
    deps=[ntsb_dbt_models],
    kinds={"dbt", "html"},
    automation_condition=AFTER_UPSTREAM,
    output_required=False,  # not materialized when the site would be the same
)
@warehouse_writer
def dbt_docs_site(context: dg.AssetExecutionContext, dbt: NtsbDbtCliResource, ntsb: NtsbResource):
    """dbt's documentation site (models, columns, tests, lineage graph, warehouse catalog),
    generated from the warehouse the marts were just built in and published to the lake,
    when the project or the warehouse's columns changed since the site was last published."""
    settings = ntsb.settings()
    schemas = sorted({k.path[1] for k in ntsb_dbt_models.keys | ntsb_dbt_models.dependency_keys})
    with settings.warehouse.session(read_only=settings.warehouse.dialect == "postgres") as s:
        inputs = dbt_state.docs_inputs(DBT_DIR, s.describe_relations(schemas, count=False))
    event = context.instance.get_latest_materialization_event(context.asset_key)
    before = event.asset_materialization.metadata.get(dbt_state.DOCS_METADATA) if event else None
    if before == dg.TextMetadataValue(inputs) and settings.lake.exists(f"{DOCS_PREFIX}/{SITE_FILES[0]}"):
        context.log.info(f"dbt docs unchanged (same project files and warehouse columns, {inputs}): not generated")
        return
    with run_target(settings.home, "docs") as target:
        dbt.cli(["docs", "generate", "--static"], target_path=target, env=settings.dbt_env()).wait()
        missing = [f for f in SITE_FILES if not (target / f).exists()]
        if missing:
            raise dg.Failure(f"dbt docs generate wrote no {', '.join(missing)} in its target directory")
        # the single-file site last: it is what `ntsb docs` serves, so readers never see a new
        # page with old artifacts
        keys = [k for f in SITE_FILES[::-1] for k in copy_tree(target / f, settings.lake, DOCS_PREFIX)]
        size = sum((target / f).stat().st_size for f in SITE_FILES)
    context.log.info(f"dbt docs published to {settings.lake.uri(DOCS_PREFIX)}")
    yield dg.MaterializeResult(
        metadata={
            dbt_state.DOCS_METADATA: inputs,
            "site": dg.MetadataValue.path(settings.lake.uri(DOCS_PREFIX + "/static_index.html")),
            "files": len(keys),
            "bytes": size,
            "serve": "ntsb docs  (http://127.0.0.1:8580)",
        }
    )
