"""The severity model through Dagster, MLflow and the warehouse, on the bundled sample.

``severity_model_end_to_end`` runs inside the archive test (tests/integration/test_archive.py),
on both deployments, after the archive it trains from is built: SQLite + local lake artifacts
embedded, PostgreSQL + S3 (moto) in production."""

import json

import dagster as dg
import numpy as np
import pandas as pd

from ntsb_assets import keys
from ntsb_assets.definitions import defs
from ntsb_assets.lib import features, tracking
from ntsb_assets.lib import model as M
from ntsb_assets.ml import FEATURES_KEY
from tests.integration.helpers import ntsb, query

CLASSES = list(features.SEVERITY_CLASSES)


def run_ml(instance, margin: float, max_ece: float = 1.0):
    """The ``ml`` job with the check thresholds given: a margin of -1 passes any model, +1
    fails every one (fewer boosting rounds than the default, to keep the test short)."""
    cfg = {"ops": {"ml__severity_model": {"config": {"auc_margin": margin, "max_ece": max_ece, "max_rounds": 200}}}}
    return defs.resolve_job_def("ml").execute_in_process(instance=instance, raise_on_error=False, run_config=cfg)


def _checks(result, asset: str = "ml/severity_model") -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key.to_user_string() == asset
    }


def _materialized(result) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.all_events
        if e.is_step_materialization
    }


def _predictions() -> pd.DataFrame:
    return pd.DataFrame(query("SELECT * FROM ml.batch_predictions")).set_index("ev_id").sort_index()


