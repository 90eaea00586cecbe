"""Operating it: the release schedule fetches an update on NTSB's update days into the
landing zone (a real HTTP server on 127.0.0.1), and the landing-zone sensor takes it from
there; without a download URL the schedule's run records that and does nothing. A failed
run becomes an alert naming the asset and the error, in the lake and at a webhook. The
marts and the serving snapshot carry freshness checks."""

import datetime as dt
import json
import zipfile

import dagster as dg

from ntsb_assets import keys
from ntsb_assets.alerts import failure_alert_sensor
from ntsb_assets.definitions import defs
from ntsb_assets.freshness import FRESH, freshness_checks
from ntsb_assets.releases import landing_zone_sensor
from ntsb_assets.resources import NtsbResource
from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE
from tests.unit.test_fetch import _Server


def _run(instance, request: dg.RunRequest):
    return defs.resolve_job_def("fetch_release").execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False
    )


def _output(result) -> dict:
    return result.output_for_node("fetch_update")


def test_the_schedule_fetches_the_update_of_its_day_and_the_sensor_ingests_it(ntsb_home, tmp_path, monkeypatch):
    schedule = defs.resolve_schedule_def("release_schedule")
    assert schedule.cron_schedule == "0 6 1,8,15,22 * *" and schedule.execution_timezone == "UTC"
    # off by default where no release URL is configured (this process has none), and a tick
    # while it is unset starts nothing
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)) as ctx:
        skipped = schedule.evaluate_tick(ctx)
    assert not skipped.run_requests and "NTSB_RELEASE_URL is not set" in skipped.skip_message
    monkeypatch.setenv("NTSB_RELEASE_URL", "http://127.0.0.1:9/avdata/up{DDMON}.zip")
    with dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)) as ctx:
        request = schedule.evaluate_tick(ctx).run_requests[0]
    monkeypatch.delenv("NTSB_RELEASE_URL")
    assert request.run_key == "fetch-2026-01-01"  # one run per update day
    archive = tmp_path / "up01JAN.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((SAMPLE / "04_up01JAN2026").iterdir()):
            z.write(f, f.name)
    server = _Server([(503, b"busy"), (200, archive.read_bytes())])
    with dg.instance_for_test() as instance:
        # no URL configured: the run succeeds, says so, and the landing zone stays empty
        idle = _run(instance, request)
        assert idle.success and _output(idle)["status"] == "not_configured"
        assert get_settings().landing.list("") == []
        monkeypatch.setenv("NTSB_RELEASE_URL", server.url + "/avdata/up{DDMON}.zip")
        request = dg.RunRequest(
            run_key=request.run_key,
            tags=request.tags,
            run_config={
                "ops": {
                    "fetch_update": {
                        "config": {**request.run_config["ops"]["fetch_update"]["config"], "backoff_seconds": 0.1}
                    }
                }
            },
        )
        try:
            fetched = _run(instance, request)
        finally:
            server.close()
        assert fetched.success, fetched.all_events
        out = _output(fetched)
        assert (out["status"], out["key"], out["attempts"]) == ("fetched", "up01JAN.zip", 2)
        assert server.requests == ["/avdata/up01JAN.zip"] * 2
        # the landing-zone sensor registers it as a release and requests its ingestion
        sensor = landing_zone_sensor(dg.build_sensor_context(instance=instance, resources={"ntsb": NtsbResource()}))
        assert [r.partition_key.split("-")[0] for r in sensor.run_requests] == ["up01JAN"]
        # the same day again: already in the landing zone, nothing downloaded
        again = _run(instance, request)
        assert again.success and _output(again)["status"] == "already_present" and len(server.requests) == 2


def test_a_failed_run_becomes_an_alert_in_the_lake_and_at_the_webhook(ntsb_home, monkeypatch):
    hook = _Server([(200, b"ok")])
    monkeypatch.setenv("NTSB_ALERT_WEBHOOK_URL", hook.url + "/alerts")
    try:
        with dg.instance_for_test() as instance:
            # serving/snapshot before any marts exist: the asset fails
            result = defs.resolve_job_def("serving").execute_in_process(
                instance=instance, raise_on_error=False, asset_selection=[keys.SNAPSHOT]
            )
            assert not result.success
            run = instance.get_run_by_id(result.run_id)
            failure = next(
                e.dagster_event
                for e in instance.all_logs(result.run_id)
                if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
            )
            ctx = dg.build_run_status_sensor_context(
                sensor_name="failure_alert_sensor",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=run,
                resources={"ntsb": NtsbResource()},
            ).for_run_failure()
            failure_alert_sensor(ctx)
    finally:
        hook.close()
    lake = get_settings().lake
    [key] = lake.list("alerts")
    alert = lake.get_json(key)
    assert key.endswith(f"{result.run_id}.json") and alert["job"] == "serving"
    assert alert["assets"] == ["serving/snapshot"]
    assert "fact_accidents" in alert["failures"][0]["error"] and "serving/snapshot" in alert["text"]
    [(path, body)] = hook.requests
    assert path == "/alerts" and json.loads(body) == alert  # the same alert, POSTed as JSON


def test_freshness_checks_warn_until_the_marts_and_the_snapshot_are_updated(ntsb_home):
    assert defs.resolve_sensor_def("freshness_checks_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    job = dg.define_asset_job("freshness_now", selection=dg.AssetSelection.checks(*freshness_checks))
    run = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("freshness_now")

    def evaluations(instance):
        result = run.execute_in_process(instance=instance)
        assert result.success  # WARN severity: the run itself succeeds
        return {
            e.asset_check_evaluation_data.asset_key.to_user_string(): e.asset_check_evaluation_data.passed
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }

    with dg.instance_for_test() as instance:
        assert evaluations(instance) == {"warehouse/marts/fact_accidents": False, "serving/snapshot": False}
        for key in FRESH:  # both updated now
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        assert evaluations(instance) == {"warehouse/marts/fact_accidents": True, "serving/snapshot": True}
