"""The whole graph on real NTSB data, on both deployments: 53,193 real events of 1948-2002
(``../shared/data/ntsb/real_1948_2002``, avall's ``mdb-export`` layout), then the real Part 121
and 2025 update tables loaded on top. Embedded, the base release is the folder as it is, a
core-only export (events, aircraft, narratives, no code tables: checked and labelled against
the bundled baseline); on PostgreSQL, the same events with the avall reference tables beside
them (data dictionary, ct_iaids, ct_seqevt, Country, states). ``NTSB_REAL_PAIRINGS=swapped``
builds the other two pairings (embedded with the code tables, PostgreSQL without), ``all`` the
four.

Each deployment is built once (module fixture) through the CLI a user runs: ``ntsb ingest``,
then ``ntsb build`` with the default checks; the tests read what it built."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from ntsb_assets.lib import codes, narratives
from ntsb_assets.settings import get_settings
from tests.conftest import REPO, deployment_home
from tests.integration.helpers import dashboard_page, ntsb, query
from tests.integration.test_api import Server

SHARED = Path(os.environ.get("NTSB_SHARED_DATA", REPO.parent / "shared" / "data")) / "ntsb"
BASE = SHARED / "real_1948_2002"
REFERENCE = SHARED / "avall_2008_mdbexport"
REFERENCE_TABLES = [f"{t}.csv" for t in codes.SOURCES]
UPDATES = [SHARED / "part121_1982_2019", SHARED / "updates_2025"]

# The first test of each deployment builds it (module fixture): two releases of real data through
# ingest, dbt, the archive, the analytics (with the narratives' embedding, EMBED_CAP below) and
# the model, which outlasts the suite's 900 s a test on a busy machine
pytestmark = pytest.mark.timeout(2400)

if not BASE.is_dir():  # CI has it (.ci/run sets CI): there, a missing folder is a failure
    if os.environ.get("CI"):
        raise RuntimeError(f"the real NTSB data is missing: {BASE} (set NTSB_SHARED_DATA)")
    pytest.skip(f"real NTSB data not found at {BASE} (set NTSB_SHARED_DATA)", allow_module_level=True)


def _build(stage: str) -> dict:
    """``ntsb build`` with the default checks; what it printed as JSON. Its progress came as
    JSON lines on standard error: every stage started and finished, with the summary."""
    r = ntsb("build", "--json")
    out = json.loads(r.stdout)
    out["stage"] = stage
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    finished = {e["stage"] for e in events if e["kind"] == "finish"}
    # the model trains when its features changed beyond the threshold (always on the first build)
    assert {"dbt", "archive", "analytics", "snapshot"} | ({"model"} if out["ml"]["retrained"] else set()) <= finished
    assert out["ml"]["retrained"] or stage != "base", out["ml"]
    assert {e["stage"] for e in events if e["kind"] == "start"} == finished | {
        e["stage"] for e in events if e["kind"] == "fail"
    }
    dbt = next(e for e in events if e["kind"] == "finish" and e["stage"] == "dbt")
    assert f"dbt tests {out['transform']['tests_passed']} passed" in dbt["summary"]
    assert any(e["kind"] == "step" and e["stage"] == "dbt" and e.get("unit") == "models" for e in events)
    return out


# Embedding every real text (some 77,000 accounts and probable causes, 81,251 windows) takes
# 5 minutes of both cores on a machine with AVX-512 VNNI and about 25 without it
# (docs/benchmarks.md): CI embeds EMBED_CAP texts a build, the latest events' first
# (NTSB_EMBED_MAX_TEXTS); NTSB_REAL_EMBED_MAX=0 embeds them all. benchmarks/embeddings.py embeds
# the whole file and benchmarks/narrative_search.py searches it. Fewer than 3,000 leave the API
# test's search by meaning few accounts about animals on a runway to find.
EMBED_CAP = int(os.environ.get("NTSB_REAL_EMBED_MAX", "3000"))

# The narratives' vectors of the deployment built first, given to the second one's lake
# before its build: the texts are the same, so it embeds only texts still without vectors
# (the embedding is the lake's, not the warehouse's, so nothing deployment-specific is
# skipped: each still writes its own ml.narrative_vectors).
EMBEDDED_VECTORS: list = []
KEYWORD_HITS: list = []  # each deployment's keyword hits for the same query, in the order built


# Which deployment gets the reference tables: CI builds each deployment once, embedded on the
# core-only folder and PostgreSQL with the code tables; NTSB_REAL_PAIRINGS=swapped builds the
# other two pairings, =all the four (each build takes several minutes).
PAIRINGS = {
    "ci": [("embedded", False), ("production", True)],
    "swapped": [("embedded", True), ("production", False)],
}
PAIRINGS["all"] = PAIRINGS["ci"] + PAIRINGS["swapped"]


@pytest.fixture(
    scope="module",
    params=PAIRINGS[os.environ.get("NTSB_REAL_PAIRINGS", "ci")],
    ids=lambda p: f"{p[0]}-{'with' if p[1] else 'without'}-reference",
)
def real(request, tmp_path_factory, s3_endpoint):
    deployment, reference = request.param
    root = tmp_path_factory.mktemp(f"real_{deployment}")
    base = BASE
    if reference:  # the same events, the code tables beside them
        base = root / "real_1948_2002_with_reference"
        shutil.copytree(BASE, base, ignore=shutil.ignore_patterns("*.md"))
        for name in REFERENCE_TABLES:
            shutil.copy(REFERENCE / name, base / name)
    # Redis database 13: make test runs tests/integration/test_api.py (14 and 15) beside this one
    with deployment_home(deployment, root, s3_endpoint, redis_db=13) as env, pytest.MonkeyPatch.context() as mp:
        env["NTSB_EMBED_MAX_TEXTS"] = str(EMBED_CAP)
        mp.setenv("NTSB_EMBED_MAX_TEXTS", str(EMBED_CAP))
        given = EMBEDDED_VECTORS[0].num_rows if EMBEDDED_VECTORS else 0
        if EMBEDDED_VECTORS:  # the other deployment's vectors: only texts they lack are embedded
            lake = get_settings().lake
            lake.ensure_ready()  # a new S3 bucket is made by the first use, here before ingest
            lake.write_parquet(narratives.VECTORS_KEY, EMBEDDED_VECTORS.pop())
        loads = [json.loads(ntsb("ingest", str(base), "--json").stdout)]
        builds = [_build("base")]
        texts = {"base": _texts_embedded()}
        after_base = {
            "events": query("SELECT count(*) AS n FROM raw.events")[0]["n"],
            "facts": query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"],
        }
        for folder in UPDATES:
            loads.append(json.loads(ntsb("ingest", str(folder), "--json").stdout))
        builds.append(_build("updates"))
        texts["updates"] = _texts_embedded()
        after_updates = {
            "events": query("SELECT count(*) AS n FROM raw.events")[0]["n"],
            "facts": query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"],
        }
        lake = get_settings().lake
        vectors = lake.read_parquet(narratives.VECTORS_KEY)
        EMBEDDED_VECTORS.append(vectors)
        yield {
            "vectors": vectors.num_rows,
            "vectors given": given,
            "texts": texts,
            "deployment": deployment,
            "reference": reference,
            "env": env,
            "loads": loads,
            "builds": builds,
            "after": {"base": after_base, "updates": after_updates},
        }


def _texts_embedded() -> dict:
    """The texts with vectors in the warehouse, and the latest events' texts without one (a
    text that is only the investigation statement has nothing to embed: not counted)."""
    from ntsb_assets.lib.embeddings import has_body

    with_vectors = query("SELECT count(DISTINCT text_hash) AS n FROM ml.narrative_vectors")[0]["n"]
    unembedded = query(
        "SELECT n.ev_id, n.narrative FROM marts.narratives AS n WHERE trim(coalesce(n.narrative, '')) <> '' "
        "AND NOT EXISTS (SELECT 1 FROM ml.narrative_vectors AS v WHERE v.ev_id = n.ev_id "
        "AND v.field = 'narrative') ORDER BY n.ev_id DESC LIMIT 200"
    )
    latest = [{"ev_id": r["ev_id"]} for r in unembedded if has_body(r["narrative"])][:1]
    newest = query("SELECT max(ev_id) AS e FROM ml.narrative_vectors")[0]["e"]
    return {"distinct": with_vectors, "newest with a vector": newest, "latest without": latest}


def _env(real, mp):
    for k, v in real["env"].items():
        mp.setenv(k, v)


def test_the_narratives_are_embedded_latest_events_first(real):
    base, updates = real["texts"]["base"], real["texts"]["updates"]
    if not EMBED_CAP:  # every text has its vectors
        assert base["latest without"] == updates["latest without"] == []
        return
    if not real["vectors given"]:  # a build embeds EMBED_CAP distinct texts; the real file has more
        assert base["distinct"] == EMBED_CAP
    assert updates["distinct"] > base["distinct"]  # the next build went on with those waiting
    assert real["builds"][0]["narrative_vectors"]["waiting"] > 0  # and the build said how many wait
    # the latest events' texts first: the 2025 update's (the latest of all) have their vectors
    assert updates["latest without"] and updates["latest without"][0]["ev_id"] < "2018"
    assert updates["newest with a vector"] >= "2018"


def test_every_row_is_accounted_for_and_every_build_passes_its_blocking_checks(real):
    base = real["loads"][0]["tables"]
    assert base["events"]["rows_in"] == 53_193 and base["aircraft"]["rows_in"] == 53_976
    for load in real["loads"]:
        for table, c in load["tables"].items():
            assert c["rows_in"] == c["inserted"] + c["updated"] + c["unchanged"] + c["quarantined"], table
    assert base["events"]["quarantined"] == 0 and base["aircraft"]["quarantined"] == 0
    # fact rows = loaded events, after the base and after the updates on top (the 2025 events are
    # new; Part 121 revises events of 1982-2002 and adds later ones)
    assert real["after"]["base"] == {"events": 53_193, "facts": 53_193}
    after = real["after"]["updates"]
    assert after["events"] > 53_193 and after["facts"] == after["events"]
    for build in real["builds"]:
        t = build["transform"]
        assert t["checks_failed"] == 0, (build["stage"], t)
        ml = build["ml"]
        assert all(ml["checks"].values()), (build["stage"], ml)
        # a champion, and its prediction for every event
        assert ml["champion"] is not None and ml["predictions"] == real["after"][build["stage"]]["events"]


def test_every_coded_value_is_labelled_or_counted_in_the_lag_report(real):
    with pytest.MonkeyPatch.context() as mp:
        _env(real, mp)
        settings = get_settings()
        with settings.warehouse.session(read_only=True) as s:
            known = codes.known_sets(s)
            lag = {
                (r["table_name"], r["column_name"], r["code"])
                for r in s.query("SELECT table_name, column_name, code FROM raw._code_lag").to_pylist()
            }
            raw_tables = {
                t: set(c)
                for t in s.table_names()
                if not t.startswith("_")
                for c in [
                    [
                        r["column_name"]
                        for r in s.query(
                            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                            f"AND table_name = '{t}'"
                        ).to_pylist()
                    ]
                ]
            }
            checked, unlabelled = 0, []
            for (table, column), listed in known.items():
                if column not in raw_tables.get(table, ()):
                    continue
                values = s.query(f'SELECT DISTINCT upper(trim(CAST("{column}" AS VARCHAR))) AS v FROM raw."{table}"')
                for v in values.column("v").to_pylist():
                    if codes.normalise_code(v) is None:
                        continue
                    checked += 1
                    if v not in listed and (table, column, v) not in lag:
                        unlabelled.append((table, column, v))
            assert checked > 50 and unlabelled == [], unlabelled[:20]
            # the marts: a label wherever there is a code, "unknown code" only for a code in the lag report
            for model, code, label, table, column in (
                ("fact_accidents", "event_type", "event_type_label", "events", "ev_type"),
                ("fact_accidents", "state", "state_label", "events", "ev_state"),
                ("fact_accidents", "country", "country_label", "events", "ev_country"),
                ("fact_accidents", "far_part", "far_part_label", "aircraft", "far_part"),
                ("dim_aircraft", "category", "category_label", "aircraft", "acft_category"),
                ("dim_aircraft", "damage", "damage_label", "aircraft", "damage"),
                ("dim_weather", "weather_condition", "weather_condition_label", "events", "wx_cond_basic"),
            ):
                rows = s.query(
                    f"SELECT {code} AS code, {label} AS label, count(*) AS n FROM marts.{model} "
                    f"WHERE {code} IS NOT NULL GROUP BY 1, 2"
                ).to_pylist()
                assert rows, model
                for r in rows:
                    assert r["label"], (model, r)
                    if r["label"] == codes.UNKNOWN_LABEL:
                        assert (table, column, r["code"]) in lag, (model, r)
                    else:
                        assert r["code"] in known[(table, column)], (model, r)
            # the labels are NTSB's wording, from the code sets
            cats = {
                r["category"]: r["category_label"]
                for r in s.query(
                    "SELECT DISTINCT category, category_label FROM marts.dim_aircraft WHERE category IN ('AIR', 'HELI')"
                ).to_pylist()
            }
            assert cats == {"AIR": "Airplane", "HELI": "Helicopter"}
            # the 2025 updates use injury person categories the 2008 code tables lack: lag, reported
            assert ("injury", "inj_person_category", "FLIG") in lag
            sources = {r["source"] for r in s.query("SELECT DISTINCT source FROM raw._code_sets").to_pylist()}
            assert {"ct_iaids", "eADMSPUB_DataDictionary", "ct_seqevt", "Country"} <= sources  # states: all
            # its codes are in the dictionary, whose wording wins
            releases = {r["release_id"] for r in s.query("SELECT DISTINCT release_id FROM raw._code_sets").to_pylist()}
            if not real["reference"]:  # no code tables delivered: the bundled baseline labels everything
                assert releases == {codes.BASELINE}
            else:  # the release's own tables list the same codes as the baseline: nothing changes
                assert s.query("SELECT count(*) AS n FROM raw._code_set_changes").column(0)[0].as_py() == 0


# animals on a runway, as the narratives name them: whole words ("cowl" and "horsepower" are not)
ANIMALS = re.compile(r"\b(deer|coyotes?|elk|moose|antelopes?|dogs?|cows?|cattle|horses?)\b", re.IGNORECASE)


def test_the_api_answers_from_the_champion_on_real_data(real):
    env = real["env"]
    with pytest.MonkeyPatch.context() as mp:
        _env(real, mp)
        token = ntsb("token", "create", "--role", "analyst", "--ttl", "1h").stdout.strip()
        ev = query("SELECT ev_id FROM marts.fact_accidents WHERE make IS NOT NULL ORDER BY ev_id LIMIT 1")[0]["ev_id"]
        info = json.loads(ntsb("model", "info", "--json").stdout)
    server = Server(env, NTSB_API_RATE_LIMIT=1_000_000)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/ready", timeout=30).status_code == 200
        event = httpx.get(f"{server.url}/api/v1/events/{ev}", headers=headers, timeout=30)
        assert event.status_code == 200 and event.json()["ev_id"] == ev
        row = {
            "make": "CESSNA",
            "model": "172",
            "weather_condition": "IMC",
            "state": "AK",
            "country": "USA",
            "near_airport": False,
            "is_us_registered": True,
            "year": 2001.0,
            "month": 1.0,
            "flight_purpose": "PERS",
        }
        r = httpx.post(server.url + "/api/v1/predictions/severity", json=row, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"]["version"] == info["version"] and 0 < body["p_fatal_outcome"] < 1
        assert len(body["contributions"]) == 5
        served = httpx.get(server.url + "/api/v1/models/info", headers=headers, timeout=30).json()
        assert served["champion_family"] == info["champion_family"]
        assert set(served["candidates"]) == {"xgboost", "random_forest", "logistic"}
        # search by meaning over the real narratives, and similar events
        assert query("SELECT count(*) AS n FROM ml.narrative_vectors")[0]["n"] == real["vectors"]
        q = "a wild animal darted across the strip as the airplane touched down"
        hits = {}
        for mode in ("keyword", "semantic", "hybrid"):
            r = httpx.get(
                server.url + "/api/v1/search", params={"q": q, "mode": mode, "limit": 10}, headers=headers, timeout=60
            )
            assert r.status_code == 200 and len(r.json()["items"]) == 10, (mode, r.text[:500])
            hits[mode] = r.json()["items"]
        # both deployments rank keyword search by the same BM25 index of the same narratives
        KEYWORD_HITS.append([h["ev_id"] for h in hits["keyword"]])
        assert KEYWORD_HITS[0] == KEYWORD_HITS[-1], KEYWORD_HITS
        # a passage is a window with a vector: every semantic hit has one, so has every hybrid
        # hit whose narrative is embedded (with NTSB_EMBED_MAX_TEXTS some still wait)
        hybrid = [h["ev_id"] for h in hits["hybrid"]]
        embedded = {
            r["ev_id"]
            for r in query(
                "SELECT DISTINCT ev_id FROM ml.narrative_vectors WHERE ev_id IN ("
                + ", ".join(f"'{e}'" for e in hybrid)
                + ")"
            )
        }
        passages = [h for h in hits["semantic"] + hits["hybrid"] if h["ev_id"] in embedded or h in hits["semantic"]]
        assert all(h["passage"] and h["passage"]["text"] for h in passages)
        # the passages name an animal (not the query's words) far more often than the embedded accounts do
        named = [bool(ANIMALS.search(h["passage"]["text"])) for h in hits["semantic"]]
        accounts = query(
            "SELECT DISTINCT n.ev_id, n.narrative FROM marts.narratives AS n "
            "JOIN ml.narrative_vectors AS v ON v.ev_id = n.ev_id AND v.field = 'narrative'"
        )
        share = sum(bool(ANIMALS.search(a["narrative"] or "")) for a in accounts) / len(accounts)
        assert sum(named) >= 3 and sum(named) / len(named) >= 10 * share, (
            share,
            [h["passage"]["text"][:200] for h in hits["semantic"]],
        )
        near = httpx.get(
            f"{server.url}/api/v1/events/{hits['semantic'][0]['ev_id']}/similar", headers=headers, timeout=60
        )
        assert near.status_code == 200 and len(near.json()["items"]) == 10
    finally:
        server.stop()


def test_the_dashboard_shows_the_real_data(real):
    """Every page renders on 53,193 real events, and its numbers are the warehouse's."""
    with pytest.MonkeyPatch.context() as mp:
        _env(real, mp)
        facts = query(
            "SELECT count(*) AS n, sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal, "
            "coalesce(sum(fatalities), 0) AS fatalities FROM marts.fact_accidents"
        )[0]
        m = {x.label: x.value for x in dashboard_page("overview").metric}
        assert [int(m[k].replace(",", "")) for k in ("Events", "Fatal events", "Fatalities")] == [
            facts["n"],
            facts["fatal"],
            facts["fatalities"],
        ]
        want = query(
            "SELECT count(*) AS n FROM marts.fact_accidents WHERE state = 'AK' "
            "AND event_date >= DATE '1990-01-01' AND event_date < DATE '2000-01-01'"
        )[0]["n"]
        m = {x.label: x.value for x in dashboard_page("trends", state="AK", years="1990-1999").metric}
        assert int(m["Events"].replace(",", "")) == want > 0
        located = query(
            "SELECT count(*) AS n FROM marts.fact_accidents WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
        )[0]["n"]
        assert any(h.value == f"{located:,} events with coordinates" for h in dashboard_page("map").subheader)
        rows_in = query("SELECT sum(rows_in) AS n FROM raw._reconciliation")[0]["n"]
        m = {x.label: x.value for x in dashboard_page("quality").metric}
        assert int(m["Rows in"].replace(",", "")) == rows_in
        for page in ("aircraft", "causes", "explorer", "model"):
            assert dashboard_page(page).title, page  # rendered, no exception (dashboard_page asserts none)
