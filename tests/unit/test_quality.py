"""The quality rules generated from the catalog and the data dictionary (no servers)."""

from pathlib import Path

from ntsb_assets.lib import quality

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data-quality.md"
CODES = {("events", "light_cond"): ["DAYL", "DUSK", "NDRK", "NITE"], ("events", "ev_type"): ["ACC", "INC"]}


def _columns(table):
    return quality.catalog_columns(table)


def test_rule_book_is_generated_from_the_code():
    assert DOCS.read_text(encoding="utf-8") == quality.rule_book(), (
        "regenerate: python -m ntsb_assets.lib.quality docs/data-quality.md"
    )


def test_rules_cover_the_gates_with_at_least_fifty_expectations():
    book = quality.rule_book()
    rules = [line for line in book.splitlines() if line.startswith(("| schema |", "| business |", "| statistical |"))]
    assert len(rules) >= 50 and len(set(rules)) == len(rules)
    assert {line.split("|")[2].strip() for line in rules} == {"error", "warn"}
    assert {line.split("|")[1].strip() for line in rules} == {"schema", "business", "statistical"}


def test_statistical_rules_bound_volume_and_null_rates():
    rules = {
        r.name: r
        for r in quality.statistical_rules(
            "events", 83, {"ev_id": 1.0, "latitude": 0.1}, ["ev_id", "latitude", "ev_date", "_release_id"]
        )
    }
    assert rules["events.release.volume"].kwargs == {"min_value": 50, "max_value": 116}
    assert rules["events.latitude.null_rate"].kwargs == {"column": "latitude", "min_value": 0.0, "max_value": 0.35}
    assert "events.ev_date.null_rate" not in rules  # not in the previous release
    assert all(r.severity == "warn" for r in rules.values())


def test_event_rules():
    rules = {r.name: r for r in quality.rules_for("events", _columns("events"), CODES)}
    assert rules["events.ev_id.unique"].severity == "error"
    assert rules["events.latitude_decimal.range"].kwargs == {
        "column": "latitude_decimal",
        "min_value": -90,
        "max_value": 90,
    }
    assert rules["events.ev_date.range"].kwargs["min_value"] == "1948-01-01"
    # code lists come from the code sets given, not from the code; unknown codes block only above a share
    assert rules["events.light_cond.code"].kwargs["value_set"] == ["DAYL", "DUSK", "NDRK", "NITE"]
    assert rules["events.light_cond.code"].severity == "error"
    assert rules["events.light_cond.code"].kwargs["mostly"] == 1 - quality.UNKNOWN_CODE_SHARE
    # ... above a number of rows (10 unknown of 500 values, 2 %, pass), and they block only with
    # many distinct unknown values: a few new codes are lag (a warning)
    rule = rules["events.light_cond.code"]
    lag = quality.code_rule_bounds([rule], {"light_cond": {"DAYL": 470, "DAWN": 30}})[0]
    assert lag.kwargs["mostly"] == 1 - quality.UNKNOWN_CODE_MIN_ROWS / 500 and lag.severity == "warn"
    garbage = {f"X{i:03d}": 3 for i in range(quality.UNKNOWN_CODE_MAX_NEW + 1)} | {"NITE": 467}
    broken = quality.code_rule_bounds([rule], {"light_cond": garbage})[0]
    assert broken.severity == "error" and broken.kwargs["mostly"] == 1 - quality.UNKNOWN_CODE_MIN_ROWS / 500
    assert "events.wx_cond_basic.code" not in rules  # not in this dictionary
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
    sql = quality.frame_sql(
        "aircraft", ["ev_id", "aircraft_key", "damage", "_release_id"], ["damage"], {"events", "aircraft"}
    )
    assert "CASE WHEN upper(trim(CAST(t.\"damage\" AS VARCHAR))) IN ('', 'UNK', 'UNKN') THEN NULL" in sql
    assert "_event_exists" in sql and "_release_id" not in sql
    orphan = quality.frame_sql("engines", ["ev_id", "aircraft_key", "eng_no"], [], {"engines"})
    assert "false AS _event_exists" in orphan and "false AS _aircraft_exists" in orphan


def test_a_gates_frame_holds_the_columns_its_rules_read_and_the_key():
    columns = ["ev_id", "ev_date", "inj_tot_f", "latitude_decimal", "narr_accp", "ev_city", "_loaded_at"]
    for gate in ("schema", "business"):
        rules = [r for r in quality.rules_for("events", columns, CODES) if r.gate == gate]
        needed = quality.rule_columns(rules) | {"ev_id"}
        sql = quality.frame_sql("events", columns, [], {"events", "injury"}, needed=needed)
        assert '"ev_id"' in sql and '"narr_accp"' not in sql and '"ev_city"' not in sql
        assert ('"inj_tot_f"' in sql and '"latitude_decimal"' in sql) == (gate == "business")
        assert ("_injury_fatal" in quality.rule_columns(rules)) == (gate == "business")
    # a table without a rule in a gate (and without a key): its rows are still counted
    assert quality.frame_sql("Country", ["code_iso", "country_name"], [], {"Country"}, needed=set()).startswith(
        "SELECT true AS _row FROM"
    )


