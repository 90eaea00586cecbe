"""The ml group: features from the archived marts, the severity model (trained, tracked and
registered in MLflow, with blocking checks), its promotion to ``champion`` and the batch
predictions in the warehouse; and the narratives' embeddings. The work is in
``lib/features.py``, ``lib/model.py``, ``lib/tracking.py``, ``lib/embeddings.py`` and
``lib/narratives.py``; see docs/ml.md."""

import json
import time
from contextlib import closing

import dagster as dg
import pandas as pd

from .. import keys
from ..automation import PREDICT, PROMOTE, RETRAIN, after
from ..lib import analytics as an
from ..lib import embeddings as E
from ..lib import features, narratives, predictions
from ..lib import model as M
from ..lib import tracking as T
from ..lib.writer import writer_lock
from ..resources import NtsbResource, warehouse_writer
from ..resources.markdown import md_table

FEATURES_KEY = features.FEATURES_KEY
TRAINED_ON_KEY = "ml/features/trained_on.parquet"  # row hashes of what the latest model trained on


@dg.asset(
    key=keys.FEATURES,
    group_name="ml",
    kinds={"duckdb", "parquet"},
    deps=[keys.archive(t) for t in ("fact_accidents", "dim_aircraft", "dim_crew", "dim_time")],
    # the dimensions are archived by the dbt run, before the years: once, after the years
    automation_condition=after(keys.archive("fact_accidents")),
)
def ml_features(ntsb: NtsbResource) -> dg.MaterializeResult:
    """Leakage-safe features and both targets, one row per event (targets missing where the
    highest injury is not known yet)."""
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        df = features.build(con)
        version = features.data_version(lake, con)
    features.assert_allowed(c for c in df.columns if not c.startswith("target_"))
    size = an.put_frame(
        lake,
        FEATURES_KEY,
        df,
        {"ntsb.data_version": version["version"], "ntsb.releases": json.dumps(version["releases"])},
    )
    missing = [(f.name, f.group, f"{df[f.name].isna().mean():.0%}") for f in features.FEATURES]
    balance = df["target_severity"].fillna("(not known yet)").value_counts()
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version["version"]),
        metadata={
            "dagster/row_count": len(df),
            "features": len(features.FEATURES),
            "bytes": size,
            "path": dg.MetadataValue.path(lake.uri(FEATURES_KEY)),
            "data version": version["version"],
            "releases": ", ".join(version["releases"]),
            "fatal share": float(df["target_fatal"].mean()) if df["target_fatal"].notna().any() else 0.0,
            "classes": dg.MetadataValue.md(md_table(["highest injury", "events"], balance.items())),
            "missing values": dg.MetadataValue.md(md_table(["feature", "group", "missing"], missing, numeric_from=2)),
        },
    )


@dg.asset_check(
    asset=keys.FEATURES,
    name="changed_since_training",
    description="Labelled events new, changed or gone since the latest training, within "
    "NTSB_RETRAIN_THRESHOLD of the training set (failing retrains the model)",
)
def changed_since_training(ntsb: NtsbResource) -> dg.AssetCheckResult:
    settings = ntsb.settings()
    current = features.row_hashes(features.read_features(settings.lake)[0])
    trained = (
        settings.lake.read_parquet(TRAINED_ON_KEY).to_pandas()
        if settings.lake.exists(TRAINED_ON_KEY)
        else current.iloc[:0]
    )
    d = features.drift(trained, current)
    return dg.AssetCheckResult(
        passed=trained.shape[0] > 0 and d.share <= settings.retrain_threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "trained on": d.trained,
            "new": d.new,
            "changed": d.changed,
            "gone": d.gone,
            "share": round(d.share, 4),
            "threshold": settings.retrain_threshold,
        },
    )


class SeverityModelConfig(dg.Config):
    """Training and check settings (the defaults are what docs/ml.md reports)."""

    valid_share: float = 0.15
    test_share: float = 0.15
    max_rounds: int = 1500
    auc_margin: float = 0.05  # check: the champion family's ROC-AUC over the majority baseline's, both heads
    max_ece: float = 0.05  # check: the fatal head's expected calibration error (validation years, cross-fitted)


