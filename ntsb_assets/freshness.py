"""Freshness: NTSB publishes an update every 7 or 8 days (the 1st, 8th, 15th and 22nd), so
the marts or the API's serving snapshot more than 9 days old mean the pipeline stopped
taking releases. WARN-level checks, evaluated by a sensor that runs by default.

Dagster marks these checks as superseded by freshness policies, which are still in preview
and off unless the instance enables them; the checks work on any instance, so they stay
until the policies are the default."""

import datetime as dt
import warnings

import dagster as dg

from . import keys

MAX_AGE = dt.timedelta(days=9)
FRESH = [keys.mart("fact_accidents"), keys.SNAPSHOT]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=dg.SupersessionWarning)  # see the module's docstring
    freshness_checks = dg.build_last_update_freshness_checks(assets=FRESH, lower_bound_delta=MAX_AGE)
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks, default_status=dg.DefaultSensorStatus.RUNNING
    )
