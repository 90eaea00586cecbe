"""Keyword search ranks alike on both deployments: PostgreSQL's copy of the narratives'
inverted index (``serving.index_narratives_postgres``, loaded by
``serving.TermIndex.load_postgres``) against the embedded snapshot's (``_index_narratives``,
``TermIndex.load``), built from the same narratives, also after an incremental update."""

import random

import duckdb
import numpy as np
import psycopg2
import pytest

from ntsb_assets.lib import serving
from ntsb_assets.lib.warehouse import Warehouse

pytestmark = pytest.mark.postgres

WORDS = [
    "engine", "power", "loss", "fuel", "exhaustion", "carburetor", "ice", "landing", "gear", "runway",
    "overrun", "stall", "spin", "taxi", "wind", "gust", "crosswind", "flare", "bounce", "propeller",
    "tree", "wire", "terrain", "night", "weather", "instrument", "student", "instructor", "solo", "hail",
]  # fmt: skip


def _text(rng: random.Random, vocabulary: list[str], k: int) -> str:
    words = [rng.choice(vocabulary) for _ in range(k)]
    return " ".join(w.upper() if rng.random() < 0.1 else w for w in words) + ". The pilot's (2x) report."


def _narratives(seed: int, n: int) -> list[tuple[str, int, str | None, str | None]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ev = f"2001{i:04d}X{rng.randint(0, 99999):05d}"
        vocabulary = WORDS[: 8 + i % 22]
        for key in range(1, 3 if i % 9 == 0 else 2):  # some events have two aircraft
            cause = None if i % 7 == 0 else _text(rng, vocabulary, rng.randint(3, 12))
            narrative = None if i % 11 == 0 else ("" if i % 13 == 0 else _text(rng, vocabulary, rng.randint(5, 80)))
            rows.append((ev, key, cause, narrative))
    rows.append(("20019999X00001", 1, "é à — the a", "was the of"))  # stop words and single letters only
    rows.append(("20019999X00002", 1, "Café crème; naïve ÉTÉ", "Ölpumpe ausgefallen"))  # split at every accent
    return rows


def _duckdb_index(rows):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.narratives (ev_id VARCHAR, aircraft_key BIGINT, probable_cause VARCHAR, narrative VARCHAR)"
    )
    con.executemany("INSERT INTO marts.narratives VALUES (?, ?, ?, ?)", rows)
    serving._index_narratives(con, True, incremental=False)
    return serving.TermIndex.load(con.cursor())


def _set_narratives(url, rows):
    with Warehouse(url).session() as s:
        s.ensure_schema("marts")
        s.execute("DROP TABLE IF EXISTS marts.narratives")
        s.execute(
            "CREATE TABLE marts.narratives (ev_id TEXT, aircraft_key BIGINT, probable_cause TEXT, narrative TEXT)"
        )
        s.cur.executemany("INSERT INTO marts.narratives VALUES (%s, %s, %s, %s)", rows)


def _postgres_index(url):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            return serving.TermIndex.load_postgres(cur)
    finally:
        conn.close()


def _same_ranking(a, b):
    queries = ["engines", "fuel exhaustion", "ice carburetor power", "2x pilot", "hail none", "landed bouncing"]
    for terms in map(serving.tokens, queries):  # stems, as the API asks
        for limit in (5, 40, 1000):
            x, y = a.search(terms, limit), b.search(terms, limit)
            assert [e for e, _ in x] == [e for e, _ in y], (terms, limit)
            # other forms of the vocabulary's "engine", "landing" and "bounce" find them
            assert x or terms not in (["engin"], ["land", "bounc"]), (terms, limit)
            assert np.allclose([s for _, s in x], [s for _, s in y], rtol=1e-9), (terms, limit)
    among = list(a.events[::3])
    x = a.search(["wind", "gust"], 20, a.masks.mask(among))
    y = b.search(["wind", "gust"], 20, b.masks.mask(among))
    assert [e for e, _ in x] == [e for e, _ in y] and x


