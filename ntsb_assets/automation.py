"""Declarative automation: when each asset after the ingestion updates, in one place.

A release flows through the graph once:

1. ``landing_zone_sensor`` launches ``ingest_release`` (releases, lake_raw, warehouse_raw).
2. The raw tables updated: the raw quality gates, every dbt model (with its tests), the dbt
   docs site and the whole-table archive are requested on the same tick, so they are one run
   (the gates are blocking: a failing table stops the models built on it).
3. ``archive_sensor`` rewrites the event years that changed (runs queued together).
4. The year archive updated: analytics, ``ml/features``, the batch predictions and the serving
   snapshot, again one run.
5. The model retrains on its own cadence: after the features of each month (``RETRAIN_CRON``),
   or as soon as the features differ from what the latest model trained on by more than
   ``NTSB_RETRAIN_THRESHOLD`` (the ``changed_since_training`` check on ``ml/features``). The
   new champion then republishes its predictions and the snapshot.

Every condition waits while an upstream run is queued or in progress, so releases ingested
back to back are transformed once, and a run's own materializations never request it again.
``automation_sensor`` evaluates the conditions every 30 seconds; it runs by default.
"""

import dagster as dg

AC = dg.AutomationCondition

# eager() without its "no missing upstream" guard: a release that failed to load, or an event
# year without accidents, is a partition that stays missing and must not stop everything after it
AFTER_UPSTREAM = AC.eager().without(~AC.any_deps_missing()).with_label("after any upstream update")


def after(*keys: dg.AssetKey) -> dg.AutomationCondition:
    """After an update of these upstream assets only (updates of the others do not trigger it,
    but it still waits while any of them is in progress)."""
    return (
        AC.any_deps_updated().allow(dg.AssetSelection.assets(*keys)).since_last_handled()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    ).with_label("after an update of " + ", ".join(k.to_user_string() for k in keys))


RETRAIN_CRON = "0 6 2 * *"  # the 2nd of each month, after the release of the 1st
# the features just materialized failed their changed_since_training check (the result of
# that same run: an older failure must not retrain the model again)
DRIFTED = AC.any_deps_match(AC.newly_updated() & AC.any_checks_match(AC.check_failed())).with_label(
    "features changed beyond the threshold since the latest training"
)
RETRAIN = (
    AC.on_cron(RETRAIN_CRON) | (DRIFTED.since_last_handled() & ~AC.any_deps_in_progress() & ~AC.in_progress())
).with_label("monthly, or when the features changed beyond the threshold")

# the champion after a model whose blocking checks passed; predictions need a champion
PROMOTE = (AFTER_UPSTREAM & AC.all_deps_blocking_checks_passed()).with_label("after a model that passed its checks")
PREDICT = AC.eager()

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions of every asset (ntsb_assets/automation.py).",
)
