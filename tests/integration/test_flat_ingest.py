"""`ntsb ingest` of NTSB's flat AviationData export (CSV, pipe-delimited TXT, XML) and of a
CAROL download, on both deployments: exact counts from the real samples, repeats of an event
loaded once, conflicting repeats quarantined, and a second ingest that changes nothing."""

import csv
import re
from pathlib import Path

from tests.integration.helpers import ingest_json, query

OTHER = Path(__file__).resolve().parents[2] / "data" / "sample" / "other_formats"


def flat_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(Event.Id of each complete row, the rows cut short), read without the project's code."""
    if path.suffix == ".xml":
        ids = re.findall(r'<ROW EventId="([^"]*)"', path.read_text(encoding="utf-8"))
        return ids, []
    if path.suffix == ".txt":
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        rows = [[f.strip() for f in ln.split("|")] for ln in lines]  # the trailing " | " gives one more
        width = len(rows[0])
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        width = len(rows[0])
    body = rows[1:]
    return [r[0] for r in body if len(r) == width], [r for r in body if len(r) != width]


def expected(path: Path) -> dict:
    ids, short = flat_rows(path)
    return {
        "events": {
            "rows_in": len(ids) + len(short),
            "inserted": len(set(ids)),
            "unchanged": len(ids) - len(set(ids)),
            "quarantined": len(short),
        },
        "aircraft": {"rows_in": len(ids) + len(short), "inserted": len(ids), "quarantined": len(short)},
    }


def test_each_flat_form_ingests_with_exact_counts(deployment):
    names = ["kaggle_AviationData_head4414.csv", "ntsb_AviationData_pipe_2015.txt", "ntsb_AviationData_xml_52rows.xml"]
    total = set()
    for name in names:
        path = OTHER / name
        out = ingest_json(path)
        for table, counts in expected(path).items():
            got = out["tables"][table]
            assert {k: got[k] for k in counts} == counts, (name, table, got)
            parts = ("inserted", "updated", "unchanged", "quarantined", "superseded")
            assert got["rows_in"] == sum(got[k] for k in parts)
        total |= set(flat_rows(path)[0])
    assert query("SELECT count(*) AS n FROM raw.events")[0]["n"] == len(total)
    # labels became codes; the engine type went to engines
    damage = {r["damage"] for r in query("SELECT DISTINCT damage FROM raw.aircraft")}
    assert damage <= {"DEST", "SUBS", "MINR", "NONE", None}, damage
    assert query("SELECT count(*) AS n FROM raw.engines WHERE eng_type = 'TP'")[0]["n"] > 0
    [row] = query("SELECT ev_date, inj_tot_f, ev_highest_injury FROM raw.events WHERE ev_id = '20150906X32704'")
    assert (str(row["ev_date"])[:10], row["inj_tot_f"], row["ev_highest_injury"]) == ("2015-09-05", 1, "FATL")
    # the truncated rows are quarantined with their rule, nothing else
    rules = {r["rule"] for r in query("SELECT DISTINCT rule FROM raw._quarantine")}
    assert rules == {"field_count"}, rules
    again = ingest_json(OTHER / names[0])["tables"]  # idempotent: nothing new, nothing changed
    assert all(t["inserted"] == t["updated"] == 0 for t in again.values()), again
    # a CAROL download: one event, one aircraft and one probable cause per row
    carol = OTHER / "carol_download_2023_53rows.csv"
    with open(carol, encoding="utf-8-sig", newline="") as fh:
        body = list(csv.DictReader(fh))
    out = ingest_json(carol)["tables"]
    for table in ("events", "aircraft", "narratives"):
        assert (out[table]["rows_in"], out[table]["inserted"]) == (len(body), len(body)), (table, out[table])
    causes = query("SELECT ev_id, narr_cause FROM raw.narratives WHERE ev_id LIKE 'CAROL%'")
    assert {r["narr_cause"] for r in causes} == {b["ProbableCause"] for b in body}
    [row] = query(
        "SELECT ev_state, far_part FROM raw.events JOIN raw.aircraft USING (ev_id) WHERE ev_id = 'CAROL000193248'"
    )
    assert (row["ev_state"], row["far_part"]) == ("FL", "091")


