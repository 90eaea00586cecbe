"""Change data capture by content hash per natural key, and the hard rules a row must pass
to be loaded. Pure functions over Arrow tables and Python sets: the warehouse code applies
the plan, this module decides it.

Rules (each quarantined row carries one):

===================  =====================================================================
rule                 meaning
===================  =====================================================================
type, field_count    the row could not be parsed (decided at extraction, see extract.py)
missing_key          a natural-key column is empty
missing_required     a required column (events.ev_date) is empty
out_of_range         dec_latitude/dec_longitude outside the globe, ev_date before 1948 or
                     after today
duplicate_key        two or more rows of one release share a key with different content
                     (all of them are quarantined: the release does not say which is right)
parent_quarantined   the row's event or aircraft was quarantined in this release
orphan               the row's event or aircraft is neither in this release nor loaded
===================  =====================================================================

An exact repeat of a row inside one release is loaded once and counted ``unchanged``.

Releases land in the order they were registered, whatever order their loads commit in: a
changed row whose key holds a row of a release registered later is not loaded, and is
counted ``superseded`` (the newer row stays).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from . import catalog, parsing

# The reconciliation of one table of one release: rows_in = the other five added up.
COUNTS = ("rows_in", "inserted", "updated", "unchanged", "quarantined", "superseded")


@dataclass
class Quarantined:
    source_row: int
    rule: str
    reason: str
    original: str  # the row as JSON
    key: str | None = None  # the natural key as JSON, when it could be read


@dataclass
class TablePlan:
    table: str
    rows_in: int = 0
    insert_rows: list[int] = field(default_factory=list)  # indices into the release table
    update_rows: list[int] = field(default_factory=list)
    old_hashes: list[str] = field(default_factory=list)  # parallel to update_rows
    unchanged: int = 0
    superseded: int = 0  # changed rows whose key holds a row of a later-registered release: kept
    quarantine: list[Quarantined] = field(default_factory=list)
    accepted_keys: set = field(default_factory=set)
    quarantined_keys: set = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "inserted": len(self.insert_rows),
            "updated": len(self.update_rows),
            "unchanged": self.unchanged,
            "quarantined": len(self.quarantine),
            "superseded": self.superseded,
        }

    def reconciles(self) -> bool:
        c = self.counts()
        return c["rows_in"] == c["inserted"] + c["updated"] + c["unchanged"] + c["quarantined"] + c["superseded"]


def key_columns(tbl: catalog.Table) -> tuple[str, ...]:
    """The natural key; a table without one (unknown to the catalog) is keyed by content."""
    return tbl.key or ("_row_hash",)


def _json_row(rows: pa.Table, i: int) -> str:
    row = rows.slice(i, 1).to_pylist()[0]
    return json.dumps({k: v for k, v in row.items() if not k.startswith("_")}, default=str, ensure_ascii=False)


def plan_table(
    tbl: catalog.Table,
    rows: pa.Table,
    *,
    rejects: Sequence[dict] = (),
    existing: dict[tuple, str],
    parent_exists: Callable[[tuple], bool] | None = None,
    parent_quarantined: set | frozenset = frozenset(),
    today: dt.date | None = None,
    newer: Callable[[tuple], bool] | None = None,
) -> TablePlan:
    """Decide, for every row of one table of one release, insert / update / unchanged /
    quarantine / superseded. ``existing`` maps keys already in the warehouse to their row
    hashes; ``newer(key)`` says whether the row there came from a release registered after
    this one."""
    today = today or dt.date.today()
    plan = TablePlan(tbl.name, rows_in=rows.num_rows + len(rejects))
    for r in rejects:
        plan.quarantine.append(Quarantined(r["_source_row"], r["rule"], r["reason"], r["original"]))
        key = _reject_key(tbl, r["original"])
        if key is not None:  # its children go with it
            plan.quarantined_keys.add(key)

    keys = key_columns(tbl)
    key_values = [rows.column(k).to_pylist() for k in keys]
    hashes = rows.column("_row_hash").to_pylist()
    source_rows = rows.column("_source_row").to_pylist()
    parent_cols = tbl.parent_key() if tbl.parent else ()
    parent_values = [rows.column(k).to_pylist() for k in parent_cols]
    required = [(c, rows.column(c).to_pylist()) for c in catalog.REQUIRED.get(tbl.name, ()) if c in rows.column_names]
    ranges = [
        (c, lo, hi, rows.column(c).to_pylist())
        for (t, c), (lo, hi) in catalog.RANGES.items()
        if t == tbl.name and c in rows.column_names
    ]
    dates = rows.column("ev_date").to_pylist() if tbl.name == "events" and "ev_date" in rows.column_names else None
    earliest = dt.date.fromisoformat(catalog.EARLIEST_EVENT_DATE)

    def quarantine(i: int, rule: str, reason: str, key: tuple | None) -> None:
        plan.quarantine.append(
            Quarantined(
                source_rows[i],
                rule,
                reason,
                _json_row(rows, i),
                json.dumps(key, default=str) if key is not None else None,
            )
        )

    first: dict[tuple, int] = {}  # key -> first row that passed the rules
    repeats: dict[tuple, list[int]] = {}  # key -> every row, only for keys seen twice
    key_tuples = list(zip(*key_values, strict=True)) if key_values else []
    parent_tuples = list(zip(*parent_values, strict=True)) if parent_values else None
    nullable = tbl.key_nullable
    for i, key in enumerate(key_tuples):
        if not nullable and None in key:
            missing = [c for c, k in zip(keys, key, strict=True) if k is None]
            quarantine(i, "missing_key", f"key column(s) {', '.join(missing)} empty", None)
            continue
        reason = None
        for c, values in required:
            if values[i] is None:
                reason = ("missing_required", f"required column {c} is empty")
                break
        if reason is None:
            for c, lo, hi, values in ranges:
                if values[i] is not None and not lo <= values[i] <= hi:
                    reason = ("out_of_range", f"{c}={values[i]} outside [{lo}, {hi}]")
                    break
        if reason is None and dates is not None and dates[i] is not None and not earliest <= dates[i] <= today:
            reason = ("out_of_range", f"ev_date={dates[i]} outside [{earliest}, {today}]")
        if reason is None and parent_tuples is not None:
            pkey = parent_tuples[i]
            if pkey in parent_quarantined:
                reason = (
                    "parent_quarantined",
                    f"{tbl.parent} {_fmt(parent_cols, pkey)} was quarantined in this release",
                )
            elif parent_exists is not None and not parent_exists(pkey):
                reason = ("orphan", f"{tbl.parent} {_fmt(parent_cols, pkey)} is neither in this release nor loaded")
        if reason:
            quarantine(i, *reason, key)
            plan.quarantined_keys.add(key)
            continue
        if key in first:
            repeats.setdefault(key, [first[key]]).append(i)
        else:
            first[key] = i

    for key, i in first.items():
        idx = repeats.get(key)
        if idx:
            if len({hashes[j] for j in idx}) > 1:
                rows_txt = ", ".join(str(source_rows[j]) for j in idx)
                for j in idx:
                    quarantine(
                        j,
                        "duplicate_key",
                        f"key {_fmt(keys, key)} appears in rows {rows_txt} with different content",
                        key,
                    )
                plan.quarantined_keys.add(key)
                continue
            plan.unchanged += len(idx) - 1  # exact repeats: loaded once
        plan.accepted_keys.add(key)
        old = existing.get(key)
        if old is None:
            plan.insert_rows.append(i)
        elif old != hashes[i] and newer is not None and newer(key):
            plan.superseded += 1
        elif old != hashes[i]:
            plan.update_rows.append(i)
            plan.old_hashes.append(old)
        else:
            plan.unchanged += 1
    plan.quarantined_keys -= plan.accepted_keys
    assert plan.reconciles(), plan.counts()
    return plan


def _reject_key(tbl: catalog.Table, original: str) -> tuple | None:
    """The typed natural key of a row that did not parse, when its key fields do."""
    if not tbl.key:
        return None
    try:
        row = json.loads(original)
        key = tuple(parsing.PARSERS[tbl.columns.get(k, "string")](row.get(k), None) for k in tbl.key)
    except (ValueError, TypeError, AttributeError):
        return None
    return None if any(k is None for k in key) else key


def _fmt(cols, values) -> str:
    return ", ".join(f"{c}={v}" for c, v in zip(cols, values, strict=True))
