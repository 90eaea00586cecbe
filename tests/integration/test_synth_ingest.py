"""Generated releases through the real ingestion: clean output quarantines nothing and
reconciles; defects are quarantined exactly as the manifest says; a monthly update gives
exactly the manifest's inserts and updates."""

import json

from ntsb_assets.lib import synth
from ntsb_assets.lib.load import warehouse_table
from tests.integration.helpers import ingest_json, query


def test_clean_output_ingests_without_quarantine(ntsb_home, tmp_path):
    m = synth.generate(tmp_path / "base", 2000, seed=11)
    result = ingest_json(tmp_path / "base")
    for table, c in result["tables"].items():
        assert c["quarantined"] == 0, table
        assert c["rows_in"] == c["inserted"] + c["unchanged"], table
        if table in m["rows"]:
            assert c["rows_in"] == m["rows"][table], table
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == 2000


def test_defects_are_quarantined_exactly_as_the_manifest_says(ntsb_home, tmp_path):
    m = synth.generate(tmp_path / "broken", 1500, seed=12, defects=0.03)
    assert len(m["defects"]) > 50
    ingest_json(tmp_path / "broken")
    got = {
        (r["table_name"], r["source_row"], r["rule"])
        for r in query("SELECT table_name, source_row, rule FROM raw._quarantine")
    }
    want = {(warehouse_table(d["table"]), d["source_row"], d["rule"]) for d in m["defects"]}
    assert got == want


def test_monthly_update_gives_the_manifest_counts(deployment, tmp_path):
    synth.generate(tmp_path / "base", 1200, seed=21)
    up = synth.generate_update(tmp_path / "base", tmp_path / "up01", new=150, changed=80, seed=22)
    ingest_json(tmp_path / "base")
    result = ingest_json(tmp_path / "up01")
    for table, want in up["expected"].items():
        got = result["tables"][table]
        assert (got["inserted"], got["updated"], got["unchanged"], got["quarantined"]) == (
            want["inserted"],
            want["updated"],
            want["unchanged"],
            0,
        ), table
    assert up["expected"]["events"] == {"inserted": 150, "updated": 80, "unchanged": 0}
    audit = query(
        "SELECT operation, count(*) AS n FROM raw._audit WHERE release_id = '"
        + result["release"]
        + "' GROUP BY operation ORDER BY operation"
    )
    assert audit == [
        {"operation": "insert", "n": sum(w["inserted"] for w in up["expected"].values())},
        {"operation": "update", "n": sum(w["updated"] for w in up["expected"].values())},
    ]
    saved = json.loads((tmp_path / "up01" / synth.MANIFEST).read_text())
    assert saved["expected"] == up["expected"]


def test_the_synth_command(tmp_path):
    from tests.integration.helpers import ntsb

    r = ntsb("synth", "--events", "300", "--seed", "5", "--defects", "0.05", str(tmp_path / "b"))
    assert "rows in 11 tables, plus 5 reference tables" in r.output and "defective rows" in r.output
    m = json.loads((tmp_path / "b" / synth.MANIFEST).read_text())
    assert m["events"] == 300 and m["rows"]["events"] == 300
    assert ntsb("synth", "--events", "10", str(tmp_path / "b"), expect_ok=False).exit_code != 0  # not empty
    r = ntsb(
        "synth",
        "--update-of",
        str(tmp_path / "b"),
        "--new",
        "20",
        "--changed",
        "10",
        "--seed",
        "6",
        str(tmp_path / "u"),
    )
    assert json.loads((tmp_path / "u" / synth.MANIFEST).read_text())["expected"]["events"]["inserted"] == 20
    r = ntsb("synth", "--update-of", str(tmp_path / "b"), "--changed", "100000", str(tmp_path / "v"), expect_ok=False)
    assert r.exit_code == 1 and "only" in r.output
