"""NTSB's flat AviationData export: recognised by content, mapped into avall's tables."""

import csv
from pathlib import Path

import pytest

from ntsb_assets.lib import flat, sources
from ntsb_assets.lib.sources import RowReject, SourceError

OTHER = Path(__file__).resolve().parents[2] / "data" / "sample" / "other_formats"
CSV_SAMPLE = OTHER / "kaggle_AviationData_head4414.csv"
TXT_SAMPLE = OTHER / "ntsb_AviationData_pipe_2015.txt"
XML_SAMPLE = OTHER / "ntsb_AviationData_xml_52rows.xml"


def table_rows(path: Path, table: str) -> list:
    [src] = [s for s in sources.table_sources(path) if s.name == table]
    with src.rows() as (_header, rows, _encoding):
        return list(rows)


def test_each_form_is_recognised_by_its_content(tmp_path):
    assert flat.detect(CSV_SAMPLE) == "csv"
    assert flat.detect(TXT_SAMPLE) == "txt"
    assert flat.detect(XML_SAMPLE) == "xml"
    assert flat.detect(OTHER / "carol_download_2023_53rows.csv") is None  # CAROL's own columns
    renamed = tmp_path / "export.dat.csv"  # the name says nothing: the content decides
    renamed.write_bytes(TXT_SAMPLE.read_bytes())
    assert flat.detect(renamed) == "txt"
    assert sources.release_kind(renamed) == "flat_txt"
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="flat AviationData export"):
        sources.release_kind(other)


def test_rows_map_to_events_aircraft_and_engines_with_codes():
    with open(CSV_SAMPLE, encoding="utf-8", newline="") as fh:
        raw = list(csv.reader(fh))
    header, body = raw[0], raw[1:]
    complete = [r for r in body if len(r) == len(header)]
    events = table_rows(CSV_SAMPLE, "events")
    assert len(events) == len(body)  # one row per flat row: repeats of an event load once
    assert {r[1][0] for r in events if not isinstance(r[1], RowReject)} == {r[0] for r in complete}
    aircraft = [r[1] for r in table_rows(CSV_SAMPLE, "aircraft") if not isinstance(r[1], RowReject)]
    assert len(aircraft) == len(complete)
    keys = [(a[0], a[1]) for a in aircraft]
    assert len(set(keys)) == len(keys)  # numbered within the event
    # DCA82AA012B is the second aircraft of its event
    by_number = {a[2]: a for a in aircraft}
    assert by_number["DCA82AA012A"][1] == "1" and by_number["DCA82AA012B"][1] == "2"
    engines = [r[1] for r in table_rows(CSV_SAMPLE, "engines")]
    types = {e[3] for e in engines}
    assert {"REC", "TP", "TS", "TF", "TJ"} <= types and "Turbo Prop" not in types


def test_labels_become_codes_and_unknown_labels_are_kept():
    assert flat.code("aircraft", "damage", "Substantial") == "SUBS"
    assert flat.code("aircraft", "acft_category", "Weight-Shift") == "WSFT"
    assert flat.code("aircraft", "far_part", "Part 135: Air Taxi & Commuter") == "135"
    assert flat.code("engines", "eng_type", "Turbo Prop") == "TP"
    assert flat.code("aircraft", "type_fly", "Executive/corporate") == "EXEC"
    assert flat.code("aircraft", "phase_flt_spec", "TAKEOFF") == "520"
    assert flat.code("aircraft", "damage", "Bent a bit") == "Bent a bit"  # kept, reported as unknown
    assert flat.code("aircraft", "damage", "Unknown") is None
    values = {flat.key(c): "" for c in flat.COLUMNS} | {
        "eventid": "20150906X32704",
        "investigationtype": "Accident",
        "accidentnumber": "ERA15LA339",
        "eventdate": "09/05/2015",
        "location": "Laconia, NH",
        "country": "United States",
        "injuryseverity": "Fatal(2)",
    }
    row = dict(zip(flat.EVENTS, flat.event_row(values), strict=True))
    assert row["ev_highest_injury"] == "FATL" and row["inj_tot_f"] == "2"  # the count from the label
    assert (row["ev_date"], row["ev_city"], row["ev_state"], row["ev_country"]) == (
        "2015-09-05",
        "Laconia",
        "NH",
        "USA",
    )
    row = dict(
        zip(flat.EVENTS, flat.event_row(values | {"latitude": "43.606389", "longitude": "0712608W"}), strict=True)
    )
    assert (row["dec_latitude"], row["latitude"], row["dec_longitude"], row["longitude"]) == (
        "43.606389",
        "",
        "",
        "0712608W",
    )
    row = dict(zip(flat.EVENTS, flat.event_row(values | {"injuryseverity": "Non-Fatal"}), strict=True))
    assert row["ev_highest_injury"] == ""  # no single level: severity comes from the counts


