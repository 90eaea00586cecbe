"""MLflow for the severity model: the tracking store and the registry from settings
(SQLite + the lake embedded, PostgreSQL + S3 in production), one run per training with its
metrics, plots and model card, the registered model and its ``champion`` alias.

The registered model is a pyfunc wrapping :class:`.model.SeverityModel` (two boosters and a
JSON file); it loads wherever this package is installed. Check results are kept as tags on
the model version (``ntsb.checks``), so the registry itself says which versions passed and
:func:`promote` refuses one that did not.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .model import SeverityModel

MODEL_NAME = "ntsb-severity"
EXPERIMENT = "ntsb-severity"
CHAMPION = "champion"
CHECKS_TAG = "ntsb.checks"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class TrackingError(Exception):
    pass


@dataclass(frozen=True)
class Store:
    """Where MLflow keeps runs, the registry and artifacts."""

    tracking_uri: str
    artifact_root: str  # the experiment's artifact location
    env: dict  # what MLflow's S3 client reads (production)

    @classmethod
    def from_settings(cls, settings) -> Store:
        lake = settings.lake
        env = {}
        if not lake.is_local:
            init = lake.init_args
            env = {
                k: v
                for k, v in {
                    "MLFLOW_S3_ENDPOINT_URL": init["endpoint"],
                    "AWS_ACCESS_KEY_ID": init["access_key"],
                    "AWS_SECRET_ACCESS_KEY": init["secret_key"],
                    "AWS_DEFAULT_REGION": init["region"],
                }.items()
                if v
            }
        root = lake.full("mlflow") if lake.is_local else lake.uri("mlflow")
        uri = settings.mlflow_uri_effective
        for plain in ("postgresql://", "postgres://"):  # MLflow would pick psycopg 3; the project ships psycopg2
            if uri.startswith(plain):
                uri = "postgresql+psycopg2://" + uri[len(plain) :]
        return cls(uri, root, env)


@contextmanager
def session(store: Store):
    """MLflow pointed at ``store`` for the block (MLflow's configuration is process-global)."""
    import mlflow

    saved = {k: os.environ.get(k) for k in store.env}
    os.environ.update(store.env)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.tracking_uri)
    try:
        yield mlflow.MlflowClient(tracking_uri=store.tracking_uri, registry_uri=store.tracking_uri)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def experiment_id(client, store: Store) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(EXPERIMENT, artifact_location=store.artifact_root)


def __getattr__(name: str):
    """``PyfuncModel``, imported when asked for: MLflow's import is a quarter of loading the
    code location (5.7 s, 4.4 s without it), and most processes that load this module (the code
    location in ``ntsb ingest``, the code server) never use it. The versions registered before
    it moved import it from here."""
    if name == "PyfuncModel":
        from .pyfunc_model import PyfuncModel

        return PyfuncModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def input_frame(model: SeverityModel, df: pd.DataFrame) -> pd.DataFrame:
    """Feature columns as the model's signature types them: categories as strings (None when
    missing), numbers and flags as float (NaN when missing)."""
    out = {}
    for name, kind in model.features.items():
        col = df[name]
        if kind == "category":
            out[name] = [None if pd.isna(v) else str(v) for v in col]
        else:
            out[name] = pd.to_numeric(col.astype("object"), errors="coerce").astype("float64")
    return pd.DataFrame(out, index=df.index)


def log_model(client, model: SeverityModel, example: pd.DataFrame, tags: dict[str, str]) -> str:
    """Inside an active run: log the pyfunc with its signature and input example and register
    it under MODEL_NAME; returns the new version (no alias)."""
    import mlflow
    from mlflow.models import infer_signature

    example = input_frame(model, example)
    signature = infer_signature(example, model.predict(example))
    with tempfile.TemporaryDirectory() as tmp:
        directory = model.save(Path(tmp) / "severity_model")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("severity_pyfunc.py")),
            artifacts={"model": str(directory)},
            signature=signature,
            input_example=example,
            registered_model_name=MODEL_NAME,
            pip_requirements=_requirements(),
            await_registration_for=60,
        )
    version = str(info.registered_model_version)
    for k, v in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, k, v)
    return version


def log_training(
    client, store: Store, trained, releases: str, params: dict, plots: dict[str, bytes]
) -> tuple[str, str]:
    """One MLflow run for one training: parameters (data version, releases, split years,
    sizes, the search's settings, the settings chosen per family and head, the champion
    family), every candidate's metrics, the plots, feature importance,
    ``metrics.json``, the model card and the registered model. Returns (run id, version)."""
    import mlflow

    from . import model as M

    m = trained.model
    with mlflow.start_run(
        experiment_id=experiment_id(client, store), run_name=f"severity {m.split.describe()['test']}"
    ) as run:
        mlflow.log_params(
            {
                "data_version": m.data_version,
                "releases": releases[:500],
                "features": len(m.features),
                **{f"split.{k}": v for k, v in m.split.describe().items()},
                **{f"events.{k}": v for k, v in trained.sizes.items()},
                **{f"search.{k}": v for k, v in params.items()},
                "champion_family": m.family,
                **{
                    f"{fam}.{h}.{k}": v
                    for fam, by_head in trained.candidates.items()
                    for h, shape in by_head.items()
                    for k, v in shape.items()
                },
            }
        )
        mlflow.log_metrics({**M.flat_metrics(trained), "training_seconds": trained.seconds})
        mlflow.log_dict(M.summary(trained), "metrics.json")
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in plots.items():
                (Path(tmp) / name).write_bytes(data)
            mlflow.log_artifacts(tmp, "plots")
        mlflow.log_text(M.importance(m, trained.test).to_csv(index=False), "feature_importance.csv")
        version = log_model(client, m, trained.example, {"ntsb.data_version": m.data_version})
        mlflow.log_text(M.card(trained, MODEL_NAME, version, releases), "model_card.md")
    return run.info.run_id, version


