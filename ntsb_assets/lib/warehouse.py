"""The warehouse: an embedded DuckDB file or PostgreSQL, behind one small session API.

A session is one transaction: everything a release load writes commits together or not
at all. Bulk writes go through DuckDB's Arrow scan or PostgreSQL's COPY, never row-by-row
INSERT. Table and column names are lower-case snake case in the warehouse
(``Flight_Crew`` -> ``raw.flight_crew``) so nobody has to quote them.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlparse

import pyarrow as pa
import pyarrow.csv as pacsv

from . import typemap

RAW = "raw"

# The options of every PostgreSQL session the pipeline opens (its own, dbt's through
# PGOPTIONS, Great Expectations'). JIT off: PostgreSQL compiles a query when its estimated
# cost passes jit_above_cost, about 0.5 s a query here, more than most of these queries take
# at this scale; and a freshly loaded table's estimates are often high enough to trigger it.
PG_OPTIONS = "-c jit=off"


class WarehouseError(Exception):
    pass


class WarehouseBusy(WarehouseError):
    """The embedded warehouse is held by another process (a writer) longer than the caller waits."""


# Who is told that this process waits for the warehouse (another process holds the DuckDB
# file, or the writer lock of lib/writer.py), besides the caller's own callback: the CLI adds
# its console here, so a command says why it waits even while Dagster's log is quiet.
wait_listeners: list = []
DUCKDB_LOCK_WAIT = 600.0  # seconds a DuckDB open waits for another process's lock
WAIT_REPEAT_SECONDS = 30.0


def tell_waiting(message: str, on_wait=None) -> None:
    for tell in [*filter(None, [on_wait]), *wait_listeners]:
        tell(message)


# `ntsb sql` and anything else that runs SQL a user typed (Warehouse.user_query)
READER_ROLE = "ntsb_reader"
USER_QUERY_TIMEOUT = 300.0
DUCKDB_LOCKED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}


def single_statement(sql: str, dialect: str) -> str:
    """The one statement of ``sql`` (a trailing semicolon allowed), or a WarehouseError:
    several statements could open a transaction of their own."""
    if dialect == "duckdb":
        import duckdb

        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {str(exc).strip()}") from None
        count = len(statements)
    else:
        count = len([p for p in _pg_split(sql) if p.strip()])  # comments are not statements
    if count != 1:
        raise WarehouseError(f"one statement at a time: this text holds {count}; nothing was run")
    return sql.strip().rstrip(";").strip() if dialect == "postgres" else sql


def _pg_split(sql: str) -> list[str]:
    """PostgreSQL text split at the semicolons outside strings, quoted names, dollar
    quotes and comments (nested block comments included)."""
    parts, piece, start, i, n = [], "", 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            piece += sql[start:i]
            j = sql.find("\n", i)
            i = start = n if j < 0 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            piece += sql[start:i]
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            start = i
        elif c in "'\"":
            escapes = (
                c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            )
            i += 1
            while i < n:
                if escapes and sql[i] == "\\":
                    i += 2
                elif sql[i] == c:
                    if sql.startswith(c * 2, i):
                        i += 2
                    else:
                        break
                else:
                    i += 1
            i += 1
        elif (
            c == "$"
            and (m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:]))
            and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_"))
        ):
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            i = n if j < 0 else j + len(tag)
        elif c == ";":
            parts.append(piece + sql[start:i])
            piece, start = "", i + 1
            i += 1
        else:
            i += 1
    parts.append(piece + sql[start:])
    return parts


def sql_name(name: str) -> str:
    out = re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_")
    if not out:
        raise WarehouseError(f"cannot make an SQL name of {name!r}")
    return ("_" + out) if out[0].isdigit() else out


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted (the same in DuckDB and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


class Session:
    """One open transaction on the warehouse."""

    dialect: str

    @property
    def ph(self) -> str:
        """The driver's parameter placeholder."""
        return "%s" if self.dialect == "postgres" else "?"

    def execute(self, sql: str, params: tuple | list = ()) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: tuple | list = (), *, stream: bool = False) -> pa.Table:
        """The rows of a query as an Arrow table. ``stream``: a big SELECT, read from the
        server in batches, so no more than one batch is ever held as Python objects."""
        raise NotImplementedError

    def insert_arrow(self, table: str, data: pa.Table, schema: str = RAW) -> None:
        raise NotImplementedError

    def _stage(self, data: pa.Table) -> str:
        """Make an Arrow table visible to SQL under a returned name, until :meth:`_unstage`."""
        raise NotImplementedError

    def _unstage(self, name: str) -> None:
        raise NotImplementedError

    @contextmanager
    def staged(self, data: pa.Table) -> Iterator[str]:
        """An Arrow table visible to SQL under the yielded name while the block runs, then
        let go: a release loads in one transaction, and what it staged must not pile up. (After
        an error the session ends: it lets go of what is left, or the rollback drops it.)"""
        name = self._stage(data)
        yield name
        self._unstage(name)

    # ---------------------------------------------------------- shared SQL
    def columns(self, table: str, schema: str = RAW) -> dict[str, str] | None:
        """Column -> logical type of a table or view (materialized views included), None if
        there is no such relation."""
        sql = (
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = {self.ph} AND table_name = {self.ph} ORDER BY ordinal_position"
        )
        if self.dialect == "postgres":  # information_schema does not list materialized views
            sql = (
                "SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
                "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') ORDER BY a.attnum"
            )
        rows = self.query(sql, (schema, table)).to_pylist()
        if not rows:
            return None
        return {r["column_name"]: typemap.of_sql(r["data_type"]) for r in rows}

    def describe_relations(
        self, schemas: list[str], count_views: bool = False, count: bool = True
    ) -> dict[tuple[str, str], dict]:
        """(schema, name) -> {"kind": table | view, "columns": [(name, database type)], "rows":
        count or None} for every relation of ``schemas`` (materialized views count as
        tables). Views are not counted unless asked: counting one runs its query; nothing is
        counted when ``count`` is false."""
        if not schemas:
            return {}
        marks = ", ".join([self.ph] * len(schemas))
        if self.dialect == "postgres":
            sql = (
                "SELECT n.nspname AS s, c.relname AS t, "
                "CASE WHEN c.relkind = 'v' THEN 'view' ELSE 'table' END AS kind, "
                "a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE n.nspname IN ({marks}) AND a.attnum > 0 AND NOT a.attisdropped "
                "AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1, 2, a.attnum"
            )
        else:
            sql = (
                "SELECT c.table_schema AS s, c.table_name AS t, CASE WHEN t.table_type = 'VIEW' THEN 'view' "
                "ELSE 'table' END AS kind, c.column_name AS col, c.data_type AS type "
                "FROM information_schema.columns c JOIN information_schema.tables t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                f"WHERE c.table_schema IN ({marks}) ORDER BY 1, 2, c.ordinal_position"
            )
        out: dict[tuple[str, str], dict] = {}
        for r in self.query(sql, list(schemas)).to_pylist():
            rel = out.setdefault((r["s"], r["t"]), {"kind": r["kind"], "columns": [], "rows": None})
            rel["columns"].append((r["col"], r["type"]))
        counted = [k for k, v in out.items() if count and (v["kind"] == "table" or count_views)]
        for i in range(0, len(counted), 50):  # one query per 50 relations
            union = " UNION ALL ".join(
                f"SELECT {j} AS i, count(*) AS n FROM {quote_ident(s_)}.{quote_ident(t)}"
                for j, (s_, t) in enumerate(counted[i : i + 50])
            )
            for r in self.query(union).to_pylist():
                out[counted[i + r["i"]]]["rows"] = int(r["n"])
        return out

    def ensure_schema(self, schema: str = RAW) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")

    def ensure_table(
        self, table: str, columns: dict[str, str], schema: str = RAW, key: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Create the table (indexed on ``key`` on PostgreSQL) or add the columns it lacks;
        returns the table's columns."""
        types = typemap.SQL[self.dialect]
        have = self.columns(table, schema)
        if have is None:
            cols = ", ".join(f"{q(c)} {types[t]}" for c, t in columns.items())
            self.execute(f"CREATE TABLE {q(schema)}.{q(table)} ({cols})")
            if key and self.dialect == "postgres":
                # DuckDB's ART indexes slow bulk inserts and a scan is fast there anyway
                self.execute(f"CREATE INDEX ON {q(schema)}.{q(table)} ({', '.join(q(k) for k in key)})")
            return dict(columns)
        for c, t in columns.items():
            if c not in have:
                self.execute(f"ALTER TABLE {q(schema)}.{q(table)} ADD COLUMN {q(c)} {types[t]}")
                have[c] = t
        return have

    def _restricted(
        self, table: str, key: tuple[str, ...], among: pa.Table | None, select: str, schema: str = RAW
    ) -> pa.Table | None:
        """``SELECT <select> FROM table``, limited to the keys in ``among`` when given (so an
        update costs what the update holds, not what the warehouse holds)."""
        if self.columns(table, schema) is None:
            return None
        if among is None:
            return self.query(f"SELECT {select} FROM {q(schema)}.{q(table)} AS t")
        if among.num_rows == 0:
            return None
        among = among.group_by(list(among.column_names)).aggregate([])  # distinct
        with self.staged(among) as staged:
            return self.query(
                f"SELECT {select} FROM {q(schema)}.{q(table)} AS t JOIN {staged} AS s ON {_key_match(key, among)}"
            )

    def key_hashes(
        self,
        table: str,
        key: tuple[str, ...],
        among: pa.Table | None = None,
        schema: str = RAW,
        with_release: bool = False,
    ) -> dict[tuple, str]:
        """Row hash by key, of the rows whose key is in ``among`` (all rows without it).
        ``with_release``: (row hash, the release it was loaded from) by key."""
        cols = ", ".join(f"t.{q(k)}" for k in key)
        extra = ", t._release_id AS release__" if with_release else ""
        data = self._restricted(table, key, among, f"{cols}, t._row_hash AS row_hash__{extra}", schema)
        if data is None:
            return {}
        key_lists = [data.column(i).to_pylist() for i in range(len(key))]
        values = data.column(len(key)).to_pylist()
        if with_release:
            values = list(zip(values, data.column(len(key) + 1).to_pylist(), strict=True))
        return dict(zip(zip(*key_lists, strict=True), values, strict=True))

    def rows_for_keys(
        self, table: str, key: tuple[str, ...], among: pa.Table, columns: list[str], schema: str = RAW
    ) -> pa.Table | None:
        """The ``columns`` of the rows whose key is in ``among``."""
        return self._restricted(table, key, among, ", ".join(f"t.{q(c)}" for c in columns), schema)

    def keys(self, table: str, key: tuple[str, ...], among: pa.Table | None = None, schema: str = RAW) -> set[tuple]:
        """The keys present, of those in ``among`` (all without it)."""
        data = self._restricted(table, key, among, ", ".join(f"t.{q(k)}" for k in key), schema)
        if data is None:
            return set()
        return set(zip(*[data.column(i).to_pylist() for i in range(len(key))], strict=True))

    def delete_keys(self, table: str, key: tuple[str, ...], keys: pa.Table, schema: str = RAW) -> None:
        if keys.num_rows == 0:
            return
        with self.staged(keys) as staged:
            self.execute(f"DELETE FROM {q(schema)}.{q(table)} AS t USING {staged} AS s WHERE {_key_match(key, keys)}")

    def table_names(self, schema: str = RAW) -> list[str]:
        rows = self.query(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = {self.ph} ORDER BY table_name",
            (schema,),
        )
        return rows.column(0).to_pylist()


def _key_match(key: tuple[str, ...], keys: pa.Table) -> str:
    """Join condition of table t and staged keys s: plain equality (hash joins, index
    use) unless a key part is NULL somewhere (reference tables), then NULL-safe."""
    nullable = any(keys.column(k).null_count for k in key)
    op = "IS NOT DISTINCT FROM" if nullable else "="
    return " AND ".join(f"t.{q(k)} {op} s.{q(k)}" for k in key)


class DuckDBSession(Session):
    dialect = "duckdb"

    def __init__(self, con):
        self.con = con
        self._staged: list[str] = []

    def execute(self, sql, params=()):
        self.con.execute(sql, list(params))

    def query(self, sql, params=(), *, stream=False):  # Arrow already: nothing to bound
        return self.con.sql(sql, params=list(params) or None).to_arrow_table()

    def _stage(self, data):
        name = f"_stage_{uuid.uuid4().hex[:12]}"
        self.con.register(name, data)
        self._staged.append(name)
        return name

    def _unstage(self, name):
        self.con.unregister(name)
        self._staged.remove(name)

    def insert_arrow(self, table, data, schema=RAW):
        if data.num_rows == 0:
            return
        cols = ", ".join(q(c) for c in data.column_names)
        # as a stream, which DuckDB copies: rows appended from an Arrow table keep referring to
        # its buffers until the transaction ends (a whole release held in memory at once)
        with self.staged(pa.RecordBatchReader.from_batches(data.schema, data.to_batches())) as staged:
            self.execute(f"INSERT INTO {q(schema)}.{q(table)} ({cols}) SELECT {cols} FROM {staged}")

    def close(self):
        for name in list(self._staged):
            self._unstage(name)


# PostgreSQL type OIDs -> Arrow types, for columns whose values say nothing (all NULL): the
# rest is inferred from the Python values (numeric's Decimals, arrays, JSON)
_ARROW_OF_OID = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    700: pa.float64(),
    701: pa.float64(),
    25: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
}


