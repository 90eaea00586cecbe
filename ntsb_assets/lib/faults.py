"""Named fault points for the fault drill and the kill tests: with ``NTSB_FAULT=<point>``
set, the process kills itself with SIGKILL (no cleanup, like ``kill -9`` or a lost machine)
the first time it reaches that point. Unset, a point costs one dictionary lookup.

Points: ``extract`` (a table's Parquet written, the manifest not yet), ``load`` (a table
written in the load's transaction), ``commit`` (everything written, COMMIT not yet sent),
``committed`` (committed, Dagster not yet told), ``dbt`` (dbt running)."""

from __future__ import annotations

import os
import signal

POINTS = ("extract", "load", "commit", "committed", "dbt")


def point(name: str) -> None:
    if os.environ.get("NTSB_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
