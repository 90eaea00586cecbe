"""dbt through Dagster on both targets, from the bundled sample: marts agree with raw."""

import os
import re
import shutil
import subprocess
import urllib.request

import dagster as dg

from ntsb_assets.definitions import defs
from ntsb_assets.settings import get_settings
from ntsb_assets.transform.project import DBT_DIR, DBT_EXECUTABLE
from tests.conftest import SAMPLE
from tests.integration.browser import ARTIFACTS, Server, free_port, ntsb_command, render
from tests.integration.helpers import ingest_json, query


def _transform(docs: bool = True, full_refresh: bool = False):
    job = defs.resolve_job_def("transform")
    selection = (
        None if docs else [k for k in job.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    )
    config = {"ops": {"ntsb_dbt_models": {"config": {"full_refresh": True}}}} if full_refresh else None
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=selection, run_config=config)
    assert result.success
    checks = [
        e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = [c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    assert checks and not failed, failed
    keys = {e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization}
    global OBSERVED, CHECKED
    OBSERVED = {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    CHECKED = {(c.asset_key.to_user_string(), c.check_name): c for c in checks}
    return keys


OBSERVED: dict = {}  # the last _transform's observations: asset -> metadata
CHECKED: dict = {}  # and its check evaluations: (asset, check) -> evaluation


def test_dbt_build_through_dagster_matches_raw(deployment, tmp_path):
    for rel in ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025", "03_up01DEC2025"):
        ingest_json(SAMPLE / rel)
    keys = _transform()
    assert {
        "warehouse/staging/stg_ntsb__events",
        "warehouse/marts/fact_accidents",
        "warehouse/marts/dim_crew",
        "warehouse/marts/dim_causes",
        "warehouse/marts/bridge_accident_causes",
        "warehouse/marts/agg_yearly_stats",
        "docs/dbt",
    } <= keys

    _assert_every_column_is_described()

    # a scheduled operation is true for SCHD and false for NSCH (NTSB's codes), per first aircraft
    sched = query(
        "SELECT trim(a.oper_sched) AS code, f.is_scheduled AS flag, count(*) AS n FROM marts.fact_accidents AS f "
        "JOIN raw.aircraft AS a ON a.ev_id = f.ev_id AND a.aircraft_key = f.first_aircraft_key "
        "WHERE trim(a.oper_sched) IN ('SCHD', 'NSCH') GROUP BY trim(a.oper_sched), f.is_scheduled"
    )
    assert {(r["code"], r["flag"]) for r in sched} == {("SCHD", True), ("NSCH", False)}, sched

    # every raw table has its staging view
    raw_tables = {
        r["table_name"]
        for r in query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'raw' AND table_name NOT LIKE '\\_%' ESCAPE '\\'"
        )
    }
    staged = {
        r["table_name"]
        for r in query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging'")
    }
    assert {f"stg_ntsb__{t}" for t in raw_tables - {"eadmspub_datadictionary"}} <= staged, raw_tables

    raw_events = query("SELECT count(*) AS n FROM raw.events")[0]["n"]
    quarantined = query("SELECT count(DISTINCT source_row) AS n FROM raw._quarantine WHERE table_name = 'events'")[0][
        "n"
    ]
    assert query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"] == raw_events == 2243 + 83 + 34
    # row counts and column types of what dbt built, on the assets in Dagster
    fact = OBSERVED["warehouse/marts/fact_accidents"]
    assert fact["dagster/row_count"].value == raw_events
    columns = {c.name: c for c in fact["dagster/column_schema"].value.columns}
    assert columns["event_date"].type == "date" and columns["ev_id"].description.startswith("Unique Identification")
    assert "dagster/row_count" not in OBSERVED["warehouse/staging/stg_ntsb__events"]  # a view: not run to count
    # the quality gate links its Data Docs page where `ntsb docs` serves it (NTSB_DOCS_URL); dbt's tests are
    # checks described in words
    gate = CHECKED[("warehouse/raw/events", "schema_gate")]
    assert gate.metadata["data_docs"].value.startswith("http://127.0.0.1:8580/quality/")
    assert gate.metadata["data_docs"].value.endswith(".html")
    assert quarantined == 0  # no sample event is quarantined: none is missing from the marts

    direct = {
        int(r["y"]): r["f"]
        for r in query(
            "SELECT extract(year FROM ev_date) AS y, sum(coalesce(inj_tot_f, 0)) AS f FROM raw.events GROUP BY 1"
        )
    }
    agg = {int(r["year"]): r["fatalities"] for r in query("SELECT year, fatalities FROM marts.agg_yearly_stats")}
    assert agg == direct
    findings = query("SELECT count(*) AS n FROM raw.findings")[0]["n"]
    assert (
        query("SELECT count(*) AS n FROM marts.bridge_accident_causes WHERE cause_kind = 'finding'")[0]["n"] == findings
    )

    # known real events, through every dimension
    star = """
        SELECT f.*, t.date_day, t.day_of_week, t.is_weekend, t.is_us_federal_holiday,
               l.airport_id, w.weather_condition AS w_condition, w.light_condition_label,
               c.crew_category, c.age_group, a.make AS a_make, a.engine_type, a.engine_count, a.is_current
        FROM marts.fact_accidents f
        JOIN marts.dim_time t ON t.date_key = f.date_key
        JOIN marts.dim_location l ON l.location_key = f.location_key
        JOIN marts.dim_weather w ON w.weather_key = f.weather_key
        JOIN marts.dim_crew c ON c.crew_key = f.crew_key
        LEFT JOIN marts.dim_aircraft a ON a.aircraft_version_key = f.aircraft_version_key
        WHERE f.ev_id = '{}'"""
    kinston = query(star.format("20030314X00332"))[0]
    assert (kinston["state"], kinston["city"], kinston["severity"], kinston["uninjured"]) == (
        "NC",
        "Kinston",
        "NONE",
        2,
    )
    assert abs(kinston["longitude"] + 77.615278) < 1e-5 and kinston["aircraft_count"] == 1
    assert (kinston["day_of_week"], kinston["is_weekend"], kinston["is_us_federal_holiday"]) == (6, True, False)
    assert (kinston["a_make"], kinston["engine_type"], kinston["engine_count"], kinston["is_current"]) == (
        "FOKKER",
        "TP",
        2,
        True,
    )
    assert kinston["crew_category"] is None  # the Part 121 extract has no crew rows
    san_diego = query(star.format("20140507X51410"))[0]
    assert (san_diego["severity"], san_diego["w_condition"], san_diego["light_condition_label"]) == (
        "SERS",
        "VMC",
        "Day",
    )
    assert (san_diego["make"], san_diego["engine_type"]) == ("BOEING", "TF")
    cause = query(
        "SELECT d.* FROM marts.bridge_accident_causes b JOIN marts.dim_causes d ON d.cause_key = b.cause_key "
        "WHERE b.ev_id = '20140507X51410'"
    )
    assert [(c["cause_code"], c["category"], c["cause_factor"], c["in_probable_cause"]) for c in cause] == [
        ("0205000032", "Personnel issues", "cause", True)
    ]
    dell = query(star.format("20200821X74853"))[0]
    assert (dell["severity"], dell["make"], dell["model"], dell["crew_category"], dell["age_group"]) == (
        "FATL",
        "AIR TRACTOR",
        "AT802",
        "PLT",
        "55-64",
    )

    lake = get_settings().lake
    assert lake.exists("docs/dbt/static_index.html") and lake.exists("docs/dbt/catalog.json")
    _assert_docs_site_follows_its_inputs()
    _dbt_unit_tests(tmp_path)
    if deployment == "production":
        views = _postgres_views()

        def same_views():  # a release's run refreshes the aggregates' views in place
            assert {k: v["oid"] for k, v in _postgres_views().items()} == {k: v["oid"] for k, v in views.items()}

        _assert_incremental_run_matches_a_full_one(after_release=same_views)
        _assert_postgres_serving_objects(tmp_path, views)
    else:
        _assert_docs_site_renders()
        _assert_incremental_run_matches_a_full_one()
    _assert_staging_tests_check_every_row()
    _assert_dbt_tests_catch_a_broken_mart_row(tmp_path)


def _assert_every_column_is_described():
    """Every column of every staging view and mart the build made has a description in the
    dbt docs (the manifest, doc blocks rendered): a new column without one fails here."""
    import json

    manifest = json.loads((DBT_DIR / "target" / "manifest.json").read_text())
    described = {
        (n["schema"], n["name"]): {c for c, v in n["columns"].items() if v.get("description", "").strip()}
        for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "snapshot")
    }
    columns = query(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('staging', 'marts') AND table_name NOT LIKE '\\_%' ESCAPE '\\'"
    )
    missing = sorted(
        f"{c['table_schema']}.{c['table_name']}.{c['column_name']}"
        for c in columns
        if c["column_name"] not in described.get((c["table_schema"], c["table_name"]), set())
    )
    assert columns and not missing, f"columns without a description in the dbt docs: {missing}"


def _assert_dbt_tests_catch_a_broken_mart_row(tmp_path):
    """The marts are checked by dbt's tests (Great Expectations does not restate them): a
    mart row broken by hand fails the severity and non-negative count tests, one row each,
    and an outlier only warns."""
    import json

    broken = query("SELECT max(ev_id) AS e FROM marts.fact_accidents")[0]["e"]
    with get_settings().warehouse.session() as s:
        s.execute(
            "UPDATE marts.fact_accidents SET severity = 'BAD', minor_injuries = -1, fatalities = 501 "
            f"WHERE ev_id = '{broken}'"
        )
    target = tmp_path / "dbt-marts"
    out = subprocess.run(
        [DBT_EXECUTABLE, "test", "--select", "fact_accidents", "--exclude", "test_type:unit"]
        + ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path", str(target)],
        env={**os.environ, **get_settings().dbt_env()},
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1, out.stdout[-4000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    failed = {r["unique_id"].split(".")[2]: r["failures"] for r in results if r["status"] == "fail"}
    warned = {r["unique_id"].split(".")[2]: r["failures"] for r in results if r["status"] == "warn"}
    assert failed == {
        "accepted_values_fact_accidents_severity__FATL__SERS__MINR__NONE": 1,
        "ntsb_between_fact_accidents_minor_injuries__0": 1,
    }, failed
    assert warned == {"fact_accidents_fatalities_outlier": 1}, warned


INCREMENTAL = (
    "int_causes__rows",
    "int_events__dimension_keys",
    "snap_aircraft",
    "dim_aircraft",
    "fact_accidents",
    "bridge_accident_causes",
    "dim_causes",
    "narratives",
)
DIMENSIONS = ("dim_location", "dim_weather", "dim_crew")  # tables of int_events__dimension_keys's keys


def _docs_run() -> set[str]:
    """The docs site's step alone; what it materialized."""
    job = defs.resolve_job_def("transform")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey(["docs", "dbt"])])
    assert result.success
    return {e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization}


def _assert_docs_site_follows_its_inputs():
    """The site is generated again only when the project or the warehouse's columns changed:
    the same inputs skip `dbt docs generate` (no materialization, the site stays); other inputs
    (here: a materialization recorded from other ones) generate it again."""
    lake = get_settings().lake
    before = lake.get_bytes("docs/dbt/catalog.json")
    assert _docs_run() == set()
    assert lake.get_bytes("docs/dbt/catalog.json") == before
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=["docs", "dbt"], metadata={"site inputs": "another project"})
        )
    assert _docs_run() == {"docs/dbt"}