@dg.asset(
    key=keys.MODEL,
    group_name="ml",
    kinds={"xgboost", "mlflow"},
    deps=[keys.FEATURES],
    automation_condition=RETRAIN,
    check_specs=[
        dg.AssetCheckSpec(name, asset=keys.MODEL, blocking=True, description=d) for name, d in M.CHECKS.items()
    ],
)
# The checks fail with WARN severity: a version that fails them is a finding about the data
# (it stays registered, without the alias), not a broken pipeline. ml/champion reads the
# outcome from the registry and promotes nothing then, so the run completes and its checks
# say why no version was promoted.
def severity_model(context: dg.AssetExecutionContext, config: SeverityModelConfig, ntsb: NtsbResource):
    """The candidate families (XGBoost, a random forest, a logistic regression; each fatal or
    not, and highest injury in four classes) and the majority baseline on a time-based split;
    the family chosen on the validation years is registered in MLflow, every candidate's
    metrics tracked. The champion alias is given by ``ml/champion``, which the blocking
    checks stop when they fail."""
    settings = ntsb.settings()
    df, meta = features.read_features(settings.lake)
    labelled = df[df["target_severity"].notna()]
    started = time.perf_counter()
    trained = M.train(
        labelled,
        params=M.Params(max_rounds=config.max_rounds),
        valid_share=config.valid_share,
        test_share=config.test_share,
        data_version=meta.get("ntsb.data_version", ""),
        auc_margin=config.auc_margin,
        max_ece=config.max_ece,
    )
    store = T.Store.from_settings(settings)
    pngs = M.plots(trained)
    params = {
        **vars(M.Params(max_rounds=config.max_rounds)),
        "valid_share": config.valid_share,
        "test_share": config.test_share,
    }
    with T.session(store) as client:
        run_id, version = T.log_training(client, store, trained, meta.get("ntsb.releases", "[]"), params, pngs)
        results = M.evaluate_checks(trained, T.signature_inputs(version), config.auc_margin, config.max_ece)
        T.set_checks(client, version, {k: ok for k, (ok, _) in results.items()})
        champion = T.champion_version(client)
    an.put_frame(settings.lake, TRAINED_ON_KEY, features.row_hashes(labelled))
    yield dg.MaterializeResult(
        metadata={
            "model": T.MODEL_NAME,
            "version": version,
            "run id": run_id,
            "champion": champion or "none",
            "family": trained.model.family,
            "selection": dg.MetadataValue.md(M.selection_text(trained)),
            "validation metrics": dg.MetadataValue.md(M.metrics_markdown(trained.valid_metrics)),
            "split": json.dumps(M.plain(trained.model.split.describe())),
            **{f"events {k}": int(v) for k, v in trained.sizes.items()},
            "training seconds": round(trained.seconds, 1),
            "tracking seconds": round(time.perf_counter() - started - trained.seconds, 1),  # plots, MLflow, checks
            "metrics": dg.MetadataValue.md(M.metrics_table(trained)),
            "reliability": dg.MetadataValue.md(an.md_image(pngs["reliability.png"], "reliability")),
            "SHAP summary": dg.MetadataValue.md(an.md_image(pngs["shap_summary.png"], "SHAP summary")),
            "tracking": store.tracking_uri.split("@")[-1],
        }
    )
    for name, (ok, details) in results.items():
        outcome = (
            {}
            if ok
            else {
                "outcome": f"version {version} is not promoted; the champion stays {champion or 'unset'} (docs/ml.md)"
            }
        )
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key=keys.MODEL,
            passed=ok,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"version": version, **{k: str(v) for k, v in details.items()}, **outcome},
        )


def _latest_version(context) -> str:
    event = context.instance.get_latest_materialization_event(keys.MODEL)
    if event is None or event.asset_materialization is None:
        raise dg.Failure("ml/severity_model has never been materialized")
    return str(event.asset_materialization.metadata["version"].value)


