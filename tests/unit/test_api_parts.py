"""The API's parts that need no server: tokens and roles, the sliding window, search
tokens, BM25 over a real snapshot index, snippets."""

import json
import sqlite3
import time

import duckdb
import jwt
import pytest

from ntsb_api import auth
from ntsb_api.ratelimit import InProcessLimiter
from ntsb_api.store import SnapshotStore, highlight
from ntsb_assets.lib import serving

SECRET = "unit-test-secret-that-is-long-enough-0123"


def test_tokens_roles_and_their_errors():
    token = auth.create_token(SECRET, "analyst", 60, subject="alice")
    who = auth.authenticate(SECRET, f"Bearer {token}")
    assert (who.subject, who.role) == ("alice", "analyst") and who.token_id
    auth.authorize(who, "viewer")
    auth.authorize(who, "analyst")
    with pytest.raises(auth.AuthError) as exc:
        auth.authorize(who, "admin")
    assert exc.value.status == 403
    for header, message in (
        (None, "missing"),
        ("Basic abc", "must be 'Bearer"),
        ("Bearer x.y.z", "invalid token"),
        (f"Bearer {auth.create_token('another-secret-long-enough-000000000', 'admin', 60)}", "invalid token"),
    ):
        with pytest.raises(auth.AuthError, match=message) as exc:
            auth.authenticate(SECRET, header)
        assert exc.value.status == 401
    expired = jwt.encode(
        {"sub": "a", "role": "viewer", "iat": 1, "exp": int(time.time()) - 5, "iss": auth.ISSUER},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(auth.AuthError, match="expired"):
        auth.authenticate(SECRET, f"Bearer {expired}")
    bad_role = jwt.encode(
        {"sub": "a", "role": "root", "iat": 1, "exp": int(time.time()) + 60, "iss": auth.ISSUER},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(auth.AuthError, match="the role claim must be one of"):
        auth.authenticate(SECRET, f"Bearer {bad_role}")
    with pytest.raises(ValueError):
        auth.create_token(SECRET, "root", 60)
    # a token is verified once per process, and it still expires on time
    short = auth.create_token(SECRET, "viewer", 1)
    assert auth.authenticate(SECRET, f"Bearer {short}").role == "viewer"
    time.sleep(1.1)
    with pytest.raises(auth.AuthError, match="expired"):
        auth.authenticate(SECRET, f"Bearer {short}")
    with pytest.raises(auth.AuthError, match="invalid token"):  # remembered per secret, not per token alone
        auth.authenticate("a-rotated-secret-that-is-long-enough-00", f"Bearer {token}")


def test_sliding_window_counts_per_key_and_frees_slots_as_they_age():
    limiter = InProcessLimiter(limit=3, window=0.5)
    assert [limiter.hit_now("a")[0] for _ in range(4)] == [True, True, True, False]
    allowed, retry = limiter.hit_now("a")
    assert not allowed and 0 < retry <= 0.5
    assert limiter.hit_now("b")[0]  # another key has its own window
    time.sleep(retry + 0.01)
    assert limiter.hit_now("a")[0]  # the oldest request left the window


def test_search_index_and_bm25_ranking_on_real_narratives(tmp_path):
    """The snapshot's index built from two real NTSB texts; the SQL ranking equals the
    BM25 formula computed by hand."""
    texts = {
        "20190118X92207": (
            "The loss of engine power due to fatigue failure of the crankshaft.",
            "The pilot reported a loss of engine power shortly after takeoff.",
        ),
        "20180308X30039": (
            "An engine malfunction for undetermined reasons and the subsequent loss of control.",
            "Witnesses saw the airplane descend; no fire was reported.",
        ),
    }
    assert serving.tokens("The loss of ENGINES' power, 2x!") == ["loss", "engin", "power", "2x"]  # stems
    assert serving.tokens("landed landing lands") == ["land"] * 3
    path = tmp_path / "snapshot-test.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.narratives (ev_id VARCHAR, aircraft_key INTEGER, probable_cause VARCHAR, narrative VARCHAR)"
    )
    con.executemany("INSERT INTO marts.narratives VALUES (?, 1, ?, ?)", [(k, *v) for k, v in texts.items()])
    con.execute(
        "CREATE TABLE marts.fact_accidents AS SELECT ev_id, DATE '2019-01-17' AS event_date, 'FATL' AS severity, "
        "'BEECH' AS make, '36' AS model FROM marts.narratives"
    )
    serving._index_narratives(con, True, incremental=False)
    tf = dict(con.execute("SELECT ev_id, tf FROM search_terms WHERE term = 'power'").fetchall())
    assert tf == {"20190118X92207": 2 * 1 + 1}  # once in the probable cause (x2), once in the narrative
    lengths = dict(con.execute("SELECT ev_id, length FROM search_docs").fetchall())
    want = {ev: 2 * len(serving.tokens(pc)) + len(serving.tokens(n)) for ev, (pc, n) in texts.items()}
    assert lengths == want
    con.close()
    with sqlite3.connect(serving.documents_path(path)) as docs:  # the snapshot's documents
        docs.execute("CREATE TABLE documents (ev_id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        docs.executemany(
            "INSERT INTO documents VALUES (?, ?)",
            [
                (
                    k,
                    json.dumps(
                        {
                            "ev_id": k,
                            "event_date": "2019-01-17",
                            "severity": "FATL",
                            "make": "BEECH",
                            "model": "36",
                            "narratives": [{"aircraft_key": 1, "probable_cause": pc, "narrative": n}],
                        }
                    ),
                )
                for k, (pc, n) in texts.items()
            ],
        )
    (tmp_path / serving.POINTER).write_text(
        json.dumps({"file": path.name, "version": {"releases": ["r1"], "format": serving.FORMAT}})
    )
    from ntsb_api import search as S

    found = S.search(SnapshotStore(tmp_path).pin(), lambda q: None, "engine power", "keyword", {}, 10)
    hits = found["items"]
    assert found["mode"] == "keyword" and [h["ranks"]["keyword"] for h in hits] == [1, 2]
    avg = sum(want.values()) / 2

    def score(ev):
        pc, n = texts[ev]
        words = serving.tokens(pc) * 2 + serving.tokens(n)
        return sum(
            serving.bm25(
                tf=words.count(t),
                df=sum(t in (serving.tokens(" ".join(v))) for v in texts.values()),
                docs=2,
                length=want[ev],
                avg_length=avg,
            )
            for t in ("engin", "power")
            if t in words
        )

    assert [h["ev_id"] for h in hits] == ["20190118X92207", "20180308X30039"]
    assert [h["score"] for h in hits] == pytest.approx([score(h["ev_id"]) for h in hits])
    assert "<mark>engine</mark>" in hits[0]["snippet"].lower()
    assert {h["make"] for h in hits} == {"BEECH"} and str(hits[0]["event_date"]) == "2019-01-17"
    assert all(h["passage"] is None for h in hits)  # no vectors in this snapshot: no window to show


def test_snippets_escape_the_text_and_mark_every_hit():
    text = "Loss of engine power <b>after</b> takeoff; the engine   stopped."
    out = highlight(text, serving.tokens("engine"), width=60)
    assert out.count("<mark>engine</mark>") == 2 and "&lt;b&gt;" in out and "<b>" not in out
    # whole words whose stem is the term, as BM25 indexes them
    words = highlight("Hazardous weather; the hazards of a hazard; hazardless.", serving.tokens("hazard"))
    assert words.count("<mark>") == 3 and "<mark>hazards</mark>" in words and "<mark>hazard</mark>;" in words
    assert "<mark>Hazardous</mark>" in words and "hazardless" in words and "<mark>hazardless" not in words
    assert highlight("plain text", []) == "plain text"


def test_the_secret_is_required_in_production_and_generated_once_embedded(tmp_path, monkeypatch):
    from ntsb_assets.settings import Settings, SettingsError

    monkeypatch.delenv("NTSB_API_SECRET", raising=False)
    with pytest.raises(SettingsError, match="refuses to start in production"):
        Settings(home=tmp_path, warehouse_url="postgresql://ntsb@db/ntsb").api_secret_effective()
    with pytest.raises(SettingsError, match="at least 32"):
        Settings(home=tmp_path, warehouse_url="postgresql://ntsb@db/ntsb", api_secret="short").api_secret_effective()
    embedded = Settings(home=tmp_path)
    first = embedded.api_secret_effective()
    assert len(first) >= 32 and (tmp_path / "api_secret").stat().st_mode & 0o777 == 0o600
    assert Settings(home=tmp_path).api_secret_effective() == first  # the same secret next time


def test_the_openapi_document_describes_everything_and_declares_the_bearer_scheme(tmp_path):
    """What Swagger UI and ReDoc show: every route, parameter and schema field described,
    an example for every parameter and every route's response, and the bearer scheme on
    every /api/v1 operation (so "Authorize" sends the token)."""
    from ntsb_api.app import create_app
    from ntsb_assets.settings import Settings

    doc = create_app(Settings(home=tmp_path)).openapi()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        **doc["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    schemas = doc["components"]["schemas"]
    missing = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert (op.get("security") == [{"bearer": []}]) == path.startswith("/api/"), where
            for key in ("summary", "description"):
                if not op.get(key):
                    missing.append(f"{where}: {key}")
            for p in op.get("parameters", []):
                if not p.get("description"):
                    missing.append(f"{where} parameter {p['name']}: description")
                if not (p.get("example") or p.get("examples") or p["schema"].get("examples")):
                    missing.append(f"{where} parameter {p['name']}: example")
            ok = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
            ref = ok.get("$ref", "").rsplit("/", 1)[-1]
            if ref and not (schemas[ref].get("examples") or schemas[ref].get("example")):
                missing.append(f"{where}: example of {ref}")
    for name, schema in schemas.items():
        if not schema.get("description"):
            missing.append(f"schema {name}: description")
        missing += [
            f"schema {name}.{f}: description"
            for f, v in schema.get("properties", {}).items()
            if not v.get("description")
        ]
    assert not missing, "\n".join(missing)
    assert "HTTPValidationError" not in schemas  # 422 is a problem document, as every error


def test_the_term_index_ranks_as_bm25_in_sql_ties_by_ev_id_and_honours_a_mask():
    """The API's in-memory BM25 (serving.TermIndex) against the same formula in SQL over the
    snapshot's tables: the same events in the same order, the same scores; events with equal
    scores (identical texts) come by ev_id, also across the cut at ``limit``."""
    import random

    import duckdb
    import numpy as np

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(40)]
    con = duckdb.connect()
    con.execute("CREATE TABLE search_terms (term VARCHAR, ev_id VARCHAR, tf INTEGER, length INTEGER)")
    rows, docs = [], {}
    for n in range(300):
        ev = f"ev{n:04d}"
        words = rng.choices(vocab[: 10 + n % 30], k=rng.randint(3, 40)) if n % 50 else ["w1", "w2", "w3"]
        docs[ev] = len(words)
        rows += [(t, ev, words.count(t), len(words)) for t in sorted(set(words))]
    rng.shuffle(rows)  # an incremental snapshot appends its new entries after the sorted ones
    con.executemany("INSERT INTO search_terms VALUES (?, ?, ?, ?)", rows)
    con.execute("CREATE TABLE search_docs AS SELECT DISTINCT ev_id, length FROM search_terms")
    con.execute("CREATE TABLE search_df AS SELECT term, count(*)::INTEGER AS df FROM search_terms GROUP BY ALL")
    con.execute("CREATE TABLE search_stats AS SELECT count(*) AS docs, avg(length) AS avg_length FROM search_docs")
    index = serving.TermIndex.load(con.cursor())
    k1, b = serving.K1, serving.B

    def sql(terms, limit, among=None):
        marks = ", ".join("?" * len(terms))
        extra = f" AND t.ev_id IN ({', '.join('?' * len(among))})" if among else ""
        return con.execute(
            f"""WITH q AS (SELECT term, ln(1 + (s.docs - df + 0.5) / (df + 0.5)) AS idf
                           FROM search_df, search_stats s WHERE term IN ({marks}))
                SELECT t.ev_id, sum(q.idf * t.tf * {k1 + 1} / (t.tf + {k1} * (1 - {b} + {b} * t.length / s.avg_length)))
                FROM search_terms t JOIN q ON q.term = t.term, search_stats s WHERE t.term IN ({marks}){extra}
                GROUP BY t.ev_id ORDER BY 2 DESC, t.ev_id LIMIT ?""",
            [*terms, *terms, *(among or []), limit],
        ).fetchall()

    for terms, limit in ((["w1"], 10), (["w1", "w2", "w3"], 5), (["w5", "w30", "nothing"], 50), (["w39"], 300)):
        got, want = index.search(terms, limit), sql(terms, limit)
        assert [e for e, _ in got] == [e for e, _ in want], terms
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-12), terms
    tied = [e for e, _ in index.search(["w1", "w2", "w3"], 300)]  # the six identical texts, in ev_id order
    same = [f"ev{n:04d}" for n in range(0, 300, 50)]
    assert [e for e in tied if e in same] == same
    among = [f"ev{n:04d}" for n in range(0, 300, 7)]
    got = index.search(["w1", "w4"], 8, index.masks.mask(among))
    assert [e for e, _ in got] == [e for e, _ in sql(["w1", "w4"], 8, among)]
    assert index.search(["nothing"], 10) == [] and index.search(["w1"], 0) == []
    # the hybrid's feedback: each word's idf summed over the given events that have it, ties by word
    terms_of = {}
    for t, ev, _tf, _n in rows:
        terms_of.setdefault(ev, set()).add(t)
    df = {t: sum(t in ts for ts in terms_of.values()) for t in vocab}
    for given in (["ev0001", "ev0002", "ev0150"], [f"ev{n:04d}" for n in range(0, 300, 13)], ["ev0050", "nope"]):
        weight: dict[str, float] = {}
        for ev in given:
            for t in terms_of.get(ev, ()):
                weight[t] = weight.get(t, 0.0) + np.log(1 + (300 - df[t] + 0.5) / (df[t] + 0.5))
        want = sorted(weight, key=lambda t: (-round(weight[t], 9), t))[:7]
        assert index.feedback(given, 7) == want, given
    assert index.feedback(["nope"], 7) == [] and index.feedback(["ev0001"], 0) == []


