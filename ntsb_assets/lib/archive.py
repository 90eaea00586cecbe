"""The Parquet archive of the marts: ZSTD Parquet in the lake, Hive layout.

Event-level marts (and the yearly aggregate) are partitioned by event year,
``archive/<table>/year=YYYY/part-0.parquet``; tables without an event year (dimensions,
all-time aggregates) are one file, ``archive/<table>/part-0.parquet``. The ``year`` column
lives in the path, not in the files.

Each file carries, in its Parquet footer, the fingerprint (row count and an order-free sum
of row hashes, computed by the warehouse) of the rows it was written from. Planning compares
the warehouse's fingerprint of every year with the archived one, so a release that touches
three years rewrites three partitions, and a rewrite of unchanged rows writes nothing.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import pyarrow as pa

from . import marts, typemap
from .lake import Lake
from .warehouse import Session, q

MARTS = "marts"
PREFIX = "archive"
PART = "part-0.parquet"
FINGERPRINT = b"ntsb.fingerprint"
SOURCE = b"ntsb.source"

YEAR = "year"


def year_tables() -> tuple[str, ...]:
    """The marts archived one file per event year (``meta.ntsb.archive: year`` in dbt)."""
    return marts.archived("year")


def whole_tables() -> tuple[str, ...]:
    """The marts archived as one file (``meta.ntsb.archive: whole`` in dbt)."""
    return marts.archived("whole")


class ArchiveError(Exception):
    pass


def table_key(table: str, year: int | None = None) -> str:
    return (
        posixpath.join(PREFIX, table, f"{YEAR}={year}", PART)
        if year is not None
        else posixpath.join(PREFIX, table, PART)
    )


@dataclass(frozen=True)
class Source:
    """The rows of one mart as the archive stores them, as SQL."""

    table: str
    columns: dict[str, str]  # archived column -> logical type
    year_sql: str | None  # expression of the event year, None for whole tables
    join: str = ""

    def select(self) -> str:
        cols = ", ".join(f"t.{q(c)}" for c in self.columns)
        return f"SELECT {cols} FROM {MARTS}.{q(self.table)} AS t {self.join}"

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c, typemap.ARROW[t]) for c, t in self.columns.items()])


def source(session: Session, table: str) -> Source:
    columns = session.columns(table, MARTS)
    if columns is None:
        raise ArchiveError(f"{MARTS}.{table} does not exist in the warehouse: build the marts first (ntsb build)")
    mart = marts.marts()[table]
    columns = {c: t for c, t in columns.items() if c not in mart.warehouse_only}
    if mart.year_of is None:
        return Source(table, columns, None)
    columns.pop(YEAR, None)  # in the path
    year_sql, join = _event_year(session, mart)
    return Source(table, columns, year_sql, join)


def _event_year(session: Session, mart: marts.Mart) -> tuple[str, str]:
    """The SQL of a row's event year, and the join it needs, from the mart's ``year_of``: a
    date or an integer year of the row (``t``), or ``<mart>.<column>`` of the event's row in
    another mart (``f``, joined on ev_id)."""
    assert mart.year_of is not None
    other, _, column = mart.year_of.rpartition(".")
    alias, join = "t", ""
    if other:
        alias, join = "f", f"JOIN {MARTS}.{q(other)} AS f ON f.ev_id = t.ev_id"
    typ = (session.columns(other or mart.name, MARTS) or {}).get(column)
    if typ is None:
        raise ArchiveError(
            f"{mart.yml}: {mart.name}: meta.ntsb.year_of {mart.year_of!r} is not a column in the warehouse"
        )
    if typ == "int":
        return f"{alias}.{q(column)}", join
    if typ in ("date", "timestamp"):
        return f"CAST(EXTRACT(YEAR FROM {alias}.{q(column)}) AS INTEGER)", join
    raise ArchiveError(f"{mart.yml}: {mart.name}: meta.ntsb.year_of {mart.year_of!r} is a {typ}, not a date or a year")


def _row_hash(session: Session) -> str:
    """An order-free fingerprint of the rows of subquery ``s``, as text."""
    if session.dialect == "duckdb":
        return "CAST(count(*) AS VARCHAR) || ':' || CAST(coalesce(sum(hash(s)), 0) AS VARCHAR)"
    return "count(*)::text || ':' || coalesce(sum(hashtextextended(s::text, 0)), 0)::text"


def warehouse_fingerprints(session: Session, src: Source) -> dict[int | None, str]:
    """Fingerprint of the mart's rows per event year (key None for a whole table), in one
    query. Years without rows are absent."""
    if src.year_sql is None:
        fp = session.query(f"SELECT {_row_hash(session)} AS fp FROM ({src.select()}) AS s").column(0)[0].as_py()
        return {} if fp.startswith("0:") else {None: fp}
    cols = ", ".join(f"t.{q(c)}" for c in src.columns)
    inner = f"SELECT {src.year_sql} AS year__, {cols} FROM {MARTS}.{q(src.table)} AS t {src.join}"
    rows = session.query(
        f"SELECT s.year__ AS year, {_row_hash(session)} AS fp FROM ({inner}) AS s GROUP BY s.year__"
    ).to_pylist()
    return {r["year"]: r["fp"] for r in rows}


def archived_fingerprints(lake: Lake, table: str) -> dict[int | None, str]:
    """Fingerprint written in the footer of each archived file of a table."""
    out: dict[int | None, str] = {}
    for key in lake.list(posixpath.join(PREFIX, table)):
        if not key.endswith("/" + PART):
            continue
        part = key.split("/")[-2]
        year = int(part.split("=", 1)[1]) if part.startswith(f"{YEAR}=") else None
        meta = lake.parquet_schema(key).metadata or {}
        out[year] = meta.get(FINGERPRINT, b"").decode()
    return out


@dataclass
class Plan:
    """Which event years differ between the warehouse and the archive."""

    changed: dict[str, list[int]]  # table -> years whose rows differ (or vanished)
    years: list[int]  # the union, sorted

    def ranges(self, partition_keys: list[str]) -> list[tuple[int, int]]:
        """The changed years as runs of consecutive partitions (one Dagster run each)."""
        order = {int(k): i for i, k in enumerate(partition_keys)}
        out: list[tuple[int, int]] = []
        for y in self.years:
            if out and order[y] == order[out[-1][1]] + 1:
                out[-1] = (out[-1][0], y)
            else:
                out.append((y, y))
        return out


def plan(session: Session, lake: Lake, valid_years: range) -> Plan:
    """Compare the warehouse with the archive, year by year, for every partitioned table.
    Rows without an event year, or with one outside ``valid_years``, fail the plan: the
    archive would lose them."""
    changed: dict[str, list[int]] = {}
    for table in year_tables():
        src = source(session, table)
        current = warehouse_fingerprints(session, src)
        bad = sorted((y for y in current if y is None or y not in valid_years), key=lambda y: (y is not None, y))
        if bad:
            fp = current[bad[0]]
            raise ArchiveError(
                f"{MARTS}.{table}: {fp.split(':')[0]} row(s) have event year {bad[0]}, outside the "
                f"archive's partitions {valid_years.start}-{valid_years.stop - 1} "
                f"(rule: every archived row has an event year in range)"
            )
        archived = archived_fingerprints(lake, table)
        years = {y for y in set(current) | set(archived) if y is not None}  # None: whole tables only
        changed[table] = sorted(y for y in years if current.get(y) != archived.get(y))
    return Plan(changed, sorted({y for ys in changed.values() for y in ys}))


@dataclass
class Written:
    table: str
    year: int | None
    rows: int
    status: str  # written | unchanged | removed | empty
    fingerprint: str
    bytes: int = 0


CHUNK_ROWS = 250_000  # rows read from the warehouse per query when writing many years


def write(session: Session, lake: Lake, table: str, years: list[int] | None = None) -> list[Written]:
    """Archive a whole table (``years`` None) or the given event years of a partitioned one,
    rewriting only the files whose rows differ from the warehouse's; a year the warehouse no
    longer has is removed. The years' rows are read in a few queries, not one per year."""
    src = source(session, table)
    if (years is None) != (src.year_sql is None):
        raise ArchiveError(
            f"{MARTS}.{table}: "
            + ("partitioned by event year: give the years" if years is None else "not partitioned by year")
        )
    current = warehouse_fingerprints(session, src)
    out, todo = [], []
    for year in [None] if years is None else sorted(set(years)):
        key = table_key(table, year)
        fp = current.get(year)
        old = _footer_fingerprint(lake, key)
        if fp is None:
            if old is None:
                out.append(Written(table, year, 0, "empty", ""))
            else:
                lake.delete_prefix(posixpath.dirname(key))
                out.append(Written(table, year, 0, "removed", ""))
        elif old == fp:
            out.append(Written(table, year, int(fp.split(":")[0]), "unchanged", fp, lake.size(key)))
        else:
            todo.append(year)
    for chunk in _chunks(todo, current):
        for year, data in _read(session, src, chunk):
            fp = current[year]
            schema = src.schema.with_metadata({FINGERPRINT: fp.encode(), SOURCE: f"{MARTS}.{table}".encode()})
            try:
                data = data.select(list(src.columns)).cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ArchiveError(
                    f"{MARTS}.{table}"
                    + (f" year {year}" if year is not None else "")
                    + f": rows do not fit the archive schema: {exc}"
                ) from None
            size = lake.write_parquet(table_key(table, year), data)
            out.append(Written(table, year, data.num_rows, "written", fp, size))
    return sorted(out, key=lambda w: (w.year is not None, w.year))


