"""The narratives' vectors in the lake (``ml/narrative_embeddings``): read from the archived
``narratives`` mart, embedded by ``lib/embeddings.py``, kept in one Parquet file whose
schema metadata names the model and its version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import analytics
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


def refresh(lake: Lake, enc: E.Encoder, progress: Callable[[int, int], None] | None = None) -> E.EmbedResult:
    """Embed what is new since the vectors in the lake and write them back (one file, replaced
    whole: a reader sees the old or the new one)."""
    previous = lake.read_parquet(VECTORS_KEY) if lake.exists(VECTORS_KEY) else None
    result = E.embed_narratives(_texts(lake), previous, enc, progress)
    lake.write_parquet(VECTORS_KEY, result.table)
    return result


# ---------------------------------------------------------------- search by meaning


@dataclass(frozen=True)
class Hit:
    ev_id: str
    score: float
    row: int  # the best-matching window's row in the index (its passage)


class VectorIndex:
    """Exact nearest-neighbour search over the windows' vectors (a matrix product: 100,000
    events' windows in a few milliseconds); an event scores as its best window."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.vectors = E.vectors_of(table)
        self.ev_ids = np.asarray(table.column("ev_id").to_pylist(), dtype=object)

    def __len__(self) -> int:
        return len(self.ev_ids)

    def search(self, query: np.ndarray, limit: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``limit`` events nearest to ``query`` (a unit vector), best first; ``allowed``: a
        boolean mask over the rows (the filters), None for all."""
        if not len(self) or limit <= 0:
            return []
        scores = self.vectors @ query
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        want = limit * 4
        while True:  # the best rows, until they hold ``limit`` distinct events (or all rows are seen)
            k = min(want, len(scores))
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            hits: dict[str, Hit] = {}
            for i in top:
                if not np.isfinite(scores[i]):
                    break
                hits.setdefault(self.ev_ids[i], Hit(self.ev_ids[i], float(scores[i]), int(i)))
                if len(hits) == limit:
                    return list(hits.values())
            if k == len(scores):
                return list(hits.values())
            want *= 4


RRF_K = 60  # reciprocal rank fusion's constant (Cormack, Clarke and Buettcher, SIGIR 2009)


def fuse(*rankings: list[str], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: an event scores sum(1 / (k + rank)) over the rankings it is in."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, ev_id in enumerate(ranking, start=1):
            scores[ev_id] = scores.get(ev_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