def test_dictionary_code_sets_are_normalised():
    from ntsb_assets.lib import codes

    rows = [
        {"Table": "Events ", "Column": "Light_Cond", "code_iaids": " dayl ", "meaning": "Day  light"},
        {"Table": "events", "Column": "light_cond", "code_iaids": "NITE", "meaning": "Night"},
        {"Table": "events", "Column": "light_cond", "code_iaids": "", "meaning": "blank"},
        {"Table": "events", "Column": "light_cond", "code_iaids": "UNK", "meaning": "Unknown"},
        {"Table": None, "Column": "x", "code_iaids": "Y", "meaning": "y"},
    ]
    entries, _ = codes.entries_of({"eADMSPUB_DataDictionary": rows})
    assert [(e.table, e.column, e.code, e.meaning) for e in entries] == [
        ("events", "light_cond", "DAYL", "Day light"),
        ("events", "light_cond", "NITE", "Night"),
    ]


def test_changed_rows_frame_selects_new_rows_their_key_twins_and_events_with_new_injuries():
    import datetime as dt

    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.events (ev_id VARCHAR, ev_date DATE, _loaded_at TIMESTAMP)")
    con.execute(
        "CREATE TABLE raw.injury (ev_id VARCHAR, aircraft_key INTEGER, inj_person_category VARCHAR, "
        "injury_level VARCHAR, inj_person_count INTEGER, _loaded_at TIMESTAMP)"
    )
    old, new = "2026-01-01 00:00:00", "2026-02-01 00:00:00"
    con.execute(
        f"INSERT INTO raw.events VALUES ('A', '2020-01-01', '{old}'), ('B', '2020-01-02', '{new}'), "
        f"('C', '2020-01-03', '{old}'), ('B', '2020-01-02', '{old}'), ('D', '2020-01-04', '{old}'), "
        f"(NULL, '2020-01-05', '{new}'), (NULL, '2020-01-06', '{old}')"
    )
    con.execute(
        f"INSERT INTO raw.injury VALUES ('C', 1, 'ABRD', 'FATL', 2, '{new}'), ('D', 1, 'ABRD', 'FATL', 1, '{old}')"
    )
    con.execute("CREATE TABLE raw.engines (ev_id VARCHAR, aircraft_key INTEGER, eng_no INTEGER, _loaded_at TIMESTAMP)")
    con.execute(f"INSERT INTO raw.engines VALUES ('C', 1, 1, '{new}'), ('Z', 1, 1, '{new}'), ('A', 1, 1, '{old}')")
    since = dt.datetime(2026, 1, 15)
    for row_lookups in (False, True):  # hashed parents (whole tables) or looked up row by row: the same frame
        sql = quality.frame_sql(
            "events", ["ev_id", "ev_date", "_loaded_at"], [], {"events", "injury"}, since, row_lookups=row_lookups
        )
        got = sorted(((r[0] or "-"), r[-3]) for r in con.execute(sql).fetchall())
        # B twice (new, and its older duplicate key), C (its injury row is new), the new row
        # without a key; not A nor D nor the old row without a key
        assert got == [("-", None), ("B", None), ("B", None), ("C", 2)]
        sql = quality.frame_sql(
            "engines",
            ["ev_id", "aircraft_key", "eng_no", "_loaded_at"],
            [],
            {"events", "engines"},
            since,
            row_lookups=row_lookups,
        )
        assert sorted(con.execute(sql).fetchall()) == [("C", 1, 1, True, False), ("Z", 1, 1, False, False)]
    whole = quality.frame_sql("events", ["ev_id", "ev_date", "_loaded_at"], [], {"events", "injury"})
    assert len(con.execute(whole).fetchall()) == 7


def test_rules_fingerprint_ignores_bounds_that_follow_today_only():
    cols = _columns("events")
    today, tomorrow = quality.dt.date(2026, 1, 1), quality.dt.date(2027, 1, 1)
    assert quality.rules_fingerprint(quality.rules_for("events", cols, CODES, today)) == quality.rules_fingerprint(
        quality.rules_for("events", cols, CODES, tomorrow)
    )
    more_codes = CODES | {("events", "light_cond"): [*CODES[("events", "light_cond")], "DAWN"]}
    assert quality.rules_fingerprint(quality.rules_for("events", cols, CODES, today)) != quality.rules_fingerprint(
        quality.rules_for("events", cols, more_codes, today)
    )
