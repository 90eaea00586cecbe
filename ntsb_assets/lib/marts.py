"""The marts' roles outside dbt, declared once in the dbt project and read from its manifest
(``dbt_project/target/manifest.json``, written by ``ntsb prepare``):

- archived, and how: a model's ``config.meta.ntsb.archive`` is ``year`` (one Parquet file
  per event year; ``year_of`` names the column that gives it: a date, an integer year, or
  ``<model>.<date column>`` of the event's row in another mart, joined on ``ev_id``) or
  ``whole`` (one file);
- served: the models the ``ntsb_api`` and ``ntsb_dashboard`` exposures depend on are the
  serving snapshot's marts (what the API and the dashboard read);
- a column whose ``meta.ntsb.warehouse_only`` is true stays in the warehouse (neither
  archived nor served: a tsvector, say).

So a mart is archived or served by editing dbt files only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "dbt_project" / "target" / "manifest.json"
ARCHIVE_KINDS = ("year", "whole")
SERVING_EXPOSURES = ("ntsb_api", "ntsb_dashboard")


class MartsError(Exception):
    pass


@dataclass(frozen=True)
class Mart:
    name: str
    archive: str | None  # "year", "whole", or None (not archived)
    year_of: str | None  # archive "year": the column giving the event year
    served: bool
    warehouse_only: frozenset[str]  # columns neither archived nor served
    yml: str  # where it is declared


def marts(manifest: Path = MANIFEST) -> dict[str, Mart]:
    """Every model of the marts schema that has a role, by name."""
    try:
        mtime = manifest.stat().st_mtime_ns
    except FileNotFoundError:
        raise MartsError(f"{manifest} is missing: build the dbt manifest first (ntsb prepare, or make setup)") from None
    return _read(str(manifest), mtime)


@lru_cache(maxsize=4)
def _read(path: str, mtime: int) -> dict[str, Mart]:
    m = json.loads(Path(path).read_text(encoding="utf-8"))
    served = {
        m["nodes"][n]["name"]
        for e in SERVING_EXPOSURES
        for n in m["exposures"].get(f"exposure.ntsb.{e}", {}).get("depends_on", {}).get("nodes", [])
        if n.startswith("model.")
    }
    out = {}
    for node in m["nodes"].values():
        if node["resource_type"] != "model" or node["package_name"] != "ntsb":
            continue
        role = ((node.get("config") or {}).get("meta") or {}).get("ntsb") or {}
        where = (node.get("patch_path") or node["original_file_path"]).split("://")[-1]  # ntsb://models/...
        archive, year_of = role.get("archive"), role.get("year_of")
        if archive is not None and archive not in ARCHIVE_KINDS:
            raise MartsError(f"{where}: {node['name']}: meta.ntsb.archive is {archive!r}; use one of {ARCHIVE_KINDS}")
        if (archive == "year") != (year_of is not None):
            raise MartsError(
                f"{where}: {node['name']}: meta.ntsb.year_of names the event-year column of an archive "
                f"'year' model, and only of one (archive {archive!r}, year_of {year_of!r})"
            )
        only = frozenset(
            c
            for c, col in (node.get("columns") or {}).items()
            if ((col.get("meta") or {}).get("ntsb") or {}).get("warehouse_only")
        )
        if archive or node["name"] in served:
            out[node["name"]] = Mart(node["name"], archive, year_of, node["name"] in served, only, str(where))
    return out


def archived(kind: str, manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The marts archived as ``kind`` (``year`` or ``whole``), by name."""
    return tuple(sorted(n for n, mart in marts(manifest).items() if mart.archive == kind))


def served(manifest: Path = MANIFEST) -> tuple[str, ...]:
    return tuple(sorted(n for n, mart in marts(manifest).items() if mart.served))
