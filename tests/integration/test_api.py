"""The HTTP API against a real uvicorn server on 127.0.0.1, on both deployments (serving
snapshot over DuckDB; PostgreSQL marts with Redis rate limits), built from the bundled
sample through Dagster."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import dagster as dg
import httpx
import pytest

from ntsb_assets.cli import _run_archive_and_analytics
from ntsb_assets.definitions import defs
from ntsb_assets.lib import serving
from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE, deployment_home
from tests.integration.helpers import dashboard_page, ingest_json, ntsb, query
from tests.integration.test_archive import _build_marts
from tests.integration.test_model import run_ml

RELEASES = ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025")


@pytest.fixture(scope="module", params=["embedded", "production"])
def deployment_built(request, tmp_path_factory, s3_endpoint):
    """One built deployment for every test of the module: the sample ingested, the marts,
    archive, analytics, a champion model (checks relaxed: the sample's model does not pass
    the defaults, see docs/ml.md) and the serving snapshot."""
    root = tmp_path_factory.mktemp(f"api_{request.param}")
    with deployment_home(request.param, root, s3_endpoint, redis_db=15) as env:
        for rel in RELEASES:
            ingest_json(SAMPLE / rel)
        settings = get_settings()
        with dg.DagsterInstance.get() as instance:
            _build_marts(instance)
            _run_archive_and_analytics(instance, settings)
            assert run_ml(instance, margin=-1.0).success
            assert defs.resolve_job_def("serving").execute_in_process(instance=instance).success
        yield request.param, settings, env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, **extra):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ntsb_api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env={**os.environ, **env, **{k: str(v) for k, v in extra.items()}},
            cwd=env["NTSB_HOME"] + "/..",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the API did not start: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                last = httpx.get(self.url + "/health", timeout=1)
                if last.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the API did not answer /health within 60 s: {last}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def api(deployment_built):
    name, settings, env = deployment_built
    # limits: test_ready_metrics_and_rate_limit's and test_malformed_claims_and_guessing's own servers
    server = Server(env, NTSB_API_RATE_LIMIT=1_000_000, NTSB_API_AUTH_FAILURE_LIMIT=1_000_000)
    yield name, settings, env, server.url
    server.stop()


def _token(env, role, ttl="1h"):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        return ntsb("token", "create", "--role", role, "--ttl", ttl).stdout.strip()


def _get(url, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, params=params, headers=headers, timeout=30)


def test_auth_roles_and_problem_details(api):
    name, settings, env, url = api
    viewer, analyst = _token(env, "viewer"), _token(env, "analyst")
    r = _get(url + "/api/v1/stats/summary")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer") and "missing bearer token" in r.json()["detail"]
    assert _get(url + "/api/v1/stats/summary", "not.a.jwt").status_code == 401
    forged = _token({**env, "NTSB_API_SECRET": "another-secret-that-is-long-enough-987654321"}, "admin")
    assert _get(url + "/api/v1/stats/summary", forged).json()["detail"].startswith("invalid token")
    expired = _token(env, "viewer", ttl="1")
    time.sleep(1.5)
    assert _get(url + "/api/v1/stats/summary", expired).json()["detail"] == "the token has expired"
    row = {"make": "CESSNA", "model": "172", "phase_of_flight": "570", "year": 2019, "hour": 14, "far_part": "091"}
    r = httpx.post(url + "/api/v1/predictions/severity", json=row, headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 403 and "needs 'analyst'" in r.json()["detail"]
    r = httpx.post(
        url + "/api/v1/predictions/severity", json=row, headers={"Authorization": f"Bearer {analyst}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["probabilities"]) == {"FATL", "SERS", "MINR", "NONE"}
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-6 and len(body["contributions"]) == 5
    assert body["model"]["alias"] == "champion" and f"model={body['model']['version']}" in r.headers["x-data-version"]


def test_malformed_claims_are_401_and_guessing_tokens_gets_429(api):
    import jwt

    name, settings, env, url = api
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        secret = get_settings().api_secret_effective()
    now = int(time.time())
    good = {"sub": "x", "role": "viewer", "iat": now, "exp": now + 600, "iss": "ntsb-lakehouse", "jti": "j"}
    for bad in ({"role": ["admin"]}, {"role": {"admin": 1}}, {"role": None}, {"sub": ["x"]}, {"jti": 7}):
        token = jwt.encode({**good, **bad}, secret, algorithm="HS256")
        r = _get(url + "/api/v1/stats/summary", token)
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json", (bad, r.text)
    r = _get(url + "/api/v1/stats/summary", "eyJhbGciOiJIUzI1NiJ9.t7e3.x")
    assert r.status_code == 401 and r.json()["detail"] == "invalid token: not a well-formed JWT"
    assert _get(url + "/api/v1/stats/summary", jwt.encode(good, secret, algorithm="HS256")).status_code == 200
    extra = {}
    if "NTSB_REDIS_URL" in env:  # a counter of its own: the other servers' failures count in db 15
        import redis

        extra["NTSB_REDIS_URL"] = env["NTSB_REDIS_URL"].rsplit("/", 1)[0] + "/14"
        redis.Redis.from_url(extra["NTSB_REDIS_URL"]).flushdb()
    guarded = Server(env, NTSB_API_AUTH_FAILURE_LIMIT=5, **extra)
    try:
        codes = [_get(guarded.url + "/api/v1/stats/summary", f"guess.{i}.x").status_code for i in range(8)]
        assert codes == [401] * 5 + [429] * 3
        r = _get(guarded.url + "/api/v1/stats/summary", "guess.9.x")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        # a valid token from the same address still works
        assert _get(guarded.url + "/api/v1/stats/summary", _token(env, "viewer")).status_code == 200
    finally:
        guarded.stop()


def test_events_stats_search_analytics_against_the_warehouse(api):
    name, settings, env, url = api
    token = _token(env, "viewer")
    facts = query("SELECT ev_id, state, severity, event_date FROM marts.fact_accidents")
    with settings.warehouse.session(read_only=True) as s:
        version = serving.header(serving.data_version(s))
    r = _get(url + "/api/v1/events", token, page_size=7, sort="ev_id")
    assert r.status_code == 200 and r.headers["x-data-version"] == version
    page = r.json()
    assert page["total"] == len(facts) and [e["ev_id"] for e in page["items"]] == sorted(f["ev_id"] for f in facts)[:7]
    state = max({f["state"] for f in facts if f["state"]}, key=lambda s: sum(f["state"] == s for f in facts))
    r = _get(url + "/api/v1/events", token, state=state, severity="FATL", page_size=100)
    want = {f["ev_id"] for f in facts if f["state"] == state and f["severity"] == "FATL"}
    assert r.json()["total"] == len(want) and {e["ev_id"] for e in r.json()["items"]} == want
    # one event in full: its document holds what the marts hold for it
    ev = query("SELECT ev_id FROM marts.bridge_accident_causes ORDER BY ev_id LIMIT 1")[0]["ev_id"]  # with findings
    detail = _get(url + f"/api/v1/events/{ev}", token).json()
    fact = query(
        f"SELECT severity, make, city, aircraft_count, pilot_age FROM marts.fact_accidents WHERE ev_id = '{ev}'"
    )[0]
    keys = ("severity", "make", "city", "aircraft_count")
    assert detail["ev_id"] == ev and {k: detail[k] for k in keys} == {k: fact[k] for k in keys}
    assert (detail["crew"]["pilot_age"] is None) == (fact["pilot_age"] is None)
    assert fact["pilot_age"] is None or float(detail["crew"]["pilot_age"]) == float(fact["pilot_age"])
    aircraft = query(
        f"SELECT aircraft_key, model FROM marts.dim_aircraft WHERE ev_id = '{ev}' AND is_current ORDER BY 1"
    )
    assert [(a["aircraft_key"], a["model"]) for a in detail["aircraft"]] == [
        (a["aircraft_key"], a["model"]) for a in aircraft
    ]
    findings = query(
        f"SELECT c.cause_code FROM marts.bridge_accident_causes b JOIN marts.dim_causes c USING (cause_key) "
        f"WHERE b.ev_id = '{ev}' ORDER BY b.aircraft_key, b.occurrence_no, b.seq_no"
    )
    assert [f["cause_code"] for f in detail["findings"]] == [f["cause_code"] for f in findings] != []
    with_text = query("SELECT ev_id FROM marts.narratives ORDER BY ev_id LIMIT 1")[0]["ev_id"]
    narratives = query(f"SELECT narrative FROM marts.narratives WHERE ev_id = '{with_text}' ORDER BY aircraft_key")
    assert [n["narrative"] for n in _get(url + f"/api/v1/events/{with_text}", token).json()["narratives"]] == [
        n["narrative"] for n in narratives
    ]
    predicted = query(f"SELECT predicted_class, p_fatal_outcome FROM ml.batch_predictions WHERE ev_id = '{ev}'")[0]
    assert detail["prediction"]["model_name"] == "ntsb-severity"
    assert detail["prediction"]["predicted_class"] == predicted["predicted_class"]
    assert abs(detail["prediction"]["p_fatal_outcome"] - predicted["p_fatal_outcome"]) < 1e-9
    assert detail["prediction"]["predicted_at"].endswith(("Z", "+00:00"))
    assert _get(url + "/api/v1/events/NOSUCHEVENT1", token).status_code == 404
    summary = _get(url + "/api/v1/stats/summary", token).json()
    assert summary["events"] == len(facts) and summary["fatal_events"] == sum(f["severity"] == "FATL" for f in facts)
    yearly = _get(url + "/api/v1/stats/yearly", token).json()["items"]
    assert sum(y["events"] for y in yearly) == len(facts)
    for path in ("by-state", "by-aircraft-type", "by-phase"):
        assert _get(url + f"/api/v1/stats/{path}", token).json()["items"]
    # search: every hit contains the word; ranked; highlighted
    word = "turbulence"
    hits = _get(url + "/api/v1/search", token, q=word, mode="keyword", limit=5).json()["items"]
    narr = {
        r["ev_id"]
        for r in query(
            "SELECT ev_id FROM marts.narratives WHERE lower(coalesce(narrative, '') || ' ' "
            f"|| coalesce(probable_cause, '')) LIKE '%{word}%'"
        )
    }
    assert hits and {h["ev_id"] for h in hits} <= narr and len(hits) == min(5, len(narr))
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all("<mark>" in h["snippet"].lower() for h in hits)
    assert _get(url + "/api/v1/analytics/time-series", token).json()["items"]
    assert _get(url + "/api/v1/analytics/geospatial", token).json()["type"] == "FeatureCollection"
    assert _get(url + "/api/v1/analytics/correlations", token).json()["items"]
    info = _get(url + "/api/v1/models/info", token).json()
    assert info["alias"] == "champion" and set(info["metrics"]) == {"fatal", "severity"}


def test_search_by_meaning_hybrid_and_similar_events(api):
    """The three modes and similar events over the sample's narratives, against the vectors
    the asset graph wrote to the warehouse (and, embedded, copied into the snapshot)."""
    from ntsb_assets.lib import narratives as N

    name, settings, env, url = api
    token = _token(env, "viewer")
    lake = settings.lake.read_parquet(N.VECTORS_KEY)
    stored = query("SELECT ev_id, aircraft_key, field, chunk_no, char_start, char_end FROM ml.narrative_vectors")
    assert len(stored) == lake.num_rows > 0
    texts = {
        (r["ev_id"], r["aircraft_key"]): r
        for r in query("SELECT ev_id, aircraft_key, narrative, probable_cause FROM marts.narratives")
    }
    # a passage's own words find its event first by meaning, and the passage shown is that window
    longest = max(stored, key=lambda r: r["char_end"] - r["char_start"])
    ev = longest["ev_id"]
    own = texts[(ev, longest["aircraft_key"])][longest["field"]][longest["char_start"] : longest["char_end"]]
    q = own[:900]
    found = _get(url + "/api/v1/search", token, q=q, mode="semantic", limit=5).json()
    assert found["mode"] == "semantic" and found["items"][0]["ev_id"] == ev, found["items"][:2]
    top = found["items"][0]
    assert top["passage"]["score"] == pytest.approx(top["score"]) and top["score"] > 0.9
    p = top["passage"]
    assert p["text"] == texts[(ev, p["aircraft_key"])][p["field"]][p["start"] : p["end"]]
    assert [h["score"] for h in found["items"]] == sorted((h["score"] for h in found["items"]), reverse=True)
    assert [h["ranks"]["semantic"] for h in found["items"]] == [1, 2, 3, 4, 5]
    # hybrid: reciprocal rank fusion of three rankings (keyword, semantic, keyword expanded by
    # the semantic ranking's first events), each hit's score the sum over its ranks
    hybrid = _get(url + "/api/v1/search", token, q="engine lost power", limit=10).json()
    assert hybrid["mode"] == "hybrid" and hybrid["items"]
    for h in hybrid["items"]:
        ranks = [r for r in h["ranks"].values() if r]
        assert ranks and h["score"] == pytest.approx(sum(1 / (N.RRF_K + r) for r in ranks))
        assert h["passage"] is None or h["passage"]["score"] is not None
    keyword = _get(url + "/api/v1/search", token, q="engine lost power", mode="keyword", limit=10).json()["items"]
    assert [h["ranks"]["keyword"] for h in keyword] == list(range(1, len(keyword) + 1))
    assert all(h["passage"] is None or h["passage"]["score"] is None for h in keyword)
    # the filters hold in every mode
    facts = {r["ev_id"]: r for r in query("SELECT ev_id, severity, state FROM marts.fact_accidents")}
    for mode in ("keyword", "semantic", "hybrid"):
        hits = _get(url + "/api/v1/search", token, q="engine power", mode=mode, severity="FATL", limit=50).json()
        assert hits["items"] and {facts[h["ev_id"]]["severity"] for h in hits["items"]} == {"FATL"}, mode
    # similar events: nearest first, never the event itself, the filters honoured
    near = _get(url + f"/api/v1/events/{ev}/similar", token, limit=5).json()
    assert near["ev_id"] == ev and len(near["items"]) == 5 and ev not in {h["ev_id"] for h in near["items"]}
    assert [h["score"] for h in near["items"]] == sorted((h["score"] for h in near["items"]), reverse=True)
    fatal = _get(url + f"/api/v1/events/{ev}/similar", token, limit=5, severity="FATL").json()["items"]
    assert fatal and {facts[h["ev_id"]]["severity"] for h in fatal} == {"FATL"}
    # similar without a narrative, or without an event: 404 with a clear detail
    silent = sorted(set(facts) - {r["ev_id"] for r in stored})
    assert silent, "the sample has events without a narrative"
    r = _get(url + f"/api/v1/events/{silent[0]}/similar", token)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "has no narrative" in r.json()["detail"]
    r = _get(url + "/api/v1/events/NOSUCHEVENT1/similar", token)
    assert r.status_code == 404 and r.json()["detail"] == "no event 'NOSUCHEVENT1'"
    for q in ("", "   ", "x" * 1001):
        r = _get(url + "/api/v1/search", token, q=q)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", q
    assert _get(url + "/api/v1/search", token, q="x" * 1000, mode="semantic").status_code == 200
    assert _get(url + "/api/v1/search", token, q="Ωμέγα ∑ 飞机 \x00 ☃", mode="hybrid").status_code == 200
    # the topics asset: every event with a vector in one topic, each labelled, counted per year
    topics = settings.lake.read_parquet("analytics/topics/topics.parquet").to_pylist()
    assigned = settings.lake.read_parquet("analytics/topics/assignments.parquet")
    assert len(topics) >= 2 and all(t["label"] for t in topics)
    assert sorted(assigned.column("ev_id").to_pylist()) == sorted({r["ev_id"] for r in stored})
    assert sum(t["events"] for t in topics) == assigned.num_rows


def test_hostile_input_gets_4xx_never_a_trace(api):
    name, settings, env, url = api
    token, analyst = _token(env, "viewer"), _token(env, "analyst")
    bad = [
        ("/api/v1/events", {"state": "'; DROP TABLE marts.fact_accidents; --"}),
        ("/api/v1/events", {"page_size": 10**9}),
        ("/api/v1/events", {"page": -1}),
        ("/api/v1/events", {"date_from": "yesterday"}),
        ("/api/v1/events", {"sort": "ev_id; drop"}),
        ("/api/v1/events", {"date_to": "0"}),
        ("/api/v1/events", {"date_from": "2021-02-30"}),
        ("/api/v1/search", {"q": ""}),
        ("/api/v1/search", {"q": "x" * 1001}),
        ("/api/v1/search", {"q": " \t "}),
        ("/api/v1/search", {"q": "fuel", "mode": "vibes"}),
        ("/api/v1/events/ZZ9/similar", {"limit": 0}),
        ("/api/v1/stats/by-aircraft-type", {"limit": "many"}),
    ]
    for path, params in bad:
        r = _get(url + path, token, **params)
        assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json", (path, params)
        assert "Traceback" not in r.text
    r = _get(url + "/api/v1/search", token, q="' OR 1=1 --")
    assert r.status_code == 200  # a query, not SQL
    r = _get(url + "/api/v1/events", token, date_from="2020-01-01", date_to="2019-01-01")
    assert r.status_code == 200 and r.json()["total"] == 0  # a reversed range matches nothing
    headers = {"Authorization": f"Bearer {analyst}", "content-type": "application/json"}
    for body in (
        b"{not json",
        b'{"year": "nineteen"}',
        b'{"latitude": 123}',
        b'{"hour": 24}',
        b'{"inj_tot_f": 1}',
        b'{"rows": []}',
        b'{"airport_distance_sm": false}',
        b'{"make": 7}',
    ):
        r = httpx.post(url + "/api/v1/predictions/severity", content=body, headers=headers)
        assert r.status_code == 422 and "Traceback" not in r.text, body
    r = httpx.post(url + "/api/v1/predictions/batch", json={"rows": [{}] * 1001}, headers=headers)
    assert r.status_code == 422
    r = httpx.post(
        url + "/api/v1/predictions/batch", json={"rows": [{"make": "PIPER"}, {}]}, headers=headers, timeout=30
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    assert query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"] > 0


def test_ready_metrics_and_rate_limit(api):
    name, settings, env, url = api
    ready = httpx.get(url + "/ready", timeout=60)
    assert ready.status_code == 200 and ready.json()["checks"]["model"].startswith("ok")
    metrics = httpx.get(url + "/metrics").text
    assert 'ntsb_api_requests_total{method="GET",route="/api/v1/events",status="200"}' in metrics
    assert "ntsb_api_request_seconds_bucket" in metrics and "ntsb_api_predictions_total" in metrics
    limited = Server(env, NTSB_API_RATE_LIMIT=5)
    try:
        token = _token(env, "viewer")
        codes = [_get(limited.url + "/api/v1/stats/summary", token).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        r = _get(limited.url + "/api/v1/stats/summary", token)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert _get(limited.url + "/api/v1/stats/summary", _token(env, "viewer")).status_code == 200  # per token
        # a prediction passes two role checks and counts once
        headers = {"Authorization": f"Bearer {_token(env, 'analyst')}"}
        codes = [
            httpx.post(
                limited.url + "/api/v1/predictions/severity", json={"year": 2020}, headers=headers, timeout=30
            ).status_code
            for _ in range(6)
        ]
        assert codes == [200] * 5 + [429]
    finally:
        limited.stop()
    if name == "production":  # Redis down: data routes refuse (503) rather than go unlimited; liveness answers
        cut = Server(env, NTSB_REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0")
        try:
            r = _get(cut.url + "/api/v1/stats/summary", _token(env, "viewer"))
            assert r.status_code == 503 and "rate limiter" in r.json()["detail"], r.text
            assert httpx.get(cut.url + "/health").status_code == 200
            ready = httpx.get(cut.url + "/ready", timeout=60)
            assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["rate_limiter"]
        finally:
            cut.stop()


def test_responses_are_cached_per_data_version(api):
    """PostgreSQL: the API reads the marts directly, and caches responses per data version;
    a new ``serving.published`` row (serving/snapshot) starts a new version."""
    name, settings, env, url = api
    if name != "production":
        pytest.skip("embedded: a new snapshot is a new version (test_snapshot_switch_under_concurrent_requests)")
    token = _token(env, "viewer")
    before = _get(url + "/api/v1/events", token, page_size=1).json()["total"]
    with settings.warehouse.session() as s:
        s.execute("DELETE FROM marts.fact_accidents WHERE ev_id = (SELECT max(ev_id) FROM marts.fact_accidents)")
    assert _get(url + "/api/v1/events", token, page_size=1).json()["total"] == before  # the same version
    serving.record_published(settings.warehouse)
    deadline = time.time() + 15  # read again within 5 s
    while _get(url + "/api/v1/events", token, page_size=1).json()["total"] == before and time.time() < deadline:
        time.sleep(0.5)
    assert _get(url + "/api/v1/events", token, page_size=1).json()["total"] == before - 1


def test_snapshot_switch_under_concurrent_requests(api):
    name, settings, env, url = api
    if name != "embedded":
        pytest.skip("PostgreSQL: the API reads the marts directly, there is no snapshot to switch")
    token = _token(env, "viewer")
    before = _get(url + "/api/v1/stats/summary", token)
    old_version, old_events = before.headers["x-data-version"], before.json()["events"]
    # a new warehouse state: one event fewer, then a new snapshot while readers keep reading
    with settings.warehouse.session() as s:
        s.execute("DELETE FROM marts.fact_accidents WHERE ev_id = (SELECT min(ev_id) FROM marts.fact_accidents)")
        s.execute(
            "UPDATE marts.agg_yearly_stats SET events = events - 1 WHERE year = (SELECT min(year) FROM "
            "marts.agg_yearly_stats)"
        )
        s.execute("DELETE FROM raw._releases WHERE release_id = (SELECT max(release_id) FROM raw._releases)")
    seen, errors, stop = [], [], threading.Event()

    def reader():
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            while not stop.is_set():
                r = c.get(url + "/api/v1/stats/summary")
                if r.status_code != 200:
                    errors.append(r.text)
                seen.append((r.headers.get("x-data-version"), r.json().get("events")))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    snap = serving.publish(settings.warehouse.path, settings.serving_dir)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    new_version = serving.header(snap.version)
    assert not errors and new_version != old_version
    # every answer is one whole snapshot: its version header matches its numbers
    assert set(seen) <= {(old_version, old_events), (new_version, old_events - 1)}
    assert seen[-1] == (new_version, old_events - 1)
    assert _get(url + "/api/v1/stats/summary", token).headers["x-data-version"] == new_version


def test_a_snapshot_started_from_the_current_one_equals_one_built_whole(api, tmp_path):
    """The next snapshot starts as a copy of the current one and rewrites only the events
    whose document or narratives changed: it holds exactly what a whole build holds."""
    import sqlite3

    import duckdb

    name, settings, env, url = api
    if name != "embedded":
        pytest.skip("PostgreSQL: the API reads the marts directly, there is no snapshot")
    token = _token(env, "viewer")
    with settings.warehouse.session() as s:
        row = s.query(
            "SELECT ev_id, aircraft_key FROM marts.narratives WHERE ev_id IN "
            "(SELECT ev_id FROM marts.fact_accidents) ORDER BY ev_id LIMIT 1"
        ).to_pylist()[0]
        ev_id, key = row["ev_id"], row["aircraft_key"]
        s.execute(
            "UPDATE marts.narratives SET narrative = narrative || ' Hydroplaning zzyzx.' "
            "WHERE ev_id = ? AND aircraft_key = ?",
            [ev_id, key],
        )
        gone = s.query("SELECT max(ev_id) AS e FROM marts.fact_accidents").column(0)[0].as_py()
        s.execute("DELETE FROM marts.fact_accidents WHERE ev_id = ?", [gone])
        s.execute(
            "UPDATE marts.agg_yearly_stats SET events = events + 1 WHERE year = (SELECT min(year) FROM "
            "marts.agg_yearly_stats)"
        )  # a table without ev_id
    before = serving.current(settings.serving_dir)[0]
    snap = serving.publish(settings.warehouse.path, settings.serving_dir)
    assert snap.build["base"] == before.name
    assert snap.build["documents_written"] == 2 and snap.build["narratives_indexed"] == 1  # the edited and the gone
    copied = snap.build["tables_copied"]  # only the rows of changed events are written again
    assert (copied["marts.fact_accidents"], copied["marts.narratives"]) == ("1 events", "1 events")
    assert (copied["marts.dim_aircraft"], copied["marts.dim_causes"]) == ("0 events", "unchanged")
    assert copied["marts.agg_yearly_stats"] == "whole"
    whole = serving.publish(settings.warehouse.path, tmp_path / "whole", whole=True)
    assert whole.build["base"] is None
    con = duckdb.connect()
    con.execute(f"ATTACH '{snap.path}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{whole.path}' AS b (READ_ONLY)")
    tables = con.execute(
        "SELECT DISTINCT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = 'b' "
        "AND table_name NOT IN ('serving_version', 'serving_build')"
    ).fetchall()
    assert {"main.search_terms", "main.document_hashes", "marts.narratives"} <= {t for (t,) in tables}
    for (t,) in tables:
        assert (
            con.execute(f"SELECT count(*) FROM (SELECT * FROM a.{t} EXCEPT ALL SELECT * FROM b.{t})").fetchone()[0] == 0
        ), t
        assert (
            con.execute(f"SELECT count(*) FROM (SELECT * FROM b.{t} EXCEPT ALL SELECT * FROM a.{t})").fetchone()[0] == 0
        ), t
    docs = sqlite3.connect(serving.documents_path(snap.path))
    docs.execute(f"ATTACH '{serving.documents_path(whole.path)}' AS b")
    assert docs.execute("SELECT count(*) FROM documents WHERE ev_id = ?", [gone]).fetchone()[0] == 0
    for a, b in (("main", "b"), ("b", "main")):
        assert (
            docs.execute(
                f"SELECT count(*) FROM (SELECT * FROM {a}.documents EXCEPT SELECT * FROM {b}.documents)"
            ).fetchone()[0]
            == 0
        )
    hits = _get(url + "/api/v1/search", token, q="zzyzx", mode="keyword").json()
    assert [h["ev_id"] for h in hits["items"]] == [ev_id]
    assert _get(url + f"/api/v1/events/{gone}", token).status_code == 404
    # documents built to another shape (the marts' yml served other columns then): not reused
    assert snap.build["document_layout"] == serving.document_layout()
    other = tmp_path / "other"
    shutil.copytree(settings.serving_dir, other)
    current = serving.current(other)[0]
    with duckdb.connect(str(current)) as con:
        con.execute("UPDATE serving_build SET build = ?", [json.dumps({**snap.build, "document_layout": "x"})])
    assert serving.publish(settings.warehouse.path, other).build["base"] is None


def test_schemathesis_finds_no_server_error_and_no_schema_violation(api):
    """Property-based requests from the OpenAPI document (bounded: 10 examples per
    operation, fixed seed): no 5xx, every response matches its documented schema and
    content type, schema-violating requests are refused."""
    name, settings, env, url = api
    token = _token(env, "analyst")
    exe = str(__import__("pathlib").Path(sys.executable).with_name("schemathesis"))
    out = subprocess.run(
        [
            exe,
            "run",
            url + "/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "10",
            "--seed",
            "7",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stdout[-6000:]
    document = httpx.get(url + "/openapi.json").json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations >= 18 and f"Tested: {operations}" in out.stdout, out.stdout[-3000:]  # every operation


def test_docs_pages_work_offline_in_chromium(api):
    """/docs and /redoc load every script and style from the API itself (no CDN, no web
    fonts), render in headless Chromium, and show the bearer "Authorize" button."""
    import re

    from tests.integration.browser import ARTIFACTS, render

    name, settings, env, url = api
    for page, marker in (("/docs", "Authorize"), ("/redoc", "List events")):
        html = httpx.get(url + page, timeout=30).text
        external = [
            u
            for u in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html) + re.findall(r"url\(([^)]+)\)", html)
            if "//" in u
        ]
        assert not external, f"{page} loads {external}"
        for asset in re.findall(r"""(?:src|href)\s*=\s*["'](/[^"']+)""", html):
            r = httpx.get(url + asset, timeout=30)
            assert r.status_code == 200 and len(r.content) > 1000, (page, asset, r.status_code)
        if name == "embedded":  # one deployment is enough for the browser
            dom = render(url + page, screenshot=ARTIFACTS / f"api{page.replace('/', '_')}.png", wait_ms=15000)
            assert marker in dom, f"{page} did not render: {dom[:500]}"


def test_ready_without_a_champion_serves_data_and_predictions_say_why(api, tmp_path):
    """Readiness is "can serve data": with no champion in the registry /ready is 200 and
    names the missing model; the data routes answer, predictions are a clear 503."""
    name, settings, env, url = api
    if name != "embedded":
        pytest.skip("the registry is the same on both deployments")
    empty = Server(env, NTSB_MLFLOW_URI=f"sqlite:///{tmp_path / 'empty-registry.db'}")
    try:
        ready = httpx.get(empty.url + "/ready", timeout=120)
        body = ready.json()
        assert ready.status_code == 200 and body["status"] == "ready", body
        assert body["checks"]["data"] == "ok" and body["checks"]["model"].startswith("no champion model"), body
        token = _token(env, "analyst")
        assert _get(empty.url + "/api/v1/stats/summary", token).status_code == 200
        r = httpx.post(
            empty.url + "/api/v1/predictions/severity",
            json={"year": 2020},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert r.status_code == 503 and r.json()["detail"].startswith("no champion model"), r.text
        assert r.headers["content-type"] == "application/problem+json" and "retry-after" in r.headers
    finally:
        empty.stop()


# ---- the dashboard, on the same built deployment: every page in Streamlit's AppTest,
# its numbers against the warehouse; then every page in Chromium

DASHBOARD_PAGES = {  # page -> text it shows once rendered
    "overview": "Events per year",
    "trends": "Events per year by highest injury",
    "map": "events with coordinates",
    "aircraft": "Minimum events per make and model",
    "causes": "Pareto of findings",
    "explorer": "Search the narratives",
    "quality": "Reconciliation",
    "model": "Metrics against the baselines",
}


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def test_dashboard_pages_show_the_warehouse_numbers(api):
    name, settings, env, url = api
    facts = query(
        "SELECT count(*) AS events, sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal, "
        "coalesce(sum(fatalities), 0) AS fatalities FROM marts.fact_accidents"
    )[0]
    from ntsb_api.store import open_store

    counts = open_store(settings).pin().breakdown({}, ("year", "severity"))  # numbers, on both warehouses
    assert all(str(counts[c].dtype) in ("int32", "int64", "float64") for c in ("year", "events", "fatalities"))
    at = dashboard_page("overview")
    m = _metrics(at)
    assert (_n(m["Events"]), _n(m["Fatal events"]), _n(m["Fatalities"])) == (
        facts["events"],
        facts["fatal"],
        facts["fatalities"],
    )
    assert any("Data version" in c.value for c in at.caption)
    assert "data" in at.query_params  # the version is in the address

    # filters change the numbers exactly as SQL says they must
    state = query(
        "SELECT state FROM marts.fact_accidents WHERE state IS NOT NULL GROUP BY state "
        "ORDER BY count(*) DESC, state LIMIT 1"
    )[0]["state"]
    for params, where in (
        ({"state": state}, f"state = '{state}'"),
        (
            {"state": state, "years": "1990-2010"},
            f"state = '{state}' AND event_date >= DATE '1990-01-01' AND event_date < DATE '2011-01-01'",
        ),
        ({"severity": "FATL,SERS"}, "severity IN ('FATL', 'SERS')"),
    ):
        want = query(
            f"SELECT count(*) AS n, sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal "
            f"FROM marts.fact_accidents WHERE {where}"
        )[0]
        m = _metrics(dashboard_page("trends", **params))
        assert (_n(m["Events"]), _n(m["Fatal events"])) == (want["n"], want["fatal"]), (params, m)
        mapped = dashboard_page("map", **params)
        located = query(
            f"SELECT count(*) AS n FROM marts.fact_accidents WHERE {where} "
            "AND latitude IS NOT NULL AND longitude IS NOT NULL"
        )[0]["n"]
        assert any(h.value == f"{located:,} events with coordinates" for h in mapped.subheader), params
        assert mapped.query_params.get("state") == params.get("state")  # the view stays in the address

    # aircraft: every make and model with 10+ events, with its counts
    table = dashboard_page("aircraft").dataframe[0].value
    want = query(
        "SELECT make, model, count(*) AS events, sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal "
        "FROM marts.fact_accidents WHERE make IS NOT NULL GROUP BY make, model HAVING count(*) >= 10"
    )
    assert {(r.make, r.model, r.events, r.fatal_events) for r in table.itertuples()} == {
        (w["make"], w["model"], w["events"], w["fatal"]) for w in want
    }
    assert (table.ci_low <= table.fatal_rate + 1e-12).all() and (table.fatal_rate <= table.ci_high + 1e-12).all()

    # causes: the Pareto's table is the findings' event counts
    causes = dashboard_page("causes").dataframe[0].value
    want = query(
        "SELECT c.cause_code, count(DISTINCT b.ev_id) AS n FROM marts.bridge_accident_causes b "
        "JOIN marts.dim_causes c ON c.cause_key = b.cause_key WHERE b.cause_kind = 'finding' GROUP BY 1"
    )
    assert dict(zip(causes.cause_code, causes.events, strict=True)) == {w["cause_code"]: w["n"] for w in want}
    assert list(causes.events) == sorted(causes.events, reverse=True)

    # event explorer: the list, a keyword search, one event's page with the model's explanation
    listed = dashboard_page("explorer").dataframe[0].value
    assert len(listed) == min(1000, facts["events"]) and listed.event_date.is_monotonic_decreasing
    word = "turbulence"
    found = dashboard_page("explorer", q=word, mode="keyword").dataframe[0].value
    narr = {
        r["ev_id"]
        for r in query(
            "SELECT ev_id FROM marts.narratives WHERE lower(coalesce(narrative, '') || ' ' "
            f"|| coalesce(probable_cause, '')) LIKE '%{word}%'"
        )
    }
    assert len(found) and set(found.ev_id) <= narr
    # by meaning and hybrid (the default): the API's ranking, with each hit's passage
    token = _token(env, "viewer")
    for mode, params in (("semantic", {"mode": "semantic"}), ("hybrid", {})):
        q = "the engine quit and the pilot made a forced landing in a field"
        found = dashboard_page("explorer", q=q, **params).dataframe[0].value
        api_hits = _get(url + "/api/v1/search", token, q=q, mode=mode, limit=100).json()["items"]
        assert list(found.ev_id) == [h["ev_id"] for h in api_hits], mode
        assert found.passage.notna().all(), mode
    ev = query(
        "SELECT b.ev_id FROM marts.bridge_accident_causes b JOIN ml.batch_predictions p ON p.ev_id = b.ev_id "
        "ORDER BY b.ev_id LIMIT 1"
    )[0]["ev_id"]
    page = dashboard_page("explorer", event=ev)
    assert page.header[0].value.startswith(ev)
    codes = query(
        f"SELECT c.cause_code FROM marts.bridge_accident_causes b JOIN marts.dim_causes c "
        f"ON c.cause_key = b.cause_key WHERE b.ev_id = '{ev}' AND b.cause_kind = 'finding'"
    )
    findings = next(d.value for d in page.dataframe if "cause_code" in d.value.columns)
    assert sorted(findings.cause_code) == sorted(c["cause_code"] for c in codes)
    with_text = query(
        "SELECT ev_id, narrative FROM marts.narratives WHERE narrative IS NOT NULL ORDER BY ev_id LIMIT 1"
    )[0]
    page_of_text = dashboard_page("explorer", event=with_text["ev_id"])
    shown = [" ".join(t.value.split()) for t in page_of_text.text]
    assert " ".join(with_text["narrative"].split()) in shown
    similar = next(d.value for d in page_of_text.dataframe if "similarity" in d.value.columns)
    near = _get(url + f"/api/v1/events/{with_text['ev_id']}/similar", token).json()["items"]
    assert list(similar.ev_id) == [h["ev_id"] for h in near] and len(near) == 10
    text = " ".join(m.value for m in page.markdown)
    predicted = query(f"SELECT predicted_class FROM ml.batch_predictions WHERE ev_id = '{ev}'")[0]["predicted_class"]
    assert "Predicted **" + {"FATL": "fatal", "SERS": "serious", "MINR": "minor", "NONE": "none"}[predicted] in text
    assert "SHAP contribution" in text, text

    # data quality: the reconciliation's totals, every check's latest result
    page = dashboard_page("quality")
    m = _metrics(page)
    rec = query("SELECT sum(rows_in) AS rows_in, sum(quarantined) AS q, count(*) AS n FROM raw._reconciliation")[0]
    assert (_n(m["Rows in"]), _n(m["Quarantined"]), m["Tables balanced"]) == (
        rec["rows_in"],
        rec["q"],
        f"{rec['n']} of {rec['n']}",
    )
    assert _n(m["Checks"]) > 0 and _n(m["Passed"]) > 0

    # the model: the registry's champion
    from ntsb_assets.lib import tracking

    with tracking.session(tracking.Store.from_settings(settings)) as client:
        champion = tracking.champion_version(client)
    assert _metrics(dashboard_page("model"))["Champion version"] == champion


def test_dashboard_no_match_and_hostile_links(api):
    """A filter that matches nothing says so; a hostile or broken URL query is ignored
    (named to the reader), never reaches SQL and never raises."""
    name, settings, env, url = api
    if name != "embedded":
        pytest.skip("the page code is the same on both deployments (the numbers are tested on both)")
    empty = query(
        "SELECT state FROM marts.fact_accidents WHERE state IS NOT NULL GROUP BY state "
        "HAVING sum(CASE WHEN severity = 'FATL' THEN 1 ELSE 0 END) = 0 ORDER BY state LIMIT 1"
    )[0]["state"]
    for page in ("trends", "map", "explorer"):
        at = dashboard_page(page, state=empty, severity="FATL")
        assert any("No events match these filters" in i.value for i in at.info), page
    total = query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"]
    hostile = {
        "state": "CA' OR '1'='1",
        "years": "1900-99999",
        "far_part": "<script>alert(1)</script>",
        "weather": "x" * 5000,
        "category": "../../etc/passwd",
        "unknown": "1; DROP TABLE marts.fact_accidents",
        "data": "[a link](http://example.org)",
    }
    at = dashboard_page("trends", **hostile)
    assert _n(_metrics(at)["Events"]) == total  # every filter dropped
    notes = " ".join(i.value for i in at.info)
    assert "made on another data version" in notes and "example.org" not in notes  # not echoed as markdown
    ignored = " ".join(c.value for c in at.sidebar.caption)
    assert "Ignored from the link" in ignored and all(k in ignored for k in ("state", "years", "far_part", "weather"))
    at = dashboard_page("explorer", event="../../etc/passwd", q="<script>" + "y" * 3000)
    assert any("not one NTSB would issue" in w.value for w in at.warning)
    assert query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"] == total


def test_dashboard_follows_a_new_data_version_without_a_restart(api):
    """A new build is picked up at the next page run: a new snapshot (embedded) or a new
    ``serving.published`` row (PostgreSQL) gives a new version id, in the page and in the
    address, and a link made on the old one says the data changed."""
    name, settings, env, url = api
    before = dashboard_page("overview").query_params["data"]
    time.sleep(1.1)  # the version's publication time has whole seconds
    if name == "embedded":
        serving.publish(settings.warehouse.path, settings.serving_dir)
    else:
        serving.record_published(settings.warehouse)
        time.sleep(6)  # the store reads serving.published again after its TTL (5 s)
        dashboard_page("overview")  # the first run after the TTL starts the background refresh
        time.sleep(1)
    at = dashboard_page("trends", data=before)
    after = at.query_params["data"]
    assert after != before and any(f"`{after}`" in c.value for c in at.caption)
    assert any("the data has changed since" in i.value for i in at.info)


def test_dashboard_pages_render_in_chromium(api):
    """`ntsb dashboard` serves every page to a real browser: the page's key text, a chart
    or table drawn, no error box; a screenshot of each in test-artifacts/ (and, with
    NTSB_UPDATE_SCREENSHOT=1, in docs/img/ for the README)."""
    import shutil

    from tests.conftest import REPO
    from tests.integration.browser import ARTIFACTS, Browser, Server, free_port, ntsb_command

    name, settings, env, url = api
    port = free_port()
    drawn = (
        "document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg, "
        "[data-testid=stDataFrame] canvas, [data-testid=stImage] img, "
        "[data-testid=stDeckGlJsonChart] canvas').length"
    )
    with (
        Server(
            ntsb_command("dashboard", "--port", str(port)),
            f"http://127.0.0.1:{port}/_stcore/health",
            env={**os.environ, **env},
        ) as server,
        Browser(height=1300) as browser,
    ):
        for page, marker in DASHBOARD_PAGES.items():
            browser.open(f"http://127.0.0.1:{port}/{'' if page == 'overview' else page}")
            browser.wait_for(
                f"document.body.innerText.includes({marker!r}) && "
                "!document.querySelector('[data-testid=stStatusWidget]') && " + drawn + " > 0",
                timeout=90,
            )
            if page == "map":  # the points are drawn with WebGL
                browser.wait_for("document.querySelector('[data-testid=stDeckGlJsonChart] canvas')", timeout=60)
            text = browser.text()
            assert "Traceback" not in text and not browser.evaluate(
                "document.querySelectorAll('[data-testid=stException]').length"
            ), (page, text[:2000])
            shot = ARTIFACTS / f"dashboard-{name}-{page}.png"
            browser.screenshot(shot, full_page=False)
            if name == "embedded" and os.environ.get("NTSB_UPDATE_SCREENSHOT"):
                (REPO / "docs" / "img").mkdir(exist_ok=True)
                shutil.copy(shot, REPO / "docs" / "img" / f"dashboard-{page}.png")
        assert server.proc.poll() is None
