"""Extraction of mdb-export CSV releases to typed Parquet, on the real sample and on the
kinds of bad input a landing zone receives."""

import csv
import datetime as dt
import io
import json
import zipfile

import pyarrow as pa
import pytest

from ntsb_assets.lib import catalog
from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.lake import Lake
from ntsb_assets.lib.sources import SourceError, identify, table_sources
from tests.conftest import SAMPLE, copy_release

TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def lake(tmp_path):
    return Lake(str(tmp_path / "lake"))


def _count_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def test_sample_release_round_trips_with_types(lake):
    m = extract_release(SAMPLE / "02_up01JUL2025", lake, today=TODAY)
    assert m["release_id"].startswith("02_up01JUL2025-") and not m["reused"]
    ev = m["tables"]["events"]
    assert ev["rows_in"] == ev["rows_out"] == _count_csv_rows(SAMPLE / "02_up01JUL2025" / "events.csv")
    # lower-case names from this export map to the NTSB spelling
    assert "Flight_Crew" in m["tables"] and "Aircraft_Key" in m["tables"]["aircraft"]["columns"]
    assert m["tables"]["events"]["extra_columns"] == ["source_archive"]
    t = lake.read_parquet(ev["parquet_key"])
    schema = t.schema
    assert schema.field("ev_date").type == pa.date32()
    assert schema.field("ev_time").type == pa.int64()  # 1545.0 in the file
    assert schema.field("lchg_date").type == pa.timestamp("us")
    assert schema.field("dec_latitude").type == pa.float64()
    assert schema.field("ev_id").type == pa.string()
    row = (
        t.filter(pa.compute.equal(t["ev_id"], "20250825200849")) if "20250825200849" in t["ev_id"].to_pylist() else None
    )
    crew = lake.read_parquet(m["tables"]["Flight_Crew"]["parquet_key"])
    assert crew.schema.field("pilot_flying").type == pa.bool_()  # True/False in the file
    assert set(crew["pilot_flying"].to_pylist()) <= {True, False, None}
    assert row is None or row["latitude"][0].as_py() == "002454N"


def test_known_values_of_a_real_row(lake):
    m = extract_release(SAMPLE / "01_part121_1982_2019", lake, today=TODAY)
    t = lake.read_parquet(m["tables"]["events"]["parquet_key"]).to_pylist()
    row = next(r for r in t if r["ev_id"] == "20030314X00332")
    assert row["ev_date"] == dt.date(2003, 3, 8)
    assert row["ev_time"] == 1027
    assert row["longitude"] == "0773655w" and row["longitude_decimal"] == pytest.approx(-77.615278)
    assert row["lchg_userid"] == "NTSB\\MONR         "  # padding kept as delivered
    assert row["_source_row"] == 3
    assert len(row["_row_hash"]) == 32


def test_extraction_is_immutable_and_reused(lake):
    first = extract_release(SAMPLE / "03_up01DEC2025", lake, today=TODAY)
    again = extract_release(SAMPLE / "03_up01DEC2025", lake, today=TODAY)
    assert again["reused"] and again["release_id"] == first["release_id"]


def test_zip_release_equals_directory_release(lake, tmp_path):
    z = tmp_path / "up01DEC.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted((SAMPLE / "03_up01DEC2025").iterdir()):
            zf.write(f, f"export/{f.name}")
    mz = extract_release(z, lake, today=TODAY)
    md = extract_release(SAMPLE / "03_up01DEC2025", lake, today=TODAY)
    assert {k: v["rows_out"] for k, v in mz["tables"].items()} == {k: v["rows_out"] for k, v in md["tables"].items()}
    hz = lake.read_parquet(mz["tables"]["events"]["parquet_key"])["_row_hash"].to_pylist()
    hd = lake.read_parquet(md["tables"]["events"]["parquet_key"])["_row_hash"].to_pylist()
    assert hz == hd


