"""Leakage-safe features for the severity model, from the archived marts (DuckDB over the
Parquet archive, see :mod:`.analytics`).

Only what is known when the flight begins or at the moment of the occurrence is a feature.
Every feature says where it comes from and why it is allowed; ``docs/ml.md``'s leakage audit
is generated from this list (``python -m ntsb_assets.lib.features docs/ml.md`` rewrites the
marked section). Anything the investigation writes (damage, injuries, findings, probable
cause, narratives, report status) is refused by :func:`assert_allowed`, whoever asks.

A feature whose table or column is missing from the archive (older releases lack some)
becomes a missing value, not an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


class LeakageError(Exception):
    pass


@dataclass(frozen=True)
class Feature:
    name: str
    sql: str  # DuckDB expression over f, a, c, t, l (see from_sql)
    kind: str  # numeric | category | flag
    group: str
    why: str
    needs: tuple[tuple[str, str], ...]  # (table, column) the expression reads


# the tables the expressions read, by alias
FEATURES_KEY = "ml/features/features.parquet"  # where ml/features keeps them in the lake
TABLES = {"f": "fact_accidents", "a": "dim_aircraft", "c": "dim_crew", "t": "dim_time", "l": "dim_location"}
JOIN_KEYS = {"a": "aircraft_version_key", "c": "crew_key", "t": "date_key", "l": "location_key"}


def from_sql(have: dict[str, set[str]]) -> str:
    """fact_accidents with each dimension joined on its key; a dimension not archived, or a
    fact without its key (an older archive), joins as an empty table: its features are NULL."""
    joins = []
    for alias, key in JOIN_KEYS.items():
        if have[alias] and key in have[alias] and key in have["f"]:
            joins.append(f"LEFT JOIN {TABLES[alias]} AS {alias} ON {alias}.{key} = f.{key}")
        else:
            joins.append(f"LEFT JOIN (SELECT NULL AS {key} WHERE false) AS {alias} ON false")
    return "FROM fact_accidents AS f\n" + "\n".join(joins)


_REGIONS = {  # US Census Bureau regions
    "Northeast": "CT ME MA NH RI VT NJ NY PA",
    "Midwest": "IL IN MI OH WI IA KS MN MO NE ND SD",
    "South": "DE FL GA MD NC SC VA DC WV AL KY MS TN AR LA OK TX",
    "West": "AZ CO ID MT NV NM UT WY AK CA HI OR WA",
}
_REGION_SQL = (
    "CASE "
    + " ".join(
        f"WHEN f.state IN ({', '.join(repr(s) for s in states.split())}) THEN '{region}'"
        for region, states in _REGIONS.items()
    )
    + " WHEN f.state IS NOT NULL THEN 'Other' END"
)


def _f(name, sql, kind, group, why, *needs):
    return Feature(name, sql, kind, group, why, tuple(tuple(n.split(".")) for n in needs))


FEATURES: tuple[Feature, ...] = (
    _f(
        "make",
        "upper(trim(f.make))",
        "category",
        "aircraft",
        "the aircraft's type, registered before the flight",
        "f.make",
    ),
    _f(
        "model",
        "upper(trim(f.model))",
        "category",
        "aircraft",
        "the aircraft's type, registered before the flight",
        "f.model",
    ),
    _f(
        "aircraft_category",
        "a.category",
        "category",
        "aircraft",
        "airplane, helicopter, glider...: the type",
        "a.category",
    ),
    _f("engine_count", "a.engine_count", "numeric", "aircraft", "the type's engines", "a.engine_count"),
    _f("engine_type", "a.engine_type", "category", "aircraft", "the type's engines", "a.engine_type"),
    _f("is_homebuilt", "a.is_homebuilt", "flag", "aircraft", "registration fact", "a.is_homebuilt"),
    _f(
        "aircraft_age",
        "CASE WHEN a.year_built BETWEEN 1900 AND year(f.event_date) THEN year(f.event_date) - a.year_built END",
        "numeric",
        "aircraft",
        "year built, from the registration",
        "a.year_built",
        "f.event_date",
    ),
    _f(
        "aircraft_count",
        "f.aircraft_count",
        "numeric",
        "aircraft",
        "aircraft involved: a collision is known at the occurrence",
        "f.aircraft_count",
    ),
    _f(
        "is_us_registered",
        "CASE WHEN f.registration IS NOT NULL THEN f.registration LIKE 'N%' END",
        "flag",
        "aircraft",
        "registration (N-number or foreign), known before the flight",
        "f.registration",
    ),
    _f(
        "far_part",
        "f.far_part",
        "category",
        "operation",
        "the rules the flight operated under (91, 121, 135...)",
        "f.far_part",
    ),
    _f(
        "flight_purpose",
        "f.flight_purpose",
        "category",
        "operation",
        "planned purpose of the flight",
        "f.flight_purpose",
    ),
    _f("is_scheduled", "f.is_scheduled", "flag", "operation", "scheduled or not, planned", "f.is_scheduled"),
    _f(
        "pilot_total_hours",
        "f.pilot_total_hours",
        "numeric",
        "crew",
        "the pilot's logged hours before the flight",
        "f.pilot_total_hours",
    ),
    _f("pilot_age", "f.pilot_age", "numeric", "crew", "the pilot's age", "f.pilot_age"),
    _f(
        "pilot_certificate",
        "c.certificate",
        "category",
        "crew",
        "highest certificate held before the flight",
        "c.certificate",
    ),
    _f(
        "pilot_medical_certificate",
        "c.medical_certificate",
        "category",
        "crew",
        "medical class held",
        "c.medical_certificate",
    ),
    _f(
        "weather_condition",
        "f.weather_condition",
        "category",
        "environment",
        "VMC/IMC at the time and place of the occurrence",
        "f.weather_condition",
    ),
    _f(
        "light_condition",
        "f.light_condition",
        "category",
        "environment",
        "daylight, dusk, night at the occurrence",
        "f.light_condition",
    ),
    _f("visibility_sm", "f.visibility_sm", "numeric", "environment", "weather observation", "f.visibility_sm"),
    _f("wind_speed_kts", "f.wind_speed_kts", "numeric", "environment", "weather observation", "f.wind_speed_kts"),
    _f("temperature_c", "f.temperature_c", "numeric", "environment", "weather observation", "f.temperature_c"),
    _f("year", "year(f.event_date)", "numeric", "time", "calendar", "f.event_date"),
    _f("month", "month(f.event_date)", "numeric", "time", "calendar", "f.event_date"),
    _f("hour", "f.event_hour", "numeric", "time", "local time of the occurrence", "f.event_hour"),
    _f("weekday", "isodow(f.event_date)", "numeric", "time", "calendar", "f.event_date"),
    _f("is_us_federal_holiday", "t.is_us_federal_holiday", "flag", "time", "calendar", "t.is_us_federal_holiday"),
    _f("state", "f.state", "category", "location", "where it happened", "f.state"),
    _f(
        "country",
        "f.country",
        "category",
        "location",
        "where it happened (NTSB investigates abroad when a US-registered or US-built aircraft is involved)",
        "f.country",
    ),
    _f(
        "near_airport",
        "l.airport_id IS NOT NULL",
        "flag",
        "location",
        "the occurrence was at or near an airport with an identifier (where it happened)",
        "l.airport_id",
    ),
    _f("region", _REGION_SQL, "category", "location", "US Census region of the state", "f.state"),
    _f("latitude", "f.latitude", "numeric", "location", "where it happened", "f.latitude"),
    _f("longitude", "f.longitude", "numeric", "location", "where it happened", "f.longitude"),
    _f(
        "airport_distance_sm",
        "f.airport_distance_sm",
        "numeric",
        "location",
        "distance to the nearest airport",
        "f.airport_distance_sm",
    ),
    _f(
        "phase_of_flight",
        "f.phase_of_flight",
        "category",
        "flight",
        "what the aircraft was doing at the occurrence",
        "f.phase_of_flight",
    ),
)

# Categories with many levels that also enter the models as a number: log(1 + the training
# years' events of the level), counted on the training years only (lib/model.py, Encoder).
FREQUENCY_OF = ("make", "model")

# What the investigation writes after the occurrence, or the outcome itself: never a feature.
DENYLIST = {
    "damage": "aircraft damage is assessed after the accident",
    "injur": "injury counts are the outcome",
    "inj_": "NTSB's injury count columns (inj_tot_f, inj_f_grnd...) are the outcome",
    "fatal": "fatalities are the outcome",
    "uninjured": "injury counts are the outcome",
    "severity": "the outcome",
    "finding": "findings are written by the investigation",
    "cause": "probable cause is written by the investigation",
    "narr": "narratives (narr_accp, narr_cause...) are written by the investigation",
    "report": "report status and dates are investigation bookkeeping",
    "event_type": "accident vs incident is classified from the injuries and damage",
    "ev_type": "NTSB's name for the same classification",
    "ntsb_no": "assigned by the investigation",
    "search_document": "built from the narratives",
}
TARGETS = {"target_fatal": "f.severity = 'FATL'", "target_severity": "f.severity"}
SEVERITY_CLASSES = ("FATL", "SERS", "MINR", "NONE")


_DENIED = re.compile("|".join(re.escape(p) for p in DENYLIST))


def assert_allowed(columns) -> None:
    """Refuse any column whose name matches the denylist, naming the column and the rule."""
    for col in columns:
        hit = _DENIED.search(col.lower())
        if hit:
            raise LeakageError(f"feature {col!r} is not allowed: matches {hit.group(0)!r} ({DENYLIST[hit.group(0)]})")


assert_allowed(f.name for f in FEATURES)


def _available(con) -> dict[str, set[str]]:
    out = {}
    for alias, table in TABLES.items():
        try:
            out[alias] = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        except Exception:  # not archived (yet): every feature from it is missing
            out[alias] = set()
    return out


def build(con) -> pd.DataFrame:
    """One row per event: ev_id, event_date, the features (a feature whose source is missing
    is all NULL) and the two targets (NULL where the highest injury is not known yet: such
    events are predicted, not trained on)."""
    have = _available(con)
    if "severity" not in have["f"]:
        raise LeakageError("fact_accidents is not archived: no events to build features from")
    cols = []
    for feat in FEATURES:
        ok = all(col in have[alias] for alias, col in feat.needs)
        cols.append(f"{feat.sql if ok else 'NULL'} AS {feat.name}")
    targets = ", ".join(f"{sql} AS {name}" for name, sql in TARGETS.items())
    sql = f"SELECT f.ev_id, f.event_date, {', '.join(cols)}, {targets} {from_sql(have)} ORDER BY f.ev_id"
    df = con.execute(sql).df()
    df["target_fatal"] = df["target_fatal"].astype("boolean")
    df["target_severity"] = df["target_severity"].astype("string")
    for feat in FEATURES:  # stable dtypes whatever the archive held
        if feat.kind == "category":
            df[feat.name] = df[feat.name].astype("string")
        elif feat.kind == "flag":
            df[feat.name] = df[feat.name].astype("boolean")
        else:
            df[feat.name] = pd.to_numeric(df[feat.name], errors="coerce").astype("float64")
    return df


# --------------------------------------------------------------------------- retraining
def row_hashes(df: pd.DataFrame) -> pd.DataFrame:
    """ev_id and a hash of the features and targets of each labelled event (what a model
    trains on): kept at training time, compared with later features."""
    labelled = df[df["target_severity"].notna()]
    cols = [f.name for f in FEATURES] + list(TARGETS)
    hashes = pd.util.hash_pandas_object(labelled[cols], index=False)
    return pd.DataFrame({"ev_id": labelled["ev_id"].to_numpy(), "row_hash": hashes.to_numpy()})


@dataclass(frozen=True)
class Drift:
    """Labelled events since the latest training: new, changed (features or targets), gone."""

    trained: int
    new: int
    changed: int
    gone: int

    @property
    def share(self) -> float:
        """The part of the training set that differs now (1.0 when nothing was trained yet)."""
        return 1.0 if self.trained == 0 else (self.new + self.changed + self.gone) / self.trained


def drift(trained: pd.DataFrame, current: pd.DataFrame) -> Drift:
    """Compare two :func:`row_hashes` frames."""
    both = trained.merge(current, on="ev_id", how="outer", suffixes=("_t", "_c"), indicator=True)
    kept = both[both["_merge"] == "both"]
    return Drift(
        trained=len(trained),
        new=int((both["_merge"] == "right_only").sum()),
        changed=int((kept["row_hash_t"] != kept["row_hash_c"]).sum()),
        gone=int((both["_merge"] == "left_only").sum()),
    )


# --------------------------------------------------------------------------- the audit
AUDIT_START, AUDIT_END = "<!-- leakage audit: generated -->", "<!-- end of leakage audit -->"


def audit() -> str:
    lines = [AUDIT_START, "", "| feature | group | kind | source | why it is allowed |", "|---|---|---|---|---|"]
    for feat in FEATURES:
        source = ", ".join(f"{TABLES[a]}.{c}" for a, c in feat.needs)
        lines.append(f"| `{feat.name}` | {feat.group} | {feat.kind} | {source} | {feat.why} |")
    for name in FREQUENCY_OF:
        lines.append(
            f"| `{name}_frequency` | aircraft | numeric | `{name}` | how common the {name} is: log(1 + "
            f"events of that {name} in the training years), counted on the training years only |"
        )
    lines += [
        "",
        "Refused, by name (`ntsb_assets/lib/features.py`, `DENYLIST`): any column containing",
        "",
        "| pattern | why |",
        "|---|---|",
    ]
    lines += [f"| `{p}` | {why} |" for p, why in DENYLIST.items()]
    lines += ["", AUDIT_END]
    return "\n".join(lines)


def write_audit(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(AUDIT_START), text.index(AUDIT_END) + len(AUDIT_END)
    doc.write_text(text[:start] + audit() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    write_audit(Path(sys.argv[1]))
    print(f"{sys.argv[1]}: leakage audit of {len(FEATURES)} features rewritten")


__all__ = [
    "FEATURES",
    "DENYLIST",
    "TARGETS",
    "Drift",
    "LeakageError",
    "assert_allowed",
    "audit",
    "build",
    "drift",
    "row_hashes",
]


def data_version(lake, con) -> dict:
    """What the features came from: the releases in the archived fact table and the
    fingerprint of each archived fact year."""
    releases = sorted(r[0] for r in con.execute("SELECT DISTINCT release_id FROM fact_accidents").fetchall() if r[0])
    from .archive import archived_fingerprints

    years = archived_fingerprints(lake, "fact_accidents")
    digest = hashlib.sha256(json.dumps([releases, sorted(years.items())], default=str).encode()).hexdigest()[:16]
    return {"version": digest, "releases": releases}


def read_features(lake) -> tuple[pd.DataFrame, dict]:
    """The feature table and its ``ntsb.*`` metadata (the data version it was built from)."""
    table = lake.read_parquet(FEATURES_KEY)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k.startswith(b"ntsb.")}
    return table.to_pandas(), meta
