"""What the routes share, apart from the application that mounts them: the services
(settings, store, rate limiters, metrics, the champion model), problem details, the
authentication and rate-limit dependencies, the data a request reads, and the response
cache. The routers and ``app.py`` import from here; nothing here imports them."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from ntsb_assets.settings import Settings

from . import auth
from .ratelimit import InProcessLimiter, LimiterUnavailable, RedisLimiter
from .store import Store, one_thread_per_request, open_store

log = logging.getLogger("ntsb_api")
PROBLEM = "application/problem+json"
CHAMPION_TTL = 10.0  # seconds between looks at the registry's champion alias
# Searches (and similar events) a worker builds at once: one per core it may run on; more wait
# for a turn. They are CPU work: more at once than cores share the cores and the memory bus,
# and all finish later (docs/api.md, "Search by meaning and similar events").
SEARCH_BUILDS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str = "", headers: dict | None = None):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}


def problem(status: int, title: str, detail: str = "", headers: dict | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


class Services:
    """What the routes share: settings, the store, the limiter, the metrics, the champion."""

    def __init__(self, settings: Settings):
        from .metrics import Metrics

        self.settings = settings
        self.secret = settings.api_secret_effective()
        self.limiter = (
            RedisLimiter(settings.redis_url, settings.api_rate_limit)
            if settings.redis_url
            else InProcessLimiter(settings.api_rate_limit)
        )
        # failed authentications per client address: guessing tokens gets 429, not answers
        limit = settings.api_auth_failure_limit
        self.auth_failures = (
            RedisLimiter(settings.redis_url, limit, prefix="ntsb:authfail:")
            if settings.redis_url
            else InProcessLimiter(limit)
        )
        self.metrics = Metrics()
        one_thread_per_request()
        self._store = None
        self._champion = None  # (model, version, loaded at)
        self._champion_lock = threading.Lock()
        self._encoder: Any = None  # lib/embeddings.Encoder, loaded at the first search by meaning
        self._encoder_lock = threading.Lock()
        self._searches: Any = None  # anyio.CapacityLimiter(SEARCH_BUILDS), made in the event loop

    @property
    def store(self):
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def champion(self):
        """(model, version) of the registry's champion. The alias is looked up again every
        CHAMPION_TTL seconds by one request; meanwhile, and while the registry is
        unreachable, the model in hand serves. Raises TrackingError when there is none."""
        from ntsb_assets.lib import tracking

        held = self._champion
        if held is not None and time.monotonic() - held[2] <= CHAMPION_TTL:
            return held[:2]
        if not self._champion_lock.acquire(blocking=held is None):
            return held[:2]
        try:
            model, version = tracking.load_champion(tracking.Store.from_settings(self.settings))
            if held is None or held[1] != version:
                model.threads(1)  # one row per request: XGBoost's thread team costs more than it gains
            self._champion = (model, version, time.monotonic())
        except Exception as exc:
            if held is None:
                raise
            log.warning("champion alias not refreshed, version %s still serves: %s", held[1], exc)
            self._champion = (*held[:2], time.monotonic())
        finally:
            self._champion_lock.release()
        return self._champion[:2]

    def embed(self, text: str):
        """A query's vector (the narratives' model, loaded at the first call: about a second,
        or a few more the first time a cache directory sees it). One thread per query: a
        query is a few tokens, and requests run side by side."""
        if self._encoder is None:
            with self._encoder_lock:
                if self._encoder is None:
                    from ntsb_assets.lib import embeddings

                    self._encoder = embeddings.Encoder(threads=1, cache_dir=self.settings.models_dir)
        return self._encoder.embed_query(text)

    def searches(self):
        """The turns of the searches being built (:data:`SEARCH_BUILDS`); call it in the event loop."""
        if self._searches is None:
            import anyio

            self._searches = anyio.CapacityLimiter(SEARCH_BUILDS)
        return self._searches

    def warm(self) -> None:
        """Load the champion model, the narratives' encoder, vectors and terms once in the
        background (a missing one is /ready's or the route's business), then move every
        object alive to the collector's permanent generation: the libraries loaded by then
        (MLflow, pandas, XGBoost, ONNX Runtime) hold millions of objects, and a full
        collection walking them paused requests for 100-200 ms."""
        import gc

        try:
            self.champion()
        except Exception as exc:  # no champion yet, registry unreachable: logged, served as 503 later
            log.warning("champion model not loaded at start: %s", exc)
        try:  # the narratives' encoder, this data version's vectors and terms: the first search need not wait
            self.embed("warm")
            pinned = self.store.pin()
            pinned.keyword("warm", 1, {})
            pinned.vector_index()
        except Exception as exc:  # nothing to serve yet: the routes say so
            log.warning("narrative search not warmed at start: %s", exc)
        gc.collect()
        gc.freeze()

    def close(self):
        if self._store is not None and hasattr(self._store, "close"):
            self._store.close()


# ---------------------------------------------------------------------------- dependencies
def services_of(request: Request) -> Services:
    return request.app.state.services


async def _limit(services: Services, key: str, fail_open: bool = False) -> None:
    try:
        allowed, retry = await services.limiter.hit(key)
    except LimiterUnavailable as exc:
        if fail_open:  # liveness, readiness and metrics serve no data: they answer without the limiter
            log.warning("%s", exc)
            return
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "5"}) from None
    if not allowed:
        raise Problem(
            429,
            "Too Many Requests",
            f"at most {services.settings.api_rate_limit} requests per minute",
            headers={"Retry-After": str(max(1, int(retry + 0.999)))},
        )


async def _limit_failures(services: Services, request: Request) -> None:
    """Count a failed authentication against the client's address; past the limit, 429."""
    address = request.client.host if request.client else "unknown"
    try:
        allowed, retry = await services.auth_failures.hit("addr:" + address)
    except LimiterUnavailable as exc:
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "5"}) from None
    if not allowed:
        raise Problem(
            429,
            "Too Many Requests",
            f"more than {services.settings.api_auth_failure_limit} failed authentications a minute from this address",
            headers={"Retry-After": str(max(1, int(retry + 0.999)))},
        )


