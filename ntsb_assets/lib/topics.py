"""Topics of the narratives: the events clustered by their narratives' vectors, each cluster
labelled by its distinctive words (class-based TF-IDF), and counted per year so that a topic
whose share grows stands out.

- An event's vector is the mean of its windows' vectors (``ml/narrative_embeddings``: the
  account and the probable cause), made unit length again.
- k-means (scikit-learn's mini-batch k-means, fixed seed) on those unit vectors; k grows
  with the events (:func:`default_k`) unless given.
- Labels: class-based TF-IDF (as BERTopic defines it): a word's weight in a topic is its
  frequency among the topic's words times log(1 + A / f), A the average number of words per
  topic and f the word's frequency over all topics; the words are the narratives' (English
  stop words, digits and the investigation statement ``embeddings.PREAMBLE`` left out).
- Per year: each topic's events and share of the year's events; ``lift`` compares a topic's
  share over the last RECENT_YEARS years of the data with its share before them (each topic
  counted with one event more, so that a topic new in the recent years has a finite lift).
- The fit (the topics' centres, labels and terms) is kept (:func:`model_table`) and used again
  while it still describes the data: the same embedding model, the same k asked, and the
  events with a vector within REFIT_CHANGE of those it was fitted on. Then every event is
  assigned to its nearest centre and counted again, and the topics keep their numbers and
  labels from one monthly update to the next; k-means and the labels' word counts (the costly
  part, both over every narrative) run again only when the events have grown or shrunk by
  more than that, or when asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from . import embeddings as E

RECENT_YEARS = 5
LABEL_TERMS = 4  # words in a label
TOP_TERMS = 10  # words kept per topic
MIN_K, MAX_K = 2, 40
REFIT_CHANGE = 0.10  # a fit is used again while the events with a vector are within 10 % of its own


class TopicsError(Exception):
    pass


@dataclass
class Topics:
    """The tables to store (``topics``, ``by_year``, ``assignments``), the fit they used
    (``model``: to keep for the next run; None when there were too few events) and why it
    was made now (``refit``; None: the kept fit was used again)."""

    tables: dict[str, pd.DataFrame]
    model: pa.Table | None = None
    refit: str | None = field(default=None)


def default_k(events: int) -> int:
    """About one topic per 1,300 events at 53,000 (sqrt(events / 20), between 2 and 40)."""
    return max(MIN_K, min(MAX_K, int(math.sqrt(events / 20))))


def event_vectors(vectors: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(ev_ids sorted, their unit mean vectors) from the windows' table."""
    ids = np.asarray(vectors.column("ev_id").to_pylist(), dtype=object).astype(str)
    order = np.argsort(ids, kind="stable")
    ids, mat = ids[order], E.vectors_of(vectors)[order]
    if not len(ids):
        return ids, np.zeros((0, E.DIM), dtype=np.float32)
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sums = np.add.reduceat(mat, first, axis=0)
    norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return ids[first], (sums / norms).astype(np.float32)


def fit_info(model: pa.Table) -> dict[str, str]:
    """A kept fit's metadata: ``events`` it was fitted on, ``k_asked``, ``embedding_model``."""
    return {key.decode(): v.decode() for key, v in (model.schema.metadata or {}).items()}


def reusable(model: pa.Table | None, vectors: pa.Table, events: int, k: int | None) -> str | None:
    """Why the kept fit ``model`` cannot be used again for ``events`` events with a vector
    and ``k`` asked (None: it can)."""
    if model is None or model.num_rows == 0:
        return "no fit kept"
    meta = fit_info(model)
    version = E.model_version_of(vectors)
    if version != meta.get("embedding_model"):
        return f"the vectors' model {version} is not the fit's ({meta.get('embedding_model')})"
    if int(meta.get("k_asked", -1)) != (k or 0):
        return f"k asked {k or 'by default'}, the fit's {int(meta.get('k_asked', -1)) or 'by default'}"
    fitted = int(meta.get("events", 0))
    if abs(events - fitted) > REFIT_CHANGE * fitted:
        return f"{events:,} events with a vector, the fit's {fitted:,} (more than {REFIT_CHANGE:.0%} apart)"
    return None