def _assert_incremental_run_matches_a_full_one(after_release=lambda: None):
    """A new release through the incremental models (macros/incremental.sql), each reading
    its watermark back from its own table: the events it does not touch are not computed
    again (a row edited by hand stays as it is), the events it brings are. Then a changed
    dbt project (another fingerprint on the models' latest materializations) makes the next
    build a full refresh, whose rows are the same but for the edited one; and
    `full_refresh` in the run config does the same."""
    schema = lambda m: {"int": "intermediate", "snap": "snapshots"}.get(m.split("_")[0], "marts")  # noqa: E731
    through = query("SELECT max(last_loaded_at) AS t FROM raw._releases")[0]["t"]
    for m in INCREMENTAL:  # every incremental model is computed through the latest load
        assert query(f"SELECT max(loaded_through) AS t FROM {schema(m)}.{m}") == [{"t": through}], m
    edited = query("SELECT min(ev_id) AS e FROM marts.fact_accidents")[0]["e"]

    def edit():
        with get_settings().warehouse.session() as s:
            s.execute(f"UPDATE marts.fact_accidents SET city = 'edited by hand' WHERE ev_id = '{edited}'")

    def city():
        return query(f"SELECT city FROM marts.fact_accidents WHERE ev_id = '{edited}'")[0]["city"]

    edit()
    release = ingest_json(SAMPLE / "04_up01JAN2026")["release"]
    _transform(docs=False)
    assert city() == "edited by hand"
    after_release()
    brought = query(f"SELECT count(*) AS n FROM raw.events WHERE _release_id = '{release}'")[0]["n"]
    assert brought > 0 and query(f"SELECT count(*) AS n FROM marts.fact_accidents WHERE release_id = '{release}'") == [
        {"n": brought}
    ]
    assert query("SELECT count(*) AS n FROM marts.fact_accidents") == query("SELECT count(*) AS n FROM raw.events")

    def rows(m):  # but the watermark and the snapshot's run times
        out = []
        for r in query(f"SELECT * FROM {schema(m)}.{m}"):
            kept = {k: v for k, v in r.items() if k not in ("loaded_through", "dbt_updated_at", "dbt_valid_from")}
            out.append(repr(sorted(kept.items())))
        return sorted(out)

    incremental = {m: rows(m) for m in INCREMENTAL + DIMENSIONS}
    with dg.DagsterInstance.get() as instance:  # as if another dbt project had built the fact table
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                dg.AssetKey(["warehouse", "marts", "fact_accidents"]), metadata={"dbt project": "x"}
            )
        )
    _transform(docs=False)
    assert city() != "edited by hand"
    for m in INCREMENTAL + DIMENSIONS:
        full = rows(m)
        differ = set(full) ^ set(incremental[m])
        assert len(full) == len(incremental[m]) and all(edited in d and m == "fact_accidents" for d in differ), (
            m,
            sorted(differ)[:4],
        )
    edit()
    _transform(docs=False)
    assert city() == "edited by hand", "the same project: incremental again"
    _transform(docs=False, full_refresh=True)
    assert city() != "edited by hand"


