"""What the API reads, and the embedded deployment's serving snapshot.

PostgreSQL: the API reads the marts, the aggregate materialized views and
``ml.batch_predictions`` directly. Embedded: the DuckDB warehouse admits one writer, so
:func:`publish` copies what the API needs into a new DuckDB file (with a full-text index of
the narratives, see :func:`tokens`), then switches ``current.json`` to it with an atomic
rename. A reader holding the previous file keeps a consistent view; the API reopens when
the pointer changes. A file is never written after the pointer names it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import marts

# What the snapshot copies besides the marts, whose list is dbt's (lib/marts.py: what the
# ntsb_api and ntsb_dashboard exposures depend on)
SERVED_BESIDES_MARTS = {
    "ml": ("batch_predictions", "narrative_vectors"),  # the narratives' vectors: the API's search by meaning
    "raw": ("_releases", "_reconciliation", "_quarantine", "_code_lag"),  # the dashboard's data quality page
}


def served() -> dict[str, tuple[str, ...]]:
    """Schema -> the tables the serving snapshot copies."""
    return {"marts": marts.served(), **SERVED_BESIDES_MARTS}


def _not_served(schema: str, table: str) -> frozenset[str]:
    """Columns that stay in the warehouse (a tsvector: the snapshot has its own index)."""
    return marts.marts()[table].warehouse_only if schema == "marts" else frozenset()


POINTER = "current.json"
K1, B = 1.2, 0.75  # BM25's parameters (the usual ones)
FORMAT = 4  # the snapshot's layout; the API refuses another one (4: the index's terms are stems)
DOCUMENT_CHUNK = 10_000  # event documents built at a time
# DuckDB's while building a snapshot; it spills to disk beyond (100,000 events: 23 s, peak RSS
# 0.7 GB; with 1GB the same time and 1.1 GB; 256MB runs out in the event documents)
MEMORY_LIMIT = "512MB"
KEEP = 2  # snapshots kept: the current one and the one before it (requests in flight)
REBUILD_AFTER = 0.2  # a snapshot is built whole once the events changed since the last whole build exceed this

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "there",
        "they",
        "this",
        "to",
        "was",
        "were",
        "which",
        "while",
        "with",
    ]
)
_TOKEN = re.compile(r"[a-z0-9]+")


# The event list's columns, and GET /events/{ev_id}'s document: built in one SQL statement
# per dialect (PostgreSQL reads the marts per request; the snapshot stores one per event).
# Which columns, is said in the marts' yml (meta.ntsb.api, lib/marts.py).
def event_columns() -> tuple[str, ...]:
    """The event list's columns (fact_accidents)."""
    return marts.api_columns("fact_accidents", "list")


def detail_columns() -> tuple[str, ...]:
    """The top level of an event's document (fact_accidents)."""
    return marts.api_columns("fact_accidents", "list", "detail")


# The document's parts: name -> (alias, FROM, columns as mart -> its alias, ORDER BY, extra
# condition); the columns of each mart are its ``detail`` ones
DOCUMENT_PARTS = {
    "aircraft": ("a", "marts.dim_aircraft", {"dim_aircraft": "a"}, "a.aircraft_key", "a.is_current"),
    "findings": (
        "b",
        "marts.bridge_accident_causes b JOIN marts.dim_causes c ON c.cause_key = b.cause_key",
        {"bridge_accident_causes": "b", "dim_causes": "c"},
        "b.aircraft_key, b.occurrence_no, b.seq_no",
        None,
    ),
    "narratives": ("n", "marts.narratives", {"narratives": "n"}, "n.aircraft_key", None),
}


def document_parts() -> dict[str, tuple[str, str, tuple[str, ...], str, str | None]]:
    """name -> (alias, FROM, qualified columns, ORDER BY, extra condition)."""
    return {
        name: (
            alias,
            table,
            tuple(f"{a}.{c}" for mart, a in marts_of.items() for c in marts.api_columns(mart, "detail")),
            order,
            extra,
        )
        for name, (alias, table, marts_of, order, extra) in DOCUMENT_PARTS.items()
    }


def crew_columns() -> tuple[str, ...]:
    """The document's crew object: the pilot's crew dimension (``c``) and the fact's pilot columns (``f``)."""
    return tuple(f"c.{c}" for c in marts.api_columns("dim_crew", "crew")) + tuple(
        f"f.{c}" for c in marts.api_columns("fact_accidents", "crew")
    )


PREDICTION_COLUMNS = (
    "predicted_class",
    "p_fatl",
    "p_sers",
    "p_minr",
    "p_none",
    "p_fatal_outcome",
    "model_name",
    "model_version",
    "predicted_at",
)


