"""The quality rules generated from the catalog and the data dictionary (no servers)."""

from pathlib import Path

from ntsb_assets.lib import quality

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data-quality.md"
CODES = {("events", "light_cond"): ["DAYL", "DUSK", "NDRK", "NITE"], ("events", "ev_type"): ["ACC", "INC"]}


def _columns(table):
    return quality.catalog_columns(table)


def test_rule_book_is_generated_from_the_code():
    assert DOCS.read_text(encoding="utf-8") == quality.rule_book(), \
        "regenerate: python -m ntsb_assets.lib.quality docs/data-quality.md"


def test_rules_cover_the_gates_with_at_least_fifty_expectations():
    book = quality.rule_book()
    rules = [line for line in book.splitlines() if line.startswith(("| schema |", "| business |", "| statistical |"))]
    assert len(rules) >= 50 and len(set(rules)) == len(rules)
    assert {line.split("|")[2].strip() for line in rules} == {"error", "warn"}
    assert {line.split("|")[1].strip() for line in rules} == {"schema", "business", "statistical"}


def test_statistical_rules_bound_volume_and_null_rates():
    rules = {r.name: r for r in quality.statistical_rules("events", 83, {"ev_id": 1.0, "latitude": 0.1},
                                                          ["ev_id", "latitude", "ev_date", "_release_id"])}
    assert rules["events.release.volume"].kwargs == {"min_value": 50, "max_value": 116}
    assert rules["events.latitude.null_rate"].kwargs == {"column": "latitude", "min_value": 0.0, "max_value": 0.35}
    assert "events.ev_date.null_rate" not in rules          # not in the previous release
    assert all(r.severity == "warn" for r in rules.values())


def test_event_rules():
    rules = {r.name: r for r in quality.rules_for("events", _columns("events"), CODES)}
    assert rules["events.ev_id.unique"].severity == "error"
    assert rules["events.latitude_decimal.range"].kwargs == {"column": "latitude_decimal", "min_value": -90, "max_value": 90}
    assert rules["events.ev_date.range"].kwargs["min_value"] == "1948-01-01"
    # code lists come from the dictionary given, not from the code
    assert rules["events.light_cond.code"].kwargs["value_set"] == ["DAYL", "DUSK", "NDRK", "NITE"]
    assert rules["events.light_cond.code"].severity == "warn"
    assert "events.wx_cond_basic.code" not in rules          # not in this dictionary
    assert rules["events.inj_tot_f.matches_injury"].severity == "warn"
    assert rules["events.inj_tot_f.outlier"].kwargs["max_value"] == quality.MAX_FATALITIES


def test_child_rules_reference_their_parents():
    engines = {r.name for r in quality.rules_for("engines", _columns("engines"), {})}
    assert {"engines.key.unique", "engines.ev_id.in_events", "engines.aircraft_key.in_aircraft"} <= engines
    narratives = {r.name for r in quality.rules_for("narratives", _columns("narratives"), {})}
    assert "narratives.ev_id.in_events" in narratives and "narratives.aircraft_key.in_aircraft" in narratives
    states = {r.name for r in quality.rules_for("states", _columns("states"), {})}
    assert not any("in_events" in n for n in states)


def test_rules_skip_columns_a_warehouse_lacks():
    rules = {r.name for r in quality.rules_for("events", ["ev_id", "ev_date"], CODES)}
    assert "events.latitude_decimal.range" not in rules and "events.light_cond.code" not in rules
    assert {"events.ev_id.exists", "events.ev_date.range"} <= rules


def test_frame_sql_normalises_codes_and_derives_parents():
    sql = quality.frame_sql("aircraft", ["ev_id", "aircraft_key", "damage", "_release_id"], ["damage"],
                            {"events", "aircraft"})
    assert "upper(nullif(trim(CAST(t.\"damage\" AS VARCHAR)), ''))" in sql
    assert "_event_exists" in sql and "_release_id" not in sql
    orphan = quality.frame_sql("engines", ["ev_id", "aircraft_key", "eng_no"], [], {"engines"})
    assert "false AS _event_exists" in orphan and "false AS _aircraft_exists" in orphan


def test_dictionary_code_sets_are_normalised():
    sets = quality._code_sets([("Events ", "Light_Cond", " dayl "), ("events", "light_cond", "NITE"),
                               ("events", "light_cond", ""), (None, "x", "Y")])
    assert sets == {("events", "light_cond"): ["DAYL", "NITE"]}
