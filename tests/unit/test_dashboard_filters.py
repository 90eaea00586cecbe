"""The dashboard's URL query: what it keeps and what it drops, and the SQL it becomes."""

import pytest

from ntsb_api.store import slice_where
from ntsb_dashboard.filters import Filters, parse

OPTIONS = {
    "years": [{"code": 1982, "label": "first"}, {"code": 2025, "label": "last"}],
    "state": [{"code": "CA", "label": "California", "events": 9}, {"code": "TX", "label": "Texas", "events": 5}],
    "far_part": [{"code": "091", "label": "General aviation", "events": 12}],
    "category": [],
    "phase": [],
    "weather": [],
    "severity": [{"code": "FATL", "label": "FATL", "events": 1}],
}


def test_known_values_are_kept_and_round_trip():
    f = parse({"years": "1990-2000", "state": "CA,TX", "far_part": "091", "data": "abc"}, OPTIONS)
    assert f.years == (1990, 2000) and f.values == {"state": ("CA", "TX"), "far_part": ("091",)} and not f.ignored
    assert parse(f.query(), OPTIONS).values == f.values and f.query()["years"] == "1990-2000"
    assert dict(f.store()) == {"year_from": 1990, "year_to": 2000, "state": ("CA", "TX"), "far_part": ("091",)}


@pytest.mark.parametrize(
    "query, dropped",
    [
        ({"years": "1900-2000"}, "years"),
        ({"years": "2000-1990"}, "years"),
        ({"years": "1990-2000; DROP"}, "years"),
        ({"state": "CA' OR '1'='1"}, "state"),
        ({"state": "ZZ"}, "state"),
        ({"state": "CA," + "X" * 500}, "state"),
        ({"far_part": "<script>alert(1)</script>"}, "far_part"),
        ({"severity": "../../etc/passwd"}, "severity"),
    ],
)
def test_anything_else_is_dropped_and_named(query, dropped):
    f = parse(query, OPTIONS)
    assert dropped in f.ignored and dropped not in f.values and (dropped != "years" or f.years is None)


def test_partly_known_lists_keep_the_known_values():
    f = parse({"state": "CA,ZZ,TX"}, OPTIONS)
    assert f.values == {"state": ("CA", "TX")} and f.ignored == ["state"]


def test_values_only_ever_travel_as_parameters():
    clause, params = slice_where(dict(Filters(years=(1990, 1991), values={"state": ("CA", "TX")}).store(make="Piper")))
    assert "CA" not in clause and "Piper" not in clause and clause.count("?") == len(params) == 5
    with pytest.raises(ValueError, match="unknown filter"):
        slice_where({"state; DROP TABLE x": "CA"})