def _scalar(con, sql: str):
    """The one value of a query that returns one row."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql}")
    return row[0]


def event_document_sql(dialect: str, predictions: bool) -> str:
    """SELECT ev_id, doc FROM the fact table ``f`` with the event's JSON document: its
    columns, ``aircraft``, ``crew``, ``findings``, ``narratives`` and ``prediction`` (null
    without ``ml.batch_predictions``). Append a WHERE clause on ``f``."""
    pg = dialect == "postgres"
    obj = "json_build_object" if pg else "json_object"

    def pairs(cols, alias):
        return ", ".join(f"'{c.split('.')[-1]}', {c if '.' in c else alias + '.' + c}" for c in cols)

    parts = []
    for name, (alias, table, cols, order, extra) in document_parts().items():
        table = table if " " in table else f"{table} {alias}"
        cond = f"{alias}.ev_id = f.ev_id" + (f" AND {extra}" if extra else "")
        items = f"{obj}({pairs(cols, alias)}) ORDER BY {order}"
        parts.append(
            f"'{name}', (SELECT coalesce({f'json_agg({items})' if pg else f'to_json(list({items}))'}, "
            f"CAST('[]' AS JSON)) FROM {table} WHERE {cond})"
        )
    parts.append(f"'crew', {obj}({pairs(crew_columns(), 'c')})")
    prediction = (
        (f"(SELECT {obj}({pairs(PREDICTION_COLUMNS, 'p')}) FROM ml.batch_predictions p WHERE p.ev_id = f.ev_id)")
        if predictions
        else "NULL"
    )
    parts.append(f"'prediction', {prediction}")
    return (
        f"SELECT f.ev_id, CAST({obj}({pairs(detail_columns(), 'f')}, {', '.join(parts)}) "
        f"AS {'TEXT' if pg else 'VARCHAR'}) "
        "AS doc FROM marts.fact_accidents f LEFT JOIN marts.dim_crew c ON c.crew_key = f.crew_key"
    )


def event_inputs_hash_sql(predictions: bool) -> str:
    """SELECT ev_id, hash: per event, a hash of every row its document is built from
    (:func:`event_document_sql`: the fact and crew rows, each part's rows, the prediction),
    whole rows, so that any change to what the document shows changes the hash. Much
    cheaper than building the documents to compare them."""
    parts = []
    for alias, table, cols, _order, extra in document_parts().values():
        table = table if " " in table else f"{table} {alias}"
        cond = f"{alias}.ev_id = f.ev_id" + (f" AND {extra}" if extra else "")
        row = ", ".join(c if "." in c else f"{alias}.{c}" for c in cols)
        parts.append(f"(SELECT sum(hash({row})::HUGEINT) FROM {table} WHERE {cond})")  # sum: identical rows count
    parts.append("(SELECT hash(p) FROM ml.batch_predictions p WHERE p.ev_id = f.ev_id)" if predictions else "NULL")
    return (
        f"SELECT f.ev_id, hash(f, c, {', '.join(parts)}) AS hash "
        "FROM marts.fact_accidents f LEFT JOIN marts.dim_crew c ON c.crew_key = f.crew_key"
    )


class ServingError(Exception):
    pass


def tokens(text: str | None) -> list[str]:
    """Lower-case words of two or more characters, stop words out, each as its stem: the
    same rule for the index and for queries, so that "landed", "landing" and "lands" match
    each other (:func:`stem`)."""
    return [stem(t) for t in _TOKEN.findall((text or "").lower()) if len(t) > 1 and t not in STOPWORDS]


STEMMER = "english"  # Snowball's English (Porter2) stemmer, as PostgreSQL's english_stem
_STEMMERS = threading.local()  # a Snowball stemmer keeps state while it stems: one per thread


@lru_cache(maxsize=500_000)
def stem(word: str) -> str:
    """The stem of a lower-case word (Snowball's English stemmer): "engines" -> "engin"."""
    stemmer = getattr(_STEMMERS, STEMMER, None)
    if stemmer is None:
        import snowballstemmer

        stemmer = snowballstemmer.stemmer(STEMMER)
        setattr(_STEMMERS, STEMMER, stemmer)
    return stemmer.stemWord(word)


def _stems_of(words: list[str]):
    """(term, stem) of each word: how the index turns the words its SQL splits into stems."""
    import pyarrow as pa

    return pa.table({"term": pa.array(words, pa.string()), "stem": pa.array([stem(w) for w in words], pa.string())})


@dataclass(frozen=True)
class Snapshot:
    path: Path
    version: dict  # releases, model version, created
    build: dict | None = None  # how it was built: from which snapshot, what was written again


def data_version(session) -> dict:
    """The releases the warehouse holds and the model version of its predictions."""
    releases = (
        sorted(session.query("SELECT release_id FROM raw._releases").column(0).to_pylist())
        if session.columns("_releases") is not None
        else []
    )
    model = None
    if session.columns("batch_predictions", "ml") is not None:
        rows = session.query("SELECT DISTINCT model_version FROM ml.batch_predictions").column(0).to_pylist()
        model = rows[0] if len(rows) == 1 else (",".join(sorted(map(str, rows))) or None)
    return {"releases": releases, "model_version": model}


@dataclass(frozen=True)
class Published:
    """PostgreSQL's publication: the data version, and what the keyword index did."""

    version: dict
    index: dict[str, int]


def record_published(warehouse) -> Published:
    """PostgreSQL: bring the narratives' keyword index up to date
    (:func:`index_narratives_postgres`) and record the data version and the time now as the
    one row of ``serving.published``, in one transaction: the API sees the index and the
    version change together."""
    with warehouse.session() as s:
        build = index_narratives_postgres(s)
        version = data_version(s) | {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        s.execute("CREATE TABLE IF NOT EXISTS serving.published (version TEXT NOT NULL, created TEXT NOT NULL)")
        s.execute("DELETE FROM serving.published")
        s.execute(f"INSERT INTO serving.published VALUES ({s.ph}, {s.ph})", [json.dumps(version), version["created"]])
    return Published(version, build)


def header(version: dict) -> str:
    """The X-Data-Version value: release ids, then the model version."""
    rel = ",".join(version.get("releases") or []) or "none"
    return f"releases={rel}; model={version.get('model_version') or 'none'}"


def publish(warehouse_path: Path, directory: Path, whole: bool = False) -> Snapshot:
    """Copy what the API reads from the DuckDB warehouse into a new file under
    ``directory``, with the event documents and the narrative index, then point
    ``current.json`` at it.

    The new file starts as a copy of the current snapshot (never written itself): only the
    table rows, documents and index entries of the events whose rows, document or
    narratives changed are rewritten (:func:`_copy_table`). It is built whole the first
    time, when the current snapshot has another layout or its documents another shape
    (:func:`document_layout`), with ``whole``, and once the events changed since the last
    whole build exceed REBUILD_AFTER of all events (which re-sorts the index and compacts
    the file)."""
    import duckdb

    from .warehouse import Warehouse

    directory.mkdir(parents=True, exist_ok=True)
    with Warehouse(f"duckdb:///{warehouse_path}").session(read_only=True) as s:
        version = data_version(s) | {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "format": FORMAT}
        tables_served = served()
        present = {
            (schema, t) for schema, tables in tables_served.items() for t in tables if s.columns(t, schema) is not None
        }
    if ("marts", "fact_accidents") not in present:
        raise ServingError(f"{warehouse_path}: no marts.fact_accidents to serve: build the marts first")
    base = None if whole else _base(directory)
    name = f"snapshot-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.duckdb"
    tmp = directory / (name + ".tmp")
    if base is not None:
        shutil.copyfile(base[0], tmp)
        shutil.copyfile(documents_path(base[0]), documents_path(tmp))
    con = duckdb.connect(str(tmp), config={"memory_limit": MEMORY_LIMIT})
    try:
        con.execute(f"ATTACH '{warehouse_path}' AS src (READ_ONLY)")
        tables_copied = {}
        for schema, tables in tables_served.items():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for table in tables:
                if (schema, table) not in present:
                    con.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
                    continue
                tables_copied[f"{schema}.{table}"] = _copy_table(con, schema, table, incremental=base is not None)
        con.execute("DETACH src")
        documents = _write_documents(
            con, documents_path(tmp), ("ml", "batch_predictions") in present, incremental=base is not None
        )
        narratives = _index_narratives(con, ("marts", "narratives") in present, incremental=base is not None)
        events = _scalar(con, "SELECT count(*) FROM marts.fact_accidents")
        build = {
            "base": base[0].name if base else None,
            "events": events,
            "documents_written": len(documents),
            "narratives_indexed": len(narratives),
            "tables_copied": tables_copied,
            "changed_since_whole": base[1]["changed_since_whole"] + len(documents | narratives) if base else 0,
            "document_layout": document_layout(),
            "search_layout": _search_layout(),
        }
        con.execute("CREATE OR REPLACE TABLE serving_version AS SELECT ? AS version", [json.dumps(version)])
        con.execute("CREATE OR REPLACE TABLE serving_build AS SELECT ? AS build", [json.dumps(build)])
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        documents_path(tmp).unlink(missing_ok=True)
        raise
    con.close()
    final = directory / name
    os.replace(documents_path(tmp), documents_path(final))
    os.replace(tmp, final)
    pointer_tmp = directory / f".{POINTER}.{uuid.uuid4().hex[:8]}"
    pointer_tmp.write_text(json.dumps({"file": name, "version": version}), encoding="utf-8")
    os.replace(pointer_tmp, directory / POINTER)  # the switch
    _prune(directory, keep=name)
    return Snapshot(final, version, build)


def _base(directory: Path) -> tuple[Path, dict] | None:
    """The current snapshot and its build record, when the next one may start from it."""
    import duckdb

    found = current(directory)
    if found is None or found[1].get("format") != FORMAT or not documents_path(found[0]).exists():
        return None
    try:
        with duckdb.connect(str(found[0]), read_only=True) as con:
            build = json.loads(_scalar(con, "SELECT build FROM serving_build"))
    except (duckdb.Error, OSError):
        return None
    if build.get("document_layout") != document_layout():  # another API shape: every document again
        return None
    if build.get("search_layout") != _search_layout():  # another tokens' rule (stemmer): the whole index again
        return None
    return (found[0], build) if build["changed_since_whole"] <= REBUILD_AFTER * max(build["events"], 1) else None


def document_layout() -> str:
    """A fingerprint of what an event's document holds (the marts' ``meta.ntsb.api``
    columns): a snapshot whose documents were built to another one is not reused."""
    import hashlib

    return hashlib.sha256(event_document_sql("duckdb", True).encode()).hexdigest()[:16]


def _copy_table(con, schema: str, table: str, incremental: bool) -> str:
    """Copy the served table ``src.<schema>.<table>`` into the snapshot (its columns but the
    warehouse-only ones); returns what was written. Whole, sorted by ev_id where it has one, unless
    ``incremental`` and the snapshot's copy (from the base) has the same columns and types:
    then a table with an ev_id has only the rows of events whose rows differ (by a hash of
    each event's rows) deleted and inserted again, and a table without one is copied again
    only when its hash differs. Rows inserted that way follow the sorted ones until the next
    whole build."""
    name = f"{schema}.{table}"
    columns = [
        (r[0], r[1]) for r in con.execute(f"DESCRIBE src.{name}").fetchall() if r[0] not in _not_served(schema, table)
    ]
    cols = ", ".join(c for c, _ in columns)
    keyed = "ev_id" in {c for c, _ in columns}
    same_layout = incremental and columns == [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table],
        ).fetchall()
    ]
    if same_layout and keyed and not _scalar(con, f"SELECT count(*) FROM src.{name} WHERE ev_id IS NULL"):
        per_event = f"(SELECT ev_id, sum(hash({cols})::HUGEINT) AS hash FROM {{}} GROUP BY ev_id)"
        _events_differing(con, "_rows_changed", per_event.format("src." + name), per_event.format(name))
        changed = _scalar(con, "SELECT count(*) FROM _rows_changed")
        if changed:
            con.execute(f"DELETE FROM {name} WHERE ev_id IN (SELECT ev_id FROM _rows_changed)")
            con.execute(
                f"INSERT INTO {name} SELECT {cols} FROM src.{name} "
                f"WHERE ev_id IN (SELECT ev_id FROM _rows_changed) ORDER BY ev_id"
            )
        con.execute("DROP TABLE _rows_changed")
        return f"{changed} events"
    if same_layout and not keyed:
        whole = f"SELECT sum(hash({cols})::HUGEINT), count(*) FROM {{}}"
        if con.execute(whole.format("src." + name)).fetchone() == con.execute(whole.format(name)).fetchone():
            return "unchanged"
    order = " ORDER BY ev_id" if keyed else ""
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {cols} FROM src.{name}{order}")
    return "whole"


def documents_path(snapshot: Path) -> Path:
    """The snapshot's event documents: a SQLite file beside it (a point lookup there takes
    microseconds; DuckDB spends about half a millisecond on any statement)."""
    return snapshot.with_name(snapshot.name.replace(".duckdb", ".documents.sqlite"))


def _events_differing(con, into: str, new: str, old: str) -> None:
    """Temp table ``into`` (ev_id, gone): the events whose hash differs between the
    (ev_id, hash) relations ``new`` and ``old``, or that only one of them has (gone: only
    ``old``). A hash is a sum of row hashes: identical rows count."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {into} AS
                    SELECT coalesce(n.ev_id, o.ev_id) AS ev_id, n.ev_id IS NULL AS gone
                    FROM {new} n FULL JOIN {old} o ON o.ev_id = n.ev_id WHERE n.hash IS DISTINCT FROM o.hash""")


