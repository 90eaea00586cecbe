"""Statistics from the aggregate marts (materialized views on PostgreSQL), cached per data
version."""

from fastapi import APIRouter, Query

from ..app import Data, cached
from ..schemas import Rows, Summary

router = APIRouter(prefix="/stats", tags=["statistics"])


@router.get("/summary", response_model=Summary)
async def summary(store: Data):
    return await cached(store, ("summary",), lambda: Summary(**store.summary()))


@router.get("/yearly", response_model=Rows)
async def yearly(store: Data):
    return await cached(store, ("yearly",), lambda: Rows(items=store.yearly()))


@router.get("/by-state", response_model=Rows)
async def by_state(store: Data):
    return await cached(store, ("by-state",), lambda: Rows(items=store.by_state()))


@router.get("/by-aircraft-type", response_model=Rows)
async def by_aircraft_type(store: Data, limit: int = Query(50, ge=1, le=500)):
    return await cached(store, ("by-aircraft-type", limit), lambda: Rows(items=store.by_aircraft_type(limit)))


@router.get("/by-phase", response_model=Rows)
async def by_phase(store: Data):
    return await cached(store, ("by-phase",), lambda: Rows(items=store.by_phase()))
