"""NTSB's code sets: the codes each coded column takes, with their labels, from every code
source NTSB ships, and the dictionary-lag report of the codes a release uses that no source
knows.

Sources, in a release (a later one in ``SOURCES`` wins when two disagree on a code's label):

- ``ct_seqevt``: the codes of the pre-2008 occurrences and sequence of events;
- ``Country`` and ``states``: the country and state codes of an event's location;
- ``ct_iaids``: NTSB's code tables, one per ``ct_name``. A code table codes the columns the
  data dictionary names beside it (its ``ct_name`` column); the few tables the dictionary
  does not name are mapped in ``CODE_TABLE_COLUMNS`` (an ``acft_fire`` table codes
  ``aircraft.acft_fire``);
- ``eADMSPUB_DataDictionary``: the code list of each column, with its wording;
- any other ``ct_*`` table a release holds (a code and a meaning column), coding the columns
  the dictionary names beside its ct_name.

A bundled baseline (``code_sets.json`` beside this module, compiled from the reference tables
of NTSB's avall.mdb by ``python -m ntsb_assets.lib.codes compile <folder>``) holds the same
for every column, so a release that ships no reference tables (a core-only export, a monthly
update) is checked and labelled against the latest known sets.

The warehouse keeps the merged sets in ``raw._code_sets`` (one row per table, column and
code; the release that last set it), every change a release makes in
``raw._code_set_changes``, and the lag report in ``raw._code_lag`` (per release, table,
column and code: the rows whose code no source knows). A release replaces a code's label
only when it is not older than the release that set it (by first load); the baseline is
older than every release. No Dagster here.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

BASELINE_FILE = Path(__file__).with_name("code_sets.json")
BASELINE = "baseline"  # the release id of the bundled entries
UNKNOWN_LABEL = "unknown code"  # the label of a code no source knows (dbt's ntsb_label)

# Values that mean "no code" (dbt_project/macros/cleaning.sql, ntsb_code, turns them to NULL).
NO_CODE = ("", "UNK", "UNKN")

DICTIONARY = "eADMSPUB_DataDictionary"
SOURCES = ("ct_seqevt", "Country", "states", "ct_iaids", DICTIONARY)

# Columns coded by a source that is not a ct_iaids table, and ct_iaids tables the data
# dictionary does not name (the naming convention ct_<column>), in lower case.
SOURCE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "ct_seqevt": (
        ("occurrences", "occurrence_code"),
        ("occurrences", "phase_of_flight"),
        ("seq_of_events", "subj_code"),
        ("seq_of_events", "modifier_code"),
        ("seq_of_events", "person_code"),
    ),
    "Country": (("events", "ev_country"),),
    "states": (("events", "ev_state"),),
}
CODE_TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "ct_acft_expl": (("aircraft", "acft_expl"),),
    "ct_acft_fire": (("aircraft", "acft_fire"),),
}


def is_code_table(name: str) -> bool:
    """A table of a release that lists codes: a source above, or any other ``ct_*`` table (a
    code table delivered on its own, with a code and a meaning column, coding the columns the
    dictionary names beside its ct_name)."""
    return name in SOURCES or name.lower().startswith("ct_")


TABLES = {
    "_code_sets": {
        "table_name": "string",
        "column_name": "string",
        "code": "string",
        "meaning": "string",
        "source": "string",
        "release_id": "string",
        "_loaded_at": "timestamp",
    },
    "_code_set_changes": {
        "table_name": "string",
        "column_name": "string",
        "code": "string",
        "operation": "string",
        "old_meaning": "string",
        "new_meaning": "string",
        "old_release_id": "string",
        "release_id": "string",
        "source": "string",
        "changed_at": "timestamp",
    },
    "_code_lag": {
        "release_id": "string",
        "table_name": "string",
        "column_name": "string",
        "code": "string",
        "row_count": "int",
        "column_rows": "int",
        "recorded_at": "timestamp",
    },
}


@dataclass(frozen=True)
class Entry:
    table: str  # lower case
    column: str  # lower case
    code: str  # trimmed, upper case
    meaning: str
    source: str


def normalise_code(value) -> str | None:
    if value is None:
        return None
    v = str(value).strip().upper()
    return None if v in NO_CODE else v


def _listed_code(value) -> str | None:
    """A code as a code source lists it: the dictionary writes the modifiers of a finding code
    with placeholders for the code's other digits (``XXXXXXXX01``); the data holds ``01``."""
    v = normalise_code(value)
    return re.sub(r"^X{4,}(?=[0-9])", "", v) if v else v


# ---------------------------------------------------------------------------- from tables
def _rows(tbl) -> list[dict]:
    return tbl.to_pylist() if isinstance(tbl, pa.Table) else list(tbl)


