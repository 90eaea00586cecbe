"""Request and response models: they are the OpenAPI document Schemathesis tests against."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from ntsb_assets.lib import catalog, features, marts, typemap

Severity = Literal["FATL", "SERS", "MINR", "NONE"]


def D(description: str, default: Any = ..., **kw) -> Any:
    """A field with its description (every field of the OpenAPI document has one)."""
    return Field(default, description=description, **kw)


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: str = D("always ok")


class Ready(BaseModel):
    """Whether the API can serve data, and what each dependency said."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {"data": "ok", "model": "ok (version 3)", "rate_limiter": "ok"},
                    "data_version": "releases=00_reference_avall:1a2b3c4d5e6f; model=3",
                }
            ]
        }
    )
    status: str = D("ready or not ready: the data routes can (not) answer")
    checks: dict[str, str] = D(
        "data, model and rate_limiter: ok, or the reason. The model is a detail: "
        "without a champion only predictions answer 503"
    )
    data_version: str | None = D("the releases (and model version) the data comes from, as in X-Data-Version", None)


# The event's fields are the columns the marts' yml serves (meta.ntsb.api, ntsb_assets/lib/marts.py):
# a column is added to the API by editing dbt files only
def _event_fields(*places: str) -> dict[str, Any]:
    """Fields of fact_accidents' columns served in ``places``: typed by the column's logical
    type, described by its dbt description, optional but ``ev_id``."""
    fields: dict[str, Any] = {}
    for c in marts.marts()["fact_accidents"].api:
        if c.place not in places:
            continue
        kind: Any = typemap.PYTHON[c.type or "string"]
        fields[c.name] = (kind, D(c.description)) if c.name == "ev_id" else (kind | None, D(c.description, None))
    return fields


class EventSummary(create_model("_EventListed", **_event_fields("list"))):  # type: ignore[misc]
    """One event (accident or incident) as listed: its first aircraft's make and model."""


class EventPage(BaseModel):
    """One page of events matching the filters."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "ev_id": "20140507X51410",
                            "event_date": "2014-03-04",
                            "severity": "NONE",
                            "fatalities": 0,
                            "make": "BOEING",
                            "model": "737",
                            "far_part": "121",
                            "state": "CA",
                        }
                    ],
                    "total": 1,
                    "page": 1,
                    "page_size": 25,
                }
            ]
        }
    )
    items: list[EventSummary] = D("the events of this page, in the requested order")
    total: int = D("events matching the filters, over all pages")
    page: int = D("this page's number, from 1")
    page_size: int = D("events per page asked for")


class Prediction(BaseModel):
    """The champion model's batch prediction for the event (ml/batch_predictions)."""

    predicted_class: str = D("the most likely highest injury: FATL, SERS, MINR or NONE")
    p_fatl: float = D("probability of a fatal outcome class")
    p_sers: float = D("probability of serious injury as highest")
    p_minr: float = D("probability of minor injury as highest")
    p_none: float = D("probability of no injury")
    p_fatal_outcome: float = D("P(fatal), from the calibrated binary head")
    model_name: str = D("registered model name")
    model_version: str = D("registered model version that predicted")
    predicted_at: dt.datetime | None = D("when the batch prediction ran (UTC)", None)

    @field_validator("predicted_at")
    @classmethod
    def _utc(cls, v):  # stored as UTC without a zone; RFC 3339 wants the offset
        return v.replace(tzinfo=dt.UTC) if v is not None and v.tzinfo is None else v


