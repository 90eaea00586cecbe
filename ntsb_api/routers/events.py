"""Events: a filtered, sorted, paginated list; one event in full; full-text search."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ..deps import Data, Problem, cached
from ..schemas import EventDetail, EventPage, SearchResults, Severity
from ..store import SORTS

router = APIRouter(tags=["events"])
MAX_PAGE_SIZE = 100
DATE = r"^\d{4}-\d{2}-\d{2}$"


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Problem(422, "Unprocessable Content", f"{name}={value!r} is not a calendar date") from None


@router.get("/events", response_model=EventPage, summary="List events")
async def list_events(
    store: Data,
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
    filters = {
        "date_from": _date(date_from, "date_from"),
        "date_to": _date(date_to, "date_to"),
        "state": state.upper() if state else None,
        "severity": severity,
        "make": make,
        "model": model,
        "phase": phase,
        "weather": weather,
    }

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
async def get_event(
    store: Data,
    ev_id: str = Path(
        min_length=1,
        max_length=20,
        pattern="^[A-Za-z0-9]+$",
        description="NTSB event id (14 characters in avall).",
        examples=["20140507X51410"],
    ),
):
    """One event with its aircraft, crew, findings, narratives and the champion's prediction."""

    def build():
        doc = store.event(ev_id)
        if doc is None:
            raise Problem(404, "Not Found", f"no event {ev_id!r}")
        return EventDetail.model_validate_json(doc)

    return await cached(store, ("event", ev_id), build)


@router.get("/search", response_model=SearchResults, summary="Search the narratives")
async def search(
    store: Data,
    q: str = Query(
        min_length=1,
        max_length=200,
        description="Words to look for (stemmed, any order).",
        examples=["icing carburetor"],
    ),
    limit: int = Query(20, ge=1, le=100, description="Most hits returned, best first.", examples=[10]),
):
    """Ranked full-text search over the narratives and probable causes, with highlighted
    snippets (PostgreSQL full-text index; BM25 over the snapshot's index embedded)."""
    return await cached(
        store, ("search", q, limit), lambda: SearchResults.model_validate({"query": q, "items": store.search(q, limit)})
    )
