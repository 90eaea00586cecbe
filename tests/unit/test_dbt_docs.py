"""The dbt docs site as a reader meets it: an overview, every model described, NTSB's data
dictionary as column descriptions, exposures, owners, and tests in words."""

import json

import dagster as dg

from ntsb_assets.lib import dictionary_docs, serving
from ntsb_assets.transform.assets import TEST_WORDS, TRANSLATOR, describe_test
from ntsb_assets.transform.project import dbt_project


def _manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def test_the_dictionary_doc_blocks_are_generated_from_the_data_dictionary_and_current():
    assert dictionary_docs.main(["--check"]) == 0, "run: python -m ntsb_assets.lib.dictionary_docs"
    text = dictionary_docs.render()
    assert "{% docs ntsb__events__ev_highest_injury %}" in text
    assert "Event Highest Injury. Indicate the highest level of injury" in text


def test_every_model_is_described_and_the_overview_is_the_projects():
    m = _manifest()
    undescribed = [
        n["name"]
        for n in m["nodes"].values()
        if n["resource_type"] in ("model", "snapshot") and not n["description"].strip()
    ]
    assert not undescribed, undescribed
    overview = m["docs"]["doc.ntsb.__overview__"]["block_contents"]
    assert "NTSB aviation accident warehouse" in overview and "Welcome" not in overview
    mart = m["nodes"]["model.ntsb.fact_accidents"]["columns"]["event_type"]["description"]
    assert mart.startswith("Type of Event. Refers to a regulatory definition")  # rendered from the dictionary


def test_exposures_name_what_the_api_and_the_model_read():
    m = _manifest()
    api = m["exposures"]["exposure.ntsb.ntsb_api"]
    served = {node.split(".")[-1] for node in api["depends_on"]["nodes"]}
    assert served <= set(serving.served()["marts"])  # the snapshot copies what the API reads
    assert m["exposures"]["exposure.ntsb.severity_model"]["type"] == "ml"


def test_the_dashboard_exposure_names_the_marts_its_reads_query():
    import inspect
    import re

    from ntsb_api import store

    dashboard = _manifest()["exposures"]["exposure.ntsb.ntsb_dashboard"]
    reads = [
        store.Store.breakdown,
        store.Store.points,
        store.Store.event_list,
        store.Store.causes,
        store.Store.slice_options,
        store.slice_where,
        store.PostgresStore.keyword,
        store.Store.heads,
        store.Store.texts,
        store.Store.filtered_events,
    ]
    queried = set(re.findall(r"marts\.(\w+)", "".join(inspect.getsource(f) for f in reads)))
    assert dashboard["type"] == "dashboard"
    assert {node.split(".")[-1] for node in dashboard["depends_on"]["nodes"]} == queried


def test_dbt_tests_are_checks_described_in_words_and_models_have_owners():
    m = _manifest()
    tests = [n for n in m["nodes"].values() if n["resource_type"] == "test" and n.get("test_metadata")]
    assert {t["test_metadata"]["name"] for t in tests} <= set(TEST_WORDS)
    between = next(t for t in tests if t["test_metadata"]["name"] == "ntsb_between" and t["column_name"] == "latitude")
    assert describe_test(between) == "latitude lies between -90 and 90 (NULL allowed)"
    warn = next(t for t in tests if t["config"].get("severity") == "warn")
    assert describe_test(warn).endswith("(warns, does not block)")
    spec = TRANSLATOR.get_asset_spec(m, "model.ntsb.fact_accidents", dbt_project)
    assert spec.owners == ["team:analytics-engineering"]
    assert TRANSLATOR.get_asset_spec(m, "model.ntsb.stg_ntsb__events", dbt_project).owners == ["team:data-engineering"]
    check = TRANSLATOR.get_asset_check_spec(
        spec,
        m,
        next(
            k
            for k, t in m["nodes"].items()
            if t["resource_type"] == "test" and t["name"].startswith("unique_fact_accidents_ev_id")
        ),
        dbt_project,
    )
    assert isinstance(check, dg.AssetCheckSpec) and check.description == "every ev_id is unique"