def test_an_event_repeated_with_conflicting_values_is_quarantined(ntsb_home, tmp_path):
    lines = (OTHER / "kaggle_AviationData_head4414.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    pair = [ln for ln in lines if ln.startswith("20020917X01908,")]  # the two aircraft of one event
    assert len(pair) == 2
    pair[1] = pair[1].replace("1982-01-19", "1982-01-20")  # the second row says another day
    path = tmp_path / "AviationData.csv"
    path.write_text(lines[0] + "".join(pair) + lines[3], encoding="utf-8")
    out = ingest_json(path)["tables"]
    assert out["events"]["quarantined"] == 2 and out["events"]["inserted"] == 1
    assert out["aircraft"]["quarantined"] == 2
    rules = query("SELECT table_name, rule FROM raw._quarantine ORDER BY table_name, rule")
    assert {(r["table_name"], r["rule"]) for r in rules} == {
        ("events", "duplicate_key"),
        ("aircraft", "parent_quarantined"),
        ("engines", "parent_quarantined"),
    }


def test_flat_carol_and_avall_events_make_one_fact_table(deployment):
    """Events of avall, the flat export and CAROL in one warehouse: one fact table, each
    event with the system it comes from, and the year coverage per source in the UI."""
    import dagster as dg

    from ntsb_assets import keys
    from ntsb_assets.definitions import defs
    from tests.conftest import SAMPLE

    for path in (
        SAMPLE / "00_reference_avall",
        SAMPLE / "02_up01JUL2025",
        OTHER / "ntsb_AviationData_pipe_2015.txt",
        OTHER / "carol_download_2023_53rows.csv",
    ):
        ingest_json(path)
    job = defs.resolve_job_def("transform")
    selection = [k for k in job.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    with dg.DagsterInstance.get() as instance:
        assert job.execute_in_process(instance=instance, asset_selection=selection).success
        coverage = instance.get_latest_materialization_event(keys.RAW_RELEASES)
    raw = query(
        "SELECT r.source_system, count(*) AS n FROM raw.events AS e "
        "JOIN raw._releases AS r ON e._release_id = r.release_id GROUP BY r.source_system"
    )
    facts = query("SELECT source_system, count(*) AS n FROM marts.fact_accidents GROUP BY source_system")
    assert {r["source_system"]: r["n"] for r in facts} == {r["source_system"]: r["n"] for r in raw}
    assert {r["source_system"] for r in facts} == {"avall", "flat export", "CAROL"}
    [years] = query(
        "SELECT min(extract(year FROM event_date)) AS lo, max(extract(year FROM event_date)) AS hi "
        "FROM marts.fact_accidents WHERE source_system = 'flat export'"
    )
    assert int(years["lo"]) == int(years["hi"]) == 2015
    table = coverage.asset_materialization.metadata["coverage_by_source"].value
    assert "| flat export |" in table and "| CAROL |" in table and "| avall |" in table


def _flat_file(path: Path, rows: list[dict]) -> Path:
    """A flat AviationData CSV of ``rows`` (column -> value; the others empty)."""
    from ntsb_assets.lib import flat

    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(flat.COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") for c in flat.COLUMNS])
    return path


def test_the_relational_source_wins_field_by_field(deployment, tmp_path):
    """The same event from avall and from the flat export, in either order: avall's values
    where it has them, the flat export's where avall has none, every other avall column kept;
    the audit names the release each merge was made with."""
    from tests.conftest import SAMPLE

    avall = ingest_json(SAMPLE / "02_up01JUL2025")["release"]
    [before] = query("SELECT * FROM raw.events WHERE ev_id = '20250620200355'")
    assert before["apt_name"] is None and before["ev_city"] == "Beverly"
    flat_rows = [
        {  # an event avall holds: a city of its own, and an airport avall does not name
            "Event.Id": "20250620200355",
            "Investigation.Type": "Accident",
            "Accident.Number": before["ntsb_no"],
            "Event.Date": str(before["ev_date"])[:10],
            "Location": "Elsewhere, MA",
            "Country": "United States",
            "Airport.Name": "FLAT FIELD",
        },
        {  # an event of the next avall release, not loaded yet
            "Event.Id": "20250825200849",
            "Investigation.Type": "Accident",
            "Accident.Number": "ERA25LA999",
            "Event.Date": "2025-08-24",
            "Location": "Somewhere",
            "Country": "Colombia",
            "Airport.Name": "FLAT STRIP",
        },
    ]
    path = _flat_file(tmp_path / "AviationData.csv", flat_rows)
    out = ingest_json(path)["tables"]["events"]
    assert (out["inserted"], out["updated"]) == (1, 1), out
    [after] = query("SELECT * FROM raw.events WHERE ev_id = '20250620200355'")
    assert after["ev_city"] == "Beverly" and after["apt_name"] == "FLAT FIELD"
    kept = [c for c in before if not c.startswith("_") and c != "apt_name"]
    assert {c: after[c] for c in kept} == {c: before[c] for c in kept}  # nothing else lost
    assert after["_release_id"] == avall  # credited to the richer source
    [audit] = query("SELECT operation, merged_with FROM raw._audit WHERE operation = 'merge'")
    assert (audit["operation"], audit["merged_with"]) == ("merge", avall)
    again = _flat_file(tmp_path / "AviationData_again.csv", [flat_rows[0] | {"Airport.Name": "FLAT FIELD"}])
    out = ingest_json(again)["tables"]["events"]
    assert (out["updated"], out["superseded"]) == (0, 1), out  # it adds nothing now

    # the other order: the flat row first, then avall's
    later = ingest_json(SAMPLE / "03_up01DEC2025")["release"]
    [row] = query("SELECT * FROM raw.events WHERE ev_id = '20250825200849'")
    assert row["ev_city"] == "Mitu" and row["ntsb_no"] != "ERA25LA999"  # avall's values win
    assert row["apt_name"] == "FLAT STRIP"  # avall names no airport: the flat export's
    assert row["ev_time"] is not None and row["_release_id"] == later
    assert query("SELECT count(*) AS n FROM raw.events WHERE ev_id = '20250825200849'")[0]["n"] == 1
