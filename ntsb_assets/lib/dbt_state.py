"""Which dbt project built the marts. The incremental models follow their own watermarks
(macros/incremental.sql), which say nothing of a changed model, macro or view: after such a
change, the rows computed before may be stale. The dbt assets record this fingerprint in
their materializations and build with --full-refresh when it differs, so a changed project
recomputes every event once, as a build from scratch would."""

from __future__ import annotations

import hashlib
from pathlib import Path

PROJECT_METADATA = "dbt project"
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