def _footer_fingerprint(lake: Lake, key: str) -> str | None:
    if not lake.exists(key):
        return None
    return (lake.parquet_schema(key).metadata or {}).get(FINGERPRINT, b"").decode()


def _chunks(years: list, fingerprints: dict) -> list[list]:
    """Consecutive groups of years of at most CHUNK_ROWS rows (a bigger year stands alone)."""
    chunks: list[list] = []
    rows = 0
    for year in years:
        n = int(fingerprints[year].split(":")[0])
        if not chunks or rows + n > CHUNK_ROWS:
            chunks.append([])
            rows = 0
        chunks[-1].append(year)
        rows += n
    return chunks


def _read(session: Session, src: Source, years: list):
    """(year, rows) for each year, in the archive's row order."""
    order = ", ".join(str(i + 1) for i in range(len(src.columns) + (src.year_sql is not None)))
    cols = ", ".join(f"t.{q(c)}" for c in src.columns)
    if src.year_sql is None:
        yield (
            None,
            session.query(f"SELECT {cols} FROM {MARTS}.{q(src.table)} AS t {src.join} ORDER BY {order}", stream=True),
        )
        return
    marks = ", ".join([session.ph] * len(years))
    data = session.query(
        f"SELECT {src.year_sql} AS year__, {cols} FROM {MARTS}.{q(src.table)} AS t {src.join} "
        f"WHERE {src.year_sql} IN ({marks}) ORDER BY {order}",
        tuple(years),
        stream=True,
    )
    found = data.column("year__").to_pylist()
    start = 0
    for year in years:  # the rows are sorted by year: one slice each
        end = start
        while end < len(found) and found[end] == year:
            end += 1
        yield year, data.slice(start, end - start)
        start = end


def dataset(lake: Lake, table: str):
    """The archived files of a table as a pyarrow dataset (``year`` from the path for the
    partitioned ones); works on the local lake and on S3."""
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([(YEAR, pa.int32())]), flavor="hive") if table in year_tables() else None
    return ds.dataset(
        lake.full(posixpath.join(PREFIX, table)), filesystem=lake.fs, format="parquet", partitioning=partitioning
    )


def read(lake: Lake, table: str) -> pa.Table:
    """Every archived row of a table (an empty table when nothing is archived)."""
    if not lake.list(posixpath.join(PREFIX, table)):
        return pa.table({})
    return dataset(lake, table).to_table()


__all__ = [
    "ArchiveError",
    "Plan",
    "Written",
    "year_tables",
    "whole_tables",
    "plan",
    "write",
    "read",
    "dataset",
    "table_key",
    "source",
    "warehouse_fingerprints",
    "archived_fingerprints",
]
