"""The release schedule: on NTSB's update days, fetch the new file into the landing zone
(``lib/fetch.py``); the landing-zone sensor registers and ingests it from there."""

import datetime as dt
from dataclasses import asdict

import dagster as dg

from ..lib import fetch
from ..resources import NtsbResource

FETCH_JOB = "fetch_release"


class FetchConfig(dg.Config):
    day: str = ""  # YYYY-MM-DD of the update; empty: today (UTC)
    attempts: int = 4
    backoff_seconds: float = 30.0  # then doubled at each retry


@dg.op(
    name="fetch_update",
    description="Download the update of the day from NTSB_RELEASE_URL into the "
    "landing zone (retries with backoff); without a URL, record that "
    "and do nothing.",
)
def fetch_release_op(context: dg.OpExecutionContext, config: FetchConfig, ntsb: NtsbResource) -> dg.Output:
    settings = ntsb.settings()
    day = dt.date.fromisoformat(config.day) if config.day else dt.datetime.now(dt.UTC).date()
    result = fetch.fetch_release(
        settings.landing, settings.release_url, day, attempts=config.attempts, backoff=config.backoff_seconds
    )
    context.log.info(
        {
            "not_configured": f"{day}: NTSB_RELEASE_URL is not set, nothing fetched",
            "already_present": f"{day}: {result.key} is already in the landing zone",
            "fetched": f"{day}: {result.key} ({result.bytes:,} bytes) fetched from {result.url} "
            f"in {result.attempts} attempt(s)",
        }[result.status]
    )
    return dg.Output(asdict(result), metadata={"day": str(day), **{k: v for k, v in asdict(result).items() if v != ""}})


@dg.job(
    name=FETCH_JOB,
    executor_def=dg.in_process_executor,
    description="Fetch one NTSB update into the landing zone; the landing-zone sensor takes it from there.",
)
def fetch_release_job():
    fetch_release_op()


def _configured() -> bool:
    from ..settings import get_settings

    return bool(get_settings().release_url)


@dg.schedule(
    job=fetch_release_job,
    cron_schedule=fetch.CRON,
    execution_timezone="UTC",
    # off where there is nothing to fetch: no run that could only record "not configured"
    default_status=dg.DefaultScheduleStatus.RUNNING if _configured() else dg.DefaultScheduleStatus.STOPPED,
    description="NTSB's update days (1st, 8th, 15th, 22nd), 06:00 UTC: fetch that day's update. Off "
    "unless NTSB_RELEASE_URL is set (and skips a tick while it is unset). One run per day "
    "(run key).",
)
def release_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date()
    if not _configured():
        return dg.SkipReason(f"{day}: NTSB_RELEASE_URL is not set, nothing to fetch")
    return dg.RunRequest(
        run_key=f"fetch-{day}",
        run_config={"ops": {"fetch_update": {"config": {"day": str(day)}}}},
        tags={"ntsb/update-day": str(day)},
    )
