"""The MDB path on real Microsoft Access files (Jet 3, Jet 4, ACE 12) through mdbtools."""

import csv
import datetime as dt
import io
import json
import shutil
import subprocess

import pytest

from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.lake import Lake
from ntsb_assets.lib.sources import mdb_column_types, mdb_table_names
from tests.conftest import MDB_FIXTURES

pytestmark = pytest.mark.skipif(shutil.which("mdb-export") is None, reason="mdbtools is not installed")
FILES = ["nwind.mdb", "DateTestDatabase.mdb", "ASampleDatabase.accdb"]


def _mdb_export_rows(path, table) -> int:
    out = subprocess.run(["mdb-export", "-b", "hex", str(path), table], capture_output=True, check=True).stdout
    return sum(1 for _ in csv.reader(io.StringIO(out.decode("utf-8"), newline=""))) - 1


@pytest.mark.parametrize("name", FILES)
def test_every_table_extracted_with_mdb_export_row_counts(tmp_path, name):
    path = MDB_FIXTURES / name
    lake = Lake(str(tmp_path / "lake"))
    m = extract_release(path, lake)
    assert m["kind"] == "mdb"
    assert sorted(m["tables"]) == sorted(mdb_table_names(path))
    for table, t in m["tables"].items():
        expected = _mdb_export_rows(path, table)
        assert t["rows_in"] == expected, table
        assert t["rows_out"] + t["rejected"] == expected, table
        assert lake.read_parquet(t["parquet_key"]).num_rows == t["rows_out"]


def test_column_types_come_from_mdb_schema(tmp_path):
    types = mdb_column_types(MDB_FIXTURES / "nwind.mdb", "Order Details")
    assert types == {"OrderID": "int", "ProductID": "int", "UnitPrice": "float", "Quantity": "int", "Discount": "float"}
    m = extract_release(MDB_FIXTURES / "nwind.mdb", Lake(str(tmp_path / "lake")))
    assert m["tables"]["Employees"]["columns"]["BirthDate"] == "timestamp"
    assert m["tables"]["Umsätze"]["rows_in"] == _mdb_export_rows(MDB_FIXTURES / "nwind.mdb", "Umsätze")


def test_edge_case_dates_of_date_test_database(tmp_path):
    """Rows 1, 5 and 6 hold 2021-12-02 and text with line breaks; rows 2-4 hold dates
    mdbtools cannot represent (year 9999, before 1900, before 1000): it writes day 00 for
    them, and those rows are rejected naming the column and the reason, never loaded with
    a made-up date."""
    lake = Lake(str(tmp_path / "lake"))
    m = extract_release(MDB_FIXTURES / "DateTestDatabase.mdb", lake)
    t = m["tables"]["DateTest"]
    rows = lake.read_parquet(t["parquet_key"]).to_pylist()
    assert [r["IDCol"] for r in rows] == [1, 5, 6]
    for r in rows:
        assert r["DateTimeCol"] == r["DateCol"] == dt.datetime(2021, 12, 2)
    assert rows[2]["LongTextCol"] == "New line\r\nin field"
    assert rows[1]["LongTextCol"] == "Escaped new line \\r\\n in field"
    rejects = lake.read_parquet(t["rejects_key"]).to_pylist()
    assert [r["_source_row"] for r in rejects] == [3, 4, 5]
    for r in rejects:
        assert r["rule"] == "type" and r["column"] == "DateTimeCol"
        assert "cannot represent" in r["reason"]
        assert json.loads(r["original"])["DateTimeCol"] == "1900-01-00 00:00:00"
    texts = [json.loads(r["original"])["LongTextCol"] for r in rejects]
    assert texts == ["Year 9999", "Pre-1900 years", "Pre-1000 years"]
