"""The analytics assets' outputs, read from the lake (analytics/<name>/)."""

import json

from fastapi import APIRouter, Query, Request

from ..app import Data, Problem, services_of
from ..schemas import Rows

router = APIRouter(prefix="/analytics", tags=["analytics"])


def _lake_table(request: Request, key: str) -> list[dict]:
    lake = services_of(request).settings.lake
    if not lake.exists(key):
        raise Problem(503, "Service Unavailable", f"{key} is not materialized yet (ntsb build)",
                      headers={"Retry-After": "30"})
    return lake.read_parquet(key).to_pylist()


@router.get("/time-series", response_model=Rows)
def time_series(_: Data, request: Request, granularity: str = Query("yearly", pattern="^(yearly|monthly)$")):
    """Events by year (or month) and severity (asset analytics/trends)."""
    return {"items": _lake_table(request, f"analytics/trends/{granularity}.parquet")}


@router.get("/geospatial")
def geospatial(request: Request, _: Data) -> dict:
    """DBSCAN clusters as GeoJSON (asset analytics/geo_clusters)."""
    lake = services_of(request).settings.lake
    key = "analytics/geo_clusters/clusters.geojson"
    if not lake.exists(key):
        raise Problem(503, "Service Unavailable", f"{key} is not materialized yet (ntsb build)",
                      headers={"Retry-After": "30"})
    return json.loads(lake.get_bytes(key))


@router.get("/correlations", response_model=Rows)
def correlations(_: Data, request: Request):
    """Chi-square and Cramér's V of each factor against a fatal outcome (asset analytics/correlations)."""
    return {"items": _lake_table(request, "analytics/correlations/summary.parquet")}
