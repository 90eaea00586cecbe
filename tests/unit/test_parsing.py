"""Value parsers on real values from the bundled NTSB sample (data/sample) and the quirks
listed in its README."""

import csv
import datetime as dt

import pytest

from ntsb_assets.lib import parsing
from tests.conftest import SAMPLE

TODAY = dt.date(2026, 11, 26)


def _rows(release, table):
    with open(SAMPLE / release / f"{table}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("02/11/08 00:00:00", dt.datetime(2008, 2, 11)),  # avall mdb-export default, 2-digit year
        ("09/23/25 18:50:18", dt.datetime(2025, 9, 23, 18, 50, 18)),
        ("12/01/48 00:00:00", dt.datetime(1948, 12, 1)),  # 2048 is in the future: 1948
        ("11/26/26 00:00:00", dt.datetime(2026, 11, 26)),  # today is not in the future
        ("11/27/26 00:00:00", dt.datetime(1926, 11, 27)),  # tomorrow is
        ("2014-03-04 00:00:00", dt.datetime(2014, 3, 4)),  # Excel export
        ("2014-05-13 14:32:10.320000", dt.datetime(2014, 5, 13, 14, 32, 10, 320000)),
        ("2025-08-24", dt.datetime(2025, 8, 24)),  # third-party export, ISO date
        ("2025-08-24T10:05:00", dt.datetime(2025, 8, 24, 10, 5)),
        ("", None),
        ("   ", None),
    ],
)
def test_timestamps(text, expected):
    assert parsing.parse_timestamp(text, TODAY) == expected


@pytest.mark.parametrize("text", ["1900-01-00 00:00:00", "13/45/2020", "yesterday", "2020-02-30"])
def test_bad_dates_say_why(text):
    with pytest.raises(ValueError, match=repr(text.strip())[1:-1][:8]):
        parsing.parse_timestamp(text, TODAY)


def test_real_event_dates_and_times_parse():
    for release in ("01_part121_1982_2019", "02_up01JUL2025"):
        for row in _rows(release, "events"):
            d = parsing.parse_date(row["ev_date"], TODAY)
            assert dt.date(1948, 1, 1) <= d <= TODAY
            if row["ev_time"]:
                t = parsing.parse_int(row["ev_time"])  # 905, 1545.0
                assert 0 <= t <= 2400


def test_integers_printed_as_floats():
    assert parsing.parse_int("1545.0") == 1545
    assert parsing.parse_int(" 905 ") == 905
    with pytest.raises(ValueError, match="whole"):
        parsing.parse_int("15.5")
    with pytest.raises(ValueError, match="not a number"):
        parsing.parse_int("12a")


def test_yes_no_flags_in_every_spelling():
    crew = _rows("02_up01JUL2025", "flight_crew")
    flags = {r["pilot_flying"] for r in crew if r["pilot_flying"]}
    assert flags <= {"True", "False"} and flags
    assert {parsing.parse_bool(f) for f in flags} <= {True, False}
    assert [parsing.parse_bool(v) for v in ("Y", "N", "1", "0", "-1", "")] == [True, False, True, False, True, None]
    with pytest.raises(ValueError):
        parsing.parse_bool("maybe")


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        ("324406N", "lat", 32.735),  # San Diego, part121 row 20140507X51410
        ("1171123W", "lon", -117.189722),
        ("351941N", "lat", 35.328056),
        ("0773655w", "lon", -77.615278),  # lower-case hemisphere, real row 20030314X00332
        ("002454N", "lat", 0.415),  # real row 20250825200849 (dec_latitude 0.415001)
        ("0701128W", "lon", -70.191111),
        (" 443345N ", "lat", 44.5625),  # blank-padded
        ("046955N", "lat", None),  # malformed (69 minutes), real row 20251112201995
        ("0098281W", "lon", None),  # 8-digit, malformed
        ("950000N", "lat", None),  # beyond the pole
        ("", "lat", None),
        ("443345E", "lat", None),  # wrong hemisphere for a latitude
    ],
)
def test_dms(text, kind, expected):
    got = parsing.parse_dms(text, kind)
    assert got == (pytest.approx(expected, abs=1e-6) if expected is not None else None)


def test_recent_dms_strings_are_unpadded_and_the_decimal_columns_win():
    """In recent exports the DMS string is degrees, minutes and seconds written without
    zero padding (``004700N`` = 47 deg): the fixed-width reading is wrong for about one row
    in six, so extraction takes NTSB's dec_latitude/dec_longitude where delivered. Each
    decimal is one of the unpadded readings of its string (up to the sign, which NTSB
    sometimes gets wrong in one of the two)."""
    checked = fixed_wrong = 0
    for release in ("02_up01JUL2025", "03_up01DEC2025", "04_up01JAN2026", "05_up01FEB2026"):
        for row in _rows(release, "events"):
            for col, kind in (("latitude", "lat"), ("longitude", "lon")):
                dec = row[f"dec_{col}"]
                readings = parsing.dms_readings(row[col], kind)
                if not dec or not readings or float(dec) == 0:
                    continue
                checked += 1
                assert any(abs(abs(r) - abs(float(dec))) < 2e-3 for r in readings), (row["ev_id"], row[col], dec)
                fixed = parsing.parse_dms(row[col], kind)
                fixed_wrong += fixed is None or abs(abs(fixed) - abs(float(dec))) > 2e-3
    assert checked > 200 and 0 < fixed_wrong < checked / 2


def test_text_is_kept_exactly():
    narr = _rows("02_up01JUL2025", "narratives")
    text = next(r["narr_accp"] for r in narr if "\n" in r["narr_accp"])
    assert parsing.parse_string(text) == text
    odd = "a\rb\x0bc\x1ed\u00a0e"
    assert parsing.parse_string(odd) == odd
    assert parsing.parse_string("PLT ") == "PLT "  # fixed-width padding kept for dbt to trim
    assert parsing.parse_string("") is None


def test_row_hash_ignores_column_order_and_absent_nulls():
    a = parsing.row_hash(["ev_id", "ev_city"], ["20080211X00175", "Kinston"])
    b = parsing.row_hash(["ev_city", "ev_id", "dec_latitude"], ["Kinston", "20080211X00175", None])
    c = parsing.row_hash(["ev_id", "ev_city"], ["20080211X00175", "Kinston "])
    assert a == b != c


def test_infer_type():
    assert parsing.infer_type(["1", "2", ""]) == "int"
    assert parsing.infer_type(["1", "2.5"]) == "float"
    assert parsing.infer_type(["02/11/08 00:00:00"]) == "timestamp"
    assert parsing.infer_type(["up01DEC.mdb"]) == "string"
    assert parsing.infer_type(["", ""]) == "string"
