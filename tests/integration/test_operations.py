"""Operating the graph as the daemon does, on the production Dagster instance
(``deploy/dagster.yaml``: run, event-log and schedule storage on PostgreSQL):

- releases go through the declarative automation: each tick's requests are built the way the
  automation sensor builds them, then executed; every stage runs once per release and a
  settled graph requests nothing;
- the runs, events and materializations are read back from PostgreSQL;
- ``dagster-webserver`` and ``dagster-daemon`` serve that instance: GraphQL shows every
  group, the lineage from the release to the serving snapshot, the checks, schedules and
  sensors; headless Chromium renders the asset graph (the README's screenshot).

The warehouse is the embedded one (DuckDB) to keep the run short; the PostgreSQL warehouse is
covered by the other modules."""

import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests

from ntsb_assets import keys
from ntsb_assets.archive import archive_sensor
from ntsb_assets.definitions import defs
from ntsb_assets.releases import RELEASES, landing_zone_sensor
from ntsb_assets.resources import NtsbResource
from tests.conftest import REPO, SAMPLE, pg_database
from tests.integration.browser import ARTIFACTS, Server, free_port, render

pytestmark = pytest.mark.timeout(1800)  # the first test sets up two releases through the whole graph (~11 min)
SCREENSHOT = REPO / "docs" / "img" / "asset-graph.png"
BATCHES = (("00_reference_avall", "01_part121_1982_2019"), ("02_up01JUL2025",))  # as they land
LOOSE_CHECKS = {"ops": {"ml__severity_model": {"config": {"auc_margin": -1.0, "max_ece": 1.0, "max_rounds": 200}}}}