def _assert_staging_tests_check_every_row():
    """A staging view's data tests check every row (they are not filtered by load time): a
    bad value written into raw without a load fails the test at the next build."""
    test = "accepted_values_stg_ntsb__injury_injury_level__FATL__SERS__MINR__NONE__TOTL"
    view = dg.AssetKey(["warehouse", "staging", "stg_ntsb__injury"])
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def("transform").get_subset(
        asset_selection={view}, asset_check_selection={c for c in graph.asset_check_keys if c.asset_key == view}
    )

    def build() -> set[str]:  # the view and its tests: the checks that failed (not those that warned)
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        checks = [
            e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        return {c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR}

    [row] = query("SELECT injury_level, _row_hash FROM raw.injury WHERE injury_level = 'FATL' ORDER BY ev_id LIMIT 1")
    where = f"_row_hash = '{row['_row_hash']}'"  # the row (a hash of what it was loaded with)

    def write(level: str) -> None:
        with get_settings().warehouse.session() as s:
            s.execute(f"UPDATE raw.injury SET injury_level = '{level}' WHERE {where}")

    assert not build()
    write("XXXX")  # an injury level no staging value takes, and no load
    assert test in build()
    write(row["injury_level"])
    assert not build()


def _dbt_unit_tests(tmp_path):
    """dbt's unit tests (static inputs; the Dagster build leaves them out), on the warehouse
    the build made: every one of them passes."""
    import json

    env = {**os.environ, **get_settings().dbt_env()}
    out = subprocess.run(
        [
            DBT_EXECUTABLE,
            "test",
            "--select",
            "test_type:unit",
            "--project-dir",
            str(DBT_DIR),
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(tmp_path / "dbt-unit"),
        ],
        env=env,
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-4000:]
    results = json.loads((tmp_path / "dbt-unit" / "run_results.json").read_text())["results"]
    unit = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit) >= 6 and all(r["status"] == "pass" for r in unit), unit


