"""The analytics assets' outputs, read from the lake (analytics/<name>/) once per data
version (serving/snapshot runs after them)."""

from fastapi import APIRouter, Query, Request, Response

from ..deps import Data, Problem, cached, services_of
from ..schemas import Rows

router = APIRouter(prefix="/analytics", tags=["analytics"])


def _lake(request: Request, key: str):
    lake = services_of(request).settings.lake
    if not lake.exists(key):
        raise Problem(
            503, "Service Unavailable", f"{key} is not materialized yet (ntsb build)", headers={"Retry-After": "30"}
        )
    return lake


def _table(request: Request, key: str) -> Rows:
    return Rows(items=_lake(request, key).read_parquet(key).to_pylist())


@router.get("/time-series", response_model=Rows, summary="Events over time by severity")
async def time_series(
    store: Data,
    request: Request,
    granularity: str = Query(
        "yearly", pattern="^(yearly|monthly)$", description="yearly or monthly buckets.", examples=["monthly"]
    ),
):
    """Events by year (or month) and severity (asset analytics/trends)."""
    key = f"analytics/trends/{granularity}.parquet"
    return await cached(store, (key,), lambda: _table(request, key))


@router.get("/geospatial", summary="Geographic clusters (GeoJSON)", response_model=dict)
async def geospatial(request: Request, store: Data) -> Response:
    """DBSCAN clusters as GeoJSON (asset analytics/geo_clusters)."""
    key = "analytics/geo_clusters/clusters.geojson"
    return await cached(store, (key,), lambda: _lake(request, key).get_bytes(key))


@router.get("/correlations", response_model=Rows, summary="Factors against a fatal outcome")
async def correlations(store: Data, request: Request):
    """Chi-square and Cramér's V of each factor against a fatal outcome (asset analytics/correlations)."""
    key = "analytics/correlations/summary.parquet"
    return await cached(store, (key,), lambda: _table(request, key))
