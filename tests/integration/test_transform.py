"""dbt through Dagster on both targets, from the bundled sample: marts agree with raw."""

import dagster as dg

from ntsb_assets.definitions import defs
from tests.conftest import SAMPLE
from tests.integration.helpers import ingest_json, query


def _transform():
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("transform").execute_in_process(instance=instance)
    assert result.success
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    keys = {e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization}
    return keys


def test_dbt_build_through_dagster_matches_raw(deployment):
    for rel in ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025", "03_up01DEC2025"):
        ingest_json(SAMPLE / rel)
    keys = _transform()
    assert {"warehouse/staging/stg_ntsb__events", "warehouse/marts/fact_accidents",
            "warehouse/marts/agg_yearly_stats"} <= keys

    raw_events = query("SELECT count(*) AS n FROM raw.events")[0]["n"]
    assert query("SELECT count(*) AS n FROM marts.fact_accidents")[0]["n"] == raw_events == 2243 + 83 + 34

    direct = {int(r["y"]): r["f"] for r in query(
        "SELECT extract(year FROM ev_date) AS y, sum(coalesce(inj_tot_f, 0)) AS f FROM raw.events GROUP BY 1")}
    agg = {int(r["year"]): r["fatalities"] for r in query("SELECT year, fatalities FROM marts.agg_yearly_stats")}
    assert agg == direct

    # known real events
    kinston = query("SELECT * FROM marts.fact_accidents WHERE ev_id = '20030314X00332'")[0]
    assert (kinston["state"], kinston["city"], kinston["severity"], kinston["uninjured"]) == ("NC", "Kinston", "NONE", 2)
    assert abs(kinston["longitude"] + 77.615278) < 1e-5 and kinston["aircraft_count"] == 1
    mitu = query("SELECT * FROM marts.fact_accidents WHERE ev_id = '20250825200849'")
    labels = query("SELECT light_condition, light_condition_label FROM staging.stg_ntsb__events "
                   "WHERE ev_id = '20140507X51410'")[0]
    assert labels == {"light_condition": "DAYL", "light_condition_label": "Day"}
    day = query("SELECT * FROM marts.dim_time WHERE date_day = DATE '2003-03-08'")[0]
    assert (day["day_of_week"], day["is_weekend"]) == (6, True)
    if mitu:
        assert mitu[0]["severity"] == "FATL" and mitu[0]["fatalities"] == 4


def test_aircraft_history_is_kept_as_scd2(ntsb_home, tmp_path):
    from tests.conftest import copy_release
    from tests.integration.helpers import rewrite_csv
    ingest_json(SAMPLE / "00_reference_avall")
    ingest_json(SAMPLE / "02_up01JUL2025")
    _transform()
    before = query("SELECT count(*) AS n FROM marts.dim_aircraft")[0]["n"]
    rev = copy_release("02_up01JUL2025", tmp_path, "06_up01JUL2025")
    changed = []

    def edit(h, rows):
        for r in rows[:2]:
            r[h.index("damage")] = "DEST" if r[h.index("damage")] != "DEST" else "SUBS"
            changed.append((r[h.index("ev_id")], int(float(r[h.index("aircraft_key")]))))

    rewrite_csv(rev / "aircraft.csv", edit)
    assert ingest_json(rev)["tables"]["aircraft"]["updated"] == 2
    _transform()
    rows = query("SELECT ev_id, aircraft_key, damage, is_current, valid_to FROM marts.dim_aircraft")
    assert len(rows) == before + 2
    for ev_id, key in changed:
        versions = [r for r in rows if (r["ev_id"], r["aircraft_key"]) == (ev_id, key)]
        assert len(versions) == 2 and sorted(r["is_current"] for r in versions) == [False, True]
        old = next(r for r in versions if not r["is_current"])
        assert old["valid_to"] is not None
