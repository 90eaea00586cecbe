"""Statistics from the aggregate marts (materialized views on PostgreSQL), cached per data
version."""

from fastapi import APIRouter, Query

from ntsb_assets.lib import marts

from ..deps import Data, cached
from ..schemas import Rows, Summary

router = APIRouter(prefix="/stats", tags=["statistics"])


def rows_of(mart: str, what: str) -> str:
    """A route's description: what a row is, and the columns it returns of its mart (the
    mart's ``meta.ntsb.api: rows`` columns, described in its yml)."""
    columns = "\n".join(f"- `{c.name}`: {c.description}" for c in marts.marts()[mart].api if c.place == "rows")
    return f"{what} (mart {mart}).\n\nEach row's columns:\n\n{columns}"


@router.get("/summary", response_model=Summary, summary="Totals over all years")
async def summary(store: Data):
    """Events by highest injury, fatalities, and the years covered (mart agg_yearly_stats)."""
    return await cached(store, ("summary",), lambda: Summary(**store.summary()))


@router.get(
    "/yearly",
    response_model=Rows,
    summary="Counts per year",
    description=rows_of("agg_yearly_stats", "One row per event year, oldest year first"),
)
async def yearly(store: Data):
    return await cached(store, ("yearly",), lambda: Rows(items=store.yearly()))


@router.get(
    "/by-state",
    response_model=Rows,
    summary="Counts per state",
    description=rows_of("agg_state_stats", "One row per country and state, most events first"),
)
async def by_state(store: Data):
    return await cached(store, ("by-state",), lambda: Rows(items=store.by_state()))


@router.get(
    "/by-aircraft-type",
    response_model=Rows,
    summary="Counts per make and model",
    description=rows_of("agg_aircraft_type_stats", "One row per aircraft make and model, most events first"),
)
async def by_aircraft_type(
    store: Data, limit: int = Query(50, ge=1, le=500, description="Most rows returned.", examples=[20])
):
    return await cached(store, ("by-aircraft-type", limit), lambda: Rows(items=store.by_aircraft_type(limit)))


@router.get(
    "/by-phase",
    response_model=Rows,
    summary="Counts per phase of flight",
    description=rows_of("agg_phase_stats", "One row per phase of flight of the defining event, most events first"),
)
async def by_phase(store: Data):
    return await cached(store, ("by-phase",), lambda: Rows(items=store.by_phase()))
