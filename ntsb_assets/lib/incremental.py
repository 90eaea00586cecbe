"""Watermarks of the incremental dbt models and of the staging views' data tests
(dbt_project/macros/incremental.sql).

A watermark is the raw load time a model has computed, or a test has checked, every event
through; the node computes (checks) again only the events with a raw row loaded after it
(the macros read the table). The orchestrator writes them: after a build, each model that
succeeded and each test that passed records the latest load that had committed when the
build began (a load that commits during the build is newer: the next build takes it). A
test that warned or failed keeps its watermark, so it checks those events again. A build
run by hand moves none, so the next one computes those events again: never fewer.

A watermark holds for the dbt project that wrote it (a hash of its SQL and YAML): before a
build, the watermarks of another project are dropped, so a changed model, macro or view
makes every model compute (every test check) all events once, as a build from scratch would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from .warehouse import RAW, Session, q

SCHEMA, TABLE = "marts", "_incremental_watermarks"
COLUMNS = {"model": "string", "project": "string", "loaded_through": "timestamp", "recorded_at": "timestamp"}
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "snapshots")


def project_fingerprint(project_dir: Path) -> str:
    """A hash of the files that decide what the models compute."""
    h = hashlib.sha256()
    for part in PROJECT_PARTS:
        root = Path(project_dir) / part
        for f in sorted([root] if root.is_file() else root.rglob("*")):
            if f.is_file() and f.suffix in (".sql", ".yml", ".yaml"):
                h.update(str(f.relative_to(project_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def loaded_through(s: Session) -> dt.datetime | None:
    """The latest release load committed in the warehouse (None before the first)."""
    if s.columns("_releases", RAW) is None:
        return None
    return s.query(f"SELECT max(last_loaded_at) AS t FROM {RAW}._releases").column(0)[0].as_py()


def prepare(s: Session, project: str) -> dt.datetime | None:
    """Before a build: drop the watermarks another project wrote; returns what the build's
    models will have computed through (:func:`loaded_through`)."""
    if s.columns(TABLE, SCHEMA) is not None:
        s.execute(f"DELETE FROM {SCHEMA}.{q(TABLE)} WHERE project <> {s.ph}", (project,))
    return loaded_through(s)


def record(s: Session, models: list[str], project: str, through: dt.datetime | None) -> None:
    """The models (that succeeded) and tests (that passed) have computed or checked every
    event loaded through ``through``."""
    if through is None or not models:
        return
    s.ensure_schema(SCHEMA)
    s.ensure_table(TABLE, COLUMNS, schema=SCHEMA)
    marks = ", ".join([s.ph] * len(models))
    s.execute(f"DELETE FROM {SCHEMA}.{q(TABLE)} WHERE model IN ({marks})", tuple(models))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = ", ".join([f"({s.ph}, {s.ph}, {s.ph}, {s.ph})"] * len(models))
    s.execute(
        f"INSERT INTO {SCHEMA}.{q(TABLE)} VALUES {rows}", tuple(v for m in models for v in (m, project, through, now))
    )


__all__ = ["SCHEMA", "TABLE", "project_fingerprint", "loaded_through", "prepare", "record"]
