"""Liveness, readiness and metrics (anonymous, rate limited per client address)."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..app import anonymous, metrics_response, services_of
from ..schemas import Health, Ready

router = APIRouter(tags=["operations"], dependencies=[Depends(anonymous)])


@router.get("/health", response_model=Health)
def health():
    """The process answers."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(request: Request):
    """The warehouse (or the serving snapshot) is reachable and holds the marts, and the
    champion model loads."""
    from ntsb_assets.lib import serving, tracking
    services = services_of(request)
    checks = {}
    version = None
    try:
        store = services.store.pin()
        checks["data"] = "ok" if store.has("marts", "fact_accidents") else "no marts"
        version = store.version()
    except Exception as exc:   # not reachable, no snapshot: the reason is the answer
        checks["data"] = str(exc)
    try:
        _, v = tracking.load_champion(tracking.Store.from_settings(services.settings))
        checks["model"] = f"ok (version {v})"
    except Exception as exc:
        checks["model"] = str(exc)
    ok = checks["data"] == "ok" and checks["model"].startswith("ok")
    body = {"status": "ready" if ok else "not ready", "checks": checks,
            "data_version": serving.header(version) if version else None}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=JSONResponse, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request):
    """Prometheus exposition: requests and latency by route and status, predictions by class."""
    return metrics_response(services_of(request))
