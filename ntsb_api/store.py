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

import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ntsb_assets.lib import serving

SORTS = {"event_date": "event_date", "-event_date": "event_date DESC", "ev_id": "ev_id",
         "-fatalities": "fatalities DESC NULLS LAST", "state": "state", "make": "make"}
EVENT_COLUMNS = ("ev_id", "event_date", "severity", "fatalities", "serious_injuries", "make", "model", "far_part",
                 "phase_of_flight", "phase_of_flight_label", "weather_condition", "light_condition", "country", "state",
                 "city", "latitude", "longitude")
FILTERS = {  # query parameter -> SQL with one placeholder
    "date_from": "event_date >= ?", "date_to": "event_date <= ?", "state": "state = ?", "severity": "severity = ?",
    "make": "upper(make) = upper(?)", "model": "upper(model) = upper(?)", "phase": "phase_of_flight = ?",
    "weather": "weather_condition = ?",
}


class StoreUnavailable(Exception):
    """Nothing to serve yet (no snapshot, no marts), or the warehouse cannot be reached."""


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

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql

    def rows(self, sql: str, params: tuple | list = ()) -> list[dict]:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def has(self, schema: str, table: str) -> bool:
        """Whether a table or (materialized) view exists; remembered by the subclass."""
        return self._exists(schema, table)

    def _exists(self, schema: str, table: str) -> bool:
        return bool(self.rows("SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
                              "UNION ALL SELECT 1 FROM pg_catalog.pg_matviews WHERE schemaname = ? AND matviewname = ?"
                              if self.dialect == "postgres" else
                              "SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                              (schema, table, schema, table) if self.dialect == "postgres" else (schema, table)))

    # ---- events
    def events(self, filters: dict, sort: str, page: int, page_size: int) -> tuple[list[dict], int]:
        where, params = [], []
        for name, value in filters.items():
            if value is not None:
                where.append(FILTERS[name])
                params.append(value)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.rows(f"SELECT count(*) AS n FROM marts.fact_accidents{clause}", params)[0]["n"]
        items = self.rows(f"SELECT {', '.join(EVENT_COLUMNS)} FROM marts.fact_accidents{clause} "
                          f"ORDER BY {SORTS[sort]}, ev_id LIMIT ? OFFSET ?", [*params, page_size, (page - 1) * page_size])
        return items, int(total)

    def event(self, ev_id: str) -> dict | None:
        found = self.rows(f"SELECT {', '.join(EVENT_COLUMNS)}, ntsb_no, event_type, aircraft_count, event_hour, "
                          "flight_purpose, flight_purpose_label, is_scheduled, pilot_total_hours, pilot_age, crew_key, "
                          "release_id FROM marts.fact_accidents WHERE ev_id = ?", (ev_id,))
        if not found:
            return None
        event = found[0]
        crew_key = event.pop("crew_key")
        event["aircraft"] = self.rows(
            "SELECT aircraft_key, make, model, category, category_label, engine_type, engine_type_label, engine_count, "
            "is_homebuilt, year_built, damage, damage_label FROM marts.dim_aircraft WHERE ev_id = ? AND is_current "
            "ORDER BY aircraft_key", (ev_id,))
        crew = self.rows("SELECT certificate, certificate_label, medical_certificate, experience_bucket, age_group "
                         "FROM marts.dim_crew WHERE crew_key = ?", (crew_key,)) if crew_key else []
        event["crew"] = {**(crew[0] if crew else {}), "pilot_total_hours": event.pop("pilot_total_hours"),
                         "pilot_age": event.pop("pilot_age")}
        event["findings"] = self.rows(
            "SELECT b.aircraft_key, b.cause_kind, b.occurrence_no, b.seq_no, c.cause_code, c.cause_description, "
            "c.category, c.cause_factor, b.in_probable_cause FROM marts.bridge_accident_causes b "
            "JOIN marts.dim_causes c ON c.cause_key = b.cause_key WHERE b.ev_id = ? "
            "ORDER BY b.aircraft_key, b.occurrence_no, b.seq_no", (ev_id,))
        event["narratives"] = self.rows("SELECT aircraft_key, probable_cause, narrative FROM marts.narratives "
                                        "WHERE ev_id = ? ORDER BY aircraft_key", (ev_id,))
        prediction = self.rows("SELECT predicted_class, p_fatl, p_sers, p_minr, p_none, p_fatal_outcome, model_name, "
                               "model_version, predicted_at FROM ml.batch_predictions WHERE ev_id = ?", (ev_id,)) \
            if self.has("ml", "batch_predictions") else []
        event["prediction"] = prediction[0] if prediction else None
        return event

    # ---- statistics (the aggregate marts)
    def summary(self) -> dict:
        row = self.rows("SELECT sum(events) AS events, sum(fatal_events) AS fatal_events, "
                        "sum(serious_events) AS serious_events, sum(minor_events) AS minor_events, "
                        "sum(no_injury_events) AS no_injury_events, sum(fatalities) AS fatalities, "
                        "min(year) AS first_year, max(year) AS last_year FROM marts.agg_yearly_stats")[0]
        return {k: (int(v) if v is not None else None) for k, v in row.items()}

    def yearly(self) -> list[dict]:
        return self.rows("SELECT year, events, fatal_events, serious_events, minor_events, no_injury_events, "
                         "fatalities FROM marts.agg_yearly_stats ORDER BY year")

    def by_state(self) -> list[dict]:
        return self.rows("SELECT country, state, events, fatal_events, fatal_rate, fatalities, centroid_latitude, "
                         "centroid_longitude FROM marts.agg_state_stats ORDER BY events DESC, state")

    def by_aircraft_type(self, limit: int) -> list[dict]:
        return self.rows("SELECT make, model, events, fatal_events, fatal_rate FROM marts.agg_aircraft_type_stats "
                         "ORDER BY events DESC, make, model LIMIT ?", (limit,))

    def by_phase(self) -> list[dict]:
        return self.rows("SELECT phase_of_flight, phase_of_flight_label, events, fatal_events, fatal_rate "
                         "FROM marts.agg_phase_stats ORDER BY events DESC, phase_of_flight")

    # ---- full-text search
    def search(self, q: str, limit: int) -> list[dict]:
        raise NotImplementedError


class PostgresStore(Store):
    dialect = "postgres"

    def __init__(self, dsn: str, minconn: int = 1, maxconn: int = 16, version_ttl: float = 5.0):
        from psycopg2.pool import ThreadedConnectionPool
        try:
            self.pool = ThreadedConnectionPool(minconn, maxconn, dsn, connect_timeout=5,
                                               options="-c default_transaction_read_only=on")
        except Exception as exc:
            raise StoreUnavailable(f"warehouse not reachable: {exc}") from None
        self._version, self._version_at, self._ttl = None, 0.0, version_ttl
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(maxconn)   # wait for a connection, never fail for lack of one
        self._tables: dict = {}

    @contextmanager
    def _cursor(self):
        with self._slots:
            conn = self.pool.getconn()
            try:
                with conn.cursor() as cur:
                    yield cur
                conn.rollback()   # read-only: end the transaction, keep the connection clean
            except Exception:
                conn.rollback()
                raise
            finally:
                self.pool.putconn(conn)

    def has(self, schema: str, table: str) -> bool:
        key = (schema, table)
        hit = self._tables.get(key)
        if hit is None or time.monotonic() - hit[1] > self._ttl:   # a build may create it meanwhile
            hit = self._tables[key] = (self._exists(schema, table), time.monotonic())
        return hit[0]

    def version(self) -> dict:
        with self._lock:
            if self._version is None or time.monotonic() - self._version_at > self._ttl:
                releases = [r["release_id"] for r in self.rows("SELECT release_id FROM raw._releases ORDER BY 1")] \
                    if self.has("raw", "_releases") else []
                models = [r["model_version"] for r in self.rows(
                    "SELECT DISTINCT model_version FROM ml.batch_predictions")] if self.has("ml", "batch_predictions") else []
                self._version = {"releases": releases, "model_version": ",".join(sorted(map(str, models))) or None}
                self._version_at = time.monotonic()
            return self._version

    def search(self, q: str, limit: int) -> list[dict]:
        return self.rows(
            "SELECT n.ev_id, f.event_date, f.severity, f.make, f.model, "
            "ts_rank_cd(n.search_document, query) AS score, "
            "ts_headline('english', coalesce(n.probable_cause, '') || ' ' || coalesce(n.narrative, ''), query, "
            "'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=30, MinWords=10') AS snippet "
            "FROM marts.narratives n JOIN marts.fact_accidents f ON f.ev_id = n.ev_id, "
            "websearch_to_tsquery('english', ?) AS query "
            "WHERE n.search_document @@ query ORDER BY score DESC, n.ev_id LIMIT ?", (q, limit))

    def close(self):
        self.pool.closeall()


class SnapshotStore(Store):
    """The embedded deployment: the current serving snapshot, read-only."""
    dialect = "duckdb"

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._pointer = self.directory / serving.POINTER
        self._state = None            # (pointer mtime_ns, connection, version, path)
        self._lock = threading.Lock()

    def _current(self):
        try:
            mtime = self._pointer.stat().st_mtime_ns
        except FileNotFoundError:
            raise StoreUnavailable(f"no serving snapshot under {self.directory}: materialize serving/snapshot "
                                   "(ntsb build)") from None
        state = self._state
        if state is not None and state[0] == mtime:
            return state
        with self._lock:
            if self._state is None or self._state[0] != mtime:
                import duckdb
                path, version = serving.current(self.directory)
                con = duckdb.connect(str(path), read_only=True)
                tables = {tuple(r) for r in con.execute("SELECT table_schema, table_name FROM information_schema.tables")
                          .fetchall()}
                self._state = (mtime, con, version, tables)   # the old connection closes when unused
            return self._state

    def pin(self) -> Store:
        """A view on the snapshot current now, for one request: its data and its version
        stay together even if a new snapshot is published meanwhile."""
        return _Pinned(self._current())

    @contextmanager
    def _cursor(self):
        cur = self._current()[1].cursor()
        try:
            yield cur
        finally:
            cur.close()

    def version(self) -> dict:
        return self._current()[2]

    def has(self, schema: str, table: str) -> bool:   # a snapshot never changes: its tables are known
        return (schema, table) in self._current()[3]

    def search(self, q: str, limit: int) -> list[dict]:
        terms = sorted(set(serving.tokens(q)))
        if not terms:
            return []
        marks = ", ".join("?" * len(terms))
        hits = self.rows(
            f"""WITH stats AS (SELECT count(*) AS docs, avg(length) AS avg_len FROM search_docs),
                     q AS (SELECT term, ln(1 + ((SELECT docs FROM stats) - df + 0.5) / (df + 0.5)) AS idf
                           FROM search_df WHERE term IN ({marks}))
                SELECT t.ev_id, sum(q.idf * t.tf * 2.2 / (t.tf + 1.2 * (0.25 + 0.75 * d.length / s.avg_len))) AS score
                FROM search_terms t JOIN q ON q.term = t.term JOIN search_docs d ON d.ev_id = t.ev_id, stats s
                WHERE t.term IN ({marks})
                GROUP BY t.ev_id ORDER BY score DESC, t.ev_id LIMIT ?""", [*terms, *terms, limit])
        if not hits:
            return []
        ids = [h["ev_id"] for h in hits]
        info = {r["ev_id"]: r for r in self.rows(
            f"SELECT f.ev_id, f.event_date, f.severity, f.make, f.model, "
            f"string_agg(coalesce(n.probable_cause, '') || ' ' || coalesce(n.narrative, ''), ' ') AS text "
            f"FROM marts.fact_accidents f LEFT JOIN marts.narratives n ON n.ev_id = f.ev_id "
            f"WHERE f.ev_id IN ({', '.join('?' * len(ids))}) GROUP BY ALL", ids)}
        out = []
        for h in hits:
            row = info.get(h["ev_id"], {"ev_id": h["ev_id"]})
            out.append({"ev_id": h["ev_id"], "event_date": row.get("event_date"), "severity": row.get("severity"),
                        "make": row.get("make"), "model": row.get("model"), "score": float(h["score"]),
                        "snippet": highlight(row.get("text") or "", terms)})
        return out


class _Pinned(SnapshotStore):
    def __init__(self, state):
        self._state = state

    def _current(self):
        return self._state


def highlight(text: str, terms: list[str], width: int = 220) -> str:
    """A window of ``text`` around the first matching term, every match in <mark>...</mark>;
    the text is HTML-escaped first."""
    import html
    text = " ".join(text.split())
    pattern = re.compile(r"\b(" + "|".join(re.escape(t) for t in terms) + r")\b", re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - width // 3)
    window = text[start:start + width]
    out = html.escape(window)
    out = pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", out)
    return ("..." if start else "") + out + ("..." if start + width < len(text) else "")


def open_store(settings) -> Store:
    if settings.warehouse.dialect == "postgres":
        return PostgresStore(settings.warehouse.dsn)
    return SnapshotStore(settings.serving_dir)
