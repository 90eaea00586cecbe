"""Analytics over the Parquet archive, with DuckDB in-process: trends, make/model risk,
geospatial clusters and condition/outcome correlations. Pure functions from a DuckDB
connection (see :func:`connect`) to pandas frames; the Dagster assets only store them."""

from __future__ import annotations

import base64
import io
import json
import math
import posixpath

import duckdb
import numpy as np
import pandas as pd

from . import archive
from .lake import Lake

Z95 = 1.959963984540054
EARTH_RADIUS_KM = 6371.0088
SEVERITIES = ("FATL", "SERS", "MINR", "NONE")
# conditions known before or at the occurrence, against the fatal outcome
CONDITIONS = {
    "weather": "weather_condition",
    "light": "light_condition",
    "phase of flight": "phase_of_flight_label",
    "operation (FAR part)": "far_part",
}


class AnalyticsError(Exception):
    pass


# --------------------------------------------------------------------------- the archive as SQL
def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per archived table. On a local lake DuckDB reads the
    files itself; on S3 it scans pyarrow datasets (DuckDB's httpfs extension is not needed)."""
    con = duckdb.connect()
    con.execute("SET parquet_metadata_cache = true")  # footers read once per connection
    year_tables = archive.year_tables()
    for table in (*year_tables, *archive.whole_tables()):
        prefix = posixpath.join(archive.PREFIX, table)
        if not lake.list(prefix):
            continue
        if lake.is_local:
            glob = lake.full(prefix) + "/**/" + archive.PART
            hive = "true" if table in year_tables else "false"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = {hive})")
        else:
            con.register(table, archive.dataset(lake, table))
    if "fact_accidents" not in {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()} | {
        r[0] for r in con.execute("SHOW TABLES").fetchall()
    }:
        raise AnalyticsError(
            f"no archived fact_accidents under {lake.uri(archive.PREFIX)}: materialize the archive first"
        )
    return con


# --------------------------------------------------------------------------- statistics
def wilson(k, n, z: float = Z95):
    """Wilson score interval of a proportion k/n (arrays welcome); NaN where n is 0."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)  # no -1e-17 at k = 0


def linear_trend(x, y) -> tuple[float, float, float]:
    """Least-squares line y = slope * x + intercept, and its R²."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return 0.0, float(y.mean()) if len(y) else 0.0, 0.0
    slope, intercept = np.polyfit(x, y, 1)
    fitted = slope * x + intercept
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - fitted) ** 2).sum()) / ss_tot if ss_tot else 0.0
    return float(slope), float(intercept), r2


# --------------------------------------------------------------------------- trends
def trends(con) -> dict[str, pd.DataFrame]:
    """Events per year and per month by severity, a least-squares trend line per severity
    (the last year is left out of the fit when its data stop before December), and the
    seasonality of each calendar month."""
    monthly = con.execute("""
        SELECT year, CAST(month(event_date) AS INTEGER) AS month,
               coalesce(severity, 'UNKN') AS severity, count(*) AS events
        FROM fact_accidents GROUP BY ALL ORDER BY ALL""").df()
    last = con.execute("SELECT max(event_date) FROM fact_accidents").fetchone()[0]
    yearly = monthly.groupby(["year", "severity"], as_index=False)["events"].sum()
    total = monthly.groupby("year", as_index=False)["events"].sum().assign(severity="ALL")
    yearly = pd.concat([yearly, total], ignore_index=True)
    fit_years = sorted(yearly["year"].unique())
    partial = last is not None and last.month < 12 and len(fit_years) > 2
    if partial:
        fit_years = fit_years[:-1]
    lines = []
    for sev, part in yearly.groupby("severity"):
        full = part.set_index("year")["events"].reindex(fit_years, fill_value=0)
        slope, intercept, r2 = linear_trend(full.index, full.values)
        lines.append(
            {
                "severity": sev,
                "slope_per_year": slope,
                "intercept": intercept,
                "r2": r2,
                "fit_from": int(fit_years[0]),
                "fit_to": int(fit_years[-1]),
            }
        )
    lines = pd.DataFrame(lines)
    yearly = yearly.merge(lines[["severity", "slope_per_year", "intercept"]], on="severity")
    yearly["trend_events"] = yearly["slope_per_year"] * yearly["year"] + yearly["intercept"]
    yearly = yearly.drop(columns=["slope_per_year", "intercept"]).sort_values(["severity", "year"], ignore_index=True)
    season = con.execute("""
        SELECT CAST(month(event_date) AS INTEGER) AS month, count(*) AS events,
               sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal_events
        FROM fact_accidents GROUP BY 1 ORDER BY 1""").df()
    season = season.set_index("month").reindex(range(1, 13), fill_value=0).reset_index()
    season["share"] = season["events"] / season["events"].sum()
    season["index"] = season["events"] / season["events"].mean()  # 1.0 = an average month
    season["fatal_rate"] = season["fatal_events"] / season["events"].where(season["events"] > 0)
    return {"yearly": yearly, "monthly": monthly, "seasonality": season, "trend_lines": lines}