def severity_model_end_to_end(settings, deployment: str):
    lake, store = settings.lake, tracking.Store.from_settings(settings)
    with dg.DagsterInstance.get() as instance:
        first = run_ml(instance, margin=-1.0)
        assert first.success
        assert _checks(first) == dict.fromkeys(["beats_majority_baseline", "calibrated", "no_denylisted_feature"], True)
        assert _checks(first, "ml/features") == {"changed_since_training": False}  # never trained: retrain
        done = _materialized(first)
        assert set(done) == {"ml/features", "ml/severity_model", "ml/champion", "ml/batch_predictions"}
        v1 = done["ml/severity_model"]["version"].value
        assert done["ml/champion"]["version"].value == v1

    # tracking store and artifacts where the settings say
    if deployment == "embedded":
        assert store.tracking_uri.startswith("sqlite:///") and (settings.home / "mlflow.db").exists()
    else:
        assert store.tracking_uri == settings.warehouse_url.replace("postgresql://", "postgresql+psycopg2://")
        assert store.artifact_root.startswith("s3://")
    artifacts = lake.list("mlflow")
    for name in (
        "metrics.json",
        "model_card.md",
        "plots/shap_summary.png",
        "plots/reliability.png",
        "feature_importance.csv",
        "artifacts/MLmodel",
        "artifacts/severity_model/model.json",
    ):
        assert any(k.endswith("/" + name) for k in artifacts), name

    # the registry: champion alias, checks recorded, signature = the features
    with tracking.session(store) as client:
        assert tracking.champion_version(client) == v1
        assert client.get_model_version(tracking.MODEL_NAME, v1).tags[tracking.CHECKS_TAG] == "passed"
        info = tracking.info(client)
        assert tracking.signature_inputs(v1) == [f.name for f in features.FEATURES]
    assert info["version"] == v1 and set(info["metrics"]) == set(M.HEADS)
    for head in M.HEADS:
        assert set(info["metrics"][head]) == set(info["valid_metrics"][head]) == {*M.FAMILIES, "majority"}
        assert info["metrics"][head]["majority"]["roc_auc"] == 0.5
    # every candidate's validation and test metrics; the champion is the best on the validation years
    assert set(info["candidates"]) == set(M.FAMILIES) and info["champion_family"] in M.FAMILIES
    assert all(set(c["valid"]) == set(c["test"]) == set(M.HEADS) for c in info["candidates"].values())
    best = max(M.FAMILIES, key=lambda f: info["candidates"][f]["valid"]["fatal"]["roc_auc"])
    assert info["champion_family"] == best == info["selection"]["family"]
    assert int(info["split"]["train"][:4]) < int(info["split"]["test"][:4])

    # predictions for every event, from the champion
    pred = _predictions()
    events = sorted(r["ev_id"] for r in query("SELECT ev_id FROM marts.fact_accidents"))
    assert sorted(pred.index) == events
    assert set(pred.model_version) == {v1} and set(pred.model_name) == {tracking.MODEL_NAME}
    assert set(pred.predicted_class) <= set(CLASSES)
    probs = pred[[f"p_{c.lower()}" for c in CLASSES]].to_numpy(dtype=float)
    assert np.allclose(probs.sum(axis=1), 1.0)

    # registry round trip: the champion loaded by alias reproduces the stored predictions
    df = lake.read_parquet(FEATURES_KEY).to_pandas().set_index("ev_id").sort_index()
    sample = df.iloc[:: max(1, len(df) // 25)]
    import mlflow

    with tracking.session(store):
        loaded = mlflow.pyfunc.load_model(f"models:/{tracking.MODEL_NAME}@{tracking.CHAMPION}")
        again = loaded.predict(tracking.input_frame(loaded.unwrap_python_model().model, sample.reset_index()))
    assert again.predicted_class.tolist() == pred.loc[sample.index, "predicted_class"].tolist()
    assert np.allclose(again.p_fatl.to_numpy(), pred.loc[sample.index, "p_fatl"].to_numpy(dtype=float))

    # the API's function: one row in, the champion's probabilities and SHAP contributions out
    row = sample.iloc[0]
    explained = tracking.explain(store, row.to_dict(), top=5)
    assert explained["model"] == {"name": tracking.MODEL_NAME, "version": v1, "alias": "champion"}
    assert np.isclose(explained["probabilities"]["FATL"], float(pred.loc[row.name, "p_fatl"]))
    shap = [abs(c["shap_log_odds"]) for c in explained["contributions"]]
    assert len(shap) == 5 and shap == sorted(shap, reverse=True)
    model, _ = tracking.load_champion(store)
    full = model.heads["fatal"].contributions(model.frame(row.to_dict()))[0]  # SHAP adds up to the margin
    raw = model.heads["fatal"].raw(model.frame(row.to_dict()))[0, 1]
    assert np.isclose(full.sum(), np.log(raw / (1 - raw)), atol=1e-4)

    # a model failing its checks stays registered without the alias; the champion and its
    # predictions stay; the run completes, its checks (warnings) say why nothing was promoted
    with dg.DagsterInstance.get() as instance:
        second = run_ml(instance, margin=1.0)
    assert second.success
    assert _checks(second)["beats_majority_baseline"] is False
    failed = [
        e.asset_check_evaluation_data
        for e in second.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "beats_majority_baseline"
    ][0]
    assert failed.severity == dg.AssetCheckSeverity.WARN
    assert f"the champion stays {v1}" in failed.metadata["outcome"].value
    assert _checks(second, "ml/features") == {"changed_since_training": True}  # the same features as trained on
    assert set(_materialized(second)) == {"ml/features", "ml/severity_model"}
    v2 = _materialized(second)["ml/severity_model"]["version"].value
    assert int(v2) == int(v1) + 1
    with tracking.session(store) as client:
        assert tracking.champion_version(client) == v1
        tags = client.get_model_version(tracking.MODEL_NAME, v2).tags
        assert tags[tracking.CHECKS_TAG] == "failed"
        assert json.loads(tags[tracking.CHECKS_TAG + ".detail"])["beats_majority_baseline"] is False
        try:
            tracking.promote(client, v2)
            raise AssertionError("a failed version was promoted")
        except tracking.TrackingError as exc:
            assert "checks failed" in str(exc) and f"champion stays {v1}" in str(exc)
    assert set(_predictions().model_version) == {v1}
    refused = ntsb("model", "promote", v2, expect_ok=False)
    assert refused.exit_code == 1 and "checks failed" in refused.output
    assert f"champion is version {v1}" in ntsb("model", "promote", v1).output

    out = json.loads(ntsb("model", "info", "--json").stdout)
    assert (out["version"], out["alias"], out["checks"]) == (v1, "champion", "passed")
    assert out["metrics"]["fatal"]["logistic"]["roc_auc"] == info["metrics"]["fatal"]["logistic"]["roc_auc"]
    assert (
        out["candidates"]["random_forest"]["valid"]["fatal"]["roc_auc"]
        == info["candidates"]["random_forest"]["valid"]["fatal"]["roc_auc"]
    )
    with dg.DagsterInstance.get() as instance:
        assert (
            instance.get_latest_materialization_event(keys.MODEL).asset_materialization.metadata["version"].value == v2
        )