def _changed(con, hashes_sql: str, table: str, incremental: bool) -> list[tuple[str, bool]]:
    """(ev_id, gone) of the events whose hash in ``hashes_sql`` (ev_id, hash) differs from
    the one stored in ``table`` (all of them when not ``incremental``); ``table`` then holds
    the new hashes."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _hashes AS {hashes_sql}")
    if incremental:
        _events_differing(con, "_changed", "_hashes", table)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _changed AS SELECT ev_id, false AS gone FROM _hashes")
    rows = con.execute("SELECT ev_id, gone FROM _changed ORDER BY ev_id").fetchall()
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _hashes ORDER BY ev_id")
    con.execute("DROP TABLE _hashes")
    return rows


def _write_documents(con, path: Path, predictions: bool, incremental: bool) -> set[str]:
    """Every event's JSON document, keyed by ev_id, in the SQLite file ``path``: when
    ``incremental``, only those whose inputs changed (:func:`event_inputs_hash_sql`) are
    deleted and written again. Written DOCUMENT_CHUNK events at a time, so the memory it
    takes does not grow with the number of events. Returns the ev_ids written or deleted."""
    import sqlite3

    sql = event_document_sql("duckdb", predictions)
    changed = _changed(con, event_inputs_hash_sql(predictions), "document_hashes", incremental)
    ids = [e for e, gone in changed if not gone]
    if not incremental:
        path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("CREATE TABLE IF NOT EXISTS documents (ev_id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        if incremental:
            db.executemany("DELETE FROM documents WHERE ev_id = ?", [(e,) for e, _ in changed])
        sql += " WHERE f.ev_id IN (SELECT ev_id FROM _changed) AND f.ev_id >= ? AND f.ev_id <= ?"
        for i in range(0, len(ids), DOCUMENT_CHUNK):
            chunk = ids[i : i + DOCUMENT_CHUNK]
            db.executemany("INSERT INTO documents VALUES (?, ?)", con.execute(sql, [chunk[0], chunk[-1]]).fetchall())
        db.commit()
    finally:
        db.close()
    return {e for e, _ in changed}


def _index_narratives(con, have: bool, incremental: bool) -> set[str]:
    """An inverted index of the narratives, the probable cause counting twice:
    search_terms(term, ev_id, tf, length), search_docs(ev_id, length), search_df(term, df)
    and search_stats(docs, avg_length), from which a query computes BM25 (:func:`bm25`).
    When ``incremental``, only the events whose narratives changed (by their hash in
    narrative_hashes) are tokenized again; their new entries follow the sorted ones.
    Returns the ev_ids indexed again or removed."""
    src = (
        "SELECT ev_id, aircraft_key, probable_cause, narrative FROM marts.narratives"
        if have
        else "SELECT NULL::VARCHAR AS ev_id, NULL::INTEGER AS aircraft_key, NULL::VARCHAR AS probable_cause, "
        "NULL::VARCHAR AS narrative WHERE false"
    )
    changed = _changed(
        con,
        f"SELECT ev_id, sum(hash(aircraft_key, probable_cause, narrative)::HUGEINT) AS hash "
        f"FROM ({src}) GROUP BY ev_id",
        "narrative_hashes",
        incremental,
    )
    src = f"SELECT * FROM ({src}) n WHERE ev_id IN (SELECT ev_id FROM _changed)"
    con.execute(f"CREATE TEMP TABLE _words AS {_tokens_sql('duckdb', src)}")
    words = [w for (w,) in con.execute("SELECT DISTINCT term FROM _words").fetchall()]
    con.register("_stems", _stems_of(words))
    con.execute(
        "CREATE TEMP TABLE _tok AS SELECT w.ev_id, s.stem AS term, w.w FROM _words w JOIN _stems s USING (term)"
    )
    con.unregister("_stems")
    con.execute("DROP TABLE _words")
    docs = "SELECT ev_id, sum(w)::INTEGER AS length FROM _tok GROUP BY ALL"
    terms = """SELECT t.term, t.ev_id, t.tf, d.length
               FROM (SELECT term, ev_id, sum(w)::INTEGER AS tf FROM _tok GROUP BY ALL) t
               JOIN search_docs d USING (ev_id)
               WHERE d.ev_id IN (SELECT ev_id FROM _changed) ORDER BY t.term, t.ev_id"""
    if incremental:
        for table in ("search_terms", "search_docs"):
            con.execute(f"DELETE FROM {table} WHERE ev_id IN (SELECT ev_id FROM _changed)")
        con.execute(f"INSERT INTO search_docs {docs}")
        con.execute(f"INSERT INTO search_terms {terms}")
    else:
        con.execute(f"CREATE OR REPLACE TABLE search_docs AS {docs}")
        con.execute(f"CREATE OR REPLACE TABLE search_terms AS {terms}")
    con.execute(
        "CREATE OR REPLACE TABLE search_df AS SELECT term, count(*)::INTEGER AS df FROM search_terms "
        "GROUP BY ALL ORDER BY term"
    )
    con.execute(
        "CREATE OR REPLACE TABLE search_stats AS SELECT count(*) AS docs, avg(length) AS avg_length FROM search_docs"
    )
    con.execute("DROP TABLE _tok")
    return {e for e, _ in changed}


def _tokens_sql(dialect: str, src: str) -> str:
    """(ev_id, term, w) for every word of the narratives in ``src`` (ev_id, probable_cause,
    narrative), by the rule of :func:`tokens` but for the stems (:func:`_stems_of` maps the
    distinct words after); a probable cause's words weigh 2."""
    if dialect == "duckdb":
        split = "unnest(regexp_split_to_array(lower(coalesce({}, '')), '[^a-z0-9]+'))"
    else:
        split = "regexp_split_to_table(lower(coalesce({}, '')), '[^a-z0-9]+')"
    stop = ", ".join(f"'{w}'" for w in sorted(STOPWORDS))
    return f"""SELECT * FROM (SELECT ev_id, {split.format("probable_cause")} AS term, 2 AS w FROM ({src}) c
                              UNION ALL
                              SELECT ev_id, {split.format("narrative")} AS term, 1 AS w FROM ({src}) n) t
               WHERE length(term) > 1 AND term NOT IN ({stop})"""