class Operator:
    """The automation sensor's side of the daemon, in this process."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self.cursor = None
        self.job = defs.resolve_implicit_global_asset_job_def()
        self.ticks: list[list[dict]] = []

    def tick(self) -> list[dg.RunRequest]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        subsets = [r.true_subset for r in result.results if r.true_subset.size]
        requests = build_run_requests(subsets, defs.resolve_asset_graph(), {}, emit_backfills=False)
        self.ticks.append(
            [
                {
                    "assets": sorted(k.to_user_string() for k in r.asset_selection),
                    "checks": None
                    if r.asset_check_keys is None
                    else sorted(k.to_user_string() for k in r.asset_check_keys),
                }
                for r in requests
            ]
        )
        return requests

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        checks = None if request.asset_check_keys is None else set(request.asset_check_keys)
        job = self.job.get_subset(asset_selection=set(request.asset_selection), asset_check_selection=checks)
        config = LOOSE_CHECKS if keys.MODEL in request.asset_selection else None
        result = job.execute_in_process(instance=self.instance, run_config=config, raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return result

    def settle(self) -> list[list[dict]]:
        """Tick and run until a tick requests nothing; what each tick requested."""
        start = len(self.ticks)
        while requests := self.tick():
            assert len(self.ticks) - start < 10, self.ticks[start:]
            for r in requests:
                self.run(r)
        return self.ticks[start:-1]

    def sensor(self, sensor, cursor: str | None) -> tuple[str | None, int]:
        """One tick of a sensor, its runs executed; the new cursor and the number of runs."""
        ctx = dg.build_sensor_context(instance=self.instance, cursor=cursor, resources={"ntsb": NtsbResource()})
        result = sensor(ctx)
        if isinstance(result, dg.SensorResult):
            requests, cursor = result.run_requests or [], result.cursor
        else:
            requests, cursor = (result if isinstance(result, list) else []), ctx.cursor
        for r in requests:
            if r.partition_key:
                self.instance.add_dynamic_partitions(RELEASES.name, [r.partition_key])
            run = defs.resolve_job_def(sensor.job_name).execute_in_process(
                instance=self.instance, partition_key=r.partition_key, tags=r.tags, raise_on_error=False
            )
            assert run.success, [e.message for e in run.all_events if e.is_failure]
        return cursor, len(requests)


def _names(tick: list[dict]) -> list[set[str]]:
    return [set(r["assets"]) for r in tick]


@pytest.fixture(scope="module")
def operated(tmp_path_factory):
    """Two releases through the automation, on the production instance; the env its
    servers need."""
    tmp = tmp_path_factory.mktemp("operated")
    with pg_database() as url, pytest.MonkeyPatch.context() as mp:
        db = url.rsplit("/", 1)[1]
        home, dagster_home = tmp / "var", tmp / "var" / "dagster"
        dagster_home.mkdir(parents=True)
        shutil.copy(REPO / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
        env = {
            "NTSB_HOME": str(home),
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": db,
            "NTSB_RETRAIN_THRESHOLD": "0.5",
        }
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("NTSB_WAREHOUSE_URL", "NTSB_LAKE_URL", "NTSB_LANDING_URL", "NTSB_S3_ENDPOINT", "NTSB_MLFLOW_URI"):
            mp.delenv(k, raising=False)
        mp.chdir(tmp)
        landing = home / "landing"
        landing.mkdir(parents=True)
        with dg.DagsterInstance.get() as instance:
            op = Operator(instance)
            assert op.tick() == []  # the sensor's first tick: nothing yet
            stages = {}
            for n, releases in enumerate(BATCHES):
                for name in releases:
                    shutil.copytree(SAMPLE / name, landing / name)
                stages["landing"], _ = op.sensor(landing_zone_sensor, stages.get("landing"))
                transform = op.settle()  # quality gates, dbt, docs, whole-table archive
                stages["archive"], archive_runs = op.sensor(archive_sensor, stages.get("archive"))
                stages[n] = {"transform": transform, "archive runs": archive_runs, "after archive": op.settle()}
            yield {"env": env, "stages": stages, "url": url, "instance": instance}


def test_each_stage_runs_once_per_release(operated):
    first, second = operated["stages"][0], operated["stages"][1]
    dbt_run = first["transform"][0][0]
    # one run after the releases: every dbt model, the docs site and the whole-table archive,
    # with the raw gates (blocking) requested, the dbt tests riding along
    assert len(first["transform"]) == 1 and len(first["transform"][0]) == 1
    assert "warehouse/marts/fact_accidents" in dbt_run["assets"] and "docs/dbt" in dbt_run["assets"]
    assert "archive/dim_aircraft" in dbt_run["assets"] and "archive/fact_accidents" not in dbt_run["assets"]
    assert not any(a.startswith(("analytics/", "ml/", "serving/")) for a in dbt_run["assets"])
    assert "warehouse/raw/events:schema_gate" in dbt_run["checks"]
    assert any(c.startswith("warehouse/marts/fact_accidents:not_null") for c in dbt_run["checks"])
    assert first["archive runs"] >= 1
    analytics = {
        "analytics/trends",
        "analytics/make_model_risk",
        "analytics/geo_clusters",
        "analytics/correlations",
        "analytics/topics",  # after the narratives' embeddings, in the same run
    }
    # then one run for everything reading the archive; no champion yet, so no predictions;
    # the features were never trained on: the model trains, is promoted and predicts; then the
    # snapshot republishes (not in that run: it had just been materialized at that tick)
    assert [_names(t) for t in first["after archive"]] == [
        [analytics | {"ml/features", "ml/narrative_embeddings", "serving/snapshot"}],
        [{"ml/severity_model", "ml/champion", "ml/batch_predictions"}],
        [{"serving/snapshot"}],
    ]
    # the update: transformed once; its features differ from the training set by less than the
    # threshold (0.5 here), so the champion predicts the new events without retraining
    assert len(second["transform"]) == 1 and _names(second["transform"][0]) == _names(first["transform"][0])
    assert [_names(t) for t in second["after archive"]] == [
        [analytics | {"ml/features", "ml/narrative_embeddings", "ml/batch_predictions", "serving/snapshot"}]
    ]
    instance = operated["instance"]
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["ml", "features"]), "changed_since_training")]
    )
    evaluation = next(iter(check.values())).event.dagster_event.asset_check_evaluation_data
    assert evaluation.passed and evaluation.metadata["new"].value > 0
    assert 0 < evaluation.metadata["share"].value <= 0.5


def test_runs_events_and_materializations_are_in_postgresql(operated):
    instance = operated["instance"]
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    records = instance.fetch_materializations(dg.AssetKey(["serving", "snapshot"]), limit=10).records
    assert len(records) == 3  # the first build, the new champion's, the update's
    assert instance.get_run_by_id(records[0].run_id).is_success
    events = instance.all_logs(records[0].run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert "serving/snapshot" in {e.dagster_event.asset_key.to_user_string() for e in events}
    with psycopg2.connect(operated["url"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs")
        runs = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        materializations = cur.fetchone()[0]
    assert runs == len(instance.get_run_records()) and runs >= 10
    assert materializations > 100


def test_backup_and_restore_drill(operated, tmp_path):
    """docs/operations.md's drill: pg_dump the instance's database, restore it into a new one,
    read the same runs and materializations from the copy."""
    dump = tmp_path / "dagster.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", operated["url"]], check=True)
    instance = operated["instance"]
    snapshot = dg.AssetKey(["serving", "snapshot"])
    with pg_database() as copy:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={copy}", str(dump)], check=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_PG_DB", copy.rsplit("/", 1)[1])
            with dg.DagsterInstance.get() as restored:
                assert {r.dagster_run.run_id for r in restored.get_run_records()} == {
                    r.dagster_run.run_id for r in instance.get_run_records()
                }
                assert [r.storage_id for r in restored.fetch_materializations(snapshot, limit=10).records] == [
                    r.storage_id for r in instance.fetch_materializations(snapshot, limit=10).records
                ]


LINEAGE = [
    "releases/source",
    "lake/raw/events",
    "warehouse/raw/events",
    "warehouse/staging/stg_ntsb__events",
    "warehouse/marts/fact_accidents",
    "archive/fact_accidents",
    "ml/features",
    "ml/severity_model",
    "ml/champion",
    "ml/batch_predictions",
    "serving/snapshot",
]
GROUPS = {
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


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = json.loads(resp.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_webserver_and_daemon_show_the_graph(operated):
    env = {**os.environ, **operated["env"], "DAGSTER_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    bin_dir = Path(sys.executable).parent
    port = free_port()
    workspace = str(REPO / "workspace.yaml")
    with (
        Server(
            [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
            f"http://127.0.0.1:{port}/server_info",
            env=env,
            timeout=180,
        ),
        Server([str(bin_dir / "dagster-daemon"), "run", "-w", workspace], None, env=env),
    ):
        nodes = _graphql(
            port,
            "{ assetNodes { assetKey { path } groupName dependencyKeys { path } "
            "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
        )["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert {n["groupName"] for n in nodes} == GROUPS
        for up, down in itertools.pairwise(LINEAGE):
            assert up in {"/".join(d["path"]) for d in by_key[down]["dependencyKeys"]}, (up, down)
        checks = {
            (k, c["name"]): c["blocking"] for k, n in by_key.items() for c in n["assetChecksOrError"].get("checks", [])
        }
        assert checks[("warehouse/raw/events", "schema_gate")] is True
        assert checks[("ml/features", "changed_since_training")] is False
        assert sum(1 for (k, _) in checks if k.startswith("warehouse/marts/")) > 20
        # materialized, with the runs' data read from PostgreSQL through the webserver
        latest = _graphql(
            port,
            '{ assetOrError(assetKey: {path: ["serving", "snapshot"]}) { ... on Asset { '
            "assetMaterializations(limit: 1) { runId } } } }",
        )["assetOrError"]
        assert latest["assetMaterializations"][0]["runId"]
        repo = '(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "ntsb"})'
        automation = _graphql(
            port,
            f"{{ schedulesOrError{repo} {{ ... on Schedules {{ results {{ name "
            f"scheduleState {{ status }} }} }} }} sensorsOrError{repo} {{ ... on Sensors {{ "
            f"results {{ name sensorState {{ status }} }} }} }} }}",
        )
        schedules = {s["name"]: s["scheduleState"]["status"] for s in automation["schedulesOrError"]["results"]}
        sensors = {s["name"]: s["sensorState"]["status"] for s in automation["sensorsOrError"]["results"]}
        assert schedules == {"release_schedule": "STOPPED"}  # no NTSB_RELEASE_URL: nothing to fetch
        assert {
            "landing_zone_sensor",
            "archive_sensor",
            "automation_sensor",
            "failure_alert_sensor",
            "freshness_checks_sensor",
        } <= {k for k, v in sensors.items() if v == "RUNNING"}
        deadline = time.monotonic() + 120  # the daemon's first heartbeats
        while True:
            health = _graphql(
                port, "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
            )
            healthy = {s["daemonType"] for s in health["instance"]["daemonHealth"]["allDaemonStatuses"] if s["healthy"]}
            if {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= healthy or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= healthy, health
        # the UI's first-visit dialog (community sign-up) is off in the instance config
        assert _graphql(port, "{ shouldShowNux }")["shouldShowNux"] is False
        shot = ARTIFACTS / "asset-graph.png"
        dom = render(f"http://127.0.0.1:{port}/asset-groups", screenshot=shot, wait_ms=30000)
        assert "Global asset lineage" in dom and "Join the Dagster community" not in dom
        assert [g for g in sorted(GROUPS) if f">{g}<" not in dom] == []  # every group drawn
        # one group at a readable zoom: the model's lineage with its checks and kinds
        ml_shot = ARTIFACTS / "asset-graph-ml.png"
        dom = render(
            f"http://127.0.0.1:{port}/locations/ntsb/asset-groups/ml/lineage", screenshot=ml_shot, wait_ms=30000
        )
        assert all(a in dom for a in ("severity_model", "champion", "batch_predictions"))
        if os.environ.get("NTSB_UPDATE_SCREENSHOT"):
            SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copy(shot, SCREENSHOT)
            shutil.copy(ml_shot, SCREENSHOT.with_name("asset-graph-ml.png"))


# when each row was loaded, snapshotted or predicted, and the load the incremental models' rows
# were computed through: the only columns a rebuild may change
VOLATILE = {
    "_loaded_at",
    "loaded_at",
    "changed_at",
    "quarantined_at",
    "first_loaded_at",
    "last_loaded_at",
    "dbt_scd_id",
    "dbt_updated_at",
    "dbt_valid_from",
    "dbt_valid_to",
    "valid_from",
    "valid_to",
    "loaded_through",
    "recorded_at",
}


def _table_hashes(warehouse) -> dict[str, tuple[int, str]]:
    """Rows and an order-independent hash of the content of every table and view the
    ingestion and dbt build."""
    out = {}
    with warehouse.session(read_only=True) as s:
        tables = s.query(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
            "('raw', 'staging', 'intermediate', 'snapshots', 'marts')"
        ).to_pylist()
        for t in tables:
            name = f'"{t["table_schema"]}"."{t["table_name"]}"'
            cols = [c for c in s.columns(t["table_name"], t["table_schema"]) if c not in VOLATILE]
            row = ", ".join(f'"{c}"' for c in cols)
            out[name] = tuple(
                s.query(
                    f"SELECT count(*) AS n, md5(string_agg(h, ',' ORDER BY h)) AS h FROM "
                    f"(SELECT md5(CAST(row({row}) AS VARCHAR)) AS h FROM {name})"
                )
                .to_pylist()[0]
                .values()
            )
    return out


def test_rebuilding_every_release_from_scratch_gives_the_same_warehouse(operated, tmp_path, monkeypatch):
    """A backfill of every release partition, in order and in the batches they came in, then
    the dbt build after each batch, into an empty warehouse: every table's content is the
    automated build's (load times aside)."""
    from ntsb_assets.settings import get_settings

    built = _table_hashes(get_settings().warehouse)
    monkeypatch.setenv("NTSB_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'rebuilt.duckdb'}")
    instance = operated["instance"]
    partitions = instance.get_dynamic_partitions(RELEASES.name)
    transform = defs.resolve_job_def("transform")
    models = [k for k in transform.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    for batch in BATCHES:
        for key in [p for p in partitions if p.rsplit("-", 1)[0] in batch]:
            assert (
                defs.resolve_job_def("ingest_release")
                .execute_in_process(partition_key=key, instance=instance, tags={"ntsb/rebuild": "1"})
                .success
            )
        assert transform.execute_in_process(instance=instance, asset_selection=models).success
    rebuilt = _table_hashes(get_settings().warehouse)
    assert len(built) > 50 and rebuilt.keys() == built.keys()
    assert {t: v for t, v in rebuilt.items() if v != built[t]} == {}
    assert built['"marts"."fact_accidents"'][0] > 1000
