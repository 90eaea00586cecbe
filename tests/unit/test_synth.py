"""The generator's output: mdb-export form, real column order, dictionary code sets,
referential integrity, determinism."""

import csv
import hashlib
import json
from collections import defaultdict

import pytest

from ntsb_assets.lib import catalog, synth
from ntsb_assets.lib.synth_fit import in_code_set
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "base"
    synth.generate(out, 1500, seed=7)
    return out


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        r = csv.reader(fh)
        header = next(r)
        return header, [dict(zip(header, row, strict=False)) for row in r]


def _digest(folder):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(base, tmp_path):
    synth.generate(tmp_path / "again", 1500, seed=7)
    synth.generate(tmp_path / "other", 1500, seed=8)
    assert _digest(base) == _digest(tmp_path / "again")
    assert _digest(base)["events.csv"] != _digest(tmp_path / "other")["events.csv"]


def test_every_core_table_and_the_reference_tables(base):
    names = {f.stem for f in base.glob("*.csv")}
    assert names == {
        "events",
        "aircraft",
        "engines",
        "Flight_Crew",
        "flight_time",
        "injury",
        "Findings",
        "Occurrences",
        "seq_of_events",
        "narratives",
        "NTSB_Admin",
        "ct_iaids",
        "ct_seqevt",
        "Country",
        "states",
        "eADMSPUB_DataDictionary",
    }
    assert (base / "ct_iaids.csv").read_bytes() == (SAMPLE / "00_reference_avall" / "ct_iaids.csv").read_bytes()


def test_headers_follow_the_real_files(base):
    real, _ = _rows(SAMPLE / "01_part121_1982_2019" / "events.csv")
    header, _ = _rows(base / "events.csv")
    assert header == real + ["dec_latitude", "dec_longitude"]
    real_ac, _ = _rows(SAMPLE / "01_part121_1982_2019" / "aircraft.csv")
    assert _rows(base / "aircraft.csv")[0] == real_ac
    assert _rows(base / "NTSB_Admin.csv")[0] == ["ev_id", "rec_stat", "approval_date", "lchg_userid", "lchg_date"]


def test_mdb_export_form(base):
    line = (base / "NTSB_Admin.csv").read_text(encoding="utf-8").splitlines()[1]
    ev_id, rec_stat, approval, user, lchg = next(csv.reader([line]))
    assert line.startswith(f'"{ev_id}",')  # text in double quotes
    assert f'"{approval}"' in line and len(approval) == 17  # MM/DD/YY HH:MM:SS, quoted
    eng = (base / "engines.csv").read_text(encoding="utf-8").splitlines()[1]
    assert ',1,1,"' in eng  # numbers bare
    text = (base / "events.csv").read_text(encoding="utf-8")
    assert ",," in text  # NULL as an empty field


def test_every_coded_value_is_in_the_dictionary_code_set(base):
    codes = synth.profile()["codes"]
    checked = 0
    for table, cols in codes.items():
        _, rows = _rows(base / f"{table}.csv")
        for col, code_set in cols.items():
            for r in rows:
                v = r[col]
                if v.strip():
                    assert in_code_set(v, code_set), (table, col, v)
                    checked += 1
    assert checked > 10_000


def test_referential_integrity_and_unique_keys(base):
    keys = defaultdict(set)
    for table in synth.GENERATED:
        _, rows = _rows(base / f"{table}.csv")
        key = catalog.KEYS[table]
        seen = {tuple(r[k] for k in key) for r in rows}
        assert len(seen) == len(rows), table
        keys[table] = seen
    events = {k[0] for k in keys["events"]}
    aircraft = keys["aircraft"]
    for table in synth.GENERATED:
        if table in ("events",):
            continue
        _, rows = _rows(base / f"{table}.csv")
        for r in rows:
            assert r["ev_id"] in events, table
            if "Aircraft_Key" in r and table != "aircraft":
                assert (r["ev_id"], r["Aircraft_Key"]) in aircraft, table


def test_realistic_shape(base):
    _, events = _rows(base / "events.csv")
    ids = [e["ev_id"] for e in events]
    numeric = sum(i.isdigit() for i in ids)
    assert 0 < numeric < len(ids) / 4 and all(len(i) == 14 for i in ids)
    years = [int(e["ev_year"]) for e in events]
    assert min(years) <= 1970 and max(years) >= 2024
    with_dec = [e for e in events if e["dec_latitude"]]
    assert with_dec and all(e["ev_id"].isdigit() for e in with_dec)
    assert any(e["latitude"].startswith(" ") for e in events)  # padded DMS strings occur
    _, injury = _rows(base / "injury.csv")
    fatal = {e["ev_id"]: int(e["inj_tot_f"] or 0) for e in events}
    per_event = defaultdict(int)
    for r in injury:
        if r["injury_level"] == "FATL":
            per_event[r["ev_id"]] += int(r["inj_person_count"])
    assert all(per_event[k] == v for k, v in fatal.items())  # totals agree with the injury table


def test_defects_manifest(tmp_path):
    m = synth.generate(tmp_path / "d", 800, seed=3, defects=0.05)
    rules = {d["rule"] for d in m["defects"]}
    assert {"type", "out_of_range", "parent_quarantined", "orphan"} <= rules
    saved = json.loads((tmp_path / "d" / synth.MANIFEST).read_text())
    assert saved["defects"] == m["defects"]
