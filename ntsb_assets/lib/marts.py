"""The marts' roles outside dbt, declared once in the dbt project and read from its manifest
(``dbt_project/target/manifest.json``, written by ``ntsb prepare``):

- archived, and how: a model's ``config.meta.ntsb.archive`` is ``year`` (one Parquet file
  per event year; ``year_of`` names the column that gives it: a date, an integer year, or
  ``<model>.<date column>`` of the event's row in another mart, joined on ``ev_id``) or
  ``whole`` (one file);
- served: the models the ``ntsb_api`` and ``ntsb_dashboard`` exposures depend on are the
  serving snapshot's marts (what the API and the dashboard read);
- a column whose ``meta.ntsb.warehouse_only`` is true stays in the warehouse (neither
  archived nor served: a tsvector, say);
- what the HTTP API returns of a served mart: the columns whose ``meta.ntsb.api`` says
  where (see ``API_PLACES``), in the yml's order; a column of the event list or the event's
  top level declares its logical type (``meta.ntsb.type``, one of ``vars.ntsb_types``), from
  which the response model takes its type, and its description is the field's.

So a mart, or a column, is archived or served by editing dbt files only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .typemap import LOGICAL

MANIFEST = Path(__file__).resolve().parents[2] / "dbt_project" / "target" / "manifest.json"
ARCHIVE_KINDS = ("year", "whole")
SERVING_EXPOSURES = ("ntsb_api", "ntsb_dashboard")
API_PLACES = {  # meta.ntsb.api -> where the API returns the column
    "list": "the event list (GET /events) and the top level of the event (GET /events/{ev_id})",
    "detail": "the event (GET /events/{ev_id}): its top level (fact_accidents) or its part from this mart",
    "crew": "the event's crew object",
    "rows": "the rows of the mart's statistics route (GET /stats/...)",
}
TYPED_PLACES = ("list", "detail")  # fact_accidents' columns there are typed fields of the response model


@dataclass(frozen=True)
class ApiColumn:
    name: str
    place: str  # a key of API_PLACES
    type: str | None  # a logical type (typed places of fact_accidents), else None
    description: str


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
    api: tuple[ApiColumn, ...] = ()  # the columns the HTTP API returns, in the yml's order

    def api_columns(self, *places: str) -> tuple[str, ...]:
        """The names of the columns the API returns in any of ``places``."""
        return tuple(c.name for c in self.api if c.place in places)


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
        api = _api_columns(node, str(where))
        if api and node["name"] not in served:
            raise MartsError(
                f"{where}: {node['name']}: columns with meta.ntsb.api ({', '.join(c.name for c in api)}) "
                f"in a mart that no serving exposure ({', '.join(SERVING_EXPOSURES)}) depends on"
            )
        if archive or node["name"] in served:
            out[node["name"]] = Mart(node["name"], archive, year_of, node["name"] in served, only, str(where), api)
    return out


def _api_columns(node: dict, where: str) -> tuple[ApiColumn, ...]:
    out = []
    for name, col in (node.get("columns") or {}).items():
        role = (col.get("meta") or {}).get("ntsb") or {}
        place, kind = role.get("api"), role.get("type")
        if place is None:
            continue
        at = f"{where}: {node['name']}.{name}"
        if place not in API_PLACES:
            raise MartsError(f"{at}: meta.ntsb.api is {place!r}; use one of {tuple(API_PLACES)}")
        if role.get("warehouse_only"):
            raise MartsError(f"{at}: a warehouse_only column is not served: drop meta.ntsb.api or warehouse_only")
        typed = node["name"] == "fact_accidents" and place in TYPED_PLACES
        if typed and kind not in LOGICAL:
            raise MartsError(f"{at}: meta.ntsb.type is {kind!r}; a column of the event declares one of {LOGICAL}")
        out.append(ApiColumn(name, place, kind, " ".join((col.get("description") or "").split())))
    return tuple(out)


def archived(kind: str, manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The marts archived as ``kind`` (``year`` or ``whole``), by name."""
    return tuple(sorted(n for n, mart in marts(manifest).items() if mart.archive == kind))


def served(manifest: Path = MANIFEST) -> tuple[str, ...]:
    return tuple(sorted(n for n, mart in marts(manifest).items() if mart.served))


def api_columns(mart: str, *places: str, manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The columns of a served mart that the API returns in any of ``places``."""
    try:
        found = marts(manifest)[mart]
    except KeyError:
        raise MartsError(f"{mart} is not a served mart of {manifest}") from None
    return found.api_columns(*places)
