"""Liveness, readiness and metrics (anonymous, rate limited per client address)."""

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..deps import anonymous, metrics_response, services_of
from ..schemas import Health, Ready

router = APIRouter(tags=["operations"], dependencies=[Depends(anonymous)])


@router.get("/health", response_model=Health, summary="Liveness")
def health():
    """The process answers."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}}, summary="Readiness")
async def ready(request: Request):
    """Ready means "can serve data": the warehouse (or the serving snapshot) is reachable and
    holds the marts, and the rate limiter answers. The champion model is reported in
    `checks.model` but does not decide readiness: without one, only the prediction routes
    answer 503, and a probe must not take the data routes down with them."""
    from starlette.concurrency import run_in_threadpool

    services = services_of(request)
    body, ok = await run_in_threadpool(_ready, services)
    try:
        await services.limiter.ping()
        body["checks"]["rate_limiter"] = "ok"
    except Exception as exc:
        body["checks"]["rate_limiter"] = str(exc)
        ok = False
    body["status"] = "ready" if ok else "not ready"
    return JSONResponse(body, status_code=200 if ok else 503)


def _ready(services) -> tuple[dict, bool]:
    from ntsb_assets.lib import serving

    checks = {}
    version = None
    try:
        store = services.store.pin()
        checks["data"] = "ok" if store.has("marts", "fact_accidents") else "no marts"
        version = store.version()
    except Exception as exc:  # not reachable, no snapshot: the reason is the answer
        checks["data"] = str(exc)
    try:
        _, v = services.champion()
        checks["model"] = f"ok (version {v})"
    except Exception as exc:  # a detail: the data routes serve without a model
        checks["model"] = f"no champion model, predictions answer 503: {exc}"
    ok = checks["data"] == "ok"
    return {"checks": checks, "data_version": serving.header(version) if version else None}, ok


@router.get(
    "/metrics",
    response_class=JSONResponse,
    responses={200: {"content": {"text/plain": {}}}},
    summary="Prometheus metrics",
)
def metrics(request: Request):
    """Prometheus exposition: requests and latency by route and status, predictions by class."""
    return metrics_response(services_of(request))
