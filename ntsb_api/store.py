"""Where the API reads: only what the asset graph materialized.

- PostgreSQL: the marts, the aggregate materialized views and ``ml.batch_predictions``,
  through a connection pool, read-only transactions, parameterized SQL only.
- Embedded: the serving snapshot the asset ``serving/snapshot`` published (see
  ``ntsb_assets/lib/serving.py``). Each request stats the pointer; when it names a new file
  the store opens it and later requests use it, without a restart. The previous file is
  never modified, so a request in flight finishes on a consistent view.

Both run the same SQL (``?`` placeholders, rewritten for psycopg2); only full-text search
differs: PostgreSQL's tsvector + GIN index, and BM25 over the snapshot's inverted index.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ntsb_assets.lib import marts, serving

SORTS = {
    "event_date": "event_date",
    "-event_date": "event_date DESC",
    "ev_id": "ev_id",
    "-fatalities": "fatalities DESC NULLS LAST",
    "state": "state",
    "make": "make",
}
FILTERS = {  # query parameter -> SQL with one placeholder
    "date_from": "event_date >= ?",
    "date_to": "event_date <= ?",
    "state": "state = ?",
    "severity": "severity = ?",
    "make": "upper(make) = upper(?)",
    "model": "upper(model) = upper(?)",
    "phase": "phase_of_flight = ?",
    "weather": "weather_condition = ?",
}

# The fact table ``f`` sliced by the dashboard's filters: a filter's values are a list
# (any of them) except the years (a range) and make/model (one, any case).
SLICES = {
    "state": "f.state",
    "far_part": "f.far_part",
    "phase": "f.phase_of_flight",
    "weather": "f.weather_condition",
    "severity": "f.severity",
    "ev_id": "f.ev_id",
}
SLICE_LABELS = {  # slice filter -> (column, its label) for the choices offered
    "state": ("f.state", "f.state_label"),
    "far_part": ("f.far_part", "f.far_part_label"),
    "phase": ("f.phase_of_flight", "f.phase_of_flight_label"),
    "weather": ("f.weather_condition", "f.weather_condition"),
    "severity": ("f.severity", "f.severity"),
}
GROUPS = {
    "year": "CAST(extract(year FROM f.event_date) AS INTEGER)",
    "month": "CAST(extract(month FROM f.event_date) AS INTEGER)",
    "severity": "f.severity",
    "state": "f.state",
    "make": "f.make",
    "model": "f.model",
    "far_part": "f.far_part",
    "phase": "f.phase_of_flight",
    "weather": "f.weather_condition",
}


def _rows_of(mart: str) -> str:
    """The columns a statistics route returns of its mart (``meta.ntsb.api: rows`` in the yml)."""
    return ", ".join(marts.api_columns(mart, "rows"))


def slice_where(filters: dict) -> tuple[str, list]:
    """`` WHERE ...`` (or ``""``) and its parameters for a slice of the fact table ``f``.
    Values only ever travel as parameters; an unknown filter name is a ValueError."""
    import datetime as dt

    where: list[str] = []
    params: list = []
    for name, value in filters.items():
        if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
            continue
        if name == "year_from":
            where.append("f.event_date >= ?")
            params.append(dt.date(int(value), 1, 1))
        elif name == "year_to":
            where.append("f.event_date < ?")
            params.append(dt.date(int(value) + 1, 1, 1))
        elif name in ("make", "model"):
            where.append(f"upper(f.{name}) = upper(?)")
            params.append(str(value))
        elif name in SLICES or name == "category":
            values = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
            marks = ", ".join("?" * len(values))
            where.append(
                f"EXISTS (SELECT 1 FROM marts.dim_aircraft a WHERE a.ev_id = f.ev_id AND a.is_current "
                f"AND a.category IN ({marks}))"
                if name == "category"
                else f"{SLICES[name]} IN ({marks})"
            )
            params += values
        else:
            raise ValueError(f"unknown filter {name!r}")
    return (" WHERE " + " AND ".join(where)) if where else "", params


def where_of(filters: dict) -> tuple[str, list]:
    """`` WHERE ...`` (or ``""``) and its parameters for the event filters (FILTERS) given."""
    where, params = [], []
    for name, value in filters.items():
        if value is not None:
            where.append(FILTERS[name])
            params.append(value)
    return (" WHERE " + " AND ".join(where)) if where else "", params


class StoreUnavailable(Exception):
    """Nothing to serve yet (no snapshot, no marts), or the warehouse cannot be reached."""


class ResponseCache:
    """Response bodies of one data version, least recently used out first (bounded by
    entries and bytes). What a data version holds never changes, so nothing expires: a new
    version gets a new cache."""

    def __init__(self, max_entries: int = 20_000, max_bytes: int = 64 << 20):
        from collections import OrderedDict

        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building: dict = {}  # key -> lock: concurrent misses of one key build it once

    def get(self, key):
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def get_or_build(self, key, build) -> bytes:
        """The body for ``key``; on a miss ``build()`` makes it while other requests for the
        same key wait for it (a popular query reaches the warehouse once)."""
        body = self.get(key)
        if body is not None:
            return body
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        try:
            with building:
                body = self.get(key)
                return body if body is not None else self.put(key, build())
        finally:
            with self._lock:
                self._building.pop(key, None)

    def put(self, key, body: bytes) -> bytes:
        with self._lock:
            if key not in self._items:
                self._items[key] = body
                self._bytes += len(body)
                while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                    self._bytes -= len(self._items.popitem(last=False)[1])
            return body


class Store:
    dialect: str

    # ---- connections: subclasses provide _cursor() and version()
    @contextmanager
    def _cursor(self):
        raise NotImplementedError

    def version(self) -> dict:
        raise NotImplementedError

    def pin(self) -> Store:
        """What one request reads (the same store, or a fixed snapshot)."""
        return self

    @property
    def cache(self) -> ResponseCache:
        """The response cache of the data version this store reads."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def rows(self, sql: str, params: tuple | list = ()) -> list[dict]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def has(self, schema: str, table: str) -> bool:
        """Whether a table or (materialized) view exists; remembered by the subclass."""
        return self._exists(schema, table)

    def _exists(self, schema: str, table: str) -> bool:
        return bool(
            self.rows(
                "SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
                "UNION ALL SELECT 1 FROM pg_catalog.pg_matviews WHERE schemaname = ? AND matviewname = ?"
                if self.dialect == "postgres"
                else "SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (schema, table, schema, table) if self.dialect == "postgres" else (schema, table),
            )
        )

    # ---- events
    def events(self, filters: dict, sort: str, page: int, page_size: int) -> tuple[list[dict], int]:
        clause, params = where_of(filters)
        total = self.rows(f"SELECT count(*) AS n FROM marts.fact_accidents{clause}", params)[0]["n"]
        items = self.rows(
            f"SELECT {', '.join(serving.event_columns())} FROM marts.fact_accidents{clause} "
            f"ORDER BY {SORTS[sort]}, ev_id LIMIT ? OFFSET ?",
            [*params, page_size, (page - 1) * page_size],
        )
        return items, int(total)

    def event(self, ev_id: str) -> str | None:
        """The event's JSON document (``serving.event_document_sql``), or None."""
        raise NotImplementedError

    # ---- statistics (the aggregate marts)
    def summary(self) -> dict:
        row = self.rows(
            "SELECT sum(events) AS events, sum(fatal_events) AS fatal_events, "
            "sum(serious_events) AS serious_events, sum(minor_events) AS minor_events, "
            "sum(no_injury_events) AS no_injury_events, sum(fatalities) AS fatalities, "
            "min(year) AS first_year, max(year) AS last_year FROM marts.agg_yearly_stats"
        )[0]
        return {k: (int(v) if v is not None else None) for k, v in row.items()}

    def yearly(self) -> list[dict]:
        return self.rows(f"SELECT {_rows_of('agg_yearly_stats')} FROM marts.agg_yearly_stats ORDER BY year")

    def by_state(self) -> list[dict]:
        return self.rows(f"SELECT {_rows_of('agg_state_stats')} FROM marts.agg_state_stats ORDER BY events DESC, state")

    def by_aircraft_type(self, limit: int) -> list[dict]:
        return self.rows(
            f"SELECT {_rows_of('agg_aircraft_type_stats')} FROM marts.agg_aircraft_type_stats "
            "ORDER BY events DESC, make, model LIMIT ?",
            (limit,),
        )

    def by_phase(self) -> list[dict]:
        return self.rows(
            f"SELECT {_rows_of('agg_phase_stats')} FROM marts.agg_phase_stats ORDER BY events DESC, phase_of_flight"
        )

    # ---- search over the narratives (ntsb_api/search.py puts the modes together)
    def keyword(
        self, q: str, limit: int, filters: dict, feedback: list[str] | None = None
    ) -> tuple[list[tuple[str, float]], list[str]]:
        """The ``limit`` best (ev_id, score) by BM25 over the narratives' inverted index
        (``serving.TermIndex``, the same on both deployments) among the events matching
        ``filters``, best first; and the query's terms (to highlight). ``feedback``: events
        whose weightiest words (FEEDBACK_TERMS of them) are added to the query, as the
        hybrid search does with the semantic ranking's first events."""
        from ntsb_assets.lib import narratives

        terms = sorted(set(serving.tokens(q)))
        if not terms:
            return [], []
        index = self.term_index()
        if index is None:
            raise StoreUnavailable(
                "this warehouse has no keyword index of the narratives, or one built to another rule "
                "(another stemmer): materialize serving/snapshot (ntsb build)"
            )
        given = {k: v for k, v in filters.items() if v is not None}
        allowed = None
        if given:
            allowed = index.masks.cached(tuple(sorted(given.items())), lambda: self.filtered_events(given))
        asked = sorted(set(terms) | set(index.feedback(feedback, narratives.FEEDBACK_TERMS))) if feedback else terms
        return index.search(asked, limit, allowed), terms

    def term_index(self) -> serving.TermIndex | None:
        """The narratives' inverted index of this data version, in memory (loaded once);
        None when the warehouse has none."""
        raise NotImplementedError

    def filtered_events(self, filters: dict) -> list[str]:
        """The ev_ids of the events matching every filter given."""
        clause, params = where_of(filters)
        with self._cursor() as cur:
            cur.execute(self._sql(f"SELECT ev_id FROM marts.fact_accidents{clause}"), params)
            return [r[0] for r in cur.fetchall()]

    def heads(self, ev_ids: list[str]) -> dict[str, dict]:
        """ev_id -> its date, severity, make and model (what a search hit shows)."""
        if not ev_ids:
            return {}
        marks = ", ".join("?" * len(ev_ids))
        rows = self.rows(
            f"SELECT ev_id, event_date, severity, make, model FROM marts.fact_accidents WHERE ev_id IN ({marks})",
            ev_ids,
        )
        return {r["ev_id"]: r for r in rows}

    def texts(self, ev_ids: list[str]) -> dict[str, list[dict]]:
        """ev_id -> its narratives (aircraft_key, narrative, probable_cause), by aircraft."""
        if not ev_ids or not self.has("marts", "narratives"):
            return {}
        marks = ", ".join("?" * len(ev_ids))
        out: dict[str, list[dict]] = {}
        for r in self.rows(
            "SELECT ev_id, aircraft_key, narrative, probable_cause FROM marts.narratives "
            f"WHERE ev_id IN ({marks}) ORDER BY ev_id, aircraft_key",
            ev_ids,
        ):
            out.setdefault(r.pop("ev_id"), []).append(r)
        return out

    def heads_and_texts(self, ev_ids: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
        """:meth:`heads` and :meth:`texts` of the same events (a search's hits)."""
        return self.heads(ev_ids), self.texts(ev_ids)

    def vector_index(self):
        """The narratives' vectors of this data version (lib/narratives.VectorIndex), loaded
        once; None when the warehouse has none (ml/narrative_embeddings not materialized)."""
        raise NotImplementedError

    def _load_index(self):
        from ntsb_assets.lib import narratives

        if not self.has(*narratives.VECTORS_TABLE):
            return None
        return narratives.VectorIndex(self._arrow(narratives.index_sql()))

    def _arrow(self, sql: str):
        raise NotImplementedError

    # ---- slices of the fact table (the dashboard's filters): one WHERE builder for all of them
    def frame(self, sql: str, params: tuple | list = ()):
        """The rows of ``sql`` as a pandas DataFrame (no dict per row: a map reads 100K).
        PostgreSQL's numeric (what ``sum`` of a bigint gives) arrives as Decimal objects:
        they become integers, or floats where a value has a fraction, as DuckDB gives them."""
        import decimal

        import pandas as pd

        with self._cursor() as cur:
            cur.execute(self._sql(sql), list(params))
            if self.dialect == "duckdb":
                return cur.df()
            df = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        for col in df.columns[df.dtypes == "object"]:
            values = df[col].dropna()
            if len(values) and all(isinstance(v, decimal.Decimal) for v in values):
                whole = len(values) == len(df) and all(v == v.to_integral_value() for v in values)
                df[col] = df[col].astype("int64" if whole else float)
        return df

    def slice_options(self) -> dict[str, list[dict]]:
        """Each slice filter's values with their labels and events, most events first, and
        the years the fact table spans."""
        out = {}
        for name, (column, label) in SLICE_LABELS.items():
            out[name] = self.rows(
                f"SELECT {column} AS code, max({label}) AS label, count(*) AS events "
                f"FROM marts.fact_accidents f WHERE {column} IS NOT NULL GROUP BY {column} "
                f"ORDER BY events DESC, code"
            )
        out["category"] = self.rows(
            "SELECT a.category AS code, max(a.category_label) AS label, count(DISTINCT a.ev_id) AS events "
            "FROM marts.dim_aircraft a WHERE a.is_current AND a.category IS NOT NULL GROUP BY a.category "
            "ORDER BY events DESC, code"
        )
        years = self.rows(
            f"SELECT min({GROUPS['year']}) AS first, max({GROUPS['year']}) AS last FROM marts.fact_accidents f"
        )[0]
        out["years"] = [{"code": years["first"], "label": "first"}, {"code": years["last"], "label": "last"}]
        return out

    def breakdown(self, filters: dict, by: tuple[str, ...]):
        """Events, fatal events and fatalities of the filtered fact table, grouped by ``by``
        (names of GROUPS), as a DataFrame."""
        clause, params = slice_where(filters)
        groups = ", ".join(f"{GROUPS[g]} AS {g}" for g in by)
        order = ", ".join(str(i + 1) for i in range(len(by)))
        return self.frame(
            f"SELECT {groups + ', ' if by else ''}count(*) AS events, "
            "sum(CASE WHEN f.is_fatal THEN 1 ELSE 0 END) AS fatal_events, "
            "coalesce(sum(f.fatalities), 0) AS fatalities "
            f"FROM marts.fact_accidents f{clause}" + (f" GROUP BY {order} ORDER BY {order}" if by else ""),
            params,
        )

    def points(self, filters: dict):
        """The filtered events that have coordinates (the map's points), as a DataFrame."""
        clause, params = slice_where(filters)
        clause = (clause + " AND " if clause else " WHERE ") + "f.latitude IS NOT NULL AND f.longitude IS NOT NULL"
        return self.frame(
            "SELECT f.ev_id, f.event_date, f.severity, f.fatalities, f.make, f.model, f.state, f.city, "
            f"f.latitude, f.longitude FROM marts.fact_accidents f{clause} ORDER BY f.ev_id",
            params,
        )

    def event_list(self, filters: dict, limit: int):
        """The filtered events, newest first, at most ``limit``, as a DataFrame."""
        clause, params = slice_where(filters)
        return self.frame(
            f"SELECT {', '.join('f.' + c for c in serving.event_columns())} FROM marts.fact_accidents f"
            f"{clause} ORDER BY f.event_date DESC, f.ev_id LIMIT ?",
            [*params, limit],
        )

    def causes(self, filters: dict, kind: str, by_year: bool = False, limit: int = 10_000):
        """The findings (or occurrences: ``kind``) of the filtered events: events and fatal
        events per cause, most events first; ``by_year``: per cause category and year."""
        clause, params = slice_where(filters)
        clause = (clause + " AND " if clause else " WHERE ") + "b.cause_kind = ?"
        joins = (
            "FROM marts.bridge_accident_causes b JOIN marts.dim_causes c ON c.cause_key = b.cause_key "
            "JOIN marts.fact_accidents f ON f.ev_id = b.ev_id"
        )
        counts = (
            "count(DISTINCT b.ev_id) AS events, count(DISTINCT CASE WHEN f.is_fatal THEN b.ev_id END) AS fatal_events"
        )
        if by_year:
            return self.frame(
                f"SELECT {GROUPS['year']} AS year, coalesce(c.category, 'unknown') AS category, {counts} "
                f"{joins}{clause} GROUP BY 1, 2 ORDER BY 1, 2",
                [*params, kind],
            )
        return self.frame(
            f"SELECT c.cause_code, max(c.cause_description) AS cause_description, "
            f"max(c.category) AS category, {counts} {joins}{clause} GROUP BY c.cause_code "
            "ORDER BY events DESC, c.cause_code LIMIT ?",
            [*params, kind, limit],
        )

    # ---- the loads' own record (raw schema; the embedded snapshot carries a copy)
    def releases(self):
        """The releases loaded (``raw._releases``), oldest first, as a DataFrame."""
        import pandas as pd

        if not self.has("raw", "_releases"):
            return pd.DataFrame()
        return self.frame(
            "SELECT release_id, name, kind, size, sha256, first_loaded_at, last_loaded_at, loads "
            "FROM raw._releases ORDER BY first_loaded_at, release_id"
        )

    def quality_tables(self) -> dict:
        """Per release: the releases, the reconciliation, the quarantine by rule, and the
        dictionary-lag report, as DataFrames (empty where the table does not exist)."""
        import pandas as pd

        sql = {
            "reconciliation": "SELECT * FROM raw._reconciliation ORDER BY release_id, table_name",
            "quarantine": "SELECT release_id, table_name, rule, count(*) AS rows_quarantined, min(reason) AS example "
            "FROM raw._quarantine GROUP BY release_id, table_name, rule "
            "ORDER BY release_id, rows_quarantined DESC, table_name, rule",
            "code_lag": "SELECT release_id, table_name, column_name, code, row_count, column_rows "
            "FROM raw._code_lag ORDER BY release_id, row_count DESC, table_name, column_name, code",
        }
        table = {"reconciliation": "_reconciliation", "quarantine": "_quarantine", "code_lag": "_code_lag"}
        return {
            "releases": self.releases(),
            **{k: self.frame(q) if self.has("raw", table[k]) else pd.DataFrame() for k, q in sql.items()},
        }


class PostgresStore(Store):
    dialect = "postgres"

    def __init__(self, dsn: str, size: int = 16, version_ttl: float = 5.0):
        self.pool = _Pool(dsn, size)
        self.pool.put(self.pool.get())  # reachable now, or StoreUnavailable
        self._version: dict | None = None
        self._version_at, self._ttl = 0.0, version_ttl
        self._cache = ResponseCache()
        self._lock = threading.Lock()
        self._tables: dict = {}
        import weakref

        self._prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> statement names
        # what the searches hold in memory, by name: (data version, value); pinned views share it
        self._shared: dict[str, tuple[str | None, Any]] = {}
        self._load_locks: dict[str, threading.Lock] = {}

    @contextmanager
    def _cursor(self):
        import psycopg2

        conn = self.pool.get()
        try:
            with conn.cursor() as cur:
                yield cur
        except psycopg2.OperationalError as exc:  # the server went away: 503, and the connection is dropped
            raise StoreUnavailable(f"warehouse not reachable: {exc}".strip()) from None
        finally:
            self.pool.put(conn)

    def has(self, schema: str, table: str) -> bool:
        key = (schema, table)
        hit = self._tables.get(key)
        if hit is None or time.monotonic() - hit[1] > self._ttl:  # a build may create it meanwhile
            hit = self._tables[key] = (self._exists(schema, table), time.monotonic())
        return hit[0]

    _pinned = None  # (version, cache) of one request

    def pin(self) -> Store:
        """This store with the data version (and its cache) fixed for one request."""
        import copy

        view = copy.copy(self)
        view._pinned = (self.version(), self._cache)
        return view

    def version(self) -> dict:
        """What serving/snapshot recorded in ``serving.published`` (or, before it ran, the
        releases and model versions in the warehouse). Only the first call waits for the
        warehouse; later, every few seconds, a background thread reads it again while
        requests go on with the version in hand (this runs on the event loop)."""
        if self._pinned is not None:
            return self._pinned[0]
        if self._version is None:
            with self._lock:
                if self._version is None:
                    self._refresh()
        elif time.monotonic() - self._version_at > self._ttl and self._lock.acquire(blocking=False):
            self._version_at = time.monotonic()  # one refresh at a time

            def refresh():
                try:
                    self._refresh()
                except Exception as exc:  # unreachable for now: keep serving, the next request tells
                    import logging

                    logging.getLogger("ntsb_api").warning("data version not read again: %s", exc)
                finally:
                    self._lock.release()

            threading.Thread(target=refresh, daemon=True).start()
        assert self._version is not None  # read above, never unset
        return self._version

    def _refresh(self) -> None:
        version = self._read_version()
        if version != self._version:
            self._cache = ResponseCache()
        self._version, self._version_at = version, time.monotonic()

    def _read_version(self) -> dict:
        if self.has("serving", "published"):
            row = self.rows("SELECT version FROM serving.published")
            if row:
                return json.loads(row[0]["version"])
        releases = (
            [r["release_id"] for r in self.rows("SELECT release_id FROM raw._releases ORDER BY 1")]
            if self.has("raw", "_releases")
            else []
        )
        models = (
            [r["model_version"] for r in self.rows("SELECT DISTINCT model_version FROM ml.batch_predictions")]
            if self.has("ml", "batch_predictions")
            else []
        )
        return {"releases": releases, "model_version": ",".join(sorted(map(str, models))) or None}

    @property
    def cache(self) -> ResponseCache:
        return self._pinned[1] if self._pinned is not None else self.pin().cache

    def event(self, ev_id: str) -> str | None:
        """A prepared statement per connection: planning the document's query costs more
        than running it."""
        predictions = self.has("ml", "batch_predictions")
        name = "ntsb_event_document" + ("_with_prediction" if predictions else "")
        with self._cursor() as cur:
            prepared = self._prepared.setdefault(cur.connection, set())
            if name not in prepared:  # a prepared statement lives as long as its connection
                cur.execute(
                    f"PREPARE {name}(text) AS {serving.event_document_sql(self.dialect, predictions)} "
                    "WHERE f.ev_id = $1"
                )
                prepared.add(name)
            cur.execute(f"EXECUTE {name}(%s)", (ev_id,))
            row = cur.fetchone()
        return row[1] if row else None

    def term_index(self) -> serving.TermIndex | None:
        """The warehouse's copy of the snapshot's inverted index
        (``serving.index_narratives_postgres``), loaded once per data version."""
        return self._loaded("terms", self._load_terms)

    def _load_terms(self) -> serving.TermIndex | None:
        with self._cursor() as cur:
            return serving.TermIndex.load_postgres(cur)

    def vector_index(self):
        """Loaded from ``ml.narrative_vectors`` once per data version (the vectors as bytes:
        about a second per 100,000 windows); requests for the same version wait for it."""
        return self._loaded("vectors", self._load_index)

    def _loaded(self, name: str, load: Callable[[], Any]) -> Any:
        """``load()``'s result for the current data version, made once: requests for ``name``
        wait for the first; those for another name (keyword search while the vectors load) do not."""
        key = json.dumps(self.version(), sort_keys=True)
        held = self._shared.get(name, (None, None))
        if held[0] != key:
            with self._load_locks.setdefault(name, threading.Lock()):  # setdefault is atomic under the GIL
                held = self._shared.get(name, (None, None))
                if held[0] != key:
                    held = self._shared[name] = (key, load())
        return held[1]

    def _arrow(self, sql: str):
        import pyarrow as pa

        with self._cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            cols: list[list] = [[] for _ in names]
            while batch := cur.fetchmany(20_000):
                for row in batch:
                    for i, v in enumerate(row):
                        cols[i].append(bytes(v) if isinstance(v, memoryview) else v)
        return pa.table(dict(zip(names, cols, strict=True)))

    def close(self):
        self.pool.close()


class _Pool:
    """At most ``size`` read-only connections, opened when first needed and kept open (a
    connection keeps its prepared statements); a caller waits for a free one rather than
    fail. Autocommit: every statement is its own read-only transaction. A broken
    connection is dropped."""

    def __init__(self, dsn: str, size: int):
        import queue

        self.dsn, self._slots = dsn, threading.BoundedSemaphore(size)
        self._idle: queue.LifoQueue = queue.LifoQueue()

    def get(self):
        import queue

        import psycopg2

        self._slots.acquire()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        try:
            conn = psycopg2.connect(self.dsn, connect_timeout=5, options="-c default_transaction_read_only=on")
        except Exception as exc:
            self._slots.release()
            raise StoreUnavailable(f"warehouse not reachable: {exc}".strip()) from None
        conn.autocommit = True  # each read its own read-only transaction: no BEGIN and ROLLBACK round trips
        return conn

    def put(self, conn) -> None:
        import psycopg2.extensions as ext

        try:
            if not conn.closed:
                if conn.info.transaction_status != ext.TRANSACTION_STATUS_IDLE:
                    conn.rollback()
                self._idle.put(conn)
        except Exception:
            conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        import queue

        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class _Snapshot:
    """One published snapshot, open: the DuckDB file, its documents (SQLite, one
    connection per thread), its version, its tables and its response cache."""

    def __init__(self, mtime: int, path: Path, version: dict):
        import duckdb

        if version.get("format") != serving.FORMAT:
            raise StoreUnavailable(
                f"{path.name} has snapshot format {version.get('format')}, this API reads "
                f"{serving.FORMAT}: materialize serving/snapshot again (ntsb build)"
            )
        self.mtime, self.version, self.cache = mtime, version, ResponseCache()
        self.con = duckdb.connect(str(path), read_only=True)
        self.tables = {
            tuple(r)
            for r in self.con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        }
        self.documents = serving.documents_path(path)
        self._local = threading.local()
        self._locks: dict[str, threading.Lock] = {}
        self._loaded: dict[str, Any] = {}  # what this snapshot's searches hold in memory, by name

    def loaded(self, name: str, load: Callable[[], Any]) -> Any:
        """``load()``'s result, made once for this snapshot: requests for ``name`` wait for the
        first; those for another name (keyword search while the vectors load) do not."""
        if name not in self._loaded:
            with self._local_lock(name):
                if name not in self._loaded:
                    self._loaded[name] = load()
        return self._loaded[name]

    def _local_lock(self, name: str) -> threading.Lock:
        return self._locks.setdefault(name, threading.Lock())  # setdefault is atomic under the GIL

    def document(self, ev_id: str) -> str | None:
        import sqlite3

        db = getattr(self._local, "db", None)
        if db is None:  # immutable: SQLite takes no locks and keeps no journal
            db = self._local.db = sqlite3.connect(
                f"file:{self.documents}?mode=ro&immutable=1", uri=True, check_same_thread=False
            )
        row = db.execute("SELECT doc FROM documents WHERE ev_id = ?", (ev_id,)).fetchone()
        return row[0] if row else None


class SnapshotStore(Store):
    """The embedded deployment: the current serving snapshot, read-only."""

    dialect = "duckdb"

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._pointer = self.directory / serving.POINTER
        self._state: _Snapshot | None = None
        self._lock = threading.Lock()

    def _current(self) -> _Snapshot:
        try:
            mtime = self._pointer.stat().st_mtime_ns
        except FileNotFoundError:
            raise StoreUnavailable(
                f"no serving snapshot under {self.directory}: materialize serving/snapshot (ntsb build)"
            ) from None
        state = self._state
        if state is not None and state.mtime == mtime:
            return state
        with self._lock:
            if self._state is None or self._state.mtime != mtime:
                found = serving.current(self.directory)
                if found is None:  # the pointer went away since it was read
                    raise StoreUnavailable(f"no serving snapshot under {self.directory}")
                path, version = found
                self._state = _Snapshot(mtime, path, version)  # the old one closes when unused
            return self._state

    def pin(self) -> Store:
        """A view on the snapshot current now, for one request: its data and its version
        stay together even if a new snapshot is published meanwhile."""
        return _Pinned(self._current())

    @contextmanager
    def _cursor(self):
        cur = self._current().con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def version(self) -> dict:
        return self._current().version

    def has(self, schema: str, table: str) -> bool:  # a snapshot never changes: its tables are known
        return (schema, table) in self._current().tables

    @property
    def cache(self) -> ResponseCache:
        return self._current().cache

    def event(self, ev_id: str) -> str | None:
        return self._current().document(ev_id)

    def term_index(self) -> serving.TermIndex:
        """The snapshot's inverted index (``serving._index_narratives``), loaded once per snapshot."""
        state = self._current()
        return state.loaded("terms", lambda: self._load_terms(state))

    def _load_terms(self, state: _Snapshot) -> serving.TermIndex:
        cur = state.con.cursor()
        try:
            return serving.TermIndex.load(cur)
        finally:
            cur.close()

    def heads(self, ev_ids: list[str]) -> dict[str, dict]:
        """From the events' documents (SQLite: microseconds each; a DuckDB statement costs more)."""
        return self._heads(self._documents(ev_ids))

    def texts(self, ev_ids: list[str]) -> dict[str, list[dict]]:
        """From the events' documents: ``IN (...)`` on ``marts.narratives`` scans the texts
        (136 ms at 100,000 events), a document is one lookup."""
        return self._texts(self._documents(ev_ids))

    def heads_and_texts(self, ev_ids: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
        """Both from one reading of the documents (parsing them is most of the cost)."""
        docs = self._documents(ev_ids)
        return self._heads(docs), self._texts(docs)

    @staticmethod
    def _heads(docs: dict[str, dict]) -> dict[str, dict]:
        return {
            e: {"ev_id": e, **{k: d.get(k) for k in ("event_date", "severity", "make", "model")}}
            for e, d in docs.items()
        }

    @staticmethod
    def _texts(docs: dict[str, dict]) -> dict[str, list[dict]]:
        return {
            e: [{k: n.get(k) for k in ("aircraft_key", "narrative", "probable_cause")} for n in d["narratives"]]
            for e, d in docs.items()
            if d.get("narratives")
        }

    def _documents(self, ev_ids: list[str]) -> dict[str, dict]:
        out = {}
        for e in ev_ids:
            doc = self.event(e)
            if doc is not None:
                out[e] = json.loads(doc)
        return out

    def vector_index(self):
        """Read from the snapshot's ``ml.narrative_vectors`` at the first search by meaning."""
        return self._current().loaded("vectors", self._load_index)

    def _arrow(self, sql: str):
        with self._cursor() as cur:
            return cur.sql(sql).to_arrow_table()


class _Pinned(SnapshotStore):
    def __init__(self, state):
        self._state = state

    def _current(self):
        return self._state


_WORD = re.compile(r"[A-Za-z0-9]+")


def term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where the words of ``text`` whose term (``serving.tokens``: the stem) is one of
    ``terms`` start and end: "landed" and "landing" for the term "land"."""
    wanted = set(terms)
    return [m.span() for m in _WORD.finditer(text) if (t := serving.tokens(m.group(0))) and t[0] in wanted]


def highlight(text: str, terms: list[str], width: int = 220) -> str:
    """A window of ``text`` around the first word matching a term, every such word in
    <mark>...</mark>; the text HTML-escaped."""
    import html

    text = " ".join(text.split())
    spans = term_spans(text, terms) if terms else []
    start = max(0, (spans[0][0] if spans else 0) - width // 3)
    end = start + width
    out, at = [], start
    for a, b in spans:
        if start <= a and b <= end:
            out += [html.escape(text[at:a]), f"<mark>{html.escape(text[a:b])}</mark>"]
            at = b
    out.append(html.escape(text[at:end]))
    return ("..." if start else "") + "".join(out) + ("..." if end < len(text) else "")


def one_thread_per_request() -> None:
    """Make numpy's BLAS (OpenBLAS) single-threaded in this process. A serving process runs
    requests side by side (worker threads, worker processes); a BLAS thread team under
    concurrent calls costs more than it gains: searches by meaning at 100,000 events, 16
    at a time in one process: 37 a second with a team of two threads, 250 on one thread
    (benchmarks/vector_scan.py, docs/benchmarks.md). Process-wide: call it once, where the
    API or the dashboard starts."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def open_store(settings) -> Store:
    if settings.warehouse.dialect == "postgres":
        return PostgresStore(settings.warehouse.dsn)
    return SnapshotStore(settings.serving_dir)
