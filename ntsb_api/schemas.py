"""Request and response models: they are the OpenAPI document Schemathesis tests against."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from ntsb_assets.lib import features

Severity = Literal["FATL", "SERS", "MINR", "NONE"]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]
    data_version: str | None = None


class EventSummary(BaseModel):
    ev_id: str
    event_date: dt.date | None = None
    severity: str | None = None
    fatalities: int | None = None
    serious_injuries: int | None = None
    make: str | None = None
    model: str | None = None
    far_part: str | None = None
    phase_of_flight: str | None = None
    phase_of_flight_label: str | None = None
    weather_condition: str | None = None
    light_condition: str | None = None
    country: str | None = None
    state: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class EventPage(BaseModel):
    items: list[EventSummary]
    total: int
    page: int
    page_size: int


class Prediction(BaseModel):
    predicted_class: str
    p_fatl: float
    p_sers: float
    p_minr: float
    p_none: float
    p_fatal_outcome: float
    model_name: str
    model_version: str
    predicted_at: dt.datetime | None = None

    @field_validator("predicted_at")
    @classmethod
    def _utc(cls, v):   # stored as UTC without a zone; RFC 3339 wants the offset
        return v.replace(tzinfo=dt.timezone.utc) if v is not None and v.tzinfo is None else v


class EventDetail(EventSummary):
    ntsb_no: str | None = None
    event_type: str | None = None
    aircraft_count: int | None = None
    event_hour: int | None = None
    flight_purpose: str | None = None
    flight_purpose_label: str | None = None
    is_scheduled: bool | None = None
    release_id: str | None = None
    aircraft: list[dict[str, Any]]
    crew: dict[str, Any]
    findings: list[dict[str, Any]]
    narratives: list[dict[str, Any]]
    prediction: Prediction | None = None


class SearchHit(BaseModel):
    ev_id: str
    event_date: dt.date | None = None
    severity: str | None = None
    make: str | None = None
    model: str | None = None
    score: float
    snippet: str


class SearchResults(BaseModel):
    query: str
    items: list[SearchHit]


class Summary(BaseModel):
    events: int | None
    fatal_events: int | None
    serious_events: int | None
    minor_events: int | None
    no_injury_events: int | None
    fatalities: int | None
    first_year: int | None
    last_year: int | None


class Rows(BaseModel):
    items: list[dict[str, Any]]


# ---- predictions: one feature row, every feature optional (missing is allowed), ranges checked
RANGES = {
    "engine_count": (0, 16), "aircraft_age": (0, 150), "aircraft_count": (1, 10), "pilot_total_hours": (0, 100_000),
    "pilot_age": (0, 120), "visibility_sm": (0, 100), "wind_speed_kts": (0, 300), "temperature_c": (-80, 60),
    "year": (1948, 2100), "month": (1, 12), "hour": (0, 23), "weekday": (1, 7), "latitude": (-90, 90),
    "longitude": (-180, 180), "airport_distance_sm": (0, 5_000),
}


def _field(f: features.Feature):
    """Strict types: a JSON boolean is not a number, a number is not a string."""
    if f.kind == "category":
        return (str | None, Field(default=None, max_length=64, strict=True, description=f"{f.group}: {f.why}"))
    if f.kind == "flag":
        return (bool | None, Field(default=None, strict=True, description=f"{f.group}: {f.why}"))
    lo, hi = RANGES[f.name]
    return (float | None, Field(default=None, ge=lo, le=hi, strict=True, description=f"{f.group}: {f.why}"))


FeatureRow = create_model("FeatureRow", __config__=ConfigDict(extra="forbid"),
                          **{f.name: _field(f) for f in features.FEATURES})


class Contribution(BaseModel):
    feature: str
    value: str | float | None
    shap_log_odds: float


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class SeverityPrediction(BaseModel):
    predicted_class: str
    probabilities: dict[str, float]
    p_fatal_outcome: float
    contributions: list[Contribution]
    base_log_odds: float
    model: ModelRef


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[FeatureRow] = Field(min_length=1, max_length=1000)   # type: ignore[valid-type]


class BatchItem(BaseModel):
    predicted_class: str
    probabilities: dict[str, float]
    p_fatal_outcome: float


class BatchPrediction(BaseModel):
    items: list[BatchItem]
    model: ModelRef


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str
    checks: str | None
    data_version: str | None
    split: dict[str, str]
    sizes: dict[str, int]
    metrics: dict[str, dict[str, dict[str, Any]]]   # test years: head -> model -> metric
    champion_family: str = "xgboost"
    valid_metrics: dict[str, dict[str, dict[str, Any]]] | None = None   # validation years
    candidates: dict[str, dict[str, Any]] | None = None   # family -> settings, valid and test metrics
    selection: dict[str, Any] | None = None   # why the champion's family
