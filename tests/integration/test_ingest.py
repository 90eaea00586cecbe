"""Ingest the bundled sample end to end through `ntsb ingest` (Dagster job, lake,
warehouse), in the embedded deployment (DuckDB + local lake) and in production
(PostgreSQL + S3 on moto's standalone server)."""

import json

import pytest

from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE, copy_release
from tests.integration.helpers import ingest_json, ntsb, query, rewrite_csv


def _reconciles(result):
    for table, c in result["tables"].items():
        assert c["rows_in"] == c["inserted"] + c["updated"] + c["unchanged"] + c["quarantined"] + c["superseded"], table


def test_ingest_reingest_and_a_revised_release(deployment, tmp_path):
    ref = ingest_json(SAMPLE / "00_reference_avall")
    assert ref["tables"]["ct_iaids"]["inserted"] == 955
    first = ingest_json(SAMPLE / "02_up01JUL2025")
    _reconciles(first)
    ev = first["tables"]["events"]
    assert ev == {"rows_in": 83, "inserted": 83, "updated": 0, "unchanged": 0, "quarantined": 0, "superseded": 0}
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == 83
    assert query("SELECT count(*) AS n FROM raw.flight_crew")[0]["n"] == 39

    again = ingest_json(SAMPLE / "02_up01JUL2025")
    for table, c in again["tables"].items():
        assert c["inserted"] == c["updated"] == 0 and c["unchanged"] + c["quarantined"] == c["rows_in"], table

    # a revised release: 3 events and 2 aircraft changed, 2 new events with an aircraft each
    rev = copy_release("02_up01JUL2025", tmp_path, "06_up01JUL2025")
    new_ids = ["20990101000001", "20990101000002"]

    def edit_events(h, rows):
        for r in rows[:3]:
            r[h.index("ev_city")] += " (revised)"
        for i, ev_id in enumerate(new_ids):
            r = list(rows[10 + i])
            r[h.index("ev_id")] = ev_id
            rows.append(r)

    def edit_aircraft(h, rows):
        for r in rows[5:7]:
            r[h.index("damage")] = "DEST" if r[h.index("damage")] != "DEST" else "SUBS"
        for ev_id in new_ids:
            r = list(rows[0])
            r[h.index("ev_id")] = ev_id
            r[h.index("aircraft_key")] = "1"
            rows.append(r)

    rewrite_csv(rev / "events.csv", edit_events)
    rewrite_csv(rev / "aircraft.csv", edit_aircraft)
    revised = ingest_json(rev)
    _reconciles(revised)
    assert revised["release"] != first["release"]
    assert revised["tables"]["events"] == {
        "rows_in": 85,
        "inserted": 2,
        "updated": 3,
        "unchanged": 80,
        "quarantined": 0,
        "superseded": 0,
    }
    assert revised["tables"]["aircraft"] == {
        "rows_in": 85,
        "inserted": 2,
        "updated": 2,
        "unchanged": 81,
        "quarantined": 0,
        "superseded": 0,
    }
    for t in ("engines", "Flight_Crew", "injury", "narratives"):
        assert revised["tables"][t]["inserted"] == revised["tables"][t]["updated"] == 0, t
    audit = query(
        "SELECT table_name, operation, count(*) AS n FROM raw._audit WHERE release_id = '"
        + revised["release"]
        + "' GROUP BY table_name, operation ORDER BY table_name, operation"
    )
    assert audit == [
        {"table_name": "aircraft", "operation": "insert", "n": 2},
        {"table_name": "aircraft", "operation": "update", "n": 2},
        {"table_name": "events", "operation": "insert", "n": 2},
        {"table_name": "events", "operation": "update", "n": 3},
    ]
    upd = query("SELECT key, old_hash, new_hash FROM raw._audit WHERE operation = 'update' AND table_name = 'events'")
    assert all(u["old_hash"] != u["new_hash"] for u in upd)
    cities = query("SELECT count(*) AS n FROM raw.events WHERE ev_city LIKE '%(revised)'")
    assert cities[0]["n"] == 3
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == 85
    recon = query("SELECT * FROM raw._reconciliation WHERE release_id = '" + revised["release"] + "'")
    assert {r["table_name"] for r in recon} == set(revised["tables"])