def _assert_docs_site_renders():
    """`ntsb docs` serves the published site; headless Chromium sees the model list and draws
    the lineage graph (screenshot kept in test-artifacts/)."""
    port = free_port()
    with Server(ntsb_command("docs", "--port", str(port)), f"http://127.0.0.1:{port}/"):
        page = f"http://127.0.0.1:{port}/#!/model/model.ntsb.fact_accidents"
        dom = render(page, ARTIFACTS / "dbt-docs-model.png")
        for model in ("fact_accidents", "dim_crew", "dim_causes", "agg_yearly_stats", "stg_ntsb__events"):
            assert f">{model}<" in dom.replace(" ", "").replace("\n", ""), model
        assert "Type of Event" in dom  # a column described from NTSB's data dictionary
        lineage = render(page + "?g_v=1", ARTIFACTS / "dbt-docs-lineage.png")
        assert 'data-id="layer2-node"' in lineage  # cytoscape drew the lineage nodes
        assert "Lineage Graph" in lineage
        overview = render(f"http://127.0.0.1:{port}/#!/overview", ARTIFACTS / "dbt-docs-overview.png")
        assert (
            "NTSB aviation accident warehouse" in overview and "Reading it well" in overview
        )  # ours, not dbt's default
        exposure = render(f"http://127.0.0.1:{port}/#!/exposure/exposure.ntsb.ntsb_api")
        assert "NTSB HTTP API" in exposure and "analytics-engineering" in exposure
        # the Great Expectations Data Docs of the quality runs, beside the dbt docs
        runs = urllib.request.urlopen(f"http://127.0.0.1:{port}/quality/", timeout=30).read().decode()
        first = re.search(r'href="(/quality/[^"]+/index.html)"', runs)
        assert first, runs
        data_docs = render(f"http://127.0.0.1:{port}{first.group(1)}", ARTIFACTS / "data-docs.png")
        assert "Expectation" in data_docs or "expectation" in data_docs
    shot = ARTIFACTS / "dbt-docs-lineage.png"
    assert shot.stat().st_size > 30_000  # a blank page is a few KB; the drawn graph is far more


