"""Events: a filtered, sorted, paginated list; one event in full; search over the narratives
(keyword, semantic, hybrid) and events with similar narratives."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from ntsb_assets.lib.embeddings import EmbeddingError

from .. import search as S
from ..deps import Data, Problem, cached, services_of
from ..schemas import EventDetail, EventPage, SearchResults, Severity, SimilarEvents
from ..store import SORTS

router = APIRouter(tags=["events"])
MAX_PAGE_SIZE = 100
DATE = r"^\d{4}-\d{2}-\d{2}$"
EV_ID = Path(
    min_length=1,
    max_length=20,
    pattern="^[A-Za-z0-9]+$",
    description="NTSB event id (14 characters in avall).",
    examples=["20140507X51410"],
)


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Problem(422, "Unprocessable Content", f"{name}={value!r} is not a calendar date") from None


async def event_filters(
    date_from: str | None = Query(
        None,
        pattern=DATE,
        description="First event date (YYYY-MM-DD), inclusive.",
        examples=["2000-01-01"],
        json_schema_extra={"format": "date"},
    ),
    date_to: str | None = Query(
        None,
        pattern=DATE,
        description="Last event date (YYYY-MM-DD), inclusive.",
        examples=["2019-12-31"],
        json_schema_extra={"format": "date"},
    ),
    state: str | None = Query(
        None,
        min_length=2,
        max_length=2,
        pattern="^[A-Za-z]{2}$",
        description="Two-letter US state or territory code (any case).",
        examples=["AK"],
    ),
    severity: Annotated[
        Severity | None,
        Query(
            description="Highest injury of the event: FATL fatal, SERS serious, MINR minor, NONE none.",
            examples=["FATL"],
        ),
    ] = None,
    make: str | None = Query(
        None,
        max_length=64,
        description="Aircraft make, any case (an event with several aircraft matches on its first).",
        examples=["CESSNA"],
    ),
    model: str | None = Query(None, max_length=64, description="Aircraft model, any case.", examples=["172"]),
    phase: str | None = Query(
        None,
        max_length=16,
        description="Phase of flight code of the defining event (eADMS codes, e.g. 570 landing).",
        examples=["570"],
    ),
    weather: Literal["VMC", "IMC", "UNK"] | None = Query(
        None, description="Basic weather: visual or instrument meteorological conditions.", examples=["IMC"]
    ),
):
    """The event filters (/events, /search, /events/{ev_id}/similar): every one given must hold."""
    return {
        "date_from": _date(date_from, "date_from"),
        "date_to": _date(date_to, "date_to"),
        "state": state.upper() if state else None,
        "severity": severity,
        "make": make,
        "model": model,
        "phase": phase,
        "weather": weather,
    }


Filters = Annotated[dict, Depends(event_filters)]


@router.get("/events", response_model=EventPage, summary="List events")
async def list_events(
    store: Data,
    filters: Filters,
    sort: Literal[tuple(SORTS)] = Query(  # type: ignore[valid-type]
        "-event_date",
        description="Sort key; a leading minus sorts descending. Ties go by ev_id.",
        examples=["-fatalities"],
    ),
    page: int = Query(1, ge=1, le=1_000_000, description="Page number, from 1.", examples=[1]),
    page_size: int = Query(
        25, ge=1, le=MAX_PAGE_SIZE, description=f"Events per page, at most {MAX_PAGE_SIZE}.", examples=[25]
    ),
):
    """Events matching every filter given (a reversed date range matches none); `total`
    counts them all."""

    def build():
        items, total = store.events(filters, sort, page, page_size)
        return EventPage(items=items, total=total, page=page, page_size=page_size)

    return await cached(store, ("events", *filters.values(), sort, page, page_size), build)


@router.get(
    "/events/{ev_id}",
    response_model=EventDetail,
    responses={404: {"description": "no such event"}},
    summary="One event in full",
)
async def get_event(store: Data, ev_id: str = EV_ID):
    """One event with its aircraft, crew, findings, narratives and the champion's prediction."""

    def build():
        doc = store.event(ev_id)
        if doc is None:
            raise Problem(404, "Not Found", f"no event {ev_id!r}")
        return EventDetail.model_validate_json(doc)

    return await cached(store, ("event", ev_id), build)


def _search_errors(fn):
    """The search module's refusals as problem details."""
    try:
        return fn()
    except S.NoVectors as exc:
        raise Problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "60"}) from None
    except S.NoNarrative as exc:
        raise Problem(404, "Not Found", str(exc)) from None
    except EmbeddingError as exc:
        raise Problem(422, "Unprocessable Content", f"q: {exc}") from None


@router.get(
    "/search",
    response_model=SearchResults,
    responses={503: {"description": "semantic or hybrid mode before the narratives are embedded"}},
    summary="Search the narratives",
)
async def search(
    request: Request,
    store: Data,
    filters: Filters,
    q: str = Query(
        min_length=1,
        max_length=S.MAX_QUERY,
        pattern=r"\S",
        description=f"What to look for, in your own words (at most {S.MAX_QUERY:,} characters, not blank).",
        examples=["a deer wandered onto the strip during the landing roll"],
    ),
    mode: Literal[S.MODES] = Query(  # type: ignore[valid-type]
        "hybrid",
        description="keyword: full-text (stemmed words, any order); semantic: by meaning (the narratives' "
        "all-MiniLM-L6-v2 vectors); hybrid: reciprocal rank fusion of the two.",
        examples=["hybrid"],
    ),
    limit: int = Query(20, ge=1, le=100, description="Most hits returned, best first.", examples=[10]),
):
    """Events whose narrative or probable cause matches `q`, among those matching every
    filter, best first; each hit with its best passage (a window of one of its texts) and
    its ranks in the keyword and semantic rankings."""
    services = services_of(request)
    embed = services.embed
    key = ("search", q, mode, *filters.values(), limit)

    def build():
        return SearchResults.model_validate(_search_errors(lambda: S.search(store, embed, q, mode, filters, limit)))

    return await cached(store, key, build, services.searches())


@router.get(
    "/events/{ev_id}/similar",
    response_model=SimilarEvents,
    responses={
        404: {"description": "no such event, or it has no narrative"},
        503: {"description": "the narratives are not embedded yet"},
    },
    summary="Events with similar narratives",
)
async def similar_events(
    request: Request,
    store: Data,
    filters: Filters,
    ev_id: str = EV_ID,
    limit: int = Query(10, ge=1, le=100, description="Most events returned, nearest first.", examples=[10]),
):
    """The events whose narratives are nearest to this event's (by the best pair of windows,
    one of each), among those matching every filter."""

    def build():
        return SimilarEvents.model_validate(_search_errors(lambda: S.similar(store, ev_id, filters, limit)))

    return await cached(store, ("similar", ev_id, *filters.values(), limit), build, services_of(request).searches())