def _get(row: dict, name: str):
    """A column of a reference row, whatever its casing."""
    if name in row:
        return row[name]
    lower = name.lower()
    for k, v in row.items():
        if k.lower() == lower:
            return v
    return None


def _text(v) -> str:
    return " ".join(str(v).split()) if v is not None else ""


def code_tables_of(dictionary_rows: Iterable[dict]) -> dict[str, set[tuple[str, str]]]:
    """ct_name -> the (table, column) pairs the data dictionary says it codes."""
    out: dict[str, set[tuple[str, str]]] = {}
    for r in dictionary_rows:
        ct, t, c = _text(_get(r, "ct_name")).lower(), _text(_get(r, "Table")).lower(), _text(_get(r, "Column")).lower()
        if ct and t and c:
            out.setdefault(ct, set()).add((t, c))
    return out


def entries_of(
    tables: Mapping[str, object], code_tables: Mapping[str, Iterable[tuple[str, str]]] | None = None
) -> tuple[list[Entry], dict[str, set[tuple[str, str]]]]:
    """Every code a release's reference tables give (``tables``: canonical table name -> an
    Arrow table or rows), and the ct_name mapping in effect: the release's dictionary's, then
    ``code_tables`` (an earlier one), then ``CODE_TABLE_COLUMNS``. A code listed twice by one
    source keeps its first wording in sort order."""
    mapping: dict[str, set[tuple[str, str]]] = {k: set(v) for k, v in CODE_TABLE_COLUMNS.items()}
    for k, v in (code_tables or {}).items():
        mapping.setdefault(k, set()).update((a, b) for a, b in v)
    rows = {name: _rows(tables[name]) for name in tables if is_code_table(name)}
    if DICTIONARY in rows:
        for k, v in code_tables_of(rows[DICTIONARY]).items():
            mapping.setdefault(k, set()).update(v)
    found: dict[tuple[str, str, str, str], str] = {}

    def add(source: str, table: str, column: str, code, meaning) -> None:
        code, meaning = _listed_code(code), _text(meaning)
        if code is None or not meaning:
            return
        k = (source, table, column, code)
        if k not in found or meaning < found[k]:
            found[k] = meaning

    for r in rows.get("ct_seqevt", ()):
        for t, c in SOURCE_COLUMNS["ct_seqevt"]:
            add("ct_seqevt", t, c, _get(r, "code"), _get(r, "meaning"))
    for r in rows.get("Country", ()):
        for t, c in SOURCE_COLUMNS["Country"]:
            add("Country", t, c, _get(r, "COUNTRY_CODE"), _get(r, "COUNTRY_NAME"))
    for r in rows.get("states", ()):
        for t, c in SOURCE_COLUMNS["states"]:
            add("states", t, c, _get(r, "state"), _text(_get(r, "name")).title())
    for r in rows.get("ct_iaids", ()):
        for t, c in sorted(mapping.get(_text(_get(r, "ct_name")).lower(), ())):
            add("ct_iaids", t, c, _get(r, "code_iaids"), _get(r, "meaning"))
    for name in sorted(set(rows) - set(SOURCES)):  # other code tables: coded where the dictionary says
        for r in rows[name]:
            code = _get(r, "code_iaids") if _get(r, "code_iaids") is not None else _get(r, "code")
            for t, c in sorted(mapping.get(name.lower(), ())):
                add(name, t, c, code, _get(r, "meaning"))
    for r in rows.get(DICTIONARY, ()):
        t, c = _text(_get(r, "Table")).lower(), _text(_get(r, "Column")).lower()
        if t and c:
            add(DICTIONARY, t, c, _get(r, "code_iaids"), _get(r, "meaning"))
    return [Entry(t, c, code, m, src) for (src, t, c, code), m in sorted(found.items())], mapping


def resolve(entries: Iterable[Entry]) -> dict[tuple[str, str, str], Entry]:
    """One entry per (table, column, code): the source latest in ``SOURCES`` wins."""
    rank = {s: i for i, s in enumerate(SOURCES)}  # another ct_* table ranks with ct_iaids
    out: dict[tuple[str, str, str], Entry] = {}
    for e in sorted(entries, key=lambda e: rank.get(e.source, rank["ct_iaids"])):
        out[(e.table, e.column, e.code)] = e
    return out


# ---------------------------------------------------------------------------- the baseline
def compile_baseline(folder: Path) -> dict:
    """The bundled baseline from a folder of NTSB reference tables as ``mdb-export`` writes them."""
    tables = {}
    for name in SOURCES:
        path = Path(folder) / f"{name}.csv"
        if path.exists():
            with open(path, encoding="utf-8-sig", newline="") as fh:
                tables[name] = list(csv.DictReader(fh))
    entries, mapping = entries_of(tables)
    return {
        "compiled_from": sorted(f"{n}.csv" for n in tables),
        "code_tables": {k: sorted(map(list, v)) for k, v in sorted(mapping.items())},
        "codes": [[e.table, e.column, e.code, e.meaning, e.source] for e in resolve(entries).values()],
    }


