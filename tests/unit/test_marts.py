"""The marts' roles (archived by year or whole, served, warehouse-only columns) come from the
dbt project's manifest: a mart is archived or served by editing dbt files only."""

import json

import pytest

from ntsb_assets.lib import marts
from ntsb_assets.transform.project import dbt_project


def test_every_mart_has_its_role_from_the_dbt_project():
    found = marts.marts(dbt_project.manifest_path)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    in_marts = {
        n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"].endswith("marts")
    }
    assert set(found) == in_marts  # every mart is archived, one way or the other
    assert marts.archived("year") == ("agg_yearly_stats", "bridge_accident_causes", "fact_accidents", "narratives")
    assert found["narratives"].year_of == "fact_accidents.event_date"
    assert found["narratives"].warehouse_only == {"search_document", "loaded_through"}
    assert "dim_time" in marts.archived("whole") and not found["dim_time"].served
    assert set(marts.served()) >= {"fact_accidents", "narratives", "agg_yearly_stats"}


def _manifest(tmp_path, meta: dict, columns: dict | None = None, exposed: bool = False):
    node = {
        "resource_type": "model",
        "package_name": "ntsb",
        "name": "mart_x",
        "original_file_path": "models/marts/mart_x.sql",
        "patch_path": "ntsb://models/marts/core/_core.yml",
        "config": {"meta": {"ntsb": meta}},
        "columns": columns or {},
    }
    exposures = {"exposure.ntsb.ntsb_api": {"depends_on": {"nodes": ["model.ntsb.mart_x"] if exposed else []}}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"model.ntsb.mart_x": node}, "exposures": exposures}))
    return path


def test_a_new_mart_is_archived_and_served_by_its_yml_alone(tmp_path):
    path = _manifest(
        tmp_path,
        {"archive": "year", "year_of": "event_date"},
        {"event_date": {}, "doc": {"meta": {"ntsb": {"warehouse_only": True}}}},
        exposed=True,
    )
    assert marts.marts(path) == {
        "mart_x": marts.Mart("mart_x", "year", "event_date", True, frozenset({"doc"}), "models/marts/core/_core.yml")
    }
    assert marts.archived("year", path) == ("mart_x",) and marts.served(path) == ("mart_x",)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"archive": "monthly"}, "meta.ntsb.archive is 'monthly'"),
        ({"archive": "year"}, "year_of names the event-year column"),
        ({"archive": "whole", "year_of": "event_date"}, "year_of names the event-year column"),
    ],
)
def test_a_wrong_role_is_refused_naming_the_yml_and_the_model(tmp_path, meta, words):
    with pytest.raises(marts.MartsError, match=words) as err:
        marts.marts(_manifest(tmp_path, meta))
    assert "_core.yml: mart_x" in str(err.value)


def test_a_missing_manifest_says_how_to_build_it(tmp_path):
    with pytest.raises(marts.MartsError, match="ntsb prepare"):
        marts.marts(tmp_path / "manifest.json")


def test_what_the_api_returns_of_a_mart_is_in_its_yml():
    fact = marts.marts(dbt_project.manifest_path)["fact_accidents"]
    assert fact.api_columns("list")[:3] == ("ev_id", "event_date", "severity")
    assert {"ntsb_no", "release_id"} <= set(fact.api_columns("detail"))
    assert all(c.type for c in fact.api if c.place in marts.TYPED_PLACES)  # the response model's types
    assert marts.api_columns("agg_yearly_stats", "rows")[0] == "year"
    assert not set(fact.api_columns(*marts.API_PLACES)) & fact.warehouse_only


def test_a_new_column_is_served_by_its_yml_alone(tmp_path):
    cols = {"n": {"description": "a  count", "meta": {"ntsb": {"api": "rows"}}}, "other": {}}
    path = _manifest(tmp_path, {"archive": "whole"}, cols, exposed=True)
    assert marts.api_columns("mart_x", "rows", manifest=path) == ("n",)
    assert marts.marts(path)["mart_x"].api == (marts.ApiColumn("n", "rows", None, "a count"),)


@pytest.mark.parametrize(
    ("meta", "exposed", "words"),
    [
        ({"api": "everywhere"}, True, "mart_x.n: meta.ntsb.api is 'everywhere'"),
        ({"api": "rows", "warehouse_only": True}, True, "mart_x.n: a warehouse_only column is not served"),
        ({"api": "rows"}, False, "no serving exposure"),
    ],
)
def test_a_wrong_api_role_is_refused_naming_the_column(tmp_path, meta, exposed, words):
    path = _manifest(tmp_path, {"archive": "whole"}, {"n": {"meta": {"ntsb": meta}}}, exposed=exposed)
    with pytest.raises(marts.MartsError, match=words) as err:
        marts.marts(path)
    assert "_core.yml" in str(err.value)


def test_an_event_column_declares_its_type(tmp_path):
    path = _manifest(tmp_path, {"archive": "whole"}, {"n": {"meta": {"ntsb": {"api": "list"}}}}, exposed=True)
    manifest = json.loads(path.read_text())
    node = manifest["nodes"].pop("model.ntsb.mart_x")
    node["name"] = "fact_accidents"
    manifest["nodes"]["model.ntsb.fact_accidents"] = node
    manifest["exposures"]["exposure.ntsb.ntsb_api"]["depends_on"]["nodes"] = ["model.ntsb.fact_accidents"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(marts.MartsError, match="fact_accidents.n: meta.ntsb.type is None"):
        marts.marts(path)
