"""The narratives' vectors in the lake (``ml/narrative_embeddings``): read from the archived
``narratives`` mart, embedded by ``lib/embeddings.py``, kept in one Parquet file whose
schema metadata names the model and its version."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import analytics, serving
from . import embeddings as E
from .lake import Lake

VECTORS_KEY = "ml/narrative_embeddings/vectors.parquet"


def _texts(lake: Lake) -> Iterator[tuple[str, int, str, str | None]]:
    """(ev_id, aircraft_key, field, text) of every archived narrative and probable cause."""
    with closing(analytics.connect(lake)) as con:
        names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        names |= {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "narratives" not in names:
            return
        cur = con.execute(
            "SELECT ev_id, aircraft_key, narrative, probable_cause FROM narratives ORDER BY ev_id, aircraft_key"
        )
        while batch := cur.fetchmany(10_000):
            for ev_id, aircraft_key, narrative, cause in batch:
                yield ev_id, int(aircraft_key), "narrative", narrative
                yield ev_id, int(aircraft_key), "probable_cause", cause


def refresh(
    lake: Lake, enc: E.Encoder, progress: Callable[[int, int], None] | None = None, max_texts: int = 0
) -> E.EmbedResult:
    """Embed what is new since the vectors in the lake (at most ``max_texts`` texts, the
    latest events' first; 0: all) and write them back (one file, replaced whole: a reader
    sees the old or the new one)."""
    previous = lake.read_parquet(VECTORS_KEY) if lake.exists(VECTORS_KEY) else None
    result = E.embed_narratives(_texts(lake), previous, enc, progress, max_texts=max_texts)
    lake.write_parquet(VECTORS_KEY, result.table)
    return result


# ---------------------------------------------------------------- the warehouse's copy

# What the API searches: the lake's vectors in the warehouse (PostgreSQL reads them from
# there; the embedded serving snapshot copies them like the marts). One row per window.
VECTORS_TABLE = ("ml", "narrative_vectors")
ROW_KEY = ("ev_id", "aircraft_key", "field", "chunk_no", "text_hash", "model_version")
_COLUMNS = {  # column -> (DuckDB type, PostgreSQL type)
    "ev_id": ("VARCHAR", "TEXT"),
    "aircraft_key": ("BIGINT", "BIGINT"),
    "field": ("VARCHAR", "TEXT"),
    "chunk_no": ("INTEGER", "INTEGER"),
    "text_hash": ("VARCHAR", "TEXT"),
    "model_version": ("VARCHAR", "TEXT"),
    "char_start": ("INTEGER", "INTEGER"),
    "char_end": ("INTEGER", "INTEGER"),
    # the unit vector: an ARRAY in DuckDB, its float32 little-endian bytes on PostgreSQL
    "vector": (f"FLOAT[{E.DIM}]", "BYTEA"),
}


def _with_version(table: pa.Table) -> pa.Table:
    version = E.model_version_of(table)
    return table.append_column("model_version", pa.array([version] * table.num_rows, pa.string())).select(
        list(_COLUMNS)
    )


def store_vectors(s, table: pa.Table) -> dict[str, int]:
    """Make ``ml.narrative_vectors`` hold the lake's ``table`` (session ``s``: one
    transaction): rows whose key (event, aircraft, field, window, text hash, model version)
    the warehouse lacks are inserted, rows the lake no longer has are deleted; the rest are
    not touched. Returns the rows inserted, deleted and held."""
    schema, name = VECTORS_TABLE
    pg = s.dialect == "postgres"
    s.ensure_schema(schema)
    if list(s.columns(name, schema) or {}) != list(_COLUMNS):  # none yet, or another layout
        s.execute(f"DROP TABLE IF EXISTS {schema}.{name}")
        cols = ", ".join(
            f"{c} {types[pg]} NOT NULL" if c in ROW_KEY else f"{c} {types[pg]}" for c, types in _COLUMNS.items()
        )
        s.execute(f"CREATE TABLE {schema}.{name} ({cols})")
    new = _with_version(table)
    held = s.query(f"SELECT {', '.join(ROW_KEY)} FROM {schema}.{name}")
    stored = set(zip(*(held.column(c).to_pylist() for c in ROW_KEY), strict=True))
    wanted = list(zip(*(new.column(c).to_pylist() for c in ROW_KEY), strict=True))
    wanted_set = set(wanted)
    gone = [k for k in stored if k not in wanted_set]
    if gone:
        s.delete_keys(
            name, ROW_KEY, pa.Table.from_pylist([dict(zip(ROW_KEY, k, strict=True)) for k in gone], held.schema), schema
        )
    rows = [i for i, k in enumerate(wanted) if k not in stored]
    if rows:
        insert = new.take(rows)
        if pg:  # bytea from CSV: its hex form
            hexed = ["\\x" + v.tobytes().hex() for v in np.asarray(E.vectors_of(insert), dtype="<f4")]
            insert = insert.set_column(insert.num_columns - 1, "vector", pa.array(hexed, pa.string()))
        for part in range(0, insert.num_rows, 20_000):
            s.insert_arrow(name, insert.slice(part, 20_000), schema=schema)
    return {"inserted": len(rows), "deleted": len(gone), "rows": len(wanted)}


def index_sql() -> str:
    """The warehouse's vectors in the order a VectorIndex wants them (an event's windows together)."""
    schema, name = VECTORS_TABLE
    return (
        f"SELECT ev_id, aircraft_key, field, char_start, char_end, vector FROM {schema}.{name} "
        "ORDER BY ev_id, aircraft_key, field, chunk_no"
    )


# ---------------------------------------------------------------- search by meaning


@dataclass(frozen=True)
class Passage:
    """A window of one of an event's texts."""

    aircraft_key: int
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    ev_id: str
    score: float  # the cosine of the event's best window
    row: int  # that window's row in the index


