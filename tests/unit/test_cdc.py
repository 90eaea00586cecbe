"""Change data capture and load rules on real rows of the sample (no database)."""

import datetime as dt

import pyarrow as pa
import pytest

from ntsb_assets.lib import catalog, cdc
from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.lake import Lake
from tests.conftest import SAMPLE

TODAY = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    m = extract_release(SAMPLE / "02_up01JUL2025", lake, today=TODAY)
    return {t: lake.read_parquet(v["parquet_key"]) for t, v in m["tables"].items()}


def _with(table: pa.Table, i: int, **changes) -> pa.Table:
    """Row i with some values changed (and a new hash), appended to the table."""
    row = table.slice(i, 1).to_pylist()[0]
    row.update(changes)
    row["_row_hash"] = "changed-" + "-".join(f"{k}={v}" for k, v in sorted(changes.items()))
    row["_source_row"] = 10_000 + i
    return pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)])


def test_first_load_inserts_everything(release):
    ev = release["events"]
    plan = cdc.plan_table(catalog.table("events"), ev, existing={}, today=TODAY)
    assert plan.counts() == {
        "rows_in": ev.num_rows,
        "inserted": ev.num_rows,
        "updated": 0,
        "unchanged": 0,
        "quarantined": 0,
        "superseded": 0,
    }


def test_reload_is_unchanged_and_a_change_is_an_update(release):
    ev = release["events"]
    existing = dict(zip(((k,) for k in ev["ev_id"].to_pylist()), ev["_row_hash"].to_pylist(), strict=True))
    assert cdc.plan_table(catalog.table("events"), ev, existing=existing, today=TODAY).unchanged == ev.num_rows
    first = ev["ev_id"][0].as_py()
    existing[(first,)] = "an older hash"
    plan = cdc.plan_table(catalog.table("events"), ev, existing=existing, today=TODAY)
    assert plan.update_rows == [0] and plan.old_hashes == ["an older hash"]
    assert plan.unchanged == ev.num_rows - 1


def test_duplicate_key_with_different_content_quarantines_all_copies(release):
    ev = _with(release["events"], 5, ev_city="Elsewhere")
    plan = cdc.plan_table(catalog.table("events"), ev, existing={}, today=TODAY)
    dup = [q for q in plan.quarantine if q.rule == "duplicate_key"]
    assert len(dup) == 2 and "different content" in dup[0].reason
    key = (ev["ev_id"][5].as_py(),)
    assert key in plan.quarantined_keys and key not in plan.accepted_keys
    assert plan.reconciles()


def test_exact_duplicate_loads_once(release):
    ev = release["events"]
    row = ev.slice(3, 1)
    twice = pa.concat_tables([ev, row])
    plan = cdc.plan_table(catalog.table("events"), twice, existing={}, today=TODAY)
    assert not plan.quarantine and plan.unchanged == 1
    assert len(plan.insert_rows) == ev.num_rows


def test_hard_rules(release):
    ev = release["events"]
    ev = _with(ev, 0, ev_id=None)
    ev = _with(ev, 1, ev_id="X1", ev_date=None)
    ev = _with(ev, 2, ev_id="X2", dec_latitude=123.0)
    ev = _with(ev, 3, ev_id="X3", ev_date=dt.date(1900, 1, 1))
    ev = _with(ev, 4, ev_id="X4", ev_date=TODAY + dt.timedelta(days=1))
    ev = _with(ev, 5, ev_id="X5", dec_longitude=-181.0)
    plan = cdc.plan_table(catalog.table("events"), ev, existing={}, today=TODAY)
    rules = {q.source_row: (q.rule, q.reason) for q in plan.quarantine}
    assert rules[10_000][0] == "missing_key"
    assert rules[10_001] == ("missing_required", "required column ev_date is empty")
    assert rules[10_002][0] == "out_of_range" and "dec_latitude=123.0" in rules[10_002][1]
    assert rules[10_003][0] == "out_of_range" and "1900-01-01" in rules[10_003][1]
    assert rules[10_004][0] == "out_of_range"
    assert rules[10_005][0] == "out_of_range" and "dec_longitude" in rules[10_005][1]
    assert len(plan.insert_rows) == release["events"].num_rows and plan.reconciles()


def test_children_of_quarantined_or_absent_parents(release):
    ac = release["aircraft"]
    ev_ids = ac["ev_id"].to_pylist()
    keys = set(zip(ev_ids))
    bad_parent = (ev_ids[0],)
    loaded = keys - {bad_parent} - {(ev_ids[1],)}
    plan = cdc.plan_table(
        catalog.table("aircraft"),
        ac,
        existing={},
        parent_exists=loaded.__contains__,
        parent_quarantined={bad_parent},
        today=TODAY,
    )
    rules = sorted(q.rule for q in plan.quarantine)
    assert rules == ["orphan", "parent_quarantined"]
    assert all("events ev_id=" in q.reason for q in plan.quarantine)
    assert plan.reconciles()


def test_reference_tables_allow_empty_key_parts():
    tbl = catalog.table("ct_iaids")
    rows = pa.table(
        {"ct_name": [None, "ct_dow"], "code_iaids": ["FOIA", None], "_source_row": [2, 3], "_row_hash": ["a", "b"]}
    )
    plan = cdc.plan_table(tbl, rows, existing={}, today=TODAY)
    assert len(plan.insert_rows) == 2 and not plan.quarantine


def test_unknown_tables_are_keyed_by_content():
    tbl = catalog.table("my_notes")
    assert not tbl.known and cdc.key_columns(tbl) == ("_row_hash",)
    rows = pa.table({"note": ["a", "b", "a"], "_source_row": [2, 3, 4], "_row_hash": ["h1", "h2", "h1"]})
    plan = cdc.plan_table(tbl, rows, existing={("h2",): "h2"}, today=TODAY)
    assert plan.counts() == {
        "rows_in": 3,
        "inserted": 1,
        "updated": 0,
        "unchanged": 2,
        "quarantined": 0,
        "superseded": 0,
    }
