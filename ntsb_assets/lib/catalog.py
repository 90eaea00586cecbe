"""The NTSB table catalog: canonical table and column names, column types, natural keys
and parent tables.

Column names and types come from NTSB's own data dictionary (``eADMSPUB_DataDictionary``),
compiled once into ``catalog.json`` beside this module by::

    python -m ntsb_assets.lib.catalog data/sample/reference/eADMSPUB_DataDictionary.csv

Natural keys, parents and the reference tables the dictionary does not describe are
written down here, once. Everything else in the project asks this module.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

from .dbt_vars import VARS

CATALOG_FILE = Path(__file__).with_name("catalog.json")

# Natural key of every table we know, in canonical names. Documented in docs/ingestion.md.
KEYS: dict[str, tuple[str, ...]] = {
    "events": ("ev_id",),
    "aircraft": ("ev_id", "Aircraft_Key"),
    "engines": ("ev_id", "Aircraft_Key", "eng_no"),
    "Flight_Crew": ("ev_id", "Aircraft_Key", "crew_no"),
    "flight_time": ("ev_id", "Aircraft_Key", "crew_no", "flight_type", "flight_craft"),
    "injury": ("ev_id", "Aircraft_Key", "inj_person_category", "injury_level"),
    "Findings": ("ev_id", "Aircraft_Key", "finding_no"),
    "Occurrences": ("ev_id", "Aircraft_Key", "Occurrence_No"),
    "seq_of_events": ("ev_id", "Aircraft_Key", "Occurrence_No", "seq_event_no"),
    "Events_Sequence": ("ev_id", "Aircraft_Key", "Occurrence_No"),
    "narratives": ("ev_id", "Aircraft_Key"),
    "NTSB_Admin": ("ev_id",),
    "dt_events": ("ev_id", "col_name", "code"),
    "dt_aircraft": ("ev_id", "Aircraft_Key", "col_name", "code"),
    "dt_Flight_Crew": ("ev_id", "Aircraft_Key", "crew_no", "col_name", "code"),
    "ct_iaids": ("ct_name", "code_iaids"),
    "ct_seqevt": ("code",),
    # NTSB's dictionary repeats entries with conflicting text: no natural key, keyed by content
    "eADMSPUB_DataDictionary": (),
    "Country": ("COUNTRY_CODE",),
    "states": ("state",),
    # PRE1982's own tables, kept whole beside what maps into the tables above (lib/pre1982.py):
    # its event tables by the derived ev_id, the others by content (their keys are not documented)
    "pre1982_first_half": ("ev_id",),
    "pre1982_second_half": ("ev_id",),
    "pre1982_occurrences": (),
    "pre1982_seq_of_events": (),
    "pre1982_codes": (),
}

# Load order: parents before children (the warehouse checks parents while loading).
TABLE_ORDER: tuple[str, ...] = tuple(KEYS)

# Columns a row cannot be loaded without (beyond its key columns).
REQUIRED: dict[str, tuple[str, ...]] = {"events": ("ev_date",)}

# Columns the data dictionary does not list, with their types.
EXTRA_COLUMNS: dict[str, dict[str, str]] = {
    "events": {"dec_latitude": "float", "dec_longitude": "float"},
    "ct_iaids": {
        "ct_name": "string",
        "code_iaids": "string",
        "meaning": "string",
        "seq": "int",
        "ntsb_type": "string",
        "ntsb_code": "string",
        "avn_code": "string",
        "ntsb_codes_more": "string",
        "not_for_ntsb_use": "int",
        "eADMS_use": "int",
        "notes": "string",
    },
    "ct_seqevt": {"code": "string", "meaning": "string"},
    "Country": {"COUNTRY_CODE": "string", "COUNTRY_NAME": "string"},
    "states": {"state": "string", "name": "string", "faa_region": "string"},
    "NTSB_Admin": {
        "ev_id": "string",
        "rec_stat": "string",
        "approval_date": "timestamp",
        "lchg_userid": "string",
        "lchg_date": "timestamp",
    },
    "eADMSPUB_DataDictionary": {
        "Category of Data": "string",
        "Table": "string",
        "Column": "string",
        "ct_name": "string",
        "code_iaids": "string",
        "meaning": "string",
        "Data Type eADMS": "string",
        "Length eADMS": "int",
        "short_desc": "string",
        "Question_Def": "string",
        "Code meaning": "string",
        "typeofchange": "string",
        "Change_notes": "string",
    },
}

# Columns with a raw DMS coordinate string; extraction adds a decimal column beside it
# (NTSB's dec_latitude/dec_longitude where delivered, else the DMS string parsed).
DMS_COLUMNS = {"latitude": "latitude_decimal", "longitude": "longitude_decimal"}

# Value ranges that are hard rules at load time: a row outside is quarantined.
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("events", "dec_latitude"): (-90.0, 90.0),
    ("events", "dec_longitude"): (-180.0, 180.0),
}
EARLIEST_EVENT_DATE: str = VARS["ntsb_earliest_event_date"]

_DICT_TYPES = {
    "char": "string",
    "varchar": "string",
    "text": "string",
    "": "string",
    "int": "int",
    "smallint": "int",
    "tinyint": "int",
    "real": "float",
    "bit": "bool",
    "datetime": "timestamp",
}
# Dictionary datetime columns that hold a calendar date only.
DATE_ONLY = {("events", "ev_date")}


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> type

    @property
    def key(self) -> tuple[str, ...]:
        return KEYS.get(self.name, ())

    @property
    def known(self) -> bool:
        return self.name in KEYS

    @property
    def key_nullable(self) -> bool:
        """Reference tables (code lists, dictionary) have keys with empty parts; event
        data never does."""
        return "ev_id" not in self.key

    @property
    def parent(self) -> str | None:
        """The table whose key every row of this one must find (None for roots)."""
        if self.name in ("events",) or "ev_id" not in self.key:
            return None
        if "Aircraft_Key" in self.key and self.name != "aircraft":
            return "aircraft"
        return "events"

    def parent_key(self) -> tuple[str, ...]:
        return KEYS[self.parent] if self.parent else ()


def key_description(table: str) -> str:
    key = KEYS.get(table)
    return f"natural key ({', '.join(key)})" if key else "keyed by content (no natural key)"


def build_catalog(dictionary_csv: Path) -> dict:
    """Compile the data dictionary into {table: {column: type}} in canonical names."""
    canonical_tables = {t.lower(): t for t in KEYS}
    tables: dict[str, dict[str, str]] = {}
    with open(dictionary_csv, encoding="utf-8-sig", errors="strict", newline="") as fh:
        for row in csv.DictReader(fh):
            table = canonical_tables.get(row["Table"].lower(), row["Table"])
            col = row["Column"]
            typ = _DICT_TYPES.get(row["Data Type eADMS"].strip().lower(), "string")
            if typ == "timestamp" and (table, col) in DATE_ONLY:
                typ = "date"
            cols = tables.setdefault(table, {})
            # the dictionary repeats a column once per code; keep the first spelling
            if col.lower() not in {c.lower() for c in cols}:
                cols[col] = typ
    for table, cols in EXTRA_COLUMNS.items():
        tables.setdefault(table, {}).update(cols)
    # Aircraft_Key is a key everywhere but some tables list it in lower case or not at all
    for table, key in KEYS.items():
        cols = tables.setdefault(table, {})
        lower = {c.lower(): c for c in cols}
        for k in key:
            if k.lower() in lower and lower[k.lower()] != k:
                cols[k] = cols.pop(lower[k.lower()])
            cols.setdefault(
                k,
                "int"
                if k in ("Aircraft_Key", "eng_no", "crew_no", "finding_no", "Occurrence_No", "seq_event_no")
                else "string",
            )
    return {"source": dictionary_csv.name, "tables": tables}


@lru_cache(maxsize=1)
def _catalog() -> dict:
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


@cache
def canonical_table_name(name: str) -> str:
    """Map any casing of a table name to the NTSB spelling; unknown names stay as-is."""
    lower = name.strip().lower()
    for known in list(KEYS) + list(_catalog()["tables"]):
        if known.lower() == lower:
            return known if known in KEYS else known
    return name.strip()


def table(name: str) -> Table:
    canon = canonical_table_name(name)
    return Table(canon, dict(_catalog()["tables"].get(canon, {})))


def canonical_column_name(table_: Table, name: str) -> str:
    lower = name.strip().lower()
    for col in table_.columns:
        if col.lower() == lower:
            return col
    return name.strip()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m ntsb_assets.lib.catalog eADMSPUB_DataDictionary.csv", file=sys.stderr)
        return 2
    catalog = build_catalog(Path(argv[0]))
    CATALOG_FILE.write_text(json.dumps(catalog, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {CATALOG_FILE} ({len(catalog['tables'])} tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
