"""The Dagster side: the definitions, the landing-zone sensor (local directory and S3
bucket prefix), duplicates, and the blocking schema-drift check."""

import shutil

import dagster as dg

from ntsb_assets.definitions import defs
from ntsb_assets.lib import catalog, registry
from ntsb_assets.releases import RELEASES, landing_zone_sensor
from ntsb_assets.resources import NtsbResource
from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE, copy_release
from tests.integration.helpers import ingest_json, ntsb, query, rewrite_csv


def test_definitions_have_the_groups_keys_checks_job_and_sensor():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "releases/source" in keys
    assert {"lake/raw/events", "lake/raw/Flight_Crew", "lake/raw/release_manifest"} <= keys
    assert {"warehouse/raw/events", "warehouse/raw/flight_crew", "warehouse/raw/_reconciliation"} <= keys
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {
        "releases",
        "lake_raw",
        "warehouse_raw",
        "staging",
        "intermediate",
        "marts",
        "aggregates",
        "docs",
        "archive",
        "analytics",
        "ml",
        "serving",
    }
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("lake/raw/events", "schema_drift") in checks
    # one schema drift check per table the catalog knows (NTSB's 20, PRE1982's 5), none elsewhere
    drift = {k for k, name in checks if name == "schema_drift"}
    assert drift == {f"lake/raw/{t}" for t in catalog.TABLE_ORDER} and len(drift) == 25
    assert ("warehouse/marts/fact_accidents", "unique_fact_accidents_ev_id") in checks  # a dbt test
    # lineage continues into dbt: raw -> staging -> marts -> aggregates
    assert (
        dg.AssetKey(["warehouse", "raw", "events"])
        in graph.get(dg.AssetKey(["warehouse", "staging", "stg_ntsb__events"])).parent_keys
    )
    assert (
        dg.AssetKey(["warehouse", "marts", "fact_accidents"])
        in graph.get(dg.AssetKey(["warehouse", "marts", "agg_yearly_stats"])).parent_keys
    )
    assert dg.AssetKey(["warehouse", "marts", "fact_accidents"]) in graph.get(dg.AssetKey(["docs", "dbt"])).parent_keys
    # lineage: releases -> lake_raw -> warehouse_raw
    assert dg.AssetKey(["lake", "raw", "events"]) in graph.get(dg.AssetKey(["warehouse", "raw", "events"])).parent_keys
    assert defs.resolve_job_def("ingest_release").partitions_def == RELEASES
    assert defs.resolve_job_def("transform")
    assert defs.resolve_sensor_def("landing_zone_sensor")
    # lineage continues: marts -> archive (fact by event year) -> analytics
    fact_archive = graph.get(dg.AssetKey(["archive", "fact_accidents"]))
    assert dg.AssetKey(["warehouse", "marts", "fact_accidents"]) in fact_archive.parent_keys
    assert fact_archive.partitions_def.get_partition_keys()[0] == "1948"
    assert graph.get(dg.AssetKey(["archive", "dim_aircraft"])).partitions_def is None
    assert {k.to_user_string() for k in graph.get(dg.AssetKey(["archive", "fact_accidents"])).child_keys} == {
        "analytics/trends",
        "analytics/make_model_risk",
        "analytics/geo_clusters",
        "analytics/correlations",
        "analytics/topics",
        "ml/features",
    }
    topics = graph.get(dg.AssetKey(["analytics", "topics"]))
    assert dg.AssetKey(["ml", "narrative_embeddings"]) in topics.parent_keys
    assert defs.resolve_job_def("archive").partitions_def == fact_archive.partitions_def
    assert defs.resolve_job_def("analytics") and defs.resolve_sensor_def("archive_sensor")
    # and on: features -> model (with its blocking checks) -> champion -> predictions -> serving
    for child, parent in (
        ("ml/severity_model", "ml/features"),
        ("ml/champion", "ml/severity_model"),
        ("ml/batch_predictions", "ml/champion"),
        ("serving/snapshot", "ml/batch_predictions"),
        ("serving/snapshot", "warehouse/marts/fact_accidents"),
    ):
        assert dg.AssetKey(parent.split("/")) in graph.get(dg.AssetKey(child.split("/"))).parent_keys
    assert {name for k, name in checks if k == "ml/severity_model"} == {
        "beats_majority_baseline",
        "calibrated",
        "no_denylisted_feature",
    }
    assert defs.resolve_job_def("ml") and defs.resolve_job_def("serving")


def _evaluate(instance, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"ntsb": NtsbResource()})
    return landing_zone_sensor(ctx)


def test_sensor_registers_new_releases_once_and_records_duplicates(ntsb_home):
    landing = ntsb_home / "landing"
    landing.mkdir(parents=True)
    for name in ("02_up01JUL2025", "03_up01DEC2025"):
        shutil.copytree(SAMPLE / name, landing / name)
    (landing / "notes.txt").write_text("not a release")
    with dg.instance_for_test() as instance:
        result = _evaluate(instance)
        keys = [r.partition_key for r in result.run_requests]
        assert [k.split("-")[0] for k in keys] == ["02_up01JUL2025", "03_up01DEC2025"]
        assert result.dynamic_partitions_requests[0].partition_keys == keys
        instance.add_dynamic_partitions(RELEASES.name, keys)
        again = _evaluate(instance, result.cursor)
        assert not again.run_requests and "no new release" in again.skip_reason.skip_message
        shutil.copytree(SAMPLE / "03_up01DEC2025", landing / "03_up01DEC2025_copy")
        dup = _evaluate(instance, again.cursor)
        assert not dup.run_requests
    s = get_settings()
    assert [k for k in s.lake.list("releases/_duplicates")] == [
        f"releases/_duplicates/{keys[1].split('-')[1]}-03_up01DEC2025_copy.json"
    ]
    assert len(registry.all_releases(s.lake)) == 2


def test_sensor_on_a_bucket_prefix_then_the_run(production_env):
    s = get_settings()
    s.landing.ensure_ready()
    for f in sorted((SAMPLE / "03_up01DEC2025").iterdir()):
        s.landing.put_file(f"03_up01DEC2025/{f.name}", f)
    with dg.instance_for_test() as instance:
        result = _evaluate(instance)
        assert len(result.run_requests) == 1
        key = result.run_requests[0].partition_key
        instance.add_dynamic_partitions(RELEASES.name, [key])
        run = defs.resolve_job_def("ingest_release").execute_in_process(partition_key=key, instance=instance)
        assert run.success
    assert s.lake.list(f"releases/{key}/source")  # original archived in the lake bucket
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == 34


def test_removed_column_blocks_the_warehouse_load(ntsb_home, tmp_path):
    ingest_json(SAMPLE / "02_up01JUL2025")
    before = query("SELECT count(*) AS n FROM raw.events")[0]["n"]
    rel = copy_release("03_up01DEC2025", tmp_path)

    def drop_column(h, rows):
        i = h.index("wx_cond_basic")
        del h[i]
        for r in rows:
            del r[i]

    rewrite_csv(rel / "events.csv", drop_column)
    r = ntsb("ingest", str(rel), expect_ok=False)
    assert r.exit_code == 1
    assert "schema_drift" in r.output and "lake/raw/events" in r.output
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == before
