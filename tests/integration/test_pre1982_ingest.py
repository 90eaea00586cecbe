"""`ntsb ingest` of a PRE1982 release (tables as mdb-export writes them, from `ntsb synth
--pre1982`) on both deployments: counts read from the files themselves, legacy codes
translated through the release's ct_Pre1982, the wide injury columns unpivoted, the original
tables kept whole, and one fact table from 1962 to the present with an avall release."""

import csv
import shutil
import zipfile
from pathlib import Path

from tests.integration.helpers import ingest_json, ntsb, query, rewrite_csv


def _table(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _release(tmp_path: Path, events: int = 300) -> Path:
    out = tmp_path / "PRE1982"
    ntsb("synth", "--events", str(events), "--seed", "5", "--pre1982", str(out))
    return out


def test_pre1982_and_avall_make_one_fact_table(deployment, tmp_path):
    import dagster as dg

    from ntsb_assets import keys
    from ntsb_assets.definitions import defs
    from tests.conftest import SAMPLE

    release = _release(tmp_path)
    first = _table(release / "tblFirstHalf.csv")
    second = _table(release / "tblSecondHalf.csv")
    codes = {(r["Name"], r["Code"]): r["Meaning"] for r in _table(release / "ct_Pre1982.csv")}
    out = ingest_json(release)["tables"]
    assert out["events"]["inserted"] == out["aircraft"]["inserted"] == len(first)
    assert out["pre1982_first_half"]["inserted"] == out["pre1982_second_half"]["inserted"] == len(first)
    assert out["pre1982_occurrences"]["inserted"] == len(_table(release / "tblOccurrences.csv"))
    assert out["pre1982_seq_of_events"]["inserted"] == len(_table(release / "tblSeqOfEvents.csv"))
    assert out["narratives"]["inserted"] == sum(1 for r in second if r["REMARKS"] or r["CAUSE"])
    wide = [(r, p, lv) for r in first for p in ("PILOT", "CO_PILOT", "PASSENGERS", "TOTAL_ABRD")
            for lv in ("FATAL", "SERIOUS", "MINOR", "NONE") if r[f"{p}_{lv}"]]  # fmt: skip
    assert out["injury"]["inserted"] == len(wide)

    # the deterministic ev_id keeps RecNum; legacy codes became modern ones via ct_Pre1982
    row = first[0]
    ev = f"PRE1982R{int(row['RecNum']):06d}"
    [e] = query(f"SELECT ev_date, ev_type FROM raw.events WHERE ev_id = '{ev}'")
    m, d, y = row["DATE_OCCURRENCE"].split()[0].split("/")
    assert str(e["ev_date"])[:10] == f"19{y}-{m}-{d}"
    assert e["ev_type"] == {"ACCIDENT": "ACC", "INCIDENT": "INC"}[codes[("ACC_INC_CLASS", row["ACC_INC_CLASS"])]]
    [a] = query(f"SELECT damage FROM raw.aircraft WHERE ev_id = '{ev}'")
    meaning = codes.get(("ACFT_ADAMG", row["ACFT_ADAMG"]))
    expected = {"DESTROYED": "DEST", "SUBSTANTIAL": "SUBS", "MINOR": "MINR", "NONE": "NONE"}.get(meaning or "")
    assert a["damage"] == expected
    [kept] = query(f"SELECT recnum, cause_factor_1s FROM raw.pre1982_first_half WHERE ev_id = '{ev}'")
    assert (str(kept["recnum"]), kept["cause_factor_1s"]) == (row["RecNum"], row["CAUSE_FACTOR_1S"])
    pilot_fatal = sum(int(r["PILOT_FATAL"]) for r in first if r["PILOT_FATAL"])
    [inj] = query(
        "SELECT coalesce(sum(inj_person_count), 0) AS n FROM raw.injury "
        "WHERE ev_id LIKE 'PRE1982R%' AND inj_person_category = 'PLT' AND injury_level = 'FATL'"
    )
    assert inj["n"] == pilot_fatal

    again = ingest_json(release)["tables"]  # idempotent
    assert all(t["inserted"] == t["updated"] == 0 for t in again.values()), again

    for path in (SAMPLE / "00_reference_avall", SAMPLE / "02_up01JUL2025"):  # real data beside generated
        ntsb("ingest", str(path), "--allow-synthetic")
    job = defs.resolve_job_def("transform")
    selection = [k for k in job.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    with dg.DagsterInstance.get() as instance:
        assert job.execute_in_process(instance=instance, asset_selection=selection).success
        coverage = instance.get_latest_materialization_event(keys.RAW_RELEASES)
    facts = {
        r["source_system"]: r
        for r in query(
            "SELECT source_system, count(*) AS n, min(extract(year FROM event_date)) AS lo, "
            "max(extract(year FROM event_date)) AS hi FROM marts.fact_accidents GROUP BY source_system"
        )
    }
    assert set(facts) == {"PRE1982", "avall"}
    assert facts["PRE1982"]["n"] == len(first)
    years = sorted(int("19" + r["DATE_OCCURRENCE"].split()[0][-2:]) for r in first)
    assert (int(facts["PRE1982"]["lo"]), int(facts["PRE1982"]["hi"])) == (years[0], years[-1])
    assert years[0] >= 1962 and years[-1] <= 1981 and int(facts["avall"]["hi"]) >= 2025
    assert "| PRE1982 |" in coverage.asset_materialization.metadata["coverage_by_source"].value


def test_pre1982_bad_rows_and_zip(ntsb_home, tmp_path):
    """A record without a usable RecNum is quarantined with its rule (and its raw copy with
    it); a legacy code ct_Pre1982 does not list is kept as delivered; a zip of the tables is the
    same release form."""
    release = _release(tmp_path, events=40)

    def edit(header, rows):
        rows[0][header.index("RecNum")] = "X1"
        rows[1][header.index("ACFT_ADAMG")] = "Q"  # not in ct_Pre1982

    rewrite_csv(release / "tblFirstHalf.csv", edit)
    archive = tmp_path / "PRE1982.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(release.iterdir()):
            zf.write(f, f.name)
    shutil.rmtree(release)
    out = ingest_json(archive)["tables"]
    assert out["events"]["quarantined"] == out["aircraft"]["quarantined"] == 1
    assert out["pre1982_first_half"]["quarantined"] == 1
    rules = {r["rule"] for r in query("SELECT DISTINCT rule FROM raw._quarantine WHERE table_name = 'events'")}
    assert rules == {"pre1982_recnum"}
    assert query("SELECT count(*) AS n FROM raw.aircraft WHERE damage = 'Q'")[0]["n"] == 1
    [lag] = query("SELECT code FROM raw._code_lag WHERE table_name = 'aircraft' AND column_name = 'damage'")
    assert lag["code"] == "Q"
    [rel] = query("SELECT kind, source_system FROM raw._releases")
    assert (rel["kind"], rel["source_system"]) == ("pre1982_zip", "PRE1982")