def test_a_truncated_last_row_is_rejected_with_its_line():
    *_, (line, last) = table_rows(CSV_SAMPLE, "events")
    assert isinstance(last, RowReject) and last.rule == "field_count"
    assert line == len(CSV_SAMPLE.read_text(encoding="utf-8").splitlines())
    assert "30 fields where the header has 31" in last.reason
    *_, (line, last) = table_rows(TXT_SAMPLE, "aircraft")
    assert isinstance(last, RowReject) and "5 fields" in last.reason


def test_the_xml_that_is_not_well_formed_is_read():
    events = table_rows(XML_SAMPLE, "events")
    assert len(events) == 52 and not any(isinstance(r, RowReject) for _, r in events)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda h: h.replace(",Air.carrier", ""), "missing Air.carrier"),
        (lambda h: h.replace("Make,", "Manufacturer,"), "missing Make; not expected Manufacturer"),
    ],
)
def test_a_header_that_is_nearly_right_is_refused(tmp_path, edit, named):
    lines = CSV_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "AviationData.csv"
    bad.write_text(edit(lines[0]) + "".join(lines[1:20]), encoding="utf-8")
    with pytest.raises(SourceError) as err:
        table_rows(bad, "events")
    assert err.value.file == "AviationData.csv" and err.value.rule == "flat_header"
    assert named in str(err.value)


def test_mixed_encodings_are_decoded_line_by_line(tmp_path):
    lines = CSV_SAMPLE.read_bytes().splitlines(keepends=True)[:3]
    mixed = tmp_path / "mixed.csv"
    lines[1] = lines[1].replace(b"MOOSE CREEK", "ZÜRICH".encode())
    lines[2] = lines[2].replace(b"BRIDGEPORT", "MÜNCHEN".encode("latin-1"))
    mixed.write_bytes(b"".join(lines))
    cities = [r[1][4] for r in table_rows(mixed, "events")]
    assert cities == ["ZÜRICH", "MÜNCHEN"]
    assert not any("\ufffd" in c for c in cities)


def test_a_carol_download_maps_into_events_aircraft_and_narratives(tmp_path):
    from ntsb_assets.lib import carol

    path = OTHER / "carol_download_2023_53rows.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") and sources.release_kind(path) == "carol_csv"
    [event] = [r for _, r in table_rows(path, "events")][:1]
    row = dict(zip(carol.EVENTS, event, strict=True))
    assert row["ev_id"] == "CAROL000193248"  # EventID is empty in the download: CAROL and the Mkey
    assert (row["ev_date"], row["ev_state"], row["ev_country"], row["ev_highest_injury"]) == (
        "2023-10-14",
        "FL",
        "USA",
        "MINR",
    )
    aircraft = dict(zip(carol.AIRCRAFT, table_rows(path, "aircraft")[0][1], strict=True))
    assert (aircraft["far_part"], aircraft["homebuilt"], aircraft["damage"]) == ("091", "N", "SUBS")
    causes = table_rows(path, "narratives")
    assert len(causes) == 53 and causes[0][1][2].startswith("The pilot\u2019s failure")
    given = tmp_path / "carol.csv"  # with avall's EventID filled in, that is the ev_id
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    given.write_text(lines[0] + lines[1].replace(",,27.347915", ",20231016193248,27.347915"), encoding="utf-8")
    assert table_rows(given, "events")[0][1][0] == "20231016193248"
    dropped = tmp_path / "dropped.csv"
    dropped.write_text(lines[0].replace("ProbableCause,", "Cause,") + lines[1], encoding="utf-8")
    with pytest.raises(SourceError, match="without the columns ProbableCause"):
        table_rows(dropped, "events")


def test_a_generated_release_written_flat_reads_back_to_the_same_codes(tmp_path):
    from ntsb_assets.lib import synth

    synth.generate(tmp_path / "release", 300, seed=5)
    n = flat.write(tmp_path / "release", tmp_path / "AviationData.csv")
    assert flat.detect(tmp_path / "AviationData.csv") == "csv"
    with open(tmp_path / "release" / "aircraft.csv", encoding="utf-8", newline="") as fh:
        unknown = {"UNK": ""}  # written as the label Unknown, which reads back as no value
        generated = {
            (r["ev_id"], r["damage"].strip(), unknown.get(r["far_part"].strip(), r["far_part"].strip()))
            for r in csv.DictReader(fh)
        }
    aircraft = [
        dict(zip(flat.AIRCRAFT, r, strict=True)) for _, r in table_rows(tmp_path / "AviationData.csv", "aircraft")
    ]
    assert len(aircraft) == n
    assert {(a["ev_id"], a["damage"], a["far_part"]) for a in aircraft} == generated
    events = {r[0] for _, r in table_rows(tmp_path / "AviationData.csv", "events")}
    assert len(events) == 300
