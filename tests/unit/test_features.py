"""The severity model's features: the leakage rules, the audit in docs/ml.md, and building
from archived marts that lack tables or columns (in-memory DuckDB)."""

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ntsb_assets.lib import features

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ml.md"


def test_leakage_audit_in_the_docs_is_generated_from_the_code():
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(features.AUDIT_START)
    assert text[start : text.index(features.AUDIT_END) + len(features.AUDIT_END)] == features.audit(), (
        "regenerate: python -m ntsb_assets.lib.features docs/ml.md"
    )


@pytest.mark.parametrize(
    "column",
    [
        "damage",
        "damage_label",
        "fatalities",
        "serious_injuries",
        "uninjured",
        "severity",
        "is_fatal",
        "finding_code",
        "probable_cause",
        "narrative",
        "report_status",
        "event_type",
        "search_document",
        # NTSB's own column names (eADMSPUB data dictionary)
        "inj_tot_f",
        "inj_f_grnd",
        "ev_highest_injury",
        "acft_damage",
        "ev_type",
        "narr_cause",
        "narr_accp",
        "cause_factor",
        "ntsb_no",
    ],
)
def test_denylist_refuses_what_the_investigation_writes(column):
    with pytest.raises(features.LeakageError, match=column):
        features.assert_allowed(["make", column])


def test_every_feature_is_allowed_and_named_once():
    names = [f.name for f in features.FEATURES]
    features.assert_allowed(names)
    assert len(names) == len(set(names))


def _fact(con, with_hour=True):
    hour = ", event_hour INTEGER" if with_hour else ""
    con.execute(f"""CREATE TABLE fact_accidents (ev_id VARCHAR, event_date DATE, severity VARCHAR, make VARCHAR,
                    model VARCHAR, aircraft_version_key VARCHAR, crew_key VARCHAR, date_key INTEGER,
                    far_part VARCHAR, state VARCHAR{hour})""")
    rows = [
        ("20140507X51410", "2014-05-07", "SERS", "Boeing", "737", "v1", "c1", 20140507, "121", "CA"),
        ("20200821X74853", "2020-08-21", "FATL", "AIR TRACTOR", "AT802", "v2", "c2", 20200821, "137", "TX"),
        ("20990101X00000", "2021-01-01", None, "CESSNA", "172", None, None, None, "091", None),
    ]
    marks = ", ".join("?" * (11 if with_hour else 10))
    con.executemany(f"INSERT INTO fact_accidents VALUES ({marks})", [r + ((13,) if with_hour else ()) for r in rows])


def test_build_without_dimensions_or_columns_gives_missing_values():
    con = duckdb.connect()
    _fact(con, with_hour=False)
    df = features.build(con)
    # every event; no severity yet: no target (predicted, not trained on)
    assert df.ev_id.tolist() == ["20140507X51410", "20200821X74853", "20990101X00000"]
    assert df.target_fatal.tolist()[:2] == [False, True] and df.target_fatal.isna().tolist() == [False, False, True]
    assert df.target_severity.tolist()[:2] == ["SERS", "FATL"] and pd.isna(df.target_severity.iloc[2])
    assert df.make.tolist() == ["BOEING", "AIR TRACTOR", "CESSNA"]
    assert df.region.tolist()[:2] == ["West", "South"] and pd.isna(df.region.iloc[2])
    assert df.year.tolist() == [2014.0, 2020.0, 2021.0] and df.weekday.tolist() == [3.0, 5.0, 5.0]
    # no dim_aircraft, no dim_crew, no event_hour column: missing, not an error
    assert df.hour.isna().all() and df.engine_count.isna().all() and df.pilot_certificate.isna().all()
    assert str(df.pilot_certificate.dtype) == "string" and str(df.is_homebuilt.dtype) == "boolean"


def test_build_reads_the_dimensions_when_archived():
    con = duckdb.connect()
    _fact(con)
    con.execute(
        "CREATE TABLE dim_aircraft AS SELECT 'v1' AS aircraft_version_key, 'AIR' AS category, 2 AS engine_count, "
        "'TF' AS engine_type, false AS is_homebuilt, 1999 AS year_built"
    )
    con.execute("CREATE TABLE dim_crew AS SELECT 'c2' AS crew_key, 'COMM' AS certificate, 'CL2' AS medical_certificate")
    df = features.build(con).set_index("ev_id")
    assert df.loc["20140507X51410", "aircraft_age"] == 15 and df.loc["20140507X51410", "engine_type"] == "TF"
    assert df.loc["20200821X74853", "pilot_certificate"] == "COMM"
    assert df.hour.tolist() == [13.0, 13.0, 13.0]


def test_drift_counts_new_changed_and_gone_labelled_events():
    con = duckdb.connect()
    _fact(con)
    trained = features.row_hashes(features.build(con))
    assert trained.ev_id.tolist() == ["20140507X51410", "20200821X74853"]  # the unlabelled event is not trained on
    assert features.drift(trained, trained) == features.Drift(trained=2, new=0, changed=0, gone=0)
    # a corrected event, a new labelled one, one withdrawn
    con.execute("UPDATE fact_accidents SET far_part = '091' WHERE ev_id = '20140507X51410'")
    con.execute("UPDATE fact_accidents SET severity = 'MINR' WHERE ev_id = '20990101X00000'")
    con.execute("DELETE FROM fact_accidents WHERE ev_id = '20200821X74853'")
    d = features.drift(trained, features.row_hashes(features.build(con)))
    assert d == features.Drift(trained=2, new=1, changed=1, gone=1) and d.share == 1.5
    assert features.drift(trained.iloc[:0], trained).share == 1.0  # nothing trained yet: retrain