class VectorIndex:
    """Nearest-neighbour search over the windows' vectors, scored by exact cosine; an event
    scores as its best window. Below INT8_SCAN_FROM windows, one float32 matrix product; from
    there on, the candidates come from an int8 scan (:class:`Int8Scan`) and are scored again
    in float32 (numpy's float32 product is bound by memory: 16 ms for the 150,816 windows of
    100,000 generated events). The rows come grouped by event (:func:`index_sql`)."""

    def __init__(self, table: pa.Table):
        """``table``: ev_id, aircraft_key, field, char_start, char_end and vector (a fixed-size
        list of float32, or its little-endian bytes); the lake's order is sorted by event here
        (stable: an event's windows keep their order)."""
        ids = np.asarray(table.column("ev_id").to_pylist(), dtype=object)
        if len(ids) > 1 and not (ids[1:] >= ids[:-1]).all():
            table = table.take(pa.array(np.argsort(ids.astype(str), kind="stable")))
        vec = table.column("vector").combine_chunks()
        if pa.types.is_fixed_size_list(vec.type) or pa.types.is_list(vec.type):
            self.vectors = E.vectors_of(table)
        else:
            self.vectors = np.frombuffer(b"".join(vec.to_pylist()), dtype="<f4").reshape(-1, E.DIM)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        ev_ids = np.asarray(table.column("ev_id").to_pylist(), dtype=object)
        self.aircraft_key = np.asarray(table.column("aircraft_key").to_numpy(zero_copy_only=False), dtype=np.int64)
        self.field = np.asarray(table.column("field").to_pylist(), dtype=object)
        self.start = np.asarray(table.column("char_start").to_numpy(zero_copy_only=False), dtype=np.int64)
        self.end = np.asarray(table.column("char_end").to_numpy(zero_copy_only=False), dtype=np.int64)
        # events and the first row of each (rows grouped by event)
        first = np.flatnonzero(np.r_[True, ev_ids[1:] != ev_ids[:-1]]) if len(ev_ids) else np.zeros(0, np.int64)
        self.events = ev_ids[first] if len(ev_ids) else np.zeros(0, dtype=object)
        self.first = first
        self.event_no = {e: i for i, e in enumerate(self.events)}
        self.rows_of_event = np.diff(np.r_[first, len(ev_ids)]) if len(ev_ids) else np.zeros(0, np.int64)
        self.masks = serving.EventMasks(self.event_no)
        self._scan = Int8Scan(self.vectors) if len(self.vectors) >= INT8_SCAN_FROM else None

    def __len__(self) -> int:
        return len(self.vectors)

    def cached_mask(self, key: Hashable, events: Callable[[], Iterable[str]]) -> np.ndarray:
        """:meth:`mask` of the events ``events()`` gives, remembered under ``key`` (a filter)."""
        return self.masks.cached(key, events)

    def nearest_window(self, ev_id: str, query: np.ndarray) -> tuple[int, float] | None:
        """The row of the event's window nearest to ``query`` and its cosine (None: no vector)."""
        rows = self.windows(ev_id)
        if not rows:
            return None
        scores = self.vectors[rows.start : rows.stop] @ query
        best = int(np.argmax(scores))
        return rows.start + best, float(scores[best])

    def passage(self, row: int) -> Passage:
        return Passage(int(self.aircraft_key[row]), str(self.field[row]), int(self.start[row]), int(self.end[row]))

    def windows(self, ev_id: str) -> range:
        """The rows of an event (empty when it has no vector)."""
        i = self.event_no.get(ev_id)
        return range(0) if i is None else range(int(self.first[i]), int(self.first[i] + self.rows_of_event[i]))

    def mask(self, ev_ids: Iterable[str]) -> np.ndarray:
        """A boolean mask over the events: those of ``ev_ids`` (a filter's events)."""
        return self.masks.mask(ev_ids)

    def _top(self, scores: np.ndarray, limit: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(the ``limit`` best events' positions, best first, ties by ev_id; every event's
        score: its best row's) by the rows' ``scores``."""
        per_event = np.maximum.reduceat(scores, self.first)
        if allowed is not None:
            per_event = np.where(allowed, per_event, -np.inf)
        k = min(limit, len(per_event))
        top = np.argpartition(-per_event, k - 1)[:k] if k < len(per_event) else np.arange(len(per_event))
        top = top[np.lexsort((top, -per_event[top]))]  # the events are sorted by ev_id: position is the tie-break
        return top[np.isfinite(per_event[top])], per_event

    def _best(self, scores: np.ndarray, limit: int, allowed: np.ndarray | None) -> list[Hit]:
        """The ``limit`` best events by their best row's score, best first (ties by ev_id)."""
        if not len(self) or limit <= 0:
            return []
        top, per_event = self._top(scores, limit, allowed)
        hits = []
        for i in top:
            lo = int(self.first[i])
            row = lo + int(np.argmax(scores[lo : lo + int(self.rows_of_event[i])]))
            hits.append(Hit(str(self.events[i]), float(per_event[i]), row))
        return hits

    def _nearest(self, queries: np.ndarray, limit: int, allowed: np.ndarray | None) -> list[Hit]:
        """The ``limit`` events whose best window is nearest to any of ``queries`` (rows of unit
        vectors), by exact cosine. From INT8_SCAN_FROM windows on, the candidates come from the
        int8 scan (CANDIDATES per event asked for, at least 100 more) and only their windows
        that can hold their best (:meth:`Int8Scan.error_bound`) are scored again in float32."""
        if not len(self) or limit <= 0:
            return []
        if self._scan is None:
            return self._best((self.vectors @ queries.T).max(axis=1), limit, allowed)
        approximate = self._scan(queries).max(axis=1)
        events, per_event = self._top(approximate, max(limit * CANDIDATES, limit + 100), allowed)
        if not len(events):
            return []
        counts = self.rows_of_event[events]
        seg = np.r_[0, np.cumsum(counts)[:-1]]
        rows = np.repeat(self.first[events] - seg, counts) + np.arange(counts.sum())
        # Only the windows that can be their event's exact best are scored again. With e the scan's
        # error bound and a the event's best window by the scan, the exact best b has
        # approx(b) >= exact(b) - e >= exact(a) - e >= approx(a) - 2e; a itself always passes.
        near = approximate[rows] >= np.repeat(per_event[events], counts) - 2 * self._scan.error_bound(queries)
        counts = np.add.reduceat(near.astype(np.int64), seg)
        rows = rows[near]
        seg = np.r_[0, np.cumsum(counts)[:-1]]  # each candidate's first position among the rows gathered
        exact = (self.vectors[rows] @ queries.T).max(axis=1)
        best = np.maximum.reduceat(exact, seg)
        order = np.lexsort((events, -best))[:limit]
        # each kept candidate's best row: the first of its rows scoring its best (no loop of argmax)
        kept = counts[order]
        starts = np.r_[0, np.cumsum(kept)[:-1]]
        at = np.repeat(seg[order] - starts, kept) + np.arange(kept.sum())  # their rows' positions in `exact`
        top = np.flatnonzero(exact[at] == np.repeat(best[order], kept))
        owner = np.repeat(np.arange(len(order)), kept)[top]
        first = top[np.r_[True, owner[1:] != owner[:-1]]]
        return [
            Hit(str(e), float(b), int(r))
            for e, b, r in zip(self.events[events[order]], best[order], rows[at[first]], strict=True)
        ]

    def search(self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``limit`` events nearest to ``query`` (a unit vector), best first; ``allowed``: a
        boolean mask over the events (:meth:`mask`), None for all."""
        return self._nearest(query[None, :], limit, allowed)

    def similar(self, ev_id: str, limit: int, allowed: np.ndarray | None = None) -> list[Hit] | None:
        """The ``limit`` events nearest to ``ev_id`` (none of it: None): an event scores as
        its best pair of windows. The hit's row is the other event's window of that pair."""
        rows = self.windows(ev_id)
        if not rows:
            return None
        own = np.zeros(len(self.events), dtype=bool)
        own[self.event_no[ev_id]] = True
        allowed = ~own if allowed is None else (allowed & ~own)
        return self._nearest(self.vectors[rows.start : rows.stop], limit, allowed)


class Int8Scan:
    """The windows' vectors in int8 (one scale per window) inside an ONNX Runtime graph
    (``DynamicQuantizeLinear`` of the queries, then ``MatMulIntegerToFloat``): every window's
    approximate cosine with each query, reading a quarter of the float32 matrix's bytes. On
    150,816 windows: 2.7 ms a query against 16 ms for numpy's float32 product, the first 100
    windows 98.8% the same (docs/benchmarks.md)."""

    def __init__(self, vectors: np.ndarray):
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        scale = (np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0).astype(np.float32)
        weights = np.ascontiguousarray(np.round(vectors / scale[:, None]).astype(np.int8).T)  # dim x windows
        # what error_bound needs: the largest scale, and the largest |v'|_1 of the int8 windows
        self.max_scale = float(scale.max()) if len(scale) else 0.0
        self.max_l1 = float((np.abs(weights).sum(axis=0, dtype=np.int32) * scale).max()) if len(scale) else 0.0
        graph = helper.make_graph(
            [
                helper.make_node("DynamicQuantizeLinear", ["q"], ["q8", "q_scale", "q_zero"]),
                helper.make_node(
                    "MatMulIntegerToFloat", ["q8", "w", "q_scale", "w_scale", "q_zero"], ["s"], domain="com.microsoft"
                ),
            ],
            "narrative_scan",
            [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["queries", E.DIM])],
            [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["queries", len(vectors)])],
            initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(scale, "w_scale")],
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run side by side; one query is a quarter of a matrix
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        """(windows, queries) approximate cosines."""
        return self.session.run(None, {"q": np.ascontiguousarray(queries, dtype=np.float32)})[0].T

    def error_bound(self, queries: np.ndarray) -> float:
        """An upper bound of |approximate - exact cosine| for every window and each of
        ``queries`` (on real narratives the largest error seen is about a tenth of it). With
        the window v, its int8 form v' (|v - v'| <= v's scale / 2 in each component) and the
        query q quantized to q' as ``DynamicQuantizeLinear`` does (one scale s for all the
        queries: |q - q'| <= s / 2, taken as s here for a margin):
        |q.v - q'.v'| <= |q.(v - v')| + |(q - q').v'| <= |q|_1 scale / 2 + |v'|_1 s."""
        s = (max(float(queries.max()), 0.0) - min(float(queries.min()), 0.0)) / 255.0
        q1 = float(np.abs(queries).sum(axis=1).max())
        return q1 * self.max_scale / 2 + self.max_l1 * s + 1e-5  # and float32's rounding of the sums


INT8_SCAN_FROM = 20_000  # windows from which the candidates come from the int8 scan
CANDIDATES = 4  # events scored again exactly per event asked for
RRF_K = 60  # reciprocal rank fusion's constant (Cormack, Clarke and Buettcher, SIGIR 2009)
FUSE_DEPTH = 100  # each mode's ranking the hybrid fuses (benchmarks/narrative_search.py measures with it)
# The hybrid's third ranking: keyword search on the query and the FEEDBACK_TERMS weightiest words
# of the semantic ranking's first FEEDBACK_EVENTS events (pseudo-relevance feedback; serving.TermIndex.feedback)
FEEDBACK_EVENTS = 10
FEEDBACK_TERMS = 10


def fuse(*rankings: list[str], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: an event scores sum(1 / (k + rank)) over the rankings it is in."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, ev_id in enumerate(ranking, start=1):
            scores[ev_id] = scores.get(ev_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