# ---------------------------------------------------------------- PostgreSQL's narrative index

# The snapshot's inverted index, kept in the warehouse for the PostgreSQL deployment's API
# (which loads it into a TermIndex per data version, as the embedded API does from the
# snapshot): the same tokens, weights and BM25, so both deployments rank keyword search alike.
# Terms and events are numbered (search_vocab, search_docs) so that the postings are three
# integers a row, which the API reads with one binary COPY.
SEARCH_INDEX = ("search_terms", "search_docs", "search_vocab", "narrative_hashes", "search_layout")


def _search_layout() -> str:
    """What the index's entries depend on: the tokens' rule and weights, and the tables'
    layout. Another layout builds the index again whole."""
    import hashlib
    from importlib.metadata import version

    rule = _tokens_sql("postgres", "x") + repr(SEARCH_INDEX) + f"{STEMMER} {version('snowballstemmer')}"
    return hashlib.sha256(rule.encode()).hexdigest()[:16]


def index_narratives_postgres(s) -> dict[str, int]:
    """PostgreSQL (session ``s``, in its transaction): bring ``serving.search_terms(term_id,
    doc_id, tf)``, ``serving.search_docs(doc_id, ev_id, length)`` and
    ``serving.search_vocab(term_id, term)`` to ``marts.narratives``. Only the events whose
    narratives' hash (``serving.narrative_hashes``) changed are tokenized again (under a new
    doc_id); everything when the layout changed. Returns the events indexed again or
    removed, and the events indexed."""
    s.ensure_schema("serving")
    s.execute("SET LOCAL work_mem = '256MB'")  # the whole build's aggregations in memory, not in spill files
    layout = _search_layout()
    same = s.columns("search_layout", "serving") is not None and s.query(
        "SELECT layout FROM serving.search_layout"
    ).column(0).to_pylist() == [layout]
    if not same:
        for table in SEARCH_INDEX:
            s.execute(f"DROP TABLE IF EXISTS serving.{table}")
        s.execute(
            "CREATE TABLE serving.search_vocab "
            "(term_id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, term TEXT NOT NULL UNIQUE)"
        )
        s.execute(
            "CREATE TABLE serving.search_docs (doc_id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "ev_id TEXT NOT NULL UNIQUE, length INTEGER NOT NULL)"
        )
        s.execute(
            "CREATE TABLE serving.search_terms (term_id INTEGER NOT NULL, doc_id INTEGER NOT NULL, tf INTEGER NOT NULL)"
        )
        s.execute("CREATE TABLE serving.narrative_hashes (ev_id TEXT PRIMARY KEY, hash TEXT NOT NULL)")
        s.execute("CREATE TABLE serving.search_layout (layout TEXT NOT NULL)")
        s.execute(f"INSERT INTO serving.search_layout VALUES ({s.ph})", [layout])
    src = (
        "SELECT ev_id, aircraft_key, probable_cause, narrative FROM marts.narratives"
        if s.columns("narratives", "marts") is not None
        else "SELECT NULL::TEXT AS ev_id, NULL::BIGINT AS aircraft_key, NULL::TEXT AS probable_cause, "
        "NULL::TEXT AS narrative WHERE false"
    )
    # an event's hash: its aircraft's narratives in order (chr(1) separates, chr(2) is a null)
    part = "aircraft_key::TEXT || chr(1) || coalesce(probable_cause, chr(2)) || chr(1) || coalesce(narrative, chr(2))"
    s.execute(
        "CREATE TEMP TABLE _hashes ON COMMIT DROP AS "
        f"SELECT ev_id, md5(string_agg({part}, chr(3) ORDER BY aircraft_key)) AS hash FROM ({src}) n GROUP BY ev_id"
    )
    s.execute(
        "CREATE TEMP TABLE _changed ON COMMIT DROP AS "
        "SELECT coalesce(n.ev_id, o.ev_id) AS ev_id, n.ev_id IS NULL AS gone "
        "FROM _hashes n FULL JOIN serving.narrative_hashes o ON o.ev_id = n.ev_id WHERE n.hash IS DISTINCT FROM o.hash"
    )
    s.execute(
        "DELETE FROM serving.search_terms WHERE doc_id IN "
        "(SELECT doc_id FROM serving.search_docs WHERE ev_id IN (SELECT ev_id FROM _changed))"
    )
    for table in ("search_docs", "narrative_hashes"):
        s.execute(f"DELETE FROM serving.{table} WHERE ev_id IN (SELECT ev_id FROM _changed)")
    changed = f"SELECT * FROM ({src}) m WHERE ev_id IN (SELECT ev_id FROM _changed WHERE NOT gone)"
    s.execute(
        "CREATE TEMP TABLE _words ON COMMIT DROP AS "
        f"SELECT ev_id, term, sum(w)::INTEGER AS tf FROM ({_tokens_sql('postgres', changed)}) k GROUP BY ev_id, term"
    )
    words = s.query("SELECT DISTINCT term FROM _words").column(0).to_pylist()
    with s.staged(_stems_of(words)) as stems:
        s.execute(
            "CREATE TEMP TABLE _tf ON COMMIT DROP AS SELECT w.ev_id, m.stem AS term, sum(w.tf)::INTEGER AS tf "
            f"FROM _words w JOIN {stems} m ON m.term = w.term GROUP BY w.ev_id, m.stem"
        )
    s.execute("DROP TABLE _words")
    s.execute(
        "INSERT INTO serving.search_vocab (term) SELECT DISTINCT t.term FROM _tf t "
        "WHERE NOT EXISTS (SELECT 1 FROM serving.search_vocab v WHERE v.term = t.term) ORDER BY t.term"
    )
    s.execute(
        "INSERT INTO serving.search_docs (ev_id, length) SELECT ev_id, sum(tf) FROM _tf GROUP BY ev_id ORDER BY ev_id"
    )
    s.execute(
        "INSERT INTO serving.search_terms SELECT v.term_id, d.doc_id, t.tf FROM _tf t "
        "JOIN serving.search_vocab v ON v.term = t.term JOIN serving.search_docs d ON d.ev_id = t.ev_id"
    )
    # after a whole build's rows (maintaining it row by row costs more)
    s.execute("CREATE INDEX IF NOT EXISTS search_terms_doc_id ON serving.search_terms (doc_id)")
    s.execute(
        "INSERT INTO serving.narrative_hashes SELECT h.ev_id, h.hash FROM _hashes h "
        "WHERE h.ev_id IN (SELECT ev_id FROM _changed WHERE NOT gone)"
    )
    counts = s.query(
        "SELECT (SELECT count(*) FROM _changed) AS changed, (SELECT count(*) FROM serving.search_docs) AS docs"
    ).to_pylist()[0]
    for table in ("_tf", "_changed", "_hashes"):
        s.execute(f"DROP TABLE {table}")
    return {"narratives_indexed": int(counts["changed"]), "documents": int(counts["docs"])}


