"""NTSB's code sets: every code source merged with the bundled baseline, the newer release
winning with the change recorded, and the dictionary-lag report; on a real DuckDB warehouse
and the real reference tables of the bundled sample."""

import csv
import datetime as dt

import pyarrow as pa
import pytest

from ntsb_assets.lib import codes
from ntsb_assets.lib.warehouse import Warehouse
from tests.conftest import SAMPLE

REFERENCE = SAMPLE / "00_reference_avall"


def _csv(name: str) -> list[dict]:
    with open(REFERENCE / f"{name}.csv", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_bundled_baseline_is_compiled_from_the_reference_tables():
    data = codes.compile_baseline(REFERENCE)
    bundled = codes.baseline()[0]
    assert [tuple(c) for c in data["codes"]] == [(e.table, e.column, e.code, e.meaning, e.source) for e in bundled], (
        "regenerate: python -m ntsb_assets.lib.codes compile <avall reference tables>"
    )
    sets = codes.baseline_sets()
    # codes only ct_iaids lists, mapped to their column through the dictionary's ct_name
    assert {"WSFT", "PPAR", "RCKT", "AIR"} <= set(sets[("aircraft", "acft_category")])
    assert {"107", "091"} <= set(sets[("aircraft", "far_part")])
    assert "BASC" in sets[("flight_crew", "med_certf")]
    assert {"USA", "AF"} <= set(sets[("events", "ev_country")]) and "AK" in sets[("events", "ev_state")]
    assert "100" in sets[("occurrences", "occurrence_code")]  # ct_seqevt
    assert "01" in sets[("findings", "modifier_no")]  # XXXXXXXX01 in the dictionary
    assert "UNK" not in sets[("aircraft", "damage")]  # no code


def test_within_a_release_the_dictionary_wording_wins_and_a_ct_table_without_one_still_maps():
    dictionary = [
        {
            "Table": "aircraft",
            "Column": "acft_category",
            "ct_name": "ct_acft_cat",
            "code_iaids": "AIR",
            "meaning": "Airplane",
        }
    ]
    ct = [
        {"ct_name": "ct_acft_cat  ", "code_iaids": "AIR", "meaning": "Aeroplane"},
        {"ct_name": "ct_acft_cat", "code_iaids": "WSFT", "meaning": "Weight-Shift"},
    ]
    entries, mapping = codes.entries_of({"ct_iaids": ct, "eADMSPUB_DataDictionary": dictionary})
    got = {(e.code, e.meaning) for e in codes.resolve(entries).values()}
    assert got == {("AIR", "Airplane"), ("WSFT", "Weight-Shift")}
    assert mapping["ct_acft_cat"] == {("aircraft", "acft_category")}
    # a ct_iaids alone: the mapping of an earlier dictionary (here the baseline's)
    alone, _ = codes.entries_of({"ct_iaids": ct}, codes.baseline()[1])
    assert {(e.table, e.column, e.code) for e in alone} == {
        ("aircraft", "acft_category", "AIR"),
        ("aircraft", "acft_category", "WSFT"),
    }


def test_any_other_code_table_a_release_holds_codes_the_columns_the_dictionary_names():
    dictionary = [
        {
            "Table": "aircraft",
            "Column": "acft_category",
            "ct_name": "ct_acft_cat",
            "code_iaids": "AIR",
            "meaning": "Airplane",
        }
    ]
    own = [{"code": "UAS", "meaning": "Unmanned Aircraft System"}, {"code": "AIR", "meaning": "Aeroplane"}]
    assert codes.is_code_table("ct_acft_cat") and not codes.is_code_table("events")
    entries, _ = codes.entries_of({"ct_acft_cat": own, "eADMSPUB_DataDictionary": dictionary, "events": [{"x": 1}]})
    got = {(e.table, e.column, e.code, e.meaning) for e in codes.resolve(entries).values()}
    assert got == {
        ("aircraft", "acft_category", "AIR", "Airplane"),  # the dictionary's wording wins
        ("aircraft", "acft_category", "UAS", "Unmanned Aircraft System"),
    }


def _release(s, release_id: str, first: dt.datetime) -> None:
    s.ensure_table("_releases", {"release_id": "string", "first_loaded_at": "timestamp"})
    s.execute(
        f"INSERT INTO raw._releases (release_id, first_loaded_at) VALUES ('{release_id}', "
        f"TIMESTAMP '{first.isoformat(sep=' ')}')"
    )


def test_a_newer_release_wins_the_change_is_recorded_and_an_older_one_does_not_undo_it(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    t0 = dt.datetime(2026, 1, 1)
    relabel = [{"ct_name": "ct_acft_cat", "code_iaids": "WSFT", "meaning": "Weight-Shift Control"}]
    with wh.session() as s:
        s.ensure_schema("raw")
        seeded = codes.merge(s, "core-only", {}, t0)  # no code tables: the baseline, not a change
        assert (seeded.added, seeded.changed) == (0, 0)
        assert s.query("SELECT count(*) AS n FROM raw._code_sets").column(0)[0].as_py() == len(codes.baseline()[0])
        assert s.query("SELECT count(*) AS n FROM raw._code_set_changes").column(0)[0].as_py() == 0
        _release(s, "A", t0)
        _release(s, "B", t0 + dt.timedelta(days=30))
        # A contradicts the baseline: A wins
        a = codes.merge(s, "A", {"ct_iaids": relabel}, t0)
        assert (a.changed, a.kept) == (1, 0)
        # B, newer, says something else again and adds a code: B wins
        b = codes.merge(
            s,
            "B",
            {
                "ct_iaids": [
                    {"ct_name": "ct_acft_cat", "code_iaids": "WSFT", "meaning": "Weight Shift"},
                    {"ct_name": "ct_acft_cat", "code_iaids": "UAS", "meaning": "Unmanned Aircraft"},
                ]
            },
            t0,
        )
        assert (b.added, b.changed) == (1, 1)
        # A loaded again (older than B): its label does not come back
        again = codes.merge(s, "A", {"ct_iaids": relabel}, t0)
        assert (again.changed, again.kept) == (0, 1)
        now = {
            r["code"]: (r["meaning"], r["release_id"])
            for r in s.query(
                "SELECT code, meaning, release_id FROM raw._code_sets WHERE table_name = 'aircraft' "
                "AND column_name = 'acft_category' AND code IN ('WSFT', 'UAS')"
            ).to_pylist()
        }
        assert now == {"WSFT": ("Weight Shift", "B"), "UAS": ("Unmanned Aircraft", "B")}
        changes = s.query(
            "SELECT code, operation, old_meaning, new_meaning, old_release_id, release_id "
            "FROM raw._code_set_changes ORDER BY release_id, code"
        ).to_pylist()
        assert [tuple(c.values()) for c in changes] == [
            ("WSFT", "changed", "Weight-Shift", "Weight-Shift Control", "baseline", "A"),
            ("UAS", "added", None, "Unmanned Aircraft", None, "B"),
            ("WSFT", "changed", "Weight-Shift Control", "Weight Shift", "A", "B"),
        ]


def test_the_lag_report_counts_the_codes_no_source_knows():
    known = {("aircraft", "acft_category"): {"AIR", "HELI"}, ("aircraft", "damage"): {"SUBS", "DEST"}}
    rows = pa.table(
        {
            "acft_category": ["AIR", "air ", "WSFT", "WSFT", "UNK", "", None, "XX"],
            "damage": ["SUBS"] * 8,
            "acft_make": ["CESSNA"] * 8,
        }
    )
    found = codes.lag("aircraft", rows, known)
    assert found == [
        {"column_name": "acft_category", "code": "WSFT", "row_count": 2, "column_rows": 5},
        {"column_name": "acft_category", "code": "XX", "row_count": 1, "column_rows": 5},
    ]
    # integer columns are compared as text
    assert codes.lag(
        "occurrences", pa.table({"Occurrence_Code": [100, 999]}), {("occurrences", "occurrence_code"): {"100"}}
    ) == [{"column_name": "occurrence_code", "code": "999", "row_count": 1, "column_rows": 2}]


@pytest.mark.parametrize("value,code", [(" wsft ", "WSFT"), ("UNK", None), ("", None), (None, None), ("unkn", None)])
def test_codes_are_normalised_as_the_staging_views_do(value, code):
    assert codes.normalise_code(value) == code