@dg.asset(
    key=keys.CHAMPION,
    group_name="ml",
    kinds={"mlflow"},
    deps=[keys.MODEL],
    automation_condition=PROMOTE,
    output_required=False,
)
def champion(context: dg.AssetExecutionContext, ntsb: NtsbResource):
    """Give the latest trained version the registry alias ``champion`` when its checks
    passed. A version the registry records as failed is not promoted: nothing is
    materialized (so the predictions are not redone), the run completes, and the model's
    checks say why."""
    store = T.Store.from_settings(ntsb.settings())
    version = _latest_version(context)
    with T.session(store) as client:
        before = T.champion_version(client)
        try:
            T.promote(client, version)
        except T.TrackingError as exc:
            context.log.warning(f"not promoted: {exc}")
            return
    yield dg.MaterializeResult(
        metadata={"model": T.MODEL_NAME, "alias": T.CHAMPION, "version": version, "previous champion": before or "none"}
    )


@dg.asset(
    key=keys.BATCH_PREDICTIONS,
    group_name="ml",
    kinds={"xgboost", "sql"},
    deps=[keys.CHAMPION, keys.FEATURES],
    automation_condition=PREDICT,
)
@warehouse_writer
def batch_predictions(ntsb: NtsbResource) -> dg.MaterializeResult:
    """The champion's prediction for every event in ``ml.batch_predictions``, in one
    transaction: after a new champion, and after new features (new events get the current
    champion's prediction). Only the predictions that changed are written: one equal to the
    one before it keeps its row and its ``predicted_at`` (what serves it changes only where
    a prediction did)."""
    settings = ntsb.settings()
    df, _ = features.read_features(settings.lake)
    model, version = T.load_champion(T.Store.from_settings(settings))
    table = predictions.prediction_table(model, version, df)
    with settings.warehouse.session() as s:
        written = predictions.store_predictions(s, table)
    counts = pd.Series(table.column("predicted_class").to_pylist()).value_counts()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "model version": version,
            "table": ".".join(predictions.PREDICTIONS_TABLE),
            "predictions written": written,
            "predicted classes": dg.MetadataValue.md(md_table(["class", "events"], counts.items())),
        }
    )


@dg.asset(
    key=keys.NARRATIVE_EMBEDDINGS,
    group_name="ml",
    kinds={"onnx", "parquet"},
    deps=[keys.archive("narratives")],
    automation_condition=after(keys.archive("narratives")),
)
def narrative_embeddings(context: dg.AssetExecutionContext, ntsb: NtsbResource) -> dg.MaterializeResult:
    """One all-MiniLM-L6-v2 vector per window of each narrative and probable cause (long texts
    in overlapping windows), in the lake as Parquet with the model and its version in the
    file's metadata. Only texts whose content is new are embedded (at most
    NTSB_EMBED_MAX_TEXTS a run, the latest events' first: the others wait for the next run);
    a new model version embeds everything again; then ``ml.narrative_vectors`` in the
    warehouse, which the API searches, is brought to the same rows. The work is in
    ``lib/embeddings.py`` and ``lib/narratives.py``."""
    settings = ntsb.settings()
    lake = settings.lake
    result = narratives.refresh(
        lake,
        E.encoder(settings.models_dir),
        progress=lambda done, total: context.log.info(f"embedded {done:,}/{total:,} texts"),
        max_texts=settings.embed_max_texts,
    )
    # the warehouse's copy, which the API searches: the writer lock only for the write, not the embedding
    with (
        writer_lock(settings.warehouse, f"narrative_embeddings, run {context.run.run_id[:8]}", context.log.warning),
        settings.warehouse.session() as s,
    ):
        stored = narratives.store_vectors(s, result.table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.table.num_rows,
            "path": dg.MetadataValue.path(lake.uri(narratives.VECTORS_KEY)),
            "model": E.MODEL_NAME,
            "model version": result.version,
            "texts": result.texts,
            "texts embedded now": result.embedded,
            "texts reused": result.reused,
            "texts waiting (over NTSB_EMBED_MAX_TEXTS)": result.waiting,
            "blank texts (no vector)": result.blank,
            "texts in several windows": result.long_texts,
            "windows embedded now": result.chunks_embedded,
            "windows per second": round(result.chunks_embedded / result.seconds, 1) if result.seconds else 0.0,
            "model changed (all embedded again)": result.model_changed,
            "table": ".".join(narratives.VECTORS_TABLE),
            "rows written to the table": stored["inserted"],
            "rows deleted from the table": stored["deleted"],
        }
    )


ml_assets = [ml_features, severity_model, champion, batch_predictions]