def model_table(centres: np.ndarray, terms: list[list[str]], events: int, k_asked: int, version: str) -> pa.Table:
    """A fit to keep: one row per topic (its unit centre and terms), with the events it was
    fitted on, the k asked (0: by default) and the embedding model in the schema's metadata."""
    table = pa.table(
        {
            "topic": pa.array(range(len(centres)), pa.int64()),
            "centre": pa.FixedSizeListArray.from_arrays(pa.array(centres.reshape(-1), pa.float32()), E.DIM),
            "terms": pa.array([", ".join(t) for t in terms], pa.string()),
        }
    )
    meta = {"events": str(events), "k_asked": str(k_asked), "embedding_model": version}
    return table.replace_schema_metadata(meta)


def topics(con, vectors: pa.Table, k: int | None = None, seed: int = 0, model: pa.Table | None = None) -> Topics:
    """Tables ``topics`` (one row per topic: label, terms, events, share, recent share,
    lift, peak year), ``by_year`` (year, topic, events, share of the year) and
    ``assignments`` (ev_id, year, topic, cosine to the topic's centre), from the windows'
    vectors and the archived ``narratives`` and ``fact_accidents`` (DuckDB ``con``); with
    ``model`` (the fit kept from an earlier run) its topics where :func:`reusable` allows,
    else a new fit."""
    ids, mat = event_vectors(vectors)
    if len(ids) < 2 * MIN_K:  # a warehouse with (almost) no narratives: empty tables, not a failed build
        return Topics(empty(), None, "too few events with a narrative")
    refit = reusable(model, vectors, len(ids), k)
    events = pd.DataFrame({"ev_id": ids})
    con.register("_topic_events", events)
    facts = con.execute(
        "SELECT f.ev_id, CAST(extract(year FROM f.event_date) AS INTEGER) AS year "
        "FROM fact_accidents f JOIN _topic_events t ON t.ev_id = f.ev_id"
    ).df()
    if refit is None:
        assert model is not None
        centres = E.vectors_of(model, "centre")
        terms = [t.split(", ") if t else [] for t in model.column("terms").to_pylist()]
        k = len(centres)
        labels = (mat @ centres.T).argmax(axis=1).astype(np.int64)
    else:
        labels, centres = _fit(mat, min(k or default_k(len(ids)), len(ids) // 2), seed)
        texts = con.execute(
            "SELECT n.ev_id, string_agg(coalesce(n.narrative, '') || ' ' || coalesce(n.probable_cause, ''), ' ') "
            "AS text FROM narratives n JOIN _topic_events t ON t.ev_id = n.ev_id GROUP BY n.ev_id"
        ).df()
        text_of = events.merge(texts, on="ev_id", how="left").text.fillna("").tolist()
        terms = distinctive_terms(text_of, labels, len(centres))
        model = model_table(centres, terms, len(ids), k or 0, E.model_version_of(vectors))
        k = len(centres)
    con.unregister("_topic_events")
    events = events.assign(topic=labels, similarity=(mat * centres[labels]).sum(axis=1)).merge(
        facts, on="ev_id", how="left"
    )
    dated = events.dropna(subset=["year"]).astype({"year": "int64"})
    by_year = dated.groupby(["year", "topic"]).size().rename("events").reset_index()
    by_year["share"] = by_year.events / by_year.groupby("year").events.transform("sum")
    last = int(dated.year.max()) if len(dated) else 0
    recent = dated.year > last - RECENT_YEARS
    rows = []
    for t in range(k):
        mine = dated.topic == t
        recent_share = mine[recent].mean() if recent.any() else float("nan")
        before_share = mine[~recent].mean() if (~recent).any() else float("nan")
        # shares with one event added to each topic (Laplace): a topic new in the recent years
        # gets a large, finite lift, and a tiny one no extreme ratio
        lift = ((mine[recent].sum() + 1) / (recent.sum() + k)) / ((mine[~recent].sum() + 1) / ((~recent).sum() + k))
        per_year = by_year[by_year.topic == t]
        rows.append(
            {
                "topic": t,
                "label": " / ".join(terms[t][:LABEL_TERMS]),
                "terms": ", ".join(terms[t]),
                "events": int((events.topic == t).sum()),
                "share": float((events.topic == t).mean()),
                "recent_share": float(recent_share),
                "earlier_share": float(before_share),
                "lift": float(lift) if recent.any() and (~recent).any() else None,
                "peak_year": int(per_year.loc[per_year.share.idxmax(), "year"]) if len(per_year) else None,
                "first_year": int(per_year.year.min()) if len(per_year) else None,
                "last_year": int(per_year.year.max()) if len(per_year) else None,
            }
        )
    tables = {
        "topics": pd.DataFrame(rows),
        "by_year": by_year.sort_values(["year", "topic"]).reset_index(drop=True),
        "assignments": events[["ev_id", "year", "topic", "similarity"]].sort_values("ev_id").reset_index(drop=True),
    }
    return Topics(tables, model, refit)


def _fit(mat: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(each event's topic, the topics' unit centres), topics numbered by size, largest first."""
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(mat)
    labels = km.labels_.astype(np.int64)
    centres = km.cluster_centers_ / np.maximum(np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    renumber = np.empty(k, dtype=np.int64)
    renumber[order] = np.arange(k)
    return renumber[labels], centres[order].astype(np.float32)


TOPIC_COLUMNS = {
    "topic": "int64",
    "label": "object",
    "terms": "object",
    "events": "int64",
    "share": "float64",
    "recent_share": "float64",
    "earlier_share": "float64",
    "lift": "float64",
    "peak_year": "Int64",
    "first_year": "Int64",
    "last_year": "Int64",
}


def empty() -> dict[str, pd.DataFrame]:
    """The tables with no rows: fewer than 2 * MIN_K events have a narrative vector."""
    return {
        "topics": pd.DataFrame({c: pd.Series(dtype=t) for c, t in TOPIC_COLUMNS.items()}),
        "by_year": pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in (("year", "int64"), ("topic", "int64"), ("events", "int64"), ("share", "float64"))
            }
        ),
        "assignments": pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in (("ev_id", "object"), ("year", "Int64"), ("topic", "int64"), ("similarity", "float32"))
            }
        ),
    }


def distinctive_terms(texts: list[str], topic_of: np.ndarray, k: int) -> list[list[str]]:
    """Each topic's TOP_TERMS words by class-based TF-IDF over ``texts`` (one per event)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    cleaned = [E.PREAMBLE.sub("", t) for t in texts]
    vec = CountVectorizer(
        stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z'-]+[a-zA-Z]\b",
        lowercase=True,
        min_df=min(3, max(1, len(texts) // 100)),
    )
    try:
        counts = vec.fit_transform(cleaned)
    except ValueError:  # no word at all
        return [[] for _ in range(k)]
    onehot = sparse.csr_matrix((np.ones(len(topic_of)), (topic_of, np.arange(len(topic_of)))), shape=(k, len(texts)))
    tf = np.asarray((onehot @ counts).todense(), dtype=np.float64)  # topic x word
    words_per_topic = tf.sum(axis=1, keepdims=True)
    avg = words_per_topic.mean()
    idf = np.log(1 + avg / np.maximum(tf.sum(axis=0), 1))
    weight = tf / np.maximum(words_per_topic, 1) * idf
    vocab = np.asarray(vec.get_feature_names_out())
    return [[str(vocab[j]) for j in np.argsort(-row, kind="stable")[:TOP_TERMS] if row[j] > 0] for row in weight]
