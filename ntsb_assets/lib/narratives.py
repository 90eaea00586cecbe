"""The narratives' vectors in the lake (``ml/narrative_embeddings``): read from the archived
``narratives`` mart, embedded by ``lib/embeddings.py``, kept in one Parquet file whose
schema metadata names the model and its version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing

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