def _prune(directory: Path, keep: str) -> None:
    files = sorted(directory.glob("snapshot-*.duckdb"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        if old.name != keep:
            documents_path(old).unlink(missing_ok=True)
            old.unlink(missing_ok=True)


def current(directory: Path) -> tuple[Path, dict] | None:
    """The file ``current.json`` names, and its data version; None before the first publish."""
    try:
        pointer = json.loads((directory / POINTER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return directory / pointer["file"], pointer["version"]


def _copy_binary_ints(data, fields: int) -> list:
    """The columns of PostgreSQL's binary COPY output of ``fields`` non-null int4 columns, as
    int32 arrays (the format: a 19-byte header, each row a 16-bit field count and, per field,
    a 32-bit length and the big-endian value; a 16-bit -1 ends it). ``data``: a buffer, not
    copied."""
    import numpy as np

    view = memoryview(data)
    if bytes(view[:11]) != b"PGCOPY\n\xff\r\n\x00" or bytes(view[-2:]) != b"\xff\xff":
        raise ServingError("the search index's postings: not PostgreSQL's binary COPY format")
    extension = int.from_bytes(bytes(view[15:19]), "big")
    body = view[19 + extension : len(view) - 2]
    row = np.dtype([("n", ">i2"), *((f"f{i}", [("length", ">i4"), ("value", ">i4")]) for i in range(fields))])
    if len(body) % row.itemsize:
        raise ServingError("the search index's postings: rows of an unexpected width")
    rows = np.frombuffer(body, dtype=row)
    if len(rows) and ((rows["n"] != fields).any() or any((rows[f"f{i}"]["length"] != 4).any() for i in range(fields))):
        raise ServingError(f"the search index's postings: a row that is not {fields} integers")
    return [rows[f"f{i}"]["value"].astype(np.int32) for i in range(fields)]


def idf(df, docs: int):
    """BM25's inverse document frequency of a term in ``df`` of ``docs`` documents (a number
    or a numpy array of them)."""
    import numpy as np

    df = np.asarray(df, dtype=np.float64)
    return np.log(1 + (docs - df + 0.5) / (df + 0.5))


def bm25(tf: float, df: float, docs: int, length: float, avg_length: float, k1: float = K1, b: float = B) -> float:
    """Okapi BM25 of one term in one document (the formula the SQL ranking uses)."""
    return idf(df, docs) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_length))


class EventMasks:
    """Boolean masks over an index's events (``event_no``: ev_id -> position), one per filter
    remembered for the index's life (the index is one data version's, and so are its
    filters' events; the KEPT most recently used)."""

    KEPT = 64

    def __init__(self, event_no: dict[str, int]):
        import threading
        from collections import OrderedDict

        self.event_no = event_no
        self._kept: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def mask(self, ev_ids: Iterable[str]):
        """True at the positions of ``ev_ids`` (those the index has)."""
        import numpy as np

        out = np.zeros(len(self.event_no), dtype=bool)
        out[[i for e in ev_ids if (i := self.event_no.get(e)) is not None]] = True
        return out

    def cached(self, key: Hashable, events: Callable[[], Iterable[str]]):
        """:meth:`mask` of the events ``events()`` gives, remembered under ``key``."""
        with self._lock:
            hit = self._kept.get(key)
            if hit is not None:
                self._kept.move_to_end(key)
                return hit
        mask = self.mask(events())
        with self._lock:
            self._kept[key] = mask
            while len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        return mask


class TermIndex:
    """The snapshot's inverted index (``search_terms``) in memory, ranked by :func:`bm25` as
    the SQL ranking was: each term's postings (event, BM25's term-frequency part) in one
    array, so that a query sums the postings of its few terms instead of scanning the
    table (9.3 million postings at 100,000 generated events: 10-20 ms a query in DuckDB).
    Loaded once per snapshot by the API."""

    def __init__(self, events: list[str], terms: list[tuple[str, int]], doc, tf, length, docs: int, avg: float):
        """``events`` sorted; ``terms``: (term, postings) in the postings' order; ``doc``,
        ``tf``, ``length``: each posting's event position, term frequency and document length."""
        import numpy as np

        self.events = np.asarray(events, dtype=object)
        self.masks = EventMasks({e: i for i, e in enumerate(events)})
        counts = np.asarray([n for _, n in terms], dtype=np.int64)
        ends = np.cumsum(counts)
        self.span = {t: (int(e - n), int(e)) for (t, n), e in zip(terms, ends, strict=True)}
        self.doc = np.asarray(doc, dtype=np.int32)
        tf = np.asarray(tf, dtype=np.float64)
        norm = K1 * (1 - B + B * np.asarray(length, dtype=np.float64) / avg) if avg else np.full(len(tf), K1)
        self.weight = tf * (K1 + 1) / (tf + norm)  # bm25() without its idf
        self.docs = docs
        # each event's terms (the postings turned around), for the hybrid's feedback: term numbers
        # in the order of their names
        self.names = np.asarray(sorted(t for t, _ in terms), dtype=object)
        self.number = rank = {t: i for i, t in enumerate(self.names)}
        term_no = np.repeat(np.asarray([rank[t] for t, _ in terms], dtype=np.int32), counts)
        by_doc = np.argsort(self.doc, kind="stable")
        self.terms_of = term_no[by_doc]
        self.terms_from = np.searchsorted(self.doc[by_doc], np.arange(len(self.events) + 1))
        df = np.zeros(len(self.names), dtype=np.float64)
        df[[rank[t] for t, _ in terms]] = counts
        self.idf = idf(df, docs)

    @classmethod
    def load(cls, cur) -> TermIndex:
        """From a snapshot's tables (``cur``: a DuckDB cursor on it)."""
        events = [r[0] for r in cur.execute("SELECT ev_id FROM search_docs ORDER BY ev_id").fetchall()]
        terms = cur.execute("SELECT term, count(*) FROM search_terms GROUP BY term ORDER BY term").fetchall()
        post = cur.execute(
            "WITH e AS (SELECT ev_id, (row_number() OVER (ORDER BY ev_id) - 1)::INTEGER AS doc FROM search_docs) "
            "SELECT e.doc, t.tf, t.length FROM search_terms t JOIN e USING (ev_id) ORDER BY t.term, e.doc"
        ).fetchnumpy()
        docs, avg = cur.execute("SELECT docs, avg_length FROM search_stats").fetchone() or (0, 0.0)
        return cls(events, terms, post["doc"], post["tf"], post["length"], int(docs), float(avg or 0.0))

    @classmethod
    def load_postgres(cls, cur) -> TermIndex | None:
        """From PostgreSQL's ``serving`` index (:func:`index_narratives_postgres`; ``cur``: a
        psycopg2 cursor): the postings in one binary COPY (three integers a row), put in
        order here; None when the warehouse has no index (serving/snapshot not materialized),
        or one of another layout (its terms would not be this code's: another stemmer)."""
        import io

        import numpy as np

        cur.execute("SELECT to_regclass('serving.search_layout') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute("SELECT layout FROM serving.search_layout")
        if [r[0] for r in cur.fetchall()] != [_search_layout()]:
            return None
        # ev_id in byte order (COLLATE "C"), as the snapshot's DuckDB sorts it: ties go the same way
        cur.execute('SELECT doc_id, ev_id, length FROM serving.search_docs ORDER BY ev_id COLLATE "C"')
        docs = cur.fetchall()
        cur.execute("SELECT term_id, term FROM serving.search_vocab")
        vocab = dict(cur.fetchall())
        buf = io.BytesIO()
        cur.copy_expert("COPY (SELECT term_id, doc_id, tf FROM serving.search_terms) TO STDOUT (FORMAT binary)", buf)
        with buf.getbuffer() as data:
            term, doc_id, tf = _copy_binary_ints(data, 3)
        buf.close()
        events = [e for _, e, _ in docs]
        lengths = np.asarray([n for _, _, n in docs], dtype=np.int64)
        ids = np.asarray([d for d, _, _ in docs], dtype=np.int64)
        position = np.full(int(ids.max()) + 1 if len(ids) else 1, -1, dtype=np.int64)
        position[ids] = np.arange(len(ids))
        doc = position[doc_id]
        order = np.argsort((term.astype(np.int64) << 32) | doc)  # by term, then event (np.lexsort: 4 times as long)
        term, doc, tf = term[order], doc[order], tf[order]
        starts = np.flatnonzero(np.r_[True, term[1:] != term[:-1]]) if len(term) else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, len(term)])
        terms = [(vocab[int(t)], int(n)) for t, n in zip(term[starts], counts, strict=True)]
        avg = float(lengths.mean()) if len(lengths) else 0.0
        return cls(events, terms, doc.astype(np.int32), tf, lengths[doc], len(events), avg)

    def feedback(self, ev_ids: list[str], n: int) -> list[str]:
        """The ``n`` words of the events ``ev_ids`` that weigh most: each word's inverse
        document frequency summed over the events that have it (ties by the word). The
        hybrid search adds them to the query (pseudo-relevance feedback)."""
        import numpy as np

        rows = [i for e in ev_ids if (i := self.masks.event_no.get(e)) is not None]
        if not rows or n <= 0:
            return []
        words = np.concatenate([self.terms_of[self.terms_from[i] : self.terms_from[i + 1]] for i in rows])
        weight = np.bincount(words, weights=self.idf[words], minlength=len(self.names))
        found = np.flatnonzero(weight)
        best = found[np.lexsort((found, -weight[found]))][:n]
        return [str(self.names[i]) for i in best]

    def search(self, terms: list[str], limit: int, allowed=None) -> list[tuple[str, float]]:
        """The ``limit`` best (ev_id, BM25 score) for the distinct ``terms``, best first (ties by
        ev_id); ``allowed``: a mask over the events (:attr:`masks`), None for all."""
        import numpy as np

        if limit <= 0:
            return []
        scores = np.zeros(len(self.events), dtype=np.float64)
        for t in sorted(set(terms)):
            lo, hi = self.span.get(t, (0, 0))
            if hi > lo:
                scores[self.doc[lo:hi]] += self.idf[self.number[t]] * self.weight[lo:hi]
        found = scores > 0 if allowed is None else (scores > 0) & allowed
        candidates = np.flatnonzero(found)
        if len(candidates) > limit:
            keep = np.argpartition(-scores[candidates], limit - 1)[:limit]
            # every event tied with the last one kept, so that ties go by ev_id as in SQL
            cut = scores[candidates[keep]].min()
            candidates = candidates[scores[candidates] >= cut]
        order = candidates[np.lexsort((candidates, -scores[candidates]))][:limit]  # events are sorted by ev_id
        return [(str(self.events[i]), float(scores[i])) for i in order]
