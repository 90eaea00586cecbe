"""Severity predictions from the champion model (analyst role), and the model's card data."""

from fastapi import APIRouter, Depends, Request

from ntsb_assets.lib import tracking

from ..deps import Problem, analyst, services_of
from ..schemas import BatchPrediction, BatchRequest, FeatureRow, ModelInfo, SeverityPrediction

router = APIRouter(tags=["predictions"])


def _champion(request: Request):
    try:
        return services_of(request).champion()
    except Exception as exc:  # no champion yet, or the registry cannot be reached
        raise Problem(503, "Service Unavailable", f"no champion model: {exc}", headers={"Retry-After": "60"}) from None


def _row(row) -> dict:
    return row.model_dump()


@router.post(
    "/predictions/severity",
    response_model=SeverityPrediction,
    dependencies=[Depends(analyst)],
    summary="Predict one event's severity",
)
def predict_one(row: FeatureRow, request: Request):
    """One feature row: predicted class, class probabilities, P(fatal) and the top SHAP
    contributions (log-odds of a fatal outcome)."""
    model, version = _champion(request)
    out = model.explain(_row(row), top=5)
    services_of(request).metrics.predicted(out["predicted_class"])
    request.state.data_version = {**(getattr(request.state, "data_version", None) or {}), "model_version": version}
    return {**out, "model": {"name": tracking.MODEL_NAME, "version": version, "alias": tracking.CHAMPION}}


@router.post(
    "/predictions/batch", response_model=BatchPrediction, dependencies=[Depends(analyst)], summary="Predict many rows"
)
def predict_batch(body: BatchRequest, request: Request):
    """Up to 1,000 feature rows at once (no SHAP)."""
    model, version = _champion(request)
    pred = model.predict([_row(r) for r in body.rows])
    classes = [c.removeprefix("p_").upper() for c in pred.columns if c.startswith("p_") and c != "p_fatal_outcome"]
    items = [
        {
            "predicted_class": r["predicted_class"],
            "probabilities": {c: float(r[f"p_{c.lower()}"]) for c in classes},
            "p_fatal_outcome": float(r["p_fatal_outcome"]),
        }
        for r in pred.to_dict("records")
    ]
    for cls, n in pred["predicted_class"].value_counts().items():
        services_of(request).metrics.predicted(str(cls), int(n))
    return {"items": items, "model": {"name": tracking.MODEL_NAME, "version": version, "alias": tracking.CHAMPION}}


@router.get("/models/info", response_model=ModelInfo, summary="The champion model and its metrics")
def model_info(request: Request):
    """The champion: name, version, alias, split years, its family and why, and every candidate's
    validation and test metrics next to the majority baseline's."""
    store = tracking.Store.from_settings(services_of(request).settings)
    try:
        with tracking.session(store) as client:
            return tracking.info(client)
    except tracking.TrackingError as exc:
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "60"}) from None