def write_baseline(baseline: dict, path: Path = BASELINE_FILE) -> None:
    """One entry per line: a new NTSB code is a one-line diff."""
    lines = ["{", f' "compiled_from": {json.dumps(baseline["compiled_from"])},', ' "code_tables": {']
    tables = list(baseline["code_tables"].items())
    lines += [
        f"  {json.dumps(k)}: {json.dumps(v)}{',' if i < len(tables) - 1 else ''}" for i, (k, v) in enumerate(tables)
    ]
    lines += [" },", ' "codes": [']
    codes = baseline["codes"]
    lines += [f"  {json.dumps(c, ensure_ascii=False)}{',' if i < len(codes) - 1 else ''}" for i, c in enumerate(codes)]
    lines += [" ]", "}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@lru_cache(maxsize=1)
def baseline() -> tuple[tuple[Entry, ...], dict[str, tuple[tuple[str, str], ...]]]:
    data = json.loads(BASELINE_FILE.read_text(encoding="utf-8"))
    entries = tuple(Entry(t, c, code, m, src) for t, c, code, m, src in data["codes"])
    return entries, {k: tuple(tuple(p) for p in v) for k, v in data["code_tables"].items()}


def baseline_sets() -> dict[tuple[str, str], list[str]]:
    """(table, column) -> the codes of the bundled baseline (the rule book's code lists)."""
    out: dict[tuple[str, str], set[str]] = {}
    for e in baseline()[0]:
        out.setdefault((e.table, e.column), set()).add(e.code)
    return {k: sorted(v) for k, v in out.items()}


# ---------------------------------------------------------------------------- the warehouse
def ensure_tables(s) -> None:
    for name, cols in TABLES.items():
        s.ensure_table(name, cols)


def _arrow(name: str, rows: list[dict]) -> pa.Table:
    from . import typemap

    return pa.Table.from_pylist(rows, schema=pa.schema([(c, typemap.ARROW[t]) for c, t in TABLES[name].items()]))


def current(s) -> dict[tuple[str, str, str], dict]:
    """The warehouse's code sets: (table, column, code) -> its row."""
    from .warehouse import RAW

    if s.columns("_code_sets", RAW) is None:
        return {}
    return {
        (r["table_name"], r["column_name"], r["code"]): r
        for r in s.query(
            f"SELECT table_name, column_name, code, meaning, source, release_id FROM {RAW}._code_sets"
        ).to_pylist()
    }


def known_sets(s) -> dict[tuple[str, str], set[str]]:
    """(table, column) -> the codes the warehouse knows."""
    out: dict[tuple[str, str], set[str]] = {}
    for t, c, code in current(s):
        out.setdefault((t, c), set()).add(code)
    return out


def stored_mapping(s) -> dict[str, set[tuple[str, str]]]:
    """The ct_name mapping of the baseline and of the dictionaries loaded so far."""
    from .warehouse import RAW, sql_name

    mapping = {k: set(v) for k, v in baseline()[1].items()}
    d = sql_name(DICTIONARY)
    if {"ct_name", "table", "column"} <= set(s.columns(d, RAW) or ()):  # a dictionary with its ct_name column
        rows = s.query(f'SELECT DISTINCT ct_name, "table" AS "Table", "column" AS "Column" FROM {RAW}.{d}').to_pylist()
        for k, v in code_tables_of(rows).items():
            mapping.setdefault(k, set()).update(v)
    return mapping


@dataclass
class MergeResult:
    added: int = 0
    changed: int = 0
    kept: int = 0  # entries of an older release than the one that set the code: not applied


def merge(
    s,
    release_id: str,
    tables: Mapping[str, object],
    now: dt.datetime,
    newer: Callable[[str], bool | None] | None = None,
) -> MergeResult:
    """Merge the baseline and a release's reference tables into ``raw._code_sets``, in the
    caller's transaction. Changes are recorded in ``raw._code_set_changes``; seeding the
    baseline into an empty warehouse is not a change. A label from a newer release is kept:
    newer by the registry's order (``newer(release_id)``), else by first load."""
    from .warehouse import RAW

    ensure_tables(s)
    have = current(s)
    order = (
        {
            r["release_id"]: r["first_loaded_at"]
            for r in s.query(f"SELECT release_id, first_loaded_at FROM {RAW}._releases").to_pylist()
        }
        if s.columns("_releases", RAW) is not None
        else {}
    )
    mine = order.get(release_id, now)
    result = MergeResult()
    writes: dict[tuple[str, str, str], dict] = {}
    changes: list[dict] = []

    def apply(entry: Entry, rel: str, record: bool) -> None:
        key = (entry.table, entry.column, entry.code)
        old = writes.get(key) or have.get(key)
        if old is not None:
            if old["meaning"] == entry.meaning:
                return
            later = newer(old["release_id"]) if newer else None
            if later is None:
                later = order.get(old["release_id"], now) > mine
            if rel != BASELINE and old["release_id"] != BASELINE and later:
                result.kept += 1
                return
            if rel == BASELINE and old["release_id"] != BASELINE:
                return
        row = {
            "table_name": entry.table,
            "column_name": entry.column,
            "code": entry.code,
            "meaning": entry.meaning,
            "source": entry.source,
            "release_id": rel,
            "_loaded_at": now,
        }
        writes[key] = row
        if old is None:
            result.added += record
        else:
            result.changed += 1
        if record or old is not None:
            changes.append(
                {
                    "table_name": entry.table,
                    "column_name": entry.column,
                    "code": entry.code,
                    "operation": "added" if old is None else "changed",
                    "old_meaning": old["meaning"] if old else None,
                    "new_meaning": entry.meaning,
                    "old_release_id": old["release_id"] if old else None,
                    "release_id": rel,
                    "source": entry.source,
                    "changed_at": now,
                }
            )

    seeding = not have
    for e in baseline()[0]:
        apply(e, BASELINE, record=not seeding)
    if any(is_code_table(name) for name in tables):
        entries, _ = entries_of(tables, stored_mapping(s))  # the baseline's mapping and every dictionary's
        for e in resolve(entries).values():
            apply(e, release_id, record=True)
    if writes:
        from .warehouse import q

        keys = [k for k in writes if k in have]
        for i in range(0, len(keys), 500):  # delete the replaced rows, then insert all
            chunk = keys[i : i + 500]
            cond = " OR ".join(f"(table_name = {s.ph} AND column_name = {s.ph} AND code = {s.ph})" for _ in chunk)
            s.execute(f"DELETE FROM {RAW}.{q('_code_sets')} WHERE {cond}", tuple(v for k in chunk for v in k))
        s.insert_arrow("_code_sets", _arrow("_code_sets", list(writes.values())))
    if changes:
        s.insert_arrow("_code_set_changes", _arrow("_code_set_changes", changes))
    return result


def lag(table: str, rows: pa.Table, known: Mapping[tuple[str, str], set[str]]) -> list[dict]:
    """The codes of a release's table that no source knows: one dict per (column, code) with
    ``row_count`` (rows with that code) and ``column_rows`` (rows with any code in that column)."""
    out = []
    t = table.lower()
    for name in rows.column_names:
        codes = known.get((t, name.lower()))
        if not codes:
            continue
        col = rows.column(name)
        if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
            col = pc.cast(col, pa.string())
        v = pc.utf8_upper(pc.utf8_trim_whitespace(col))
        v = pc.if_else(pc.is_in(v, value_set=pa.array(NO_CODE)), pa.scalar(None, pa.string()), v)
        present = len(v) - v.null_count
        if not present:
            continue
        unknown = pc.filter(v, pc.and_(pc.is_valid(v), pc.invert(pc.is_in(v, value_set=pa.array(sorted(codes))))))
        if len(unknown):
            counts = pc.value_counts(unknown).to_pylist()
            for c in sorted(counts, key=lambda c: (-c["counts"], c["values"])):
                out.append(
                    {
                        "column_name": name.lower(),
                        "code": c["values"],
                        "row_count": int(c["counts"]),
                        "column_rows": int(present),
                    }
                )
    return out


def record_lag(s, release_id: str, table: str, found: list[dict], now: dt.datetime) -> None:
    """A release's lag rows of one table, replacing those of an earlier load of the release."""
    from .warehouse import RAW

    s.execute(
        f"DELETE FROM {RAW}._code_lag WHERE release_id = {s.ph} AND table_name = {s.ph}", (release_id, table.lower())
    )
    if found:
        s.insert_arrow(
            "_code_lag",
            _arrow(
                "_code_lag",
                [{"release_id": release_id, "table_name": table.lower(), **f, "recorded_at": now} for f in found],
            ),
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "compile":
        print("usage: python -m ntsb_assets.lib.codes compile <folder of NTSB reference tables (CSV)>", file=sys.stderr)
        return 2
    data = compile_baseline(Path(argv[1]))
    write_baseline(data)
    print(
        f"wrote {BASELINE_FILE.name}: {len(data['codes'])} codes of {len({(c[0], c[1]) for c in data['codes']})} "
        f"columns, from {', '.join(data['compiled_from'])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "Entry",
    "SOURCES",
    "UNKNOWN_LABEL",
    "entries_of",
    "resolve",
    "compile_baseline",
    "baseline",
    "baseline_sets",
    "merge",
    "lag",
    "record_lag",
    "known_sets",
    "normalise_code",
    "MergeResult",
]