def _requirements() -> list[str]:
    from importlib.metadata import version

    pins = [f"{p}=={version(p)}" for p in ("xgboost-cpu", "pandas", "numpy", "scikit-learn", "mlflow")]
    return [*pins, "ntsb-lakehouse"]


def set_checks(client, version: str, results: dict[str, bool]) -> None:
    results = {k: bool(v) for k, v in results.items()}  # NumPy's bool_ is not JSON's
    client.set_model_version_tag(MODEL_NAME, version, CHECKS_TAG, "passed" if all(results.values()) else "failed")
    client.set_model_version_tag(MODEL_NAME, version, f"{CHECKS_TAG}.detail", json.dumps(results))


def promote(client, version: str) -> None:
    """Give ``version`` the champion alias; refuses a version whose checks did not pass."""
    mv = client.get_model_version(MODEL_NAME, version)
    if mv.tags.get(CHECKS_TAG) != "passed":
        raise TrackingError(
            f"{MODEL_NAME} version {version}: checks {mv.tags.get(CHECKS_TAG, 'not run')} "
            f"({mv.tags.get(CHECKS_TAG + '.detail', '')}); the champion stays "
            f"{champion_version(client) or 'unset'}"
        )
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def champion_version(client) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def _champion(client) -> str:
    version = champion_version(client)
    if version is None:
        raise TrackingError(
            f"no {MODEL_NAME} version has the alias {CHAMPION!r} yet: materialize "
            "ml/severity_model (its checks must pass)"
        )
    return version


def info(client) -> dict:
    """The champion: name, version, alias, run, split years, data version, the family chosen
    and why, and every candidate's validation and test metrics next to the majority
    baseline's (``candidates.<family>.valid|test.<head>.<metric>``)."""
    version = _champion(client)
    mv = client.get_model_version(MODEL_NAME, version)
    run = client.get_run(mv.run_id)
    summary = json.loads(_artifact_text(client, mv.run_id, "metrics.json"))
    return {
        "name": MODEL_NAME,
        "version": version,
        "alias": CHAMPION,
        "run_id": mv.run_id,
        "created": mv.creation_timestamp,
        "checks": mv.tags.get(CHECKS_TAG),
        "data_version": run.data.params.get("data_version"),
        "split": summary["split"],
        "sizes": summary["sizes"],
        "metrics": summary["metrics"],
        "champion_family": summary.get("champion_family", "xgboost"),
        "valid_metrics": summary.get("valid_metrics"),
        "candidates": summary.get("candidates"),
        "selection": summary.get("selection"),
    }


def card(client) -> str:
    """The champion's model card, as logged with its run."""
    return _artifact_text(client, client.get_model_version(MODEL_NAME, _champion(client)).run_id, "model_card.md")


def _artifact_text(client, run_id: str, path: str) -> str:
    return artifact_bytes(client, run_id, path).decode("utf-8")


def artifact_bytes(client, run_id: str, path: str) -> bytes:
    """One artifact of a run (``plots/reliability.png``, ``feature_importance.csv``, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, path, tmp)).read_bytes()


_CACHE: dict = {}


def load_champion(store: Store) -> tuple[SeverityModel, str]:
    """The champion's model and version, cached per process until the alias moves."""
    import mlflow

    with session(store) as client:
        version = _champion(client)
        key = (store.tracking_uri, version)
        if key not in _CACHE:  # by version: the alias may move meanwhile
            loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
            _CACHE.clear()
            _CACHE[key] = loaded.unwrap_python_model().model
    return _CACHE[key], version


def signature_inputs(version: str) -> list[str]:
    """The input columns of a registered version, read back from the registry (not from the
    code that trained it)."""
    from mlflow.models import get_model_info

    return list(get_model_info(f"models:/{MODEL_NAME}/{version}").signature.inputs.input_names())


def explain(store: Store, row: dict, top: int = 5) -> dict:
    """What the API serves for one feature row: the champion's probabilities, predicted class
    and the ``top`` SHAP contributions, with the model's name and version."""
    model, version = load_champion(store)
    return {**model.explain(row, top=top), "model": {"name": MODEL_NAME, "version": version, "alias": CHAMPION}}
