"""The Great Expectations gates through Dagster, on both deployments: the real sample passes
every error-level rule; crafted bad rows fail the right rules with the right counts, and a
blocking failure stops the dbt models downstream in the same run."""

import gc
import re

import dagster as dg

from ntsb_assets.definitions import defs
from ntsb_assets.lib import catalog
from ntsb_assets.quality import raw_gates
from ntsb_assets.settings import get_settings
from ntsb_assets.transform.assets import ntsb_dbt_models
from tests.conftest import SAMPLE
from tests.integration.helpers import ingest_json, query


def _run_gates(models: bool, whole_tables: bool = False):
    """The gates alone, or the gates and the dbt models (the transform job without the docs site)."""
    selection = dg.AssetSelection.checks(raw_gates)
    if models:
        selection = selection | dg.AssetSelection.assets(ntsb_dbt_models)
    job = dg.define_asset_job("gates", selection=selection, executor_def=dg.in_process_executor)
    job = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("gates")
    config = {"ops": {"raw_quality_gates": {"config": {"whole_tables": whole_tables}}}}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=config)
    evals = {
        (
            e.asset_check_evaluation_data.asset_key.to_user_string(),
            e.asset_check_evaluation_data.check_name,
        ): e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    built = {e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization}
    return result, evals, built


def _failed_rules(evaluation) -> dict[str, int]:
    """rule -> unexpected rows, read back from the check's markdown metadata."""
    md = evaluation.metadata["failed_rules"].value
    out = {}
    for line in md.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = int(cells[2]) if cells[2] != "-" else None
    return out


def test_gates_pass_on_the_real_sample_and_catch_crafted_bad_rows(deployment):
    for rel in ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025"):
        ingest_json(SAMPLE / rel)
    result, evals, built = _run_gates(models=False)
    assert result.success
    # no batch outlives its validation: GE keeps its last context for the life of the process,
    # and with it every batch its engine loaded (the whole of a table, for a full validation)
    gc.collect()
    assert not [type(o).__name__ for o in gc.get_objects() if type(o).__name__.endswith("BatchData")]
    assert len(evals) == 2 * len(catalog.TABLE_ORDER) == 2 * 25  # two gates per table: NTSB's 20, PRE1982's 5
    errors = [k for k, e in evals.items() if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors == []
    events = evals[("warehouse/raw/events", "business_gate")]
    assert events.metadata["expectations_evaluated"].value >= 20
    assert events.metadata["data_docs"].value.endswith(".html")
    quarantined = evals[("warehouse/raw/injury", "schema_gate")].metadata["quarantined_rows"].value
    assert quarantined == query("SELECT count(*) AS n FROM raw._quarantine WHERE table_name = 'injury'")[0]["n"] > 0
    total = sum(e.metadata["expectations_evaluated"].value for e in evals.values())
    assert total >= 50
    n_events = query("SELECT count(*) AS n FROM raw.events")[0]["n"]
    assert events.metadata["rows"].value == n_events and events.metadata["validated"].value == "whole table"

    # nothing loaded since: the next run validates no row and passes
    result, evals, _ = _run_gates(models=False)
    assert result.success and all(e.passed and e.metadata["rows"].value == 0 for e in evals.values()), [
        (k, e.passed, e.metadata["rows"].value) for k, e in evals.items() if not e.passed or e.metadata["rows"].value
    ]

    # crafted bad rows, written past the ingestion's own rules, stamped as a load stamps rows
    with get_settings().warehouse.session() as s:
        stamp = "_loaded_at = CAST(now() AS TIMESTAMP)"
        s.execute(
            f"UPDATE raw.events SET latitude_decimal = 95.5, {stamp} WHERE ev_id IN "
            "(SELECT ev_id FROM raw.events ORDER BY ev_id LIMIT 3)"
        )
        # a new code in 25 rows: dictionary lag (a warning); 30 rows of 30 different values: a
        # broken column (blocks)
        s.execute(
            f"UPDATE raw.events SET light_cond = 'TWLT', {stamp} WHERE ev_id IN "
            "(SELECT ev_id FROM raw.events ORDER BY ev_id DESC LIMIT 25)"
        )
        s.execute(
            f"UPDATE raw.events SET wx_cond_basic = 'G' || substr(ev_id, 9, 6), {stamp} WHERE ev_id IN "
            "(SELECT ev_id FROM raw.events ORDER BY ev_id DESC LIMIT 30 OFFSET 25)"
        )
        s.execute(
            "INSERT INTO raw.engines (ev_id, aircraft_key, eng_no, _release_id, _loaded_at) "
            "VALUES ('NO_SUCH_EVENT', 1, 1, 'by-hand', now()), ('NO_SUCH_EVENT', 2, 1, 'by-hand', now())"
        )
    for _ in range(2):  # a run with errors leaves the watermark: the same rows fail again
        result, evals, built = _run_gates(models=True)
        assert not result.success
        business = evals[("warehouse/raw/events", "business_gate")]
        assert not business.passed and business.severity == dg.AssetCheckSeverity.ERROR
        assert business.metadata["rows"].value == 58, "only the changed rows are validated"
        assert business.metadata["validated"].value.startswith("rows loaded after")
        rules = _failed_rules(business)
        assert rules["events.latitude_decimal.range"] == 3
        assert rules["events.light_cond.code"] == 25  # lag: a warning, reported beside the errors
        assert rules["events.wx_cond_basic.code"] == 30
        severities = {
            line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in business.metadata["failed_rules"].value.splitlines()[2:]
        }
        assert severities["events.light_cond.code"] == "warn" and severities["events.wx_cond_basic.code"] == "error"
        # the message names the table, the column, the share and the first codes
        assert re.search(
            r"table events, column wx_cond_basic: \d+\.\d% of \d+ values checked \(30 rows\) are not "
            r"codes any NTSB code source knows, first \[\{'wx_cond_basic': 'G",
            business.description,
        ), business.description
        engines = evals[("warehouse/raw/engines", "schema_gate")]
        assert _failed_rules(engines) == {"engines.ev_id.in_events": 2, "engines.aircraft_key.in_aircraft": 2}
        # blocking: nothing downstream of the failed tables was built in this run
        assert not built & {
            "warehouse/staging/stg_ntsb__events",
            "warehouse/marts/fact_accidents",
            "warehouse/marts/agg_yearly_stats",
        }, built

    # whole tables on request: the same failures among every row
    result, evals, _ = _run_gates(models=False, whole_tables=True)
    business = evals[("warehouse/raw/events", "business_gate")]
    assert business.metadata["rows"].value == n_events and business.metadata["validated"].value == "whole table"
    assert _failed_rules(business)["events.latitude_decimal.range"] == 3


def test_statistical_gate_flags_a_release_with_half_the_volume(deployment, tmp_path):
    from tests.conftest import copy_release
    from tests.integration.helpers import rewrite_csv

    ingest_json(SAMPLE / "00_reference_avall")
    ingest_json(SAMPLE / "02_up01JUL2025")
    half = copy_release("02_up01JUL2025", tmp_path, "06_up01MAR2026")
    kept = []

    def keep_half(h, rows):
        del rows[len(rows) // 2 :]
        kept.extend(r[h.index("ev_id")] for r in rows)

    rewrite_csv(half / "events.csv", keep_half)
    for child in ("aircraft", "engines", "flight_crew", "injury", "narratives"):
        rewrite_csv(
            half / f"{child}.csv",
            lambda h, rows: rows.__setitem__(slice(None), [r for r in rows if r[h.index("ev_id")] in set(kept)]),
        )
    ingest_json(half)
    with dg.DagsterInstance.get() as instance:
        records = instance.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=1000
        )
    evals = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    events = [
        e
        for e in evals
        if e.check_name == "statistical_gate"
        and e.asset_key.to_user_string() == "warehouse/raw/events"
        and e.metadata["compared_with_release"].value.startswith("02_up01JUL2025")
    ]
    assert len(events) == 1
    gate = events[0]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN  # reported, not blocking
    previous = query("SELECT count(*) AS n FROM raw.events WHERE _release_id LIKE '02_up01JUL2025%'")[0]["n"]
    md = gate.metadata["failed_rules"].value
    volume = next(line for line in md.splitlines() if "events.release.volume" in line)
    low, high = int(previous * 0.6 + 0.999999), int(previous * 1.4)
    assert f"observed {len(kept)}, expected [{low}, {high}]" in volume, (volume, previous)