# --------------------------------------------------------------------------- make/model risk
def make_model_risk(con, min_support: int) -> pd.DataFrame:
    """Accidents and fatal rate (Wilson 95% interval) per make and model of the first aircraft,
    for pairs with at least ``min_support`` accidents; riskiest lower bound first."""
    df = con.execute(
        """
        SELECT upper(trim(make)) AS make, upper(trim(model)) AS model, count(*) AS accidents,
               sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal_accidents, sum(fatalities) AS fatalities
        FROM fact_accidents WHERE make IS NOT NULL AND model IS NOT NULL
        GROUP BY 1, 2 HAVING count(*) >= ?""",
        [min_support],
    ).df()
    df["fatal_rate"] = df["fatal_accidents"] / df["accidents"]
    df["ci_low"], df["ci_high"] = wilson(df["fatal_accidents"], df["accidents"])
    return df.sort_values(
        ["ci_low", "accidents", "make", "model"], ascending=[False, False, True, True], ignore_index=True
    )


# --------------------------------------------------------------------------- geospatial clusters
def auto_min_samples(located: int) -> int:
    """DBSCAN's core-point support when not configured: 0.1% of the located events, at least 10."""
    return max(10, round(located / 1000))


def geo_clusters(con, eps_km: float, min_samples: int = 0) -> dict:
    """DBSCAN with great-circle distances over event coordinates (``min_samples`` 0: see
    :func:`auto_min_samples`). Events at the same coordinates are clustered once, with their
    count as weight (exact, and far less memory). Returns the per-event labels, the cluster
    summaries (largest first, ids by size) and GeoJSON."""
    from sklearn.cluster import DBSCAN

    events = con.execute("""
        SELECT ev_id, latitude, longitude, is_fatal, upper(trim(make)) AS make,
               nullif(trim(city), '') AS city, nullif(trim(state), '') AS state FROM fact_accidents
        WHERE latitude IS NOT NULL AND longitude IS NOT NULL ORDER BY ev_id""").df()
    coords = np.radians(events[["latitude", "longitude"]].to_numpy(dtype=float))
    min_samples = min_samples or auto_min_samples(len(events))
    labels = np.full(len(events), -1)
    if len(events):
        unique, inverse, counts = np.unique(coords, axis=0, return_inverse=True, return_counts=True)
        # the same neighbourhoods as the haversine metric, faster: points on the unit sphere
        # are within a great-circle angle a when their straight-line (chord) distance is
        # within 2 sin(a / 2), and a k-d tree answers that in 3 dimensions
        lat, lon = unique[:, 0], unique[:, 1]
        xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        model = DBSCAN(
            eps=2 * math.sin(eps_km / EARTH_RADIUS_KM / 2), min_samples=min_samples, algorithm="kd_tree"
        ).fit(xyz, sample_weight=counts)
        labels = model.labels_[inverse.ravel()]
    # ids by size, largest first (ties by the smallest ev_id): stable across runs
    events["raw"] = labels
    order = (
        events[events.raw >= 0]
        .groupby("raw")
        .agg(size=("ev_id", "size"), first=("ev_id", "min"))
        .sort_values(["size", "first"], ascending=[False, True])
        .index.tolist()
    )
    remap = {old: new for new, old in enumerate(order)}
    events["cluster"] = events["raw"].map(remap).fillna(-1).astype(int)
    events = events.drop(columns="raw")
    rows, features = [], []
    for cid, grp in events[events.cluster >= 0].groupby("cluster"):
        lat, lon = np.radians(grp.latitude.to_numpy(float)), np.radians(grp.longitude.to_numpy(float))
        x, y, z = (np.cos(lat) * np.cos(lon)).mean(), (np.cos(lat) * np.sin(lon)).mean(), np.sin(lat).mean()
        c_lat, c_lon = math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))
        radius = float(haversine_km(c_lat, c_lon, grp.latitude.to_numpy(float), grp.longitude.to_numpy(float)).max())
        fatal = int(grp.is_fatal.fillna(False).sum())
        top = grp.make.dropna().value_counts().head(3)
        places = (grp.city.str.title() + ", " + grp.state).dropna().value_counts()
        row = {
            "cluster": int(cid),
            "place": places.index[0] if len(places) else None,  # its commonest city
            "events": len(grp),
            "centroid_latitude": round(c_lat, 5),
            "centroid_longitude": round(c_lon, 5),
            "radius_km": round(radius, 1),
            "fatal_events": fatal,
            "fatal_rate": fatal / len(grp),
            "top_makes": ", ".join(f"{m} ({n})" for m, n in top.items()),
        }
        rows.append(row)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [row["centroid_longitude"], row["centroid_latitude"]]},
                "properties": {k: v for k, v in row.items() if not k.startswith("centroid")},
            }
        )
    summary = pd.DataFrame(
        rows,
        columns=[
            "cluster",
            "place",
            "events",
            "centroid_latitude",
            "centroid_longitude",
            "radius_km",
            "fatal_events",
            "fatal_rate",
            "top_makes",
        ],
    )
    geojson = {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "eps_km": eps_km,
            "min_samples": min_samples,
            "events": len(events),
            "clustered": int((events.cluster >= 0).sum()),
            "noise": int((events.cluster < 0).sum()),
        },
    }
    return {
        "events": events[["ev_id", "latitude", "longitude", "cluster", "state"]],
        "clusters": summary,
        "geojson": geojson,
    }