class EventDetail(create_model("_EventTop", __base__=EventSummary, **_event_fields("detail"))):  # type: ignore[misc]
    """One event in full: the fact row, every aircraft, the crew, findings and narratives,
    and the champion's prediction."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ev_id": "20030314X00332",
                    "ntsb_no": "ATL03LA056",
                    "event_type": "ACC",
                    "event_date": "2003-03-08",
                    "severity": "MINR",
                    "fatalities": 0,
                    "make": "PIPER",
                    "model": "PA-28-161",
                    "far_part": "091",
                    "state": "GA",
                    "aircraft": [{"aircraft_key": 1, "make": "PIPER", "model": "PA-28-161", "damage": "SUBS"}],
                    "crew": {"pilot_age": 54, "pilot_total_hours": 380},
                    "findings": [{"finding_description": "Fuel system - Carburetor icing", "cause_factor": "C"}],
                    "narratives": [
                        {"aircraft_key": 1, "probable_cause": "The pilot's failure to use carburetor heat ..."}
                    ],
                    "prediction": None,
                }
            ]
        }
    )
    aircraft: list[dict[str, Any]] = D("every aircraft of the event (mart dim_aircraft rows)")
    crew: dict[str, Any] = D("the pilot in command and crew summary (mart dim_crew)")
    findings: list[dict[str, Any]] = D("the investigation's findings, cause and factor flags (bridge_accident_causes)")
    narratives: list[dict[str, Any]] = D("the investigator's account and the probable cause, per aircraft")
    prediction: Prediction | None = D("null where the event has no batch prediction", None)


class Passage(BaseModel):
    """One window of one of the event's texts: the part that matched best."""

    aircraft_key: int = D("the aircraft whose narrative it is (1 for the first)")
    field: Literal["narrative", "probable_cause"] = D("the investigator's account, or the probable cause")
    start: int = D("first character of the window in that text (0-based)")
    end: int = D("one past its last character")
    text: str = D("the window's text (plain, not escaped)")
    score: float | None = D(
        "its cosine similarity to the query (or, for similar events, to the event's nearest window); "
        "null in keyword mode, where the window with the most query terms is shown",
        None,
    )


class Ranks(BaseModel):
    """Where the hit stood in each mode's ranking (null: not in the first 100)."""

    keyword: int | None = D("rank by full-text search", None)
    semantic: int | None = D("rank by meaning", None)
    feedback: int | None = D(
        "hybrid only: rank by full-text search on the query and the weightiest words of the first events by meaning",
        None,
    )


class HitHead(BaseModel):
    """What a hit shows of its event."""

    ev_id: str = D("NTSB event id")
    event_date: dt.date | None = D("local date of the event", None)
    severity: str | None = D("highest injury: FATL, SERS, MINR or NONE", None)
    make: str | None = D("first aircraft's make", None)
    model: str | None = D("first aircraft's model", None)


class SearchHit(HitHead):
    """An event whose narrative matched, with its best passage."""

    score: float = D(
        "relevance, higher is better: keyword BM25 (embedded) or ts_rank (PostgreSQL); semantic "
        "the cosine of the best window; hybrid the reciprocal-rank-fusion score"
    )
    snippet: str = D("the passage (or the text's start) as HTML, the query's words in <mark>...</mark>")
    passage: Passage | None = D("the best-matching window; null where the event has no narrative vector", None)
    ranks: Ranks = D("the hit's rank in the keyword and semantic rankings", default_factory=Ranks)


class SearchResults(BaseModel):
    """Hits for a query, best first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "the tanks ran dry before the destination",
                    "mode": "hybrid",
                    "items": [
                        {
                            "ev_id": "20001212X19172",
                            "event_date": "2000-11-26",
                            "severity": "NONE",
                            "make": "Cessna",
                            "model": "172N",
                            "score": 0.0325,
                            "snippet": "The pilot reported that the engine lost power due to fuel exhaustion ...",
                            "passage": {
                                "aircraft_key": 1,
                                "field": "narrative",
                                "start": 0,
                                "end": 812,
                                "text": "The pilot reported that the engine lost power due to fuel exhaustion ...",
                                "score": 0.61,
                            },
                            "ranks": {"keyword": 4, "semantic": 1, "feedback": 2},
                        }
                    ],
                }
            ]
        }
    )
    query: str = D("the query as given")
    mode: Literal["keyword", "semantic", "hybrid"] = D("how the hits were ranked")
    items: list[SearchHit] = D("hits, best first")


class SimilarEvent(HitHead):
    """An event whose narrative is near the given event's."""

    score: float = D("cosine similarity of the nearest pair of windows, one of each event")
    snippet: str = D("the passage as HTML")
    passage: Passage | None = D("this event's window of that pair", None)


