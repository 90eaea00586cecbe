"""Which dbt project built the marts. The incremental models follow their own watermarks
(macros/incremental.sql), which say nothing of a changed model, macro or view: after such a
change, the rows computed before may be stale. The dbt assets record this fingerprint in
their materializations and build with --full-refresh when it differs, so a changed project
recomputes every event once, as a build from scratch would."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

PROJECT_METADATA = "dbt project"
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "snapshots")
# what dbt's docs site shows besides: the data tests too
DOCS_PARTS = (*PROJECT_PARTS, "tests")
DOCS_METADATA = "site inputs"


def project_fingerprint(project_dir: Path, parts: tuple[str, ...] = PROJECT_PARTS) -> str:
    """A hash of the files that decide what the models compute (or, with ``parts``, of
    other parts of the project)."""
    h = hashlib.sha256()
    for part in parts:
        root = Path(project_dir) / part
        for f in sorted([root] if root.is_file() else root.rglob("*")):
            if f.is_file() and f.suffix in (".sql", ".yml", ".yaml"):
                h.update(str(f.relative_to(project_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def docs_inputs(project_dir: Path, relations: Mapping[tuple[str, str], Mapping]) -> str:
    """A hash of what ``dbt docs generate`` reads: the project's files and the warehouse
    catalog, that is every relation's kind, columns and column types
    (``Session.describe_relations``). The catalogs of dbt-duckdb and dbt-postgres hold no
    row counts, so a site built from the same inputs is the same site."""
    h = hashlib.sha256(project_fingerprint(project_dir, DOCS_PARTS).encode())
    for (schema, name), rel in sorted(relations.items()):
        cols = ",".join(f"{c} {t}" for c, t in rel["columns"])
        h.update(f"{schema}.{name} {rel['kind']} ({cols})\n".encode())
    return h.hexdigest()[:16]
