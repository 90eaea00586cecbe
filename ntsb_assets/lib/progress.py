"""Progress of long work, told to whoever listens.

The assets and the library call :func:`step` as work advances (a table extracted, a dbt
model built, an archive year written); a listener draws it. The ``ntsb`` command runs its
jobs in its own process and listens (bars on a terminal, one line per stage when piped,
JSON lines with ``--json``: ``ntsb_assets/console.py``); in a Dagster run nobody has to.
A listener that fails never stops the work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Event:
    kind: str  # start | step | finish | fail | note
    stage: str  # ingest, dbt, checks, archive, analytics, model, snapshot, ...
    what: str = ""  # the step (a table, a model) or the stage's subject (a release)
    done: int | None = None  # units done so far (rows, models, years)
    total: int | None = None  # units expected, when known
    unit: str = ""  # rows, models, tests, years, assets
    summary: str = ""  # finish: the stage's result in one line
    seconds: float = 0.0  # finish: how long the stage took
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", {}) or k in ("kind", "stage")}


listeners: list[Callable[[Event], None]] = []


def _tell(event: Event) -> None:
    for listener in list(listeners):
        try:
            listener(event)
        except Exception as exc:  # drawing progress must not stop the work
            log.debug("progress listener failed: %r", exc)


def step(stage: str, what: str = "", done: int | None = None, total: int | None = None, unit: str = "", **info) -> None:
    """Work advanced within ``stage``."""
    if listeners:
        _tell(Event("step", stage, what, done, total, unit, info=info))


def note(text: str) -> None:
    """A line for the reader while work waits or changes course."""
    if listeners:
        _tell(Event("note", "", text))


@contextmanager
def stage(stage: str, what: str = "", total: int | None = None, unit: str = ""):
    """A stage from start to finish; the block sets ``result["summary"]`` (and any numbers
    under other keys) for the finish line."""
    started = time.perf_counter()
    result: dict = {}
    _tell(Event("start", stage, what, 0 if total is not None else None, total, unit))
    try:
        yield result
    except BaseException as exc:
        _tell(
            Event(
                "fail",
                stage,
                what,
                summary=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                seconds=time.perf_counter() - started,
            )
        )
        raise
    summary = result.pop("summary", "")
    _tell(Event("finish", stage, what, summary=summary, seconds=time.perf_counter() - started, info=result))
