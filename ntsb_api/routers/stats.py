"""Statistics from the aggregate marts (materialized views on PostgreSQL), cached per data
version."""

from fastapi import APIRouter, Query

from ..app import Data, cached
from ..schemas import Rows, Summary

router = APIRouter(prefix="/stats", tags=["statistics"])


@router.get("/summary", response_model=Summary)
def summary(store: Data):
    return cached(store, ("summary",), lambda: Summary(**store.summary()))


@router.get("/yearly", response_model=Rows)
def yearly(store: Data):
    return cached(store, ("yearly",), lambda: Rows(items=store.yearly()))


@router.get("/by-state", response_model=Rows)
def by_state(store: Data):
    return cached(store, ("by-state",), lambda: Rows(items=store.by_state()))


@router.get("/by-aircraft-type", response_model=Rows)
def by_aircraft_type(store: Data, limit: int = Query(50, ge=1, le=500)):
    return cached(store, ("by-aircraft-type", limit), lambda: Rows(items=store.by_aircraft_type(limit)))


@router.get("/by-phase", response_model=Rows)
def by_phase(store: Data):
    return cached(store, ("by-phase",), lambda: Rows(items=store.by_phase()))