def test_postgres_index_ranks_as_the_snapshot_and_follows_changes(pg_url):
    wh = Warehouse(pg_url)
    with wh.session() as s:
        assert serving.index_narratives_postgres(s)["documents"] == 0  # no narratives mart yet: an empty index
    assert _postgres_index(pg_url).search(["engine"], 10) == []
    rows = _narratives(1, 400)
    _set_narratives(pg_url, rows)
    with wh.session() as s:
        first = serving.index_narratives_postgres(s)
    events = {r[0] for r in rows}
    assert first["narratives_indexed"] == len(events)
    pg, duck = _postgres_index(pg_url), _duckdb_index(rows)
    assert list(pg.events) == list(duck.events) and pg.docs == duck.docs
    assert "20019999X00001" not in set(pg.events)  # nothing but stop words and accents: no entry
    _same_ranking(pg, duck)

    with wh.session() as s:  # nothing changed: nothing tokenized again
        assert serving.index_narratives_postgres(s)["narratives_indexed"] == 0

    # an update: texts revised, events gone, events new; only those are indexed again
    changed = sorted(events)[10:15]
    gone = sorted(events)[20:23]
    rows2 = [
        (e, k, c, (n or "") + " gust wind") if e in changed else (e, k, c, n) for e, k, c, n in rows if e not in gone
    ]
    rows2 += [(f"2002{i:04d}X00000", 1, "fuel exhaustion", "engine power loss on final") for i in range(4)]
    _set_narratives(pg_url, rows2)
    with wh.session() as s:
        assert serving.index_narratives_postgres(s)["narratives_indexed"] == len(changed) + len(gone) + 4
    updated = _postgres_index(pg_url)
    _same_ranking(updated, _duckdb_index(rows2))
    assert not set(gone) & set(updated.events)

    with wh.session() as s:  # another rule for the tokens builds the index again whole
        s.execute("UPDATE serving.search_layout SET layout = 'older'")
    assert _postgres_index(pg_url) is None  # the API does not match its stems against other terms
    with wh.session() as s:
        assert serving.index_narratives_postgres(s)["narratives_indexed"] == len({r[0] for r in rows2})
    _same_ranking(_postgres_index(pg_url), _duckdb_index(rows2))


def test_a_failed_index_update_leaves_the_previous_index(pg_url):
    """The index and serving.published change in one transaction: an error keeps both."""
    rows = _narratives(2, 50)
    _set_narratives(pg_url, rows)
    wh = Warehouse(pg_url)
    before = serving.record_published(wh)
    assert before.index["narratives_indexed"] == len({r[0] for r in rows})
    hail = (
        "SELECT count(*) AS n FROM serving.search_terms t JOIN serving.search_vocab v USING (term_id) "
        "WHERE v.term = 'hail'"
    )
    with wh.session() as s:
        held = s.query(hail).to_pylist()[0]["n"]
    with pytest.raises(psycopg2.Error), wh.session() as s:
        s.execute("UPDATE marts.narratives SET narrative = 'hail hail hail'")
        serving.index_narratives_postgres(s)
        s.execute("SELECT 1/0")
    with wh.session() as s:
        assert s.query(hail).to_pylist()[0]["n"] == held < 50
        assert serving.index_narratives_postgres(s)["narratives_indexed"] == 0


def test_the_postings_reader_refuses_what_is_not_three_integers_a_row(pg_url):
    """serving._copy_binary_ints on PostgreSQL's own binary COPY, and on what it is not."""
    import io

    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            good, wide = io.BytesIO(), io.BytesIO()
            cur.copy_expert(
                "COPY (SELECT i, -i, 2147483647 FROM generate_series(1, 5) i) TO STDOUT (FORMAT binary)", good
            )
            cur.copy_expert(
                "COPY (SELECT i, i::BIGINT, i FROM generate_series(1, 5) i) TO STDOUT (FORMAT binary)", wide
            )
    finally:
        conn.close()
    a, b, c = serving._copy_binary_ints(good.getvalue(), 3)
    assert a.tolist() == [1, 2, 3, 4, 5] and b.tolist() == [-1, -2, -3, -4, -5] and set(c.tolist()) == {2147483647}
    for bad in (wide.getvalue(), b"1\t2\t3\n", good.getvalue()[:-5] + b"\xff\xff"):
        with pytest.raises(serving.ServingError, match="search index's postings"):
            serving._copy_binary_ints(bad, 3)