def principal(role: str):
    async def dependency(request: Request) -> auth.Principal:  # on the event loop, no thread hop
        who = getattr(request.state, "principal", None)
        if who is None:  # once per request, however many role checks the route has
            services = services_of(request)
            try:
                who = auth.authenticate(services.secret, request.headers.get("authorization"))
            except auth.AuthError:
                await _limit_failures(services, request)
                raise
            await _limit(services, "token:" + (who.token_id or who.subject))
            request.state.principal = who
        auth.authorize(who, role)
        return who

    return dependency


viewer = principal("viewer")
analyst = principal("analyst")


async def anonymous(request: Request) -> None:
    await _limit(services_of(request), "addr:" + (request.client.host if request.client else "unknown"), fail_open=True)


async def view(request: Request):
    """The data one request reads; its data version goes into X-Data-Version (a stat of
    the snapshot pointer, or the PostgreSQL version cached for 5 s)."""
    store = services_of(request).store.pin()
    request.state.data_version = store.version()
    return store


def metrics_response(services: Services) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


Data = Annotated[Store, Depends(view)]


async def cached(store: Store, key: tuple, build, turns: Any = None) -> Response:
    """The JSON body for ``key`` in the data version ``store`` reads: ``build()`` (a
    response model instance, or JSON bytes) runs, and is serialized, once per version. A
    hit is answered on the event loop; a miss builds in a worker thread, when ``turns``
    (an ``anyio.CapacityLimiter``; None: the thread pool's own) has one free."""
    import anyio

    def serialized() -> bytes:
        built = build()
        return built if isinstance(built, bytes) else built.model_dump_json().encode()

    body = store.cache.get(key)
    if body is None:
        body = await anyio.to_thread.run_sync(store.cache.get_or_build, key, serialized, limiter=turns)
    return Response(body, media_type="application/json")