def _column(values: list, arrow_type: pa.DataType | None) -> pa.Array:
    """One column of a batch: its values' own type, or its PostgreSQL type when all are NULL."""
    column = pa.array(values)
    return column.cast(arrow_type) if arrow_type is not None and pa.types.is_null(column.type) else column


def _fetch_arrow(cur, batch_rows: int = 100_000) -> pa.Table:
    """The rows of an executed cursor as Arrow, one batch of Python objects at a time."""
    batches, names, types = [], None, None
    while rows := cur.fetchmany(batch_rows):
        names = names or [d.name for d in cur.description]
        types = types or [_ARROW_OF_OID.get(d.type_code) for d in cur.description]
        batches.append(
            pa.Table.from_arrays([_column([r[i] for r in rows], types[i]) for i in range(len(names))], names=names)
        )
    if not batches:
        return pa.Table.from_arrays(
            [pa.array([], _ARROW_OF_OID.get(d.type_code) or pa.string()) for d in cur.description],
            names=[d.name for d in cur.description],
        )
    return pa.concat_tables(batches, promote_options="permissive")


class PostgresSession(Session):
    dialect = "postgres"
    COPY_ROWS = 100_000

    def __init__(self, conn):
        self.conn = conn
        self.cur = conn.cursor()

    def execute(self, sql, params=()):
        self.cur.execute(sql, tuple(params) or None)

    def query(self, sql, params=(), *, stream=False):
        # streamed: a server-side cursor (DECLARE, so SELECT only); otherwise libpq holds the
        # whole result, but still only one batch at a time becomes Python objects
        cur = self.conn.cursor(name=f"_query_{uuid.uuid4().hex[:12]}") if stream else self.cur
        try:
            cur.execute(sql, tuple(params) or None)
            return _fetch_arrow(cur, self.COPY_ROWS)
        finally:
            if stream:
                cur.close()

    def _copy(self, target: str, data: pa.Table) -> None:
        cols = ", ".join(q(c) for c in data.column_names)
        for batch in data.to_batches(self.COPY_ROWS):
            buf = io.BytesIO()
            pacsv.write_csv(
                pa.Table.from_batches([batch]),
                buf,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
            )
            buf.seek(0)
            self.cur.copy_expert(f"COPY {target} ({cols}) FROM STDIN WITH (FORMAT csv)", buf)

    def _stage(self, data):
        name = f"_stage_{uuid.uuid4().hex[:12]}"
        types = typemap.SQL["postgres"]
        cols = ", ".join(f"{q(f.name)} {types[typemap.of_arrow(f.type)]}" for f in data.schema)
        self.execute(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP")
        self._copy(name, data)
        return name

    def _unstage(self, name):
        self.execute(f"DROP TABLE {name}")

    def insert_arrow(self, table, data, schema=RAW):
        if data.num_rows:
            self._copy(f"{q(schema)}.{q(table)}", data)

    def close(self):
        self.cur.close()


class Warehouse:
    """Connection factory chosen by ``NTSB_WAREHOUSE_URL``: ``duckdb:///path/file.duckdb``
    (or a bare path ending in .duckdb) or ``postgresql://user:pass@host:port/db``."""

    def __init__(self, url: str):
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme in ("postgresql", "postgres"):
            self.dialect = "postgres"
            self.dsn = url.replace("postgres://", "postgresql://", 1)
        elif parsed.scheme == "duckdb" or (parsed.scheme == "" and url.endswith(".duckdb")):
            self.dialect = "duckdb"
            path = url[len("duckdb://") :] if parsed.scheme else url
            self.path = Path(path).resolve()
        else:
            raise WarehouseError(
                f"NTSB_WAREHOUSE_URL={url!r}: use duckdb:///path/warehouse.duckdb "
                "or postgresql://user@host:port/database"
            )

    def __repr__(self):
        return f"Warehouse({self.safe_url})"

    @property
    def safe_url(self) -> str:
        p = urlparse(self.url)
        if p.password:
            return self.url.replace(f":{p.password}@", ":***@")
        return self.url

    def check(self) -> None:
        """Fail fast, naming the setting, when the warehouse cannot be reached. An existing
        DuckDB file is not opened (another process may be writing it: a connection would
        wait); a missing one is created empty, in a folder that must exist."""
        if self.dialect == "duckdb":  # its folder must exist: a typo creates nothing
            import os

            parent = self.path.parent
            if not parent.is_dir():
                raise WarehouseError(
                    f"NTSB_WAREHOUSE_URL={self.safe_url!r}: the folder {parent} does not exist "
                    "(create it, or correct the setting)"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise WarehouseError(f"NTSB_WAREHOUSE_URL={self.safe_url!r}: {parent} is not writable by this user")
            if not self.path.exists():  # a new deployment: an empty warehouse that readers can open
                self._duckdb_connect().close()
            return
        try:
            with self.session(read_only=True) as s:
                s.query("SELECT 1")
        except WarehouseError:
            raise
        except Exception as exc:
            raise WarehouseError(f"NTSB_WAREHOUSE_URL={self.safe_url!r} is not reachable: {str(exc).strip()}") from None

    def connect_raw(self, read_only: bool = False, lock_wait: float | None = None):
        if self.dialect == "duckdb":
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._duckdb_connect(read_only=read_only, lock_wait=lock_wait)
        import psycopg2

        return psycopg2.connect(
            self.dsn,
            connect_timeout=5,
            options=PG_OPTIONS + (" -c default_transaction_read_only=on" if read_only else ""),
        )

    @property
    def session_url(self) -> str:
        """The PostgreSQL URL with the session options (PG_OPTIONS), for a client that
        connects on its own (Great Expectations' SQLAlchemy engine)."""
        p = urlparse(self.dsn)
        query = "&".join([*filter(None, [p.query]), "options=" + quote(PG_OPTIONS)])
        return p._replace(query=query).geturl()

    # ------------------------------------------------------------ user SQL
    def user_query(self, sql: str, timeout: float = USER_QUERY_TIMEOUT) -> pa.Table:
        """Run one statement a user typed, read-only by construction (docs in the README):

        - one statement only, refused before anything runs;
        - PostgreSQL: as the role READER_ROLE (created and granted here: SELECT on the
          database's own schemas, nothing else; no superuser, no server files, no large
          objects), in a read-only transaction, with a statement timeout;
        - DuckDB: the file opened read-only with external access (files, network, ATTACH,
          COPY) and extension installing and loading disabled, the configuration locked, and
          the query interrupted after ``timeout`` seconds.
        """
        statement = single_statement(sql, self.dialect)
        if self.dialect == "duckdb":
            return self._duckdb_user_query(statement, timeout)
        return self._postgres_user_query(statement, timeout)

    def _duckdb_connect(self, lock_wait: float | None = None, **kwargs):
        """A DuckDB connection; while another process holds the file (a writer, or a reader
        while this one writes), wait for it with a message instead of failing at once, up to
        ``lock_wait`` seconds (DUCKDB_LOCK_WAIT by default; 0: fail at once, as a sensor's
        tick must)."""
        limit = DUCKDB_LOCK_WAIT if lock_wait is None else lock_wait
        import time

        import duckdb

        start = told = None
        while True:
            try:
                return duckdb.connect(str(self.path), **kwargs)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                now = time.monotonic()
                start = start or now
                if now - start >= limit:
                    raise WarehouseBusy(
                        f"{self.path} is in use by another process"
                        + (f" after {limit:.0f} s" if limit else "")
                        + f": {str(exc).strip()}"
                    ) from None
                if told is None or now - told >= WAIT_REPEAT_SECONDS:
                    holder = re.search(r"\(PID \d+\)", str(exc))
                    tell_waiting(
                        f"waiting for {self.path}, in use by another process"
                        f"{' ' + holder.group(0) if holder else ''}; waited {now - start:.0f} s"
                    )
                    told = now
                time.sleep(0.25)

    def _duckdb_user_query(self, statement: str, timeout: float) -> pa.Table:
        import threading

        import duckdb

        con = self._duckdb_connect(read_only=True, config=DUCKDB_LOCKED)
        timer = threading.Timer(timeout, con.interrupt)
        timer.start()
        try:
            relation = con.sql(statement)  # a statement with no result has run already: None
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.InterruptException:
            raise WarehouseError(f"the query ran longer than {timeout:g} s and was stopped") from None
        finally:
            timer.cancel()
            con.close()

    def _postgres_user_query(self, statement: str, timeout: float) -> pa.Table:
        import psycopg2

        password = self._ensure_reader()
        conn = psycopg2.connect(
            self.dsn,
            user=READER_ROLE,
            password=password,
            connect_timeout=5,
            options=f"{PG_OPTIONS} -c default_transaction_read_only=on -c statement_timeout={int(timeout * 1000)}",
        )
        try:
            conn.set_session(readonly=True)
            with conn.cursor() as cur:
                cur.execute(statement)
                return _fetch_arrow(cur) if cur.description is not None else pa.table({})
        finally:
            conn.rollback()
            conn.close()

    def _ensure_reader(self) -> str:
        """Create or re-grant the read-only role; give it a fresh password (returned), so no
        secret of it is kept anywhere."""
        import secrets

        import psycopg2

        password = secrets.token_urlsafe(24)
        conn = self.connect_raw()
        conn.autocommit = True
        role = q(READER_ROLE)
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            try:
                cur.execute(
                    f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS NOINHERIT PASSWORD %s",
                    (password,),
                )
            except psycopg2.errors.DuplicateObject:  # another `ntsb sql` created it meanwhile
                cur.execute(f"ALTER ROLE {role} PASSWORD %s", (password,))
            cur.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE left(nspname, 3) <> 'pg_' AND nspname <> 'information_schema'"
            )
            for (schema,) in cur.fetchall():
                cur.execute(f"GRANT USAGE ON SCHEMA {q(schema)} TO {role}")
                cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {q(schema)} TO {role}")
        except psycopg2.Error as exc:
            raise WarehouseError(
                f"cannot prepare the read-only role {READER_ROLE} that `ntsb sql` connects as: "
                f"{str(exc).strip()} (the NTSB_WAREHOUSE_URL user needs CREATEROLE, or create the role "
                "and grant it SELECT yourself)"
            ) from None
        finally:
            conn.close()
        return password

    @contextmanager
    def session(self, read_only: bool = False, lock_wait: float | None = None):
        """One transaction: commits when the block ends, rolls back on any error.
        ``lock_wait``: seconds to wait for an embedded warehouse another process holds."""
        conn = self.connect_raw(read_only=read_only, lock_wait=lock_wait)
        s: Session
        if self.dialect == "duckdb":
            s = DuckDBSession(conn)
            if not read_only:
                conn.execute("BEGIN TRANSACTION")
            try:
                yield s
                if not read_only:
                    conn.execute("COMMIT")
            except BaseException:
                if not read_only:
                    conn.execute("ROLLBACK")
                raise
            finally:
                s.close()
                conn.close()
        else:
            s = PostgresSession(conn)
            try:
                yield s
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                s.close()
                conn.close()
