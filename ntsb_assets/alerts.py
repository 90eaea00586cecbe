"""The run-failure sensor: every failed run of the code location becomes an alert naming
the failed assets and the error (``lib/alerts.py``): logged, kept in the lake, and sent to
``NTSB_ALERT_WEBHOOK_URL`` when set."""

import dagster as dg

from .lib import alerts
from .resources import NtsbResource


@dg.run_failure_sensor(
    name="failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records an alert for every failed run (failed assets, step errors) in the "
    "lake under alerts/, and POSTs it to NTSB_ALERT_WEBHOOK_URL when set.",
)
def failure_alert_sensor(context: dg.RunFailureSensorContext, ntsb: NtsbResource):
    failures, assets = [], set()
    for event in context.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None and error.cause is not None:  # the cause, not Dagster's wrapper around it
            error = error.cause
        failures.append({"step": event.step_key, "error": error.message.strip() if error else "unknown error"})
    plan = (
        context.instance.get_execution_plan_snapshot(context.dagster_run.execution_plan_snapshot_id)
        if context.dagster_run.execution_plan_snapshot_id
        else None
    )
    failed_steps = {f["step"] for f in failures}
    for step in plan.steps if plan else ():
        if step.key in failed_steps:
            for output in step.outputs:
                key = output.properties.asset_key if output.properties else None
                if key is not None:
                    assets.add(key.to_user_string())
    alert = alerts.Alert(context.dagster_run.run_id, context.dagster_run.job_name, sorted(assets), failures)
    settings = ntsb.settings()
    key = alert.record(settings.lake)
    context.log.error(f"{alert.text} (recorded in {key})")
    if settings.alert_webhook_url:
        try:
            alerts.post(settings.alert_webhook_url, alert)
        except OSError as exc:  # the alert stays in the lake and the log
            context.log.error(f"alert webhook failed: {exc}")