def test_identity_is_name_and_content_hash(tmp_path):
    a = copy_release("03_up01DEC2025", tmp_path)
    info = identify(a)
    assert info.kind == "csv_dir" and len(info.sha256) == 64
    assert info.release_id == f"03_up01DEC2025-{info.sha256[:12]}"
    (a / "events.csv").write_text((a / "events.csv").read_text() + "\n")
    assert identify(a).sha256 != info.sha256


def test_unknown_table_is_kept_and_reported(lake, tmp_path):
    rel = copy_release("03_up01DEC2025", tmp_path)
    (rel / "my_notes.csv").write_text("id,note,when\n1,hello,02/11/08 00:00:00\n2,world,\n")
    m = extract_release(rel, lake, today=TODAY)
    assert m["unknown_tables"] == ["my_notes"]
    notes = m["tables"]["my_notes"]
    assert notes["columns"] == {"id": "int", "note": "string", "when": "timestamp"}  # inferred
    assert lake.read_parquet(notes["parquet_key"]).num_rows == 2


def test_latin1_bytes_are_decoded(lake, tmp_path):
    rel = copy_release("03_up01DEC2025", tmp_path)
    raw = (rel / "events.csv").read_bytes().replace(b"Locarno", "Locarnö".encode("latin-1"))
    (rel / "events.csv").write_bytes(raw)
    m = extract_release(rel, lake, today=TODAY)
    assert m["tables"]["events"]["encoding"] == "cp1252"
    cities = lake.read_parquet(m["tables"]["events"]["parquet_key"])["ev_city"].to_pylist()
    assert "Locarnö" in cities