def haversine_km(lat1, lon1, lat2, lon2):
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


# --------------------------------------------------------------------------- correlations
def contingency(con, column: str, min_level: int) -> pd.DataFrame:
    """Events and fatal events per level of a condition (known levels only); levels with fewer
    than ``min_level`` events are pooled as OTHER, so expected counts stay usable."""
    df = con.execute(f"""
        SELECT CAST({column} AS VARCHAR) AS level, count(*) AS events,
               sum(CASE WHEN is_fatal THEN 1 ELSE 0 END) AS fatal_events
        FROM fact_accidents WHERE {column} IS NOT NULL AND is_fatal IS NOT NULL GROUP BY 1""").df()
    small = df.events < min_level
    if small.any():
        pooled = pd.DataFrame(
            [{"level": "OTHER", "events": df[small].events.sum(), "fatal_events": df[small].fatal_events.sum()}]
        )
        df = pd.concat([df[~small], pooled], ignore_index=True)
        df = df.groupby("level", as_index=False)[["events", "fatal_events"]].sum()
    return df.sort_values(["events", "level"], ascending=[False, True], ignore_index=True)


def cramers_v(table: np.ndarray) -> tuple[float, float, int, float]:
    """Pearson's chi-square (no continuity correction), its p-value, degrees of freedom and
    Cramér's V of a contingency table."""
    from scipy.stats import chi2_contingency

    table = np.asarray(table, dtype=float)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0, 1.0, 0, 0.0
    chi2, p, dof, _ = chi2_contingency(table, correction=False)
    v = math.sqrt(chi2 / (table.sum() * (min(table.shape) - 1)))
    return float(chi2), float(p), int(dof), v


def correlations(con, min_level: int) -> dict[str, pd.DataFrame]:
    """For each condition: chi-square test of independence from the fatal outcome with
    Cramér's V, and the fatal rate of each level with its Wilson 95% interval."""
    summary, levels = [], []
    for name, column in CONDITIONS.items():
        df = contingency(con, column, min_level)
        table = np.column_stack([df.fatal_events, df.events - df.fatal_events])
        chi2, p, dof, v = cramers_v(table)
        summary.append(
            {
                "condition": name,
                "column": column,
                "events": int(df.events.sum()),
                "levels": len(df),
                "chi2": chi2,
                "dof": dof,
                "p_value": p,
                "cramers_v": v,
            }
        )
        lo, hi = wilson(df.fatal_events, df.events)
        levels.append(df.assign(condition=name, fatal_rate=df.fatal_events / df.events, ci_low=lo, ci_high=hi))
    summary = pd.DataFrame(summary).sort_values("cramers_v", ascending=False, ignore_index=True)
    levels = pd.concat(levels, ignore_index=True)[
        ["condition", "level", "events", "fatal_events", "fatal_rate", "ci_low", "ci_high"]
    ]
    return {"summary": summary, "levels": levels}


# --------------------------------------------------------------------------- output
def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def md_image(data: bytes, alt: str) -> str:
    """A PNG inline in markdown (the Dagster UI renders it in the asset's metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"


def put_frame(lake: Lake, key: str, df: pd.DataFrame, metadata: dict[str, str] | None = None) -> int:
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    return lake.write_parquet(key, table)


def put_geojson(lake: Lake, key: str, geojson: dict) -> None:
    lake.put_bytes(key, json.dumps(geojson, separators=(",", ":")).encode())
