"""Load one extracted release from the lake into the warehouse ``raw`` schema, in one
transaction, with change data capture, an audit trail, a quarantine and a reconciliation
per table.

Bookkeeping tables (all in ``raw``):

- ``_releases``: one row per loaded release (identity, when, how often).
- ``_audit``: one row per inserted or updated row (table, key, operation, old and new
  hash, release, time).
- ``_quarantine``: one row per row not loaded (table, release, source row, original row as
  JSON, rule, reason). Replaced per release on reload, so reloading changes nothing.
- ``_reconciliation``: rows_in = inserted + updated + unchanged + quarantined + superseded,
  per release and table. ``superseded``: changed rows not loaded because their key holds a
  row of a release registered later (releases land in registration order, see ``cdc``).
- ``_code_sets``, ``_code_set_changes``, ``_code_lag``: NTSB's code sets merged with the
  release's code tables, and the codes it uses that no source knows (``codes``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from . import catalog, cdc, codes, faults, parsing, registry, typemap
from .extract import META_COLUMNS
from .lake import Lake
from .warehouse import RAW, Session, Warehouse, WarehouseError, q, sql_name

BOOKKEEPING = {
    "_releases": {
        "release_id": "string",
        "name": "string",
        "sha256": "string",
        "size": "int",
        "kind": "string",
        "source_system": "string",  # registry.source_system: avall, Pre2008, PRE1982, flat export, CAROL
        "first_loaded_at": "timestamp",
        "last_loaded_at": "timestamp",
        "loads": "int",
    },
    "_audit": {
        "table_name": "string",
        "key": "string",
        "operation": "string",
        "old_hash": "string",
        "new_hash": "string",
        "release_id": "string",
        "changed_at": "timestamp",
        # operation "merge": the release whose row this one was merged with (the precedence rule)
        "merged_with": "string",
    },
    "_quarantine": {
        "table_name": "string",
        "release_id": "string",
        "source_row": "int",
        "original": "string",
        "rule": "string",
        "reason": "string",
        "quarantined_at": "timestamp",
    },
    "_reconciliation": {
        "release_id": "string",
        "table_name": "string",
        "rows_in": "int",
        "inserted": "int",
        "updated": "int",
        "unchanged": "int",
        "quarantined": "int",
        "superseded": "int",
        "loaded_at": "timestamp",
    },
}
LOAD_COLUMNS = {"_release_id": "string", "_loaded_at": "timestamp"}


class LoadError(Exception):
    pass


def table_order(tables: list[str]) -> list[str]:
    """Parents before children; tables the catalog does not know last, by name."""
    known = [t for t in catalog.TABLE_ORDER if t in tables]
    return known + sorted(t for t in tables if t not in catalog.TABLE_ORDER)


def warehouse_table(table: str) -> str:
    return sql_name(table)


def _sql_names(tbl: str, names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for n in names:
        s = n if n in META_COLUMNS else sql_name(n)
        if s in out.values():
            raise LoadError(f"table {tbl}: columns {n!r} and another one both become {s!r} in SQL")
        out[n] = s
    return out


def ensure_bookkeeping(s: Session) -> None:
    s.ensure_schema(RAW)
    for name, cols in BOOKKEEPING.items():
        s.ensure_table(name, cols)
    # releases loaded before the source system was recorded
    for r in s.query(f"SELECT release_id, name, kind FROM {RAW}._releases WHERE source_system IS NULL").to_pylist():
        s.execute(
            f"UPDATE {RAW}._releases SET source_system = {s.ph} WHERE release_id = {s.ph}",
            (registry.source_system(r["kind"], r["name"]), r["release_id"]),
        )


# DuckDB keeps a transaction's new rows in memory up to its memory limit (80 % of RAM by
# default) and writes the rest to the database file ahead of the commit. A release is one
# transaction: with this limit, loading 100,000 generated events standalone peaks at 1.0 GB
# instead of 1.5 GB, about 1 s slower (docs/benchmarks.md).
DUCKDB_MEMORY_LIMIT = "300MB"


def load_release(
    manifest: dict,
    lake: Lake,
    warehouse: Warehouse,
    *,
    today: dt.date | None = None,
    on_table: Callable[[str], None] | None = None,
) -> dict:
    """Apply an extracted release. Returns ``{"release": id, "tables": {table: counts}}``.
    Any error rolls the whole release back."""
    today = today or dt.date.today()
    release_id = manifest["release_id"]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    result: dict[str, dict] = {}
    with warehouse.session() as s:
        if s.dialect == "duckdb":  # the transaction's new rows go to the file beyond this, not to memory
            s.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
        ensure_bookkeeping(s)
        # the code sets first: a release's own code tables label and check its rows
        newer = _newer_than(lake, release_id)
        merged = codes.merge(
            s,
            release_id,
            {
                name: lake.read_parquet(meta["parquet_key"])
                for name, meta in manifest["tables"].items()
                if codes.is_code_table(name)
            },
            now,
            newer,
        )
        known = codes.known_sets(s)
        systems = {
            r["release_id"]: r["source_system"]
            for r in s.query(f"SELECT release_id, source_system FROM {RAW}._releases").to_pylist()
        }
        systems[release_id] = registry.source_system(manifest["kind"], manifest["name"])
        quarantined_keys: dict[str, set] = {}
        lag: dict[str, list[dict]] = {}
        for name in table_order(list(manifest["tables"])):
            if on_table:
                on_table(name)
            meta = manifest["tables"][name]
            plan, lag[name] = _load_table(
                s, lake, release_id, name, meta, quarantined_keys, today, now, known, newer, systems
            )
            quarantined_keys[name] = plan.quarantined_keys
            result[name] = plan.counts()
            faults.point("load")
        s.execute(f"DELETE FROM {RAW}._reconciliation WHERE release_id = {s.ph}", (release_id,))
        s.insert_arrow(
            "_reconciliation",
            pa.Table.from_pylist(
                [{"release_id": release_id, "table_name": t, **c, "loaded_at": now} for t, c in result.items()],
                schema=_schema("_reconciliation"),
            ),
        )
        prev = s.query(
            f"SELECT first_loaded_at, loads FROM {RAW}._releases WHERE release_id = {s.ph}", (release_id,)
        ).to_pylist()
        s.execute(f"DELETE FROM {RAW}._releases WHERE release_id = {s.ph}", (release_id,))
        s.insert_arrow(
            "_releases",
            pa.Table.from_pylist(
                [
                    {
                        "release_id": release_id,
                        "name": manifest["name"],
                        "sha256": manifest["sha256"],
                        "size": manifest["size"],
                        "kind": manifest["kind"],
                        "source_system": registry.source_system(manifest["kind"], manifest["name"]),
                        "first_loaded_at": prev[0]["first_loaded_at"] if prev else now,
                        "last_loaded_at": now,
                        "loads": (prev[0]["loads"] + 1) if prev else 1,
                    }
                ],
                schema=_schema("_releases"),
            ),
        )
        faults.point("commit")
    faults.point("committed")
    return {
        "release": release_id,
        "tables": result,
        "code_sets": {"added": merged.added, "changed": merged.changed, "kept": merged.kept},
        "code_lag": [{"table_name": t, **f} for t, found in lag.items() for f in found],
    }


def _newer_than(lake: Lake, release_id: str) -> Callable[[str | None], bool | None]:
    """Whether a release id names a release registered after this one, by the release
    registry's order (never by when loads commit); None when the registry does not order
    the two (a release loaded by hand, without registering)."""
    order = {r.release_id: i for i, r in enumerate(registry.all_releases(lake))}
    mine = order.get(release_id)

    def newer(other: str | None) -> bool | None:
        theirs = order.get(other) if other is not None else None
        return None if mine is None or theirs is None else theirs > mine

    return newer


_json_str = json.encoder.encode_basestring  # the C encoder of JSON strings


def _key_json(key: tuple) -> str:
    """A natural key as a JSON array (the audit's key column), quickly."""
    return (
        "["
        + ", ".join(
            _json_str(v)
            if type(v) is str
            else str(v)
            if type(v) is int
            else "null"
            if v is None
            else json.dumps(v, default=str)
            for v in key
        )
        + "]"
    )


def _schema(book: str) -> pa.Schema:
    return pa.schema([(c, typemap.ARROW[t]) for c, t in BOOKKEEPING[book].items()])


def _load_table(
    s: Session,
    lake: Lake,
    release_id: str,
    name: str,
    meta: dict,
    quarantined_keys: dict[str, set],
    today: dt.date,
    now: dt.datetime,
    known: dict[tuple[str, str], set[str]],
    newer: Callable[[str | None], bool | None],
    systems: dict[str, str] | None = None,
) -> tuple[cdc.TablePlan, list[dict]]:
    tbl = catalog.table(name)
    rows = lake.read_parquet(meta["parquet_key"])
    lag = codes.lag(name, rows, known)
    codes.record_lag(s, release_id, name, lag, now)
    rejects = lake.read_parquet(meta["rejects_key"]).to_pylist() if meta.get("rejects_key") else []
    target = warehouse_table(name)
    key = tuple(sql_name(k) if k not in META_COLUMNS else k for k in cdc.key_columns(tbl))

    canon_key = cdc.key_columns(tbl)
    versions = s.key_hashes(
        target, key, among=rows.select(list(canon_key)).rename_columns(list(key)), with_release=True
    )
    existing = {k: v[0] for k, v in versions.items()}
    parent_exists = None
    parent_q: set = set()
    if tbl.parent:
        pkey = tuple(sql_name(k) for k in tbl.parent_key())
        parent_keys = s.keys(
            warehouse_table(tbl.parent), pkey, among=rows.select(list(tbl.parent_key())).rename_columns(list(pkey))
        )
        parent_exists = parent_keys.__contains__
        parent_q = quarantined_keys.get(tbl.parent, set())
    plan = cdc.plan_table(
        tbl,
        rows,
        rejects=rejects,
        existing=existing,
        parent_exists=parent_exists,
        parent_quarantined=parent_q,
        today=today,
        newer=lambda k: bool(newer(versions[k][1])),
    )
    names = _sql_names(name, rows.column_names)
    rows = rows.rename_columns([names[c] for c in rows.column_names])

    columns = {c: typemap.of_arrow(rows.schema.field(c).type) for c in rows.column_names} | LOAD_COLUMNS
    have = s.ensure_table(target, columns, key=key)
    if s.dialect == "postgres":  # the rows loaded since a watermark (the gates, dbt's incremental models): a range
        s.execute(f"CREATE INDEX IF NOT EXISTS {q(target + '__loaded_at')} ON {RAW}.{q(target)} (_loaded_at)")
    rows = _conform(name, rows, have)
    rows, merged = _merge_sources(s, target, key, rows, have, plan, versions, release_id, systems or {})
    changed = plan.insert_rows + plan.update_rows
    if plan.update_rows:
        s.delete_keys(target, key, rows.select(list(key)).take(plan.update_rows))
    if changed:
        order = sorted(changed)
        out = rows.take(order)
        owner = [release_id] * out.num_rows
        if merged:
            records = out.to_pylist()
            for j, i in enumerate(order):
                if i in merged:
                    records[j], owner[j] = merged[i][0], merged[i][1]
            out = pa.Table.from_pylist(records, schema=out.schema)
        out = out.append_column("_release_id", pa.array(owner, pa.string()))
        out = out.append_column("_loaded_at", pa.array([now] * out.num_rows, pa.timestamp("us")))
        s.insert_arrow(target, out)
        idx = plan.insert_rows + plan.update_rows
        keycols = [rows.column(k).take(idx).to_pylist() for k in key]
        n = len(idx)
        new_hashes = rows.column("_row_hash").take(idx).to_pylist()
        audit = pa.table(
            {
                "table_name": pa.array([target] * n, pa.string()),
                "key": pa.array([_key_json(k) for k in zip(*keycols, strict=True)], pa.string()),
                "operation": pa.array(
                    ["insert"] * len(plan.insert_rows)
                    + ["merge" if i in merged else "update" for i in plan.update_rows],
                    pa.string(),
                ),
                "old_hash": pa.array([None] * len(plan.insert_rows) + plan.old_hashes, pa.string()),
                "new_hash": pa.array(
                    [merged[i][0]["_row_hash"] if i in merged else h for i, h in zip(idx, new_hashes, strict=True)],
                    pa.string(),
                ),
                "release_id": pa.array([release_id] * n, pa.string()),
                "changed_at": pa.array([now] * n, pa.timestamp("us")),
                "merged_with": pa.array([merged[i][2] if i in merged else None for i in idx], pa.string()),
            },
            schema=_schema("_audit"),
        )
        s.insert_arrow("_audit", audit)
    s.execute(f"DELETE FROM {RAW}._quarantine WHERE release_id = {s.ph} AND table_name = {s.ph}", (release_id, target))
    if plan.quarantine:
        s.insert_arrow(
            "_quarantine",
            pa.Table.from_pylist(
                [
                    {
                        "table_name": target,
                        "release_id": release_id,
                        "source_row": qr.source_row,
                        "original": qr.original,
                        "rule": qr.rule,
                        "reason": qr.reason,
                        "quarantined_at": now,
                    }
                    for qr in plan.quarantine
                ],
                schema=_schema("_quarantine"),
            ),
        )
    return plan, lag


def _conform(name: str, rows: pa.Table, have: dict[str, str]) -> pa.Table:
    """Cast incoming columns to the warehouse column types where that loses nothing."""
    for i, f in enumerate(rows.schema):
        want = have.get(f.name)
        got = typemap.of_arrow(f.type)
        if want is None or want == got:
            continue
        if want == "string":
            rows = rows.set_column(i, f.name, pc.cast(rows.column(i), pa.string()))
        elif want == "float" and got == "int":
            rows = rows.set_column(i, f.name, pc.cast(rows.column(i), pa.float64()))
        elif want == "timestamp" and got == "date":
            rows = rows.set_column(i, f.name, pc.cast(rows.column(i), pa.timestamp("us")))
        else:
            raise WarehouseError(
                f"table {name}, column {f.name}: [type_conflict] the warehouse holds "
                f"{want} but this release delivers {got}"
            )
    return rows


__all__ = [
    "load_release",
    "LoadError",
    "table_order",
    "warehouse_table",
    "ensure_bookkeeping",
    "raw_summary",
    "source_coverage",
]


def raw_summary(s: Session, release_id: str) -> tuple[list[dict], int, dict[str, int]]:
    """After a load: the release's quarantined rows per table and rule, the code-set rows,
    and every raw table's row count (0 for a table no release delivered yet)."""
    quarantine = s.query(
        f"SELECT table_name, rule, count(*) AS n FROM {RAW}._quarantine WHERE release_id = {s.ph} "
        "GROUP BY table_name, rule ORDER BY table_name, rule",
        (release_id,),
    ).to_pylist()
    present = set(s.table_names())
    code_count = s.query(f"SELECT count(*) AS n FROM {RAW}._code_sets").column(0)[0].as_py()
    totals = {
        t: s.query(f"SELECT count(*) AS n FROM {RAW}.{q(warehouse_table(t))}").column(0)[0].as_py()
        if warehouse_table(t) in present
        else 0
        for t in catalog.TABLE_ORDER
    }
    return quarantine, code_count, totals


def _merge_sources(
    s: Session,
    target: str,
    key: tuple[str, ...],
    rows: pa.Table,
    have: dict[str, str],
    plan: cdc.TablePlan,
    versions: dict,
    release_id: str,
    systems: dict[str, str],
) -> tuple[pa.Table, dict[int, tuple[dict, str, str]]]:
    """The precedence rule between a relational source (avall, Pre2008, PRE1982) and a
    summary one (the flat export, CAROL) that deliver the same row: field by field, the
    relational row's value wins where it has one, the other fills the rest. For each update
    row whose warehouse row came from the other kind of source: (merged row, the relational
    release it is credited to, the release it was merged with). A merged row that equals the
    row already there is not an update: it is counted as superseded (the richer row stays).
    The merged rows hold every column of the table (a summary source delivers few), so
    ``rows`` comes back with the table's other columns added, empty for the rows not merged."""
    mine = registry.is_relational(systems.get(release_id))
    if not plan.update_rows or len({registry.is_relational(v) for v in systems.values()} | {mine}) == 1:
        return rows, {}  # nothing changes, or one kind of source only (the common case: no cost)
    updated = rows.select(list(key)).take(plan.update_rows).to_pylist()
    key_of = {i: tuple(r[k] for k in key) for i, r in zip(plan.update_rows, updated, strict=True)}
    cross = [i for i in plan.update_rows if registry.is_relational(systems.get(versions[key_of[i]][1])) != mine]
    if not cross:
        return rows, {}
    for c, t in have.items():
        if c not in rows.column_names and c not in LOAD_COLUMNS and c not in META_COLUMNS:
            rows = rows.append_column(pa.field(c, typemap.ARROW[t]), pa.nulls(rows.num_rows, typemap.ARROW[t]))
    data = [c for c in rows.column_names if c not in META_COLUMNS]
    old = s.rows_for_keys(target, key, rows.select(list(key)).take(cross), data)
    old_by_key = {tuple(r[k] for k in key): r for r in (old.to_pylist() if old is not None else [])}
    out: dict[int, tuple[dict, str, str]] = {}
    keep: list[int] = []
    for i, new in zip(cross, rows.take(cross).to_pylist(), strict=True):
        before, other = old_by_key[key_of[i]], versions[key_of[i]][1]
        first, second = (new, before) if mine else (before, new)
        row = {c: first[c] if first[c] is not None else second.get(c) for c in data}
        if row == {c: before.get(c) for c in data}:
            keep.append(i)  # nothing the summary adds
            continue
        row["_source_row"] = new["_source_row"]
        row["_row_hash"] = parsing.row_hash(data, [row[c] for c in data])
        out[i] = (row, release_id if mine else other, other)
    if keep:
        gone = set(keep)
        pairs = [(i, h) for i, h in zip(plan.update_rows, plan.old_hashes, strict=True) if i not in gone]
        plan.update_rows = [i for i, _ in pairs]
        plan.old_hashes = [h for _, h in pairs]
        plan.superseded += len(keep)
    return rows, out


def source_coverage(s: Session) -> list[dict]:
    """The events in raw per source system (of the release that last wrote each event): how
    many, and their first and last event year."""
    if "events" not in set(s.table_names()):
        return []
    return s.query(
        f"SELECT r.source_system AS source_system, count(*) AS events, "
        "min(extract(year FROM e.ev_date)) AS first_year, max(extract(year FROM e.ev_date)) AS last_year "
        f"FROM {RAW}.events AS e LEFT JOIN {RAW}._releases AS r ON e._release_id = r.release_id "
        "GROUP BY r.source_system ORDER BY min(e.ev_date)"
    ).to_pylist()