class SimilarEvents(BaseModel):
    """The events nearest to one event by narrative, nearest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ev_id": "20001212X19172",
                    "items": [
                        {
                            "ev_id": "20001208X07632",
                            "event_date": "1999-04-02",
                            "severity": "NONE",
                            "make": "Piper",
                            "model": "PA-28-140",
                            "score": 0.83,
                            "snippet": "The engine lost power as the fuel tanks ran dry ...",
                            "passage": {
                                "aircraft_key": 1,
                                "field": "narrative",
                                "start": 0,
                                "end": 640,
                                "text": "The engine lost power as the fuel tanks ran dry ...",
                                "score": 0.83,
                            },
                        }
                    ],
                }
            ]
        }
    )

    ev_id: str = D("the event compared")
    items: list[SimilarEvent] = D("nearest first; the event itself is not among them")


class Summary(BaseModel):
    """Totals over every event year in the warehouse."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": 2496,
                    "fatal_events": 310,
                    "serious_events": 402,
                    "minor_events": 512,
                    "no_injury_events": 1272,
                    "fatalities": 1190,
                    "first_year": 1982,
                    "last_year": 2025,
                }
            ]
        }
    )
    events: int | None = D("events")
    fatal_events: int | None = D("events with at least one fatality")
    serious_events: int | None = D("events whose highest injury is serious")
    minor_events: int | None = D("events whose highest injury is minor")
    no_injury_events: int | None = D("events with no injury")
    fatalities: int | None = D("people killed")
    first_year: int | None = D("oldest event year")
    last_year: int | None = D("newest event year")


class Rows(BaseModel):
    """Rows of a mart or an analytics table; the route's description names the columns."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"year": 2019, "events": 1220, "fatal_events": 233, "fatalities": 433}]}]
        }
    )
    items: list[dict[str, Any]] = D("one object per row, column name to value")


# ---- predictions: one feature row, every feature optional (missing is allowed), ranges checked
RANGES = {
    "engine_count": (0, 16),
    "aircraft_age": (0, 150),
    "aircraft_count": (1, 10),
    "pilot_total_hours": (0, 100_000),
    "pilot_age": (0, 120),
    "visibility_sm": (0, 100),
    "wind_speed_kts": (0, 300),
    "temperature_c": (-80, 60),
    "year": (int(catalog.EARLIEST_EVENT_DATE[:4]), 2100),
    "month": (1, 12),
    "hour": (0, 23),
    "weekday": (1, 7),
    "latitude": (-90, 90),
    "longitude": (-180, 180),
    "airport_distance_sm": (0, 5_000),
}


def _field(f: features.Feature):
    """Strict types: a JSON boolean is not a number, a number is not a string."""
    if f.kind == "category":
        return (str | None, Field(default=None, max_length=64, strict=True, description=f"{f.group}: {f.why}"))
    if f.kind == "flag":
        return (bool | None, Field(default=None, strict=True, description=f"{f.group}: {f.why}"))
    lo, hi = RANGES[f.name]
    return (float | None, Field(default=None, ge=lo, le=hi, strict=True, description=f"{f.group}: {f.why}"))


FeatureRow = create_model(
    "FeatureRow",
    __config__=ConfigDict(
        extra="forbid",
        json_schema_extra={
            "description": "One event's features as the model sees them (docs/ml.md); every one may be missing.",
            "examples": [
                {
                    "make": "CESSNA",
                    "model": "172",
                    "phase_of_flight": "570",
                    "year": 2019,
                    "hour": 14,
                    "far_part": "091",
                }
            ],
        },
    ),
    **{f.name: _field(f) for f in features.FEATURES},
)


class Contribution(BaseModel):
    """One feature's push on the log-odds of a fatal outcome (SHAP)."""

    feature: str = D("feature name (FeatureRow)")
    value: str | float | None = D("the value the row gave (null: missing)")
    shap_log_odds: float = D("contribution to the log-odds of a fatal outcome; positive raises it")