def test_bad_values_are_rejected_with_row_and_rule(lake, tmp_path):
    rel = copy_release("03_up01DEC2025", tmp_path)
    text = (rel / "events.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader([text[0]]))
    row = next(csv.reader([text[2]]))
    row[header.index("ev_date")] = "13/45/2020"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    text[2] = buf.getvalue()
    text.append("20990101X00001,short\n")  # too few fields
    (rel / "events.csv").write_text("".join(text), encoding="utf-8")
    m = extract_release(rel, lake, today=TODAY)
    ev = m["tables"]["events"]
    assert ev["rows_in"] == ev["rows_out"] + 2 and ev["rejected"] == 2
    rejects = lake.read_parquet(ev["rejects_key"]).to_pylist()
    by_row = {r["_source_row"]: r for r in rejects}
    assert by_row[3]["rule"] == "type" and "ev_date" in by_row[3]["reason"] and "13/45/2020" in by_row[3]["reason"]
    assert json.loads(by_row[3]["original"])["ev_date"] == "13/45/2020"
    assert by_row[len(text)]["rule"] == "field_count"


@pytest.mark.parametrize(
    "content, rule",
    [
        (b"", "empty_file"),
        (bytes(range(256)) * 40, "missing_required_column"),  # random bytes named events.csv
        (b"ev_id,ntsb_no\n20080211X00175,X\n", "missing_required_column"),  # no ev_date
        (b'ev_id,ev_date\n"20080211X00175","2008-02-', "csv_syntax"),  # truncated inside a quote
    ],
)
def test_unreadable_tables_fail_naming_file_table_row_rule(lake, tmp_path, content, rule):
    rel = copy_release("03_up01DEC2025", tmp_path)
    (rel / "events.csv").write_bytes(content)
    with pytest.raises(SourceError) as err:
        extract_release(rel, lake, today=TODAY)
    e = err.value
    assert e.rule == rule and e.file == "events.csv" and e.table == "events" and e.row is not None
    assert f"[{rule}]" in str(e) and "events.csv" in str(e)
    assert not lake.list("raw")  # nothing published for the release


def test_catalog_names_every_table_the_issue_lists():
    for name in [
        "events",
        "aircraft",
        "engines",
        "Flight_Crew",
        "flight_time",
        "injury",
        "Findings",
        "Occurrences",
        "seq_of_events",
        "Events_Sequence",
        "narratives",
        "NTSB_Admin",
        "dt_events",
        "dt_aircraft",
        "dt_Flight_Crew",
        "ct_iaids",
        "ct_seqevt",
        "eADMSPUB_DataDictionary",
        "Country",
        "states",
    ]:
        assert catalog.canonical_table_name(name.upper()) == name
        assert catalog.table(name).known
        assert catalog.table(name).key or name == "eADMSPUB_DataDictionary"


def test_table_sources_of_a_directory():
    names = [t.name for t in table_sources(SAMPLE / "00_reference_avall")]
    assert names == sorted(names) and "eADMSPUB_DataDictionary" in names


def test_a_license_or_readme_beside_the_tables_is_part_of_the_release_not_a_table(tmp_path):
    """NTSB data as people share it: the 2025 updates come with their LICENSE.txt."""
    import shutil

    folder = tmp_path / "rel"
    shutil.copytree(SAMPLE / "03_up01DEC2025", folder)
    plain = identify(folder)
    (folder / "LICENSE.txt").write_text('CC0 1.0 "Universal"\n"quoted, unbalanced\n', encoding="utf-8")
    (folder / "README.md").write_text("# about\n", encoding="utf-8")
    (folder / "readme.txt").write_text("about\n", encoding="utf-8")
    assert [t.name for t in table_sources(folder)] == [t.name for t in table_sources(SAMPLE / "03_up01DEC2025")]
    assert identify(folder).sha256 != plain.sha256  # the release's identity covers the file
    with zipfile.ZipFile(tmp_path / "rel.zip", "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f.name)
    assert [t.name for t in table_sources(tmp_path / "rel.zip")] == [t.name for t in table_sources(folder)]


def test_worker_processes_give_the_same_result_and_the_same_errors(tmp_path, monkeypatch):
    from ntsb_assets.lib import extract as ex

    monkeypatch.setattr(ex, "PARALLEL_FROM_BYTES", 0)
    serial = extract_release(SAMPLE / "01_part121_1982_2019", Lake(str(tmp_path / "a")), today=TODAY, workers=1)
    parallel = extract_release(SAMPLE / "01_part121_1982_2019", Lake(str(tmp_path / "b")), today=TODAY, workers=2)
    assert serial["release_id"] == parallel["release_id"]
    for t in serial["tables"]:
        for k in ("rows_in", "rows_out", "rejected", "columns", "schema_hash"):
            assert serial["tables"][t][k] == parallel["tables"][t][k], (t, k)
    a = Lake(str(tmp_path / "a")).read_parquet(serial["tables"]["injury"]["parquet_key"])
    b = Lake(str(tmp_path / "b")).read_parquet(parallel["tables"]["injury"]["parquet_key"])
    assert a.equals(b)
    rel = copy_release("03_up01DEC2025", tmp_path)
    (rel / "events.csv").write_bytes(b"ev_id,ntsb_no\n1,2\n")
    with pytest.raises(SourceError) as err:
        extract_release(rel, Lake(str(tmp_path / "c")), today=TODAY, workers=2)
    assert err.value.rule == "missing_required_column" and err.value.file == "events.csv"


def test_a_release_verified_by_the_caller_is_not_hashed_again(lake):
    """The ingest run hashes a release once (releases/source); the extraction takes the
    identity it was given."""
    from ntsb_assets.lib.sources import ReleaseInfo

    given = ReleaseInfo("02_up01JUL2025", "f" * 64, 1, "csv_dir")
    m = extract_release(SAMPLE / "02_up01JUL2025", lake, release_id="given", today=TODAY, info=given)
    assert (m["sha256"], m["size"]) == ("f" * 64, 1)
    assert m["tables"]["events"]["rows_out"] == _count_csv_rows(SAMPLE / "02_up01JUL2025" / "events.csv")