def test_the_api_runs_numpy_blas_on_one_thread(tmp_path, monkeypatch):
    """Requests run side by side; a BLAS thread team under concurrent searches costs more
    than it gains (docs/api.md, "Search by meaning and similar events")."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from ntsb_api.deps import Services
    from ntsb_assets.settings import Settings

    monkeypatch.delenv("NTSB_REDIS_URL", raising=False)

    def blas() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):  # a team of two, as on two cores; restored after
        assert blas() == {2}
        Services(Settings(home=tmp_path))
        assert blas() == {1}


def test_searches_are_built_a_few_at_a_time_and_a_hit_waits_for_none(tmp_path, monkeypatch):
    """Cache misses with the searches' turns: at most SEARCH_BUILDS build at once, each key
    once; a cached body is answered at once even while every turn is taken."""
    import threading

    import anyio

    from ntsb_api.deps import SEARCH_BUILDS, Services, cached
    from ntsb_api.store import ResponseCache
    from ntsb_assets.settings import Settings

    class Store:
        cache = ResponseCache()

    monkeypatch.delenv("NTSB_REDIS_URL", raising=False)
    services = Services(Settings(home=tmp_path))
    lock = threading.Lock()
    running = most = 0
    release = threading.Event()

    def build(n: int):
        def make() -> bytes:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            release.wait(10)
            with lock:
                running -= 1
            return json.dumps({"n": n}).encode()

        return make

    Store.cache.put(("hit",), b'{"cached": true}')
    keys = SEARCH_BUILDS + 3  # more searches than turns, each asked twice

    async def main():
        bodies: dict[int, bytes] = {}

        async def one(n: int):
            bodies[n] = (await cached(Store, ("search", n % keys), build(n), services.searches())).body

        async with anyio.create_task_group() as tg:
            for n in range(2 * keys):
                tg.start_soon(one, n)
            await anyio.sleep(0.3)  # every task has asked; SEARCH_BUILDS of them are building
            with anyio.fail_after(2):  # a hit is not queued behind the builds
                assert (await cached(Store, ("hit",), build(-1), services.searches())).body == b'{"cached": true}'
            release.set()
        return bodies

    bodies = anyio.run(main)
    assert most == SEARCH_BUILDS
    assert {n % keys for n in bodies} == set(range(keys)) and len({bodies[n] for n in bodies}) == keys