class ModelRef(BaseModel):
    """The registered model version that answered."""

    name: str = D("registered model name")
    version: str = D("registered version")
    alias: str = D("the alias it was reached by (champion)")


class SeverityPrediction(BaseModel):
    """The champion's prediction for one row, explained."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predicted_class": "NONE",
                    "probabilities": {"FATL": 0.08, "SERS": 0.07, "MINR": 0.10, "NONE": 0.75},
                    "p_fatal_outcome": 0.09,
                    "contributions": [{"feature": "phase_of_flight", "value": "570", "shap_log_odds": -0.8}],
                    "base_log_odds": -1.6,
                    "model": {"name": "ntsb-severity", "version": "3", "alias": "champion"},
                }
            ]
        }
    )
    predicted_class: str = D("the most likely highest injury: FATL, SERS, MINR or NONE")
    probabilities: dict[str, float] = D("probability of each class; they sum to 1")
    p_fatal_outcome: float = D("P(fatal), from the calibrated binary head")
    contributions: list[Contribution] = D("the five largest SHAP contributions, largest first")
    base_log_odds: float = D("the model's expected log-odds of a fatal outcome before any feature")
    model: ModelRef = D("the model version that answered")


class BatchRequest(BaseModel):
    """Feature rows to predict."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rows": [
                        {"make": "CESSNA", "model": "172", "phase_of_flight": "570", "year": 2019, "far_part": "091"},
                        {"make": "PIPER", "weather_condition": "IMC"},
                    ]
                }
            ]
        },
    )
    rows: list[FeatureRow] = Field(  # type: ignore[valid-type]
        min_length=1,
        max_length=1000,
        description="1 to 1,000 rows; any feature may be missing",
    )


class BatchItem(BaseModel):
    """The prediction for one row, in request order."""

    predicted_class: str = D("the most likely highest injury: FATL, SERS, MINR or NONE")
    probabilities: dict[str, float] = D("probability of each class; they sum to 1")
    p_fatal_outcome: float = D("P(fatal), from the calibrated binary head")


class BatchPrediction(BaseModel):
    """Predictions for every row of the request."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "predicted_class": "NONE",
                            "probabilities": {"FATL": 0.08, "SERS": 0.07, "MINR": 0.10, "NONE": 0.75},
                            "p_fatal_outcome": 0.09,
                        }
                    ],
                    "model": {"name": "ntsb-severity", "version": "3", "alias": "champion"},
                }
            ]
        }
    )
    items: list[BatchItem] = D("one per request row, same order")
    model: ModelRef = D("the model version that answered")


class ModelInfo(BaseModel):
    """The champion model: where it came from and how it measures against the baselines."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "ntsb-severity",
                    "version": "3",
                    "alias": "champion",
                    "run_id": "0f3c...",
                    "checks": "passed",
                    "data_version": "releases=00_reference_avall:1a2b3c4d5e6f",
                    "split": {"train": "1982-2014", "valid": "2015-2018", "test": "2019-2025"},
                    "sizes": {"train": 1800, "valid": 300, "test": 396},
                    "metrics": {"severity": {"model": {"macro_f1": 0.41}, "majority": {"macro_f1": 0.2}}},
                }
            ]
        }
    )
    name: str = D("registered model name")
    version: str = D("registered version holding the champion alias")
    alias: str = D("champion")
    run_id: str = D("the MLflow run that trained it")
    checks: str | None = D("its blocking checks' outcome (passed, or what failed)")
    data_version: str | None = D("the releases it was trained on")
    split: dict[str, str] = D("event years of train, valid and test (split by year, never at random)")
    sizes: dict[str, int] = D("events in train, valid and test")
    metrics: dict[str, dict[str, dict[str, Any]]] = D("test years: head -> model or baseline -> metric")
    champion_family: str = D("model family that won on the validation years", "xgboost")
    valid_metrics: dict[str, dict[str, dict[str, Any]]] | None = D("validation years, as metrics", None)
    candidates: dict[str, dict[str, Any]] | None = D("family -> settings, validation and test metrics", None)
    selection: dict[str, Any] | None = D("why the champion's family was chosen", None)
