"""The PRE1982 reader's parts: the layout by its tables, the deterministic ev_id, legacy dates,
the translation of legacy codes through ct_Pre1982, and the mapped rows of a written release."""

import csv

import pytest

from ntsb_assets.lib import pre1982, sources


def test_the_layout_is_known_by_both_halves_of_the_event_table():
    assert pre1982.is_layout(["tblFirstHalf.csv", "TBLSECONDHALF.csv", "ct_Pre1982.csv"])
    assert not pre1982.is_layout(["tblFirstHalf.csv", "events.csv"])
    assert not pre1982.is_layout(["events", "aircraft"])


def test_ev_id_keeps_the_record_number():
    assert pre1982.ev_id("40") == "PRE1982R000040"
    assert pre1982.ev_id(" 87039 ") == "PRE1982R087039"
    assert pre1982.ev_id("1234567") == "PRE1982R1234567"  # never cut short
    for bad in ("", "X1", "-3", "4.5"):
        with pytest.raises(ValueError):
            pre1982.ev_id(bad)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("07/23/62 00:00:00", "1962-07-23"),  # two-digit years are 19YY, never 2062
        ("12/31/81", "1981-12-31"),
        ("1/2/1970", "1970-01-02"),
        ("1975-03-04 00:00:00", "1975-03-04"),
        ("02/30/72 00:00:00", "02/30/72 00:00:00"),  # as delivered: the extraction rejects it
        ("unknown", "unknown"),
    ],
)
def test_occurrence_dates(text, iso):
    assert pre1982.occurrence_date(text) == iso


def test_legacy_codes_translate_through_the_releases_own_code_table():
    codes = pre1982.Codes(
        [
            {"Name": "ACFT_ADAMG", "Code": "s", "Meaning": "SUBSTANTIAL"},
            {"Name": "ACFT_ADAMG", "Code": "X", "Meaning": "BENT A LITTLE"},
            {"Name": "AGE_PILOT", "Code": "ZA", "Meaning": "45 YEARS"},
        ]
    )
    assert codes.translate("ACFT_ADAMG", "S") == "SUBS"  # meaning -> the modern code of that label
    assert codes.translate("ACFT_ADAMG", "X") == "BENT A LITTLE"  # no modern label: the meaning, reported
    assert codes.translate("ACFT_ADAMG", "Q") == "Q"  # not in ct_Pre1982: as delivered, reported
    assert codes.translate("ACFT_ADAMG", " ") == ""
    assert codes.meaning("AGE_PILOT1", "ZA") == "45 YEARS"  # the pilot's number is not part of the name
    assert pre1982._age(codes, "AGE_PILOT1", "ZA") == "45"
    assert pre1982._age(codes, "AGE_PILOT2", "38") == "38"


def test_a_written_release_maps_row_for_row(tmp_path):
    from ntsb_assets.lib import synth

    synth.generate(tmp_path / "base", 60, 2)
    counts = pre1982.write(tmp_path / "base", tmp_path / "PRE1982", seed=2)
    assert sources.release_kind(tmp_path / "PRE1982") == "pre1982_dir"
    tables = {t.name: t for t in sources.table_sources(tmp_path / "PRE1982")}
    assert set(pre1982.MAPPED) | set(pre1982.RAW.values()) <= set(tables)
    with open(tmp_path / "PRE1982" / "tblFirstHalf.csv", encoding="utf-8", newline="") as fh:
        first = list(csv.DictReader(fh))
    assert len(first) == counts[pre1982.FIRST] > 0
    with tables["events"].rows() as (header, rows, _enc):
        events = [dict(zip(header, r, strict=True)) for _n, r in rows]
    assert [e["ev_id"] for e in events] == [pre1982.ev_id(r["RecNum"]) for r in first]
    assert all("1962-01-01" <= e["ev_date"] <= "1981-12-31" for e in events)
    with tables["pre1982_first_half"].rows() as (header, rows, _enc):
        kept = [r for _n, r in rows]
    assert header[0] == "ev_id" and header[1:] == list(first[0])
    assert [r[1:] for r in kept] == [list(r.values()) for r in first]  # whole, ev_id beside RecNum
    with tables["injury"].rows() as (header, rows, _enc):
        injury = [dict(zip(header, r, strict=True)) for _n, r in rows]
    wide = sum(1 for r in first for p in pre1982.PERSONS for lv in pre1982.LEVELS if r[f"{p}_{lv}"])
    assert len(injury) == wide
    assert {i["inj_person_category"] for i in injury} <= set(pre1982.PERSONS.values())