def test_bad_rows_are_quarantined_with_reasons_and_the_rest_loads(deployment, tmp_path):
    rel = copy_release("03_up01DEC2025", tmp_path)
    sql_text = "x'); DROP TABLE raw.events; --"

    def edit_events(h, rows):
        rows[0][h.index("dec_latitude")] = "123.5"  # off the globe
        rows[1][h.index("ev_date")] = "1899-12-30"  # before 1948
        rows[2][h.index("ev_city")] = sql_text  # SQL-looking text is just text
        dup = list(rows[3])
        dup[h.index("ev_city")] = "Somewhere else"
        rows.append(dup)  # same key, different content
        rows[4][h.index("ev_date")] = "31/31/2020"  # unparseable

    rewrite_csv(rel / "events.csv", edit_events)
    raw = (rel / "narratives.csv").read_bytes()
    (rel / "narratives.csv").write_bytes(raw.replace(b"airplane", "avión".encode("cp1252"), 1))
    result = ingest_json(rel)
    _reconciles(result)
    ev = result["tables"]["events"]
    assert ev["rows_in"] == 35 and ev["quarantined"] == 5 and ev["inserted"] == 30
    q = query(
        "SELECT table_name, source_row, rule, reason, original FROM raw._quarantine ORDER BY table_name, source_row"
    )
    by_rule = {}
    for r in q:
        by_rule.setdefault((r["table_name"], r["rule"]), []).append(r)
    assert "dec_latitude=123.5" in by_rule[("events", "out_of_range")][0]["reason"]
    assert any("1899-12-30" in r["reason"] for r in by_rule[("events", "out_of_range")])
    assert len(by_rule[("events", "duplicate_key")]) == 2
    assert "31/31/2020" in by_rule[("events", "type")][0]["reason"]
    assert json.loads(by_rule[("events", "type")][0]["original"])["ev_date"] == "31/31/2020"
    # children of the quarantined events are quarantined with them, never orphans in raw
    assert ("aircraft", "parent_quarantined") in by_rule
    orphans = query(
        "SELECT count(*) AS n FROM raw.aircraft a WHERE NOT EXISTS (SELECT 1 FROM raw.events e WHERE e.ev_id = a.ev_id)"
    )
    assert orphans[0]["n"] == 0
    assert (
        query(f"SELECT count(*) AS n FROM raw.events WHERE ev_city = '{sql_text.replace(chr(39), chr(39) * 2)}'")[0][
            "n"
        ]
        == 1
    )
    narr = query("SELECT count(*) AS n FROM raw.narratives WHERE narr_accp LIKE '%avión%'")
    assert narr[0]["n"] == 1


@pytest.mark.parametrize(
    "damage, rule",
    [
        (b"", "empty_file"),
        (b"ev_id,ntsb_no\n20080211X00175,X\n", "missing_required_column"),
        (b'ev_id,ev_date\n"20080211X00175","2008-02-', "csv_syntax"),
    ],
)
def test_unreadable_release_fails_clearly_and_loads_nothing(deployment, tmp_path, damage, rule):
    ingest_json(SAMPLE / "02_up01JUL2025")
    before = query("SELECT count(*) AS n FROM raw.aircraft")[0]["n"]
    rel = copy_release("03_up01DEC2025", tmp_path)
    (rel / "events.csv").write_bytes(damage)
    result = ntsb("ingest", str(rel), "--json", expect_ok=False)
    assert result.exit_code == 1
    assert f"[{rule}]" in result.output and "events.csv" in result.output and "table events" in result.output
    assert "Traceback" not in result.output
    assert query("SELECT count(*) AS n FROM raw.aircraft")[0]["n"] == before
    assert len(query("SELECT * FROM raw._releases")) == 1


def test_extra_column_is_kept_and_drift_is_reported(ntsb_home, tmp_path):
    ingest_json(SAMPLE / "02_up01JUL2025")
    rel = copy_release("03_up01DEC2025", tmp_path)

    def add_column(h, rows):
        h.append("surprise")
        for r in rows:
            r.append("42")

    rewrite_csv(rel / "events.csv", add_column)
    result = ingest_json(rel)
    assert result["tables"]["events"]["inserted"] == 34
    assert query("SELECT count(*) AS n FROM raw.events WHERE surprise = 42")[0]["n"] == 34
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.get() as instance:
        records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [__import__("dagster").AssetCheckKey(AssetKey(["lake", "raw", "events"]), "schema_drift")]
        )
    evaluation = list(records.values())[0].event.dagster_event.asset_check_evaluation_data
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    assert evaluation.metadata["added"].value == ["surprise"]


def test_bad_settings_fail_fast_naming_the_setting(ntsb_home, monkeypatch):
    monkeypatch.setenv("NTSB_WAREHOUSE_URL", "mysql://nope")
    r = ntsb("sql", "select 1", expect_ok=False)
    assert r.exit_code == 1 and "NTSB_WAREHOUSE_URL" in r.output
    monkeypatch.setenv("NTSB_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/none")
    r = ntsb("sql", "select 1", expect_ok=False)
    assert "NTSB_WAREHOUSE_URL" in r.output and "not reachable" in r.output
    monkeypatch.delenv("NTSB_WAREHOUSE_URL")
    monkeypatch.setenv("NTSB_LAKE_URL", "s3://bucket/x")
    monkeypatch.setenv("NTSB_S3_ENDPOINT", "http://127.0.0.1:1")
    r = ntsb("sql", "select 1", expect_ok=False)
    assert "NTSB_LAKE_URL" in r.output and "not reachable" in r.output
    assert get_settings().s3_endpoint == "http://127.0.0.1:1"
