"""Search over the narratives, in three modes, and events similar by narrative: what
``GET /search`` and ``GET /events/{ev_id}/similar`` answer, and what the dashboard's event
explorer shows (it calls these functions on the same store).

- keyword: BM25 over the narratives' inverted index (the snapshot's embedded, its copy in
  the warehouse's ``serving`` schema on PostgreSQL), held in memory (``serving.TermIndex``);
- semantic: the query's all-MiniLM-L6-v2 vector against every window of every narrative
  (``lib/narratives.VectorIndex``, exact, in this process);
- hybrid: reciprocal rank fusion of three rankings, each FUSE_DEPTH deep: the two above and
  keyword search expanded by the semantic ranking's first events (:func:`hybrid_rankings`).

Each hit carries its best passage: one window of one of the event's texts (the account or
the probable cause) with its character span and, when the query was embedded, its cosine.
The passages and their ev_ids come back in one call, so that a generator can be put behind
them later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ntsb_assets.lib import narratives as N

from .store import Store, highlight, term_spans

MODES = ("keyword", "semantic", "hybrid")
MAX_QUERY = 1_000  # characters (a query is embedded as one window)


class NoVectors(Exception):
    """The data version has no narrative vectors (ml/narrative_embeddings not materialized)."""


class NoNarrative(Exception):
    """``similar`` on an event that has no narrative vector (or no such event)."""


NO_VECTORS = (
    "this data version has no narrative vectors: materialize ml/narrative_embeddings and serving/snapshot (ntsb build)"
)


def _index(store: Store) -> N.VectorIndex:
    index = store.vector_index()
    if index is None:
        raise NoVectors(NO_VECTORS)
    return index


def _mask(store: Store, index: N.VectorIndex, filters: dict) -> np.ndarray | None:
    given = {k: v for k, v in filters.items() if v is not None}
    if not given:
        return None
    return index.cached_mask(tuple(sorted(given.items())), lambda: store.filtered_events(given))


def search(
    store: Store, embed: Callable[[str], np.ndarray], q: str, mode: str, filters: dict, limit: int
) -> dict[str, Any]:
    """The ``limit`` best events for ``q`` in ``mode`` among those matching ``filters``:
    ``{"query", "mode", "items"}``. Raises NoVectors for semantic and hybrid without vectors."""
    depth = max(limit, N.FUSE_DEPTH) if mode == "hybrid" else limit
    text = q.replace("\x00", " ")  # PostgreSQL takes no NUL in a string; it means nothing in a query
    keyword: list[tuple[str, float]] = []
    terms: list[str] = []
    if mode in ("keyword", "hybrid"):
        keyword, terms = store.keyword(text, depth, filters)
    index = None
    query = None
    semantic: list[N.Hit] = []
    if mode in ("semantic", "hybrid"):
        index = _index(store)
        query = embed(text)
        semantic = index.search(query, depth, _mask(store, index, filters))
    elif keyword:
        index = store.vector_index()  # for the passages, when there are vectors
    expanded: list[str] = []
    if mode == "keyword":
        order = keyword[:limit]
    elif mode == "semantic":
        order = [(h.ev_id, h.score) for h in semantic[:limit]]
    else:
        _, expanded, _ = rankings = hybrid_rankings(store, text, filters, depth, keyword, semantic)
        order = N.fuse(*rankings)[:limit]
    ranks = {
        "keyword": {e: i for i, (e, _) in enumerate(keyword, start=1)},
        "semantic": {h.ev_id: i for i, h in enumerate(semantic, start=1)},
        "feedback": {e: i for i, e in enumerate(expanded, start=1)},
    }
    items = _items(store, index, order, query, terms)
    for item in items:
        item["ranks"] = {name: rank.get(item["ev_id"]) for name, rank in ranks.items()}
    return {"query": q, "mode": mode, "items": items}


def hybrid_rankings(
    store: Store, text: str, filters: dict, depth: int, keyword: list[tuple[str, float]], semantic: list[N.Hit]
) -> list[list[str]]:
    """What the hybrid fuses: the keyword ranking, the semantic ranking, and keyword search
    on the query with the weightiest words of the semantic ranking's first events added
    (pseudo-relevance feedback: the words the narratives use for what the query paraphrases).
    benchmarks/narrative_search.py measures each and the fusion."""
    feedback = [h.ev_id for h in semantic[: N.FEEDBACK_EVENTS]]
    expanded = store.keyword(text, depth, filters, feedback=feedback)[0] if feedback else []
    return [[e for e, _ in keyword], [e for e, _ in expanded], [h.ev_id for h in semantic]]


def similar(store: Store, ev_id: str, filters: dict, limit: int) -> dict[str, Any]:
    """The ``limit`` events whose narratives are nearest to ``ev_id``'s, among those matching
    ``filters``. Raises NoVectors, or NoNarrative when the event has no narrative vector."""
    index = _index(store)
    hits = index.similar(ev_id, limit, _mask(store, index, filters))
    if hits is None:
        if not store.heads([ev_id]):
            raise NoNarrative(f"no event {ev_id!r}")
        raise NoNarrative(
            f"event {ev_id!r} has no narrative vector to compare (no text, only blank ones, or texts "
            "still waiting for their vectors under NTSB_EMBED_MAX_TEXTS)"
        )
    items = _items(store, index, [(h.ev_id, h.score) for h in hits], None, [], rows={h.ev_id: h for h in hits})
    return {"ev_id": ev_id, "items": items}


def _items(
    store: Store,
    index: N.VectorIndex | None,
    order: list[tuple[str, float]],
    query: np.ndarray | None,
    terms: list[str],
    rows: dict[str, N.Hit] | None = None,
) -> list[dict[str, Any]]:
    """The hits as the API shows them: the event's head, the score, the best passage (the
    window nearest to the query; without a query vector, the one with most query terms) and
    a highlighted snippet."""
    ids = [e for e, _ in order]
    heads, texts = store.heads_and_texts(ids)
    out = []
    for ev_id, score in order:
        narr = texts.get(ev_id, [])
        best: tuple[int, float | None] | None = None
        if rows is not None and ev_id in rows:
            best = (rows[ev_id].row, rows[ev_id].score)
        elif index is not None and query is not None:
            best = index.nearest_window(ev_id, query)
        elif index is not None and terms:
            best = _most_terms(index, ev_id, narr, terms)
        passage: dict[str, Any] | None = None
        window = ""
        if best is not None and index is not None:
            p = index.passage(best[0])
            text = next((n.get(p.field) or "" for n in narr if int(n["aircraft_key"]) == p.aircraft_key), "")
            window = text[p.start : p.end]
            passage = {
                "aircraft_key": p.aircraft_key,
                "field": p.field,
                "start": p.start,
                "end": p.end,
                "text": window,
                "score": best[1],
            }
        whole = " ".join(f"{n.get('probable_cause') or ''} {n.get('narrative') or ''}" for n in narr)
        head = heads.get(ev_id, {})
        out.append(
            {
                "ev_id": ev_id,
                **{k: head.get(k) for k in ("event_date", "severity", "make", "model")},
                "score": float(score),
                "snippet": highlight(window if passage else whole, terms),
                "passage": passage,
            }
        )
    return out


def _most_terms(index: N.VectorIndex, ev_id: str, narr: list[dict], terms: list[str]) -> tuple[int, None] | None:
    """The event's window with the most matches of ``terms`` (keyword mode: no query vector)."""
    best, most = None, -1
    for row in index.windows(ev_id):
        p = index.passage(row)
        text = next((n.get(p.field) or "" for n in narr if int(n["aircraft_key"]) == p.aircraft_key), "")
        found = len(term_spans(text[p.start : p.end], terms))
        if found > most:
            best, most = row, found
    return None if best is None else (best, None)
