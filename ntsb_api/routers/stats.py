"""Statistics from the aggregate marts (materialized views on PostgreSQL), cached per data
version."""

from fastapi import APIRouter, Query

from ..deps import Data, cached
from ..schemas import Rows, Summary

router = APIRouter(prefix="/stats", tags=["statistics"])


@router.get("/summary", response_model=Summary, summary="Totals over all years")
async def summary(store: Data):
    """Events by highest injury, fatalities, and the years covered (mart agg_yearly_stats)."""
    return await cached(store, ("summary",), lambda: Summary(**store.summary()))


@router.get("/yearly", response_model=Rows, summary="Counts per year")
async def yearly(store: Data):
    """One row per event year: events, fatal, serious, minor and no-injury events, fatalities
    (mart agg_yearly_stats), oldest year first."""
    return await cached(store, ("yearly",), lambda: Rows(items=store.yearly()))


@router.get("/by-state", response_model=Rows, summary="Counts per state")
async def by_state(store: Data):
    """One row per country and state: events, fatal events, fatal share, fatalities and the
    centroid of the located events (mart agg_state_stats), most events first."""
    return await cached(store, ("by-state",), lambda: Rows(items=store.by_state()))


@router.get("/by-aircraft-type", response_model=Rows, summary="Counts per make and model")
async def by_aircraft_type(
    store: Data, limit: int = Query(50, ge=1, le=500, description="Most rows returned.", examples=[20])
):
    """One row per aircraft make and model: events, fatal events and fatal share (mart
    agg_aircraft_type_stats), most events first."""
    return await cached(store, ("by-aircraft-type", limit), lambda: Rows(items=store.by_aircraft_type(limit)))


@router.get("/by-phase", response_model=Rows, summary="Counts per phase of flight")
async def by_phase(store: Data):
    """One row per phase of flight of the defining event, with its label: events, fatal
    events and fatal share (mart agg_phase_stats), most events first."""
    return await cached(store, ("by-phase",), lambda: Rows(items=store.by_phase()))
