"""The FastAPI application: ``create_app(settings)``.

Every ``/api/v1`` route needs a bearer token (viewer or above; predictions need analyst),
is rate limited per token, and answers with ``X-Data-Version`` (the releases and the model
version the data came from). ``/health``, ``/ready`` and ``/metrics`` are anonymous and rate
limited per client address. Errors are RFC 9457 problem details, never a stack trace.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ntsb_assets.lib import serving
from ntsb_assets.settings import Settings, get_settings

from . import auth
from .deps import PROBLEM, Problem, Services, problem, viewer
from .routers import analytics, events, meta, predictions, stats
from .store import StoreUnavailable

log = logging.getLogger("ntsb_api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = Services(settings)  # refuses a production start without a proper secret

    @asynccontextmanager
    async def lifespan(app):
        threading.Thread(target=services.warm, daemon=True).start()  # the first prediction need not wait
        yield
        services.close()

    app = FastAPI(
        title="NTSB aviation accidents API",
        version="1",
        lifespan=lifespan,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    _offline_docs(app)

    app.add_middleware(Observe, services=services)

    @app.exception_handler(Exception)
    async def unhandled(request, exc: Exception):  # logged by the server; the client gets no trace
        log.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
        return problem(500, "Internal Server Error", "the error was logged")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        return problem(
            exc.status_code,
            _reason(exc.status_code),
            str(exc.detail) if exc.detail else "",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem(422, "Unprocessable Content", "the request does not match the API's schema", errors=errors)

    @app.exception_handler(Problem)
    async def known(request, exc: Problem):
        return problem(exc.status, exc.title, exc.detail, headers=exc.headers)

    @app.exception_handler(auth.AuthError)
    async def denied(request, exc: auth.AuthError):
        headers = {"WWW-Authenticate": 'Bearer realm="ntsb"' + (', error="invalid_token"' if exc.status == 401 else "")}
        return problem(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.detail, headers=headers)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request, exc: StoreUnavailable):
        return problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "30"})

    app.include_router(meta.router)
    for r in (events.router, stats.router, analytics.router, predictions.router):
        app.include_router(r, prefix="/api/v1", dependencies=[Depends(viewer)])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented override
    return app


class Observe:
    """ASGI middleware: request count and latency by route template and status, and the
    X-Data-Version header of the data version the request read (``request.state``)."""

    def __init__(self, app, services: Services):
        self.app, self.services = app, services

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = state.get("data_version")
                if version is not None:
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-data-version", serving.header(version).encode("latin-1")),
                    ]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self.services.metrics.observe(scope["method"], _template(scope), status, time.perf_counter() - started)


def _template(scope) -> str:
    """The matched route's template with its router prefixes (a bounded label set for the
    metrics): the route knows its own path, the request path gives the prefix."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return "unmatched"
    rendered = path
    for name, value in (scope.get("path_params") or {}).items():
        rendered = rendered.replace("{" + name + "}", str(value))
    return scope["path"].removesuffix(rendered) + path if scope["path"].endswith(rendered) else path


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "description": "An RFC 9457 problem: what went wrong, in words a client can act on.",
    "properties": {
        "type": {"type": "string", "description": "always about:blank: the status says it all"},
        "title": {"type": "string", "description": "the HTTP status phrase"},
        "status": {"type": "integer", "description": "the HTTP status code"},
        "detail": {"type": "string", "description": "what was wrong with this request, and what to do"},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "422 only: each field that failed validation, with its location",
        },
    },
    "example": {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "the token has expired"},
}
ERRORS = {
    "400": "the body could not be read",
    "401": "missing, malformed or expired token",
    "403": "the token's role is not enough",
    "422": "the request does not match the schema",
    "429": "rate limit exceeded (see Retry-After)",
    "503": "nothing to serve yet, or the warehouse is unreachable",
}


DESCRIPTION = """\
The NTSB aviation accident data the Dagster asset graph materialized: events with their
aircraft, crew, findings and narratives, full-text search, statistics from the aggregate
marts, the analytics outputs, and severity predictions from the champion model.

**Authentication.** Every `/api/v1` route needs a bearer token (a JWT signed with the
deployment's secret). Print one with `ntsb token create --role viewer` (or `analyst`, which
predictions need), then press **Authorize** and paste it. `/health`, `/ready` and
`/metrics` are anonymous.

**Data version.** Every data response carries `X-Data-Version`: the releases it was built
from and, for predictions, the model version. Cite it with the numbers.

**Errors** are RFC 9457 problem details (`application/problem+json`) whose `detail` says what
to change. Requests are rate limited per token (per address for the anonymous routes); a
429 says when to come back in `Retry-After`.
"""
TAGS = [
    {
        "name": "events",
        "description": "Accidents and incidents, one event at a time or as a filtered list, "
        "and full-text search over the narratives.",
    },
    {
        "name": "statistics",
        "description": "Counts from the aggregate marts, the same numbers as the dbt docs site's `agg_*` models.",
    },
    {
        "name": "analytics",
        "description": "Outputs of the analytics assets: trends, geographic clusters, factor correlations.",
    },
    {
        "name": "predictions",
        "description": "The champion severity model (analyst role). Without a champion "
        "these answer 503 and the rest of the API serves on.",
    },
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics, for probes and scrapers."},
]
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A token from `ntsb token create --role viewer|analyst|admin`.",
}
DOCS_ASSETS = "/docs-assets"


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, their scripts served by the API itself from
    a registry package (fastapi-offline's static folder): no CDN, no web fonts, so the
    pages work where the API has no internet."""
    from pathlib import Path

    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=app.title + " (Swagger UI)",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={
                "persistAuthorization": True,
                "tryItOutEnabled": True,
                "displayRequestDuration": True,
            },
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=app.title + " (ReDoc)",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with every error documented as it is sent (problem details,
    application/problem+json) and the bearer scheme on every /api/v1 operation, so that
    "Authorize" in Swagger UI sends the token."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {"bearer": BEARER}
    problem_content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in doc["paths"].items():
        for op in operations.values():
            if path.startswith("/api/"):
                op["security"] = [{"bearer": []}]
            responses = op.setdefault("responses", {})
            codes = (
                ["429"]
                + ([] if not path.startswith("/api/") else ["401", "403", "422", "503"])
                + (["400"] if "requestBody" in op else [])
            )
            for code in codes:
                responses.setdefault(code, {"description": ERRORS[code]})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = problem_content
    _drop_unreferenced(doc)
    app.openapi_schema = doc
    return doc


def _drop_unreferenced(doc: dict) -> None:
    """Remove the component schemas nothing refers to any more (FastAPI's validation error
    schemas, replaced by problem details)."""
    import json

    schemas = doc["components"]["schemas"]
    while True:
        text = json.dumps({k: v for k, v in doc.items() if k != "components"}) + json.dumps(schemas)
        unused = [n for n in schemas if f'"#/components/schemas/{n}"' not in text]
        if not unused:
            return
        for n in unused:
            del schemas[n]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