def _postgres_views() -> dict[str, dict]:
    return {
        r["matviewname"]: r
        for r in query(
            "SELECT v.matviewname, c.oid AS oid FROM pg_matviews v "
            "JOIN pg_class c ON c.relname = v.matviewname AND c.relnamespace = 'marts'::regnamespace "
            "WHERE v.schemaname = 'marts'"
        )
    }


def _assert_postgres_serving_objects(tmp_path, before: dict[str, dict]):
    """Aggregates are materialized views with unique indexes (a new release's run refreshes
    them in place: checked by the caller); narratives have a GIN-indexed tsvector that ranks
    full-text matches."""
    aggregates = {
        "agg_yearly_stats",
        "agg_state_stats",
        "agg_aircraft_type_stats",
        "agg_phase_stats",
        "agg_weather_stats",
    }
    views = _postgres_views
    assert aggregates <= set(before)
    unique = {
        r["tablename"]
        for r in query(
            "SELECT tablename FROM pg_indexes WHERE schemaname = 'marts' AND indexdef LIKE 'CREATE UNIQUE INDEX%'"
        )
    }
    assert aggregates <= unique
    gin = query(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'marts' AND tablename = 'narratives' "
        "AND indexdef LIKE '%USING gin (search_document)%'"
    )
    assert len(gin) == 1
    hits = query(
        "SELECT ev_id, ts_rank(search_document, q) AS rank FROM marts.narratives, "
        "plainto_tsquery('english', 'engine power') AS q WHERE search_document @@ q ORDER BY rank DESC"
    )
    direct = query(
        "SELECT count(*) AS n FROM marts.narratives WHERE narrative ILIKE '%engine%' AND narrative ILIKE '%power%'"
    )
    assert hits and len(hits) >= direct[0]["n"] > 0

    # after the new release's run (the same views: checked then) and a full refresh (new
    # views), the aggregates hold every event
    after = views()
    assert set(after) == set(before)
    agg = {r["year"]: r["events"] for r in query("SELECT year, events FROM marts.agg_yearly_stats")}
    direct = {
        int(r["y"]): r["n"]
        for r in query("SELECT extract(year FROM ev_date) AS y, count(*) AS n FROM raw.events GROUP BY 1")
    }
    assert agg == direct

    # the model's query changes: the next run replaces that view (dbt alone would keep refreshing
    # the old query), and only that one
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = project / "models" / "marts" / "aggregates" / "agg_yearly_stats.sql"
    model.write_text(
        model.read_text().replace(
            "sum(fatalities) as fatalities,", "sum(fatalities) as fatalities,\n    max(fatalities) as max_fatalities,"
        )
    )
    env = os.environ | get_settings().dbt_env()
    run = subprocess.run(
        [
            DBT_EXECUTABLE,
            "run",
            "-s",
            "agg_yearly_stats",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "replacing the materialized view" in run.stdout
    replaced = views()
    assert replaced["agg_yearly_stats"]["oid"] != after["agg_yearly_stats"]["oid"]
    assert {k: v["oid"] for k, v in replaced.items() if k != "agg_yearly_stats"} == {
        k: v["oid"] for k, v in after.items() if k != "agg_yearly_stats"
    }
    top = query("SELECT max(max_fatalities) AS m FROM marts.agg_yearly_stats")[0]["m"]
    assert top == query("SELECT max(coalesce(inj_tot_f, 0)) AS m FROM raw.events")[0]["m"]


def test_aircraft_history_is_kept_as_scd2(ntsb_home, tmp_path):
    from tests.conftest import copy_release
    from tests.integration.helpers import rewrite_csv

    ingest_json(SAMPLE / "00_reference_avall")
    ingest_json(SAMPLE / "02_up01JUL2025")
    _transform(docs=False)
    before = query("SELECT count(*) AS n FROM marts.dim_aircraft")[0]["n"]
    rev = copy_release("02_up01JUL2025", tmp_path, "06_up01JUL2025")
    changed = []

    def edit(h, rows):
        for r in rows[:2]:
            r[h.index("damage")] = "DEST" if r[h.index("damage")] != "DEST" else "SUBS"
            changed.append((r[h.index("ev_id")], int(float(r[h.index("aircraft_key")]))))

    rewrite_csv(rev / "aircraft.csv", edit)
    assert ingest_json(rev)["tables"]["aircraft"]["updated"] == 2
    _transform(docs=False)
    rows = query("SELECT ev_id, aircraft_key, damage, is_current, valid_to FROM marts.dim_aircraft")
    assert len(rows) == before + 2
    for ev_id, key in changed:
        versions = [r for r in rows if (r["ev_id"], r["aircraft_key"]) == (ev_id, key)]
        assert len(versions) == 2 and sorted(r["is_current"] for r in versions) == [False, True]
        old = next(r for r in versions if not r["is_current"])
        assert old["valid_to"] is not None

    # an error-severity dbt test blocks everything downstream of its model, and only that: an
    # event without a date (a load quarantines one as missing_required; written here by hand,
    # stamped as a load stamps it)
    facts = query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"]
    with get_settings().warehouse.session() as s:
        s.execute(
            "INSERT INTO raw.events (ev_id, _release_id, _loaded_at) "
            "SELECT 'BYHAND00001', 'by-hand', max(_loaded_at) + INTERVAL '1 minute' FROM raw.events"
        )
    job = defs.resolve_job_def("transform")
    selection = [k for k in job.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False)
    assert not result.success
    failed = [
        (e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.check_name)
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
        and e.asset_check_evaluation_data.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed == [("warehouse/staging/stg_ntsb__events", "not_null_stg_ntsb__events_event_date")], failed
    built = {e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization}
    assert {"warehouse/staging/stg_ntsb__events", "warehouse/marts/dim_aircraft"} <= built  # not downstream
    blocked = {
        "warehouse/intermediate/int_events__dimension_keys",
        "warehouse/marts/dim_location",
        "warehouse/marts/fact_accidents",
        "warehouse/marts/agg_yearly_stats",
    }
    assert not built & blocked, built & blocked
    assert query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"] == facts  # kept its previous state
    assert not query("SELECT ev_id FROM marts.fact_accidents WHERE ev_id = 'BYHAND00001'")
