"""The analytics group: DuckDB in-process over the Parquet archive. Each asset stores its
tables in the lake under ``analytics/<name>/`` and shows a plot or a table in its
materialization metadata (the Dagster UI renders both)."""

from contextlib import closing

import dagster as dg
import pandas as pd

from .. import keys
from ..automation import AFTER_UPSTREAM, after
from ..lib import analytics as an
from ..resources import NtsbResource
from ..resources.markdown import md_table

PREFIX = "analytics"
ARCHIVED_FACT = keys.archive("fact_accidents")


def _spec(name: str, description: str) -> dict:
    return dict(
        key=keys.analytics(name),
        deps=[ARCHIVED_FACT],
        group_name=PREFIX,
        kinds={"duckdb", "parquet"},
        description=description,
        automation_condition=AFTER_UPSTREAM,
    )


def _store(lake, name: str, frames: dict[str, pd.DataFrame]) -> dict:
    for table, df in frames.items():
        an.put_frame(lake, f"{PREFIX}/{name}/{table}.parquet", df)
    return {
        "path": dg.MetadataValue.path(lake.uri(f"{PREFIX}/{name}/")),
        "tables": ", ".join(f"{t}.parquet ({len(df)} rows)" for t, df in frames.items()),
    }


def _plot(lake, name: str, fig, alt: str) -> dg.MetadataValue:
    data = an.png(fig)
    lake.put_bytes(f"{PREFIX}/{name}/plot.png", data)
    return dg.MetadataValue.md(an.md_image(data, alt))


def _figure(*shape, size=(10, 4)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*shape, figsize=size)


def _fmt(v, digits=3):
    return (
        ""
        if v is None or v != v
        else (f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v)
    )


@dg.asset(**_spec("trends", "Events per year and per month by severity, least-squares trend lines, seasonality."))
def trends(ntsb: NtsbResource) -> dg.MaterializeResult:
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        out = an.trends(con)
    meta = _store(lake, "trends", out)
    fig, (ax, bx) = _figure(1, 2, size=(12, 4))
    for sev, part in out["yearly"].groupby("severity"):
        (line,) = ax.plot(part.year, part.events, label=sev)
        ax.plot(part.year, part.trend_events, linestyle="--", color=line.get_color(), linewidth=0.8)
    ax.set(title="events per year by highest injury (dashed: trend)", xlabel="year")
    ax.legend(fontsize=7)
    bx.bar(out["seasonality"].month, out["seasonality"]["index"])
    bx.axhline(1.0, color="grey", linewidth=0.8)
    bx.set(title="seasonality (1.0 = an average month)", xlabel="month", xticks=range(1, 13))
    lines = out["trend_lines"]
    meta |= {
        "plot": _plot(lake, "trends", fig, "trends"),
        "trend lines": dg.MetadataValue.md(
            md_table(
                ["severity", "slope (events/year)", "R²", "fitted years"],
                [
                    (r.severity, _fmt(r.slope_per_year, 2), _fmt(r.r2), f"{r.fit_from}-{r.fit_to}")
                    for r in lines.itertuples()
                ],
            )
        ),
        "dagster/row_count": len(out["yearly"]),
    }
    return dg.MaterializeResult(metadata=meta)


class RiskConfig(dg.Config):
    min_support: int = 10  # accidents a make/model needs to be listed


@dg.asset(
    **_spec(
        "make_model_risk",
        "Accidents and fatal rate with a Wilson 95% interval per make and model, with a minimum support.",
    )
)
def make_model_risk(config: RiskConfig, ntsb: NtsbResource) -> dg.MaterializeResult:
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        risk = an.make_model_risk(con, config.min_support)
    meta = _store(lake, "make_model_risk", {"risk": risk})
    meta |= {
        "min support": config.min_support,
        "dagster/row_count": len(risk),
        "riskiest (by lower bound)": dg.MetadataValue.md(
            md_table(
                ["make", "model", "accidents", "fatal", "fatal rate", "95% CI"],
                [
                    (
                        r.make,
                        r.model,
                        r.accidents,
                        r.fatal_accidents,
                        _fmt(r.fatal_rate),
                        f"{_fmt(r.ci_low)}-{_fmt(r.ci_high)}",
                    )
                    for r in risk.head(20).itertuples()
                ],
                numeric_from=2,
            )
        ),
    }
    return dg.MaterializeResult(metadata=meta)


class GeoConfig(dg.Config):
    eps_km: float = 25.0  # neighbourhood radius
    min_samples: int = 0  # events for a core point; 0: 0.1% of located events, at least 10


@dg.asset(
    **_spec(
        "geo_clusters",
        "DBSCAN (haversine) clusters of event coordinates: size, centroid, fatal rate, top makes; GeoJSON.",
    )
)
def geo_clusters(config: GeoConfig, ntsb: NtsbResource) -> dg.MaterializeResult:
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        out = an.geo_clusters(con, config.eps_km, config.min_samples)
    meta = _store(lake, "geo_clusters", {"clusters": out["clusters"], "events": out["events"]})
    an.put_geojson(lake, f"{PREFIX}/geo_clusters/clusters.geojson", out["geojson"])
    ev, cl = out["events"], out["clusters"]
    fig, ax = _figure(1, 1, size=(10, 5))
    noise = ev[ev.cluster < 0]
    ax.scatter(noise.longitude, noise.latitude, s=1, color="lightgrey")
    inside = ev[ev.cluster >= 0]
    ax.scatter(inside.longitude, inside.latitude, s=2, c=inside.cluster % 20, cmap="tab20")
    size = cl.events.astype(float)  # no cluster (a few hundred events): an empty column of objects
    ax.scatter(
        cl.centroid_longitude,
        cl.centroid_latitude,
        s=8 + 200 * size / max(size.max() if len(size) else 1.0, 1.0),
        facecolors="none",
        edgecolors="black",
        linewidths=0.6,
    )
    # no basemap offline: the states' codes at the middle of their events, and the largest
    # clusters' commonest place, give the map its bearings
    for st, grp in ev.dropna(subset=["state"]).groupby("state"):
        if len(grp) >= 5:
            ax.text(
                grp.longitude.median(),
                grp.latitude.median(),
                st,
                fontsize=6,
                color="grey",
                alpha=0.8,
                ha="center",
                va="center",
            )
    for r in cl.head(8).itertuples():
        if r.place:
            ax.annotate(
                r.place,
                (r.centroid_longitude, r.centroid_latitude),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set(
        title=f"DBSCAN clusters (eps {config.eps_km:g} km, min samples {out['geojson']['properties']['min_samples']})",
        xlabel="longitude",
        ylabel="latitude",
    )
    props = out["geojson"]["properties"]
    meta |= {
        "plot": _plot(lake, "geo_clusters", fig, "clusters"),
        "geojson": dg.MetadataValue.path(lake.uri(f"{PREFIX}/geo_clusters/clusters.geojson")),
        "clusters": len(cl),
        "events clustered": props["clustered"],
        "noise events": props["noise"],
        "min samples": props["min_samples"],
        "dagster/row_count": len(cl),
        "largest clusters": dg.MetadataValue.md(
            md_table(
                ["cluster", "place", "events", "centroid", "radius km", "fatal rate", "top makes"],
                [
                    (
                        r.cluster,
                        r.place or "",
                        r.events,
                        f"{r.centroid_latitude:.3f}, {r.centroid_longitude:.3f}",
                        r.radius_km,
                        _fmt(r.fatal_rate),
                        r.top_makes,
                    )
                    for r in cl.head(15).itertuples()
                ],
            )
        ),
    }
    return dg.MaterializeResult(metadata=meta)


class CorrelationConfig(dg.Config):
    min_level: int = 30  # events a level needs to stand alone; smaller ones are pooled as OTHER


@dg.asset(
    **_spec(
        "correlations",
        "Weather, light, phase of flight and operation against the fatal outcome: "
        "chi-square, Cramér's V, fatal rates with Wilson 95% intervals.",
    )
)
def correlations(config: CorrelationConfig, ntsb: NtsbResource) -> dg.MaterializeResult:
    lake = ntsb.settings().lake
    with closing(an.connect(lake)) as con:
        out = an.correlations(con, config.min_level)
    meta = _store(lake, "correlations", out)
    s = out["summary"]
    fig, ax = _figure(1, 1, size=(7, 3))
    ax.barh(s.condition, s.cramers_v)
    ax.invert_yaxis()
    ax.set(title="association with a fatal outcome (Cramér's V)", xlabel="Cramér's V")
    meta |= {
        "plot": _plot(lake, "correlations", fig, "Cramér's V"),
        "dagster/row_count": len(out["levels"]),
        "tests": dg.MetadataValue.md(
            md_table(
                ["condition", "events", "levels", "chi²", "dof", "p", "Cramér's V"],
                [
                    (r.condition, r.events, r.levels, _fmt(r.chi2, 1), r.dof, f"{r.p_value:.2g}", _fmt(r.cramers_v))
                    for r in s.itertuples()
                ],
            )
        ),
    }
    return dg.MaterializeResult(metadata=meta)


class TopicsConfig(dg.Config):
    k: int = 0  # topics; 0: grows with the events (lib/topics.default_k)
    refit: bool = False  # fit the topics again even where the kept fit still describes the data


TOPICS_MODEL = f"{PREFIX}/topics/model.parquet"  # the kept fit (lib/topics.model_table)


@dg.asset(
    key=keys.analytics("topics"),
    deps=[ARCHIVED_FACT, keys.archive("narratives"), keys.NARRATIVE_EMBEDDINGS],
    group_name=PREFIX,
    kinds={"duckdb", "parquet", "scikitlearn"},
    description="Topics of the narratives: events clustered by their narratives' vectors (k-means), each "
    "labelled by its distinctive words (class-based TF-IDF), counted per year; lift: the share of the last "
    "five years against the share before.",
    automation_condition=after(keys.NARRATIVE_EMBEDDINGS),
)
def topics(config: TopicsConfig, ntsb: NtsbResource) -> dg.MaterializeResult:
    from ..lib import narratives
    from ..lib import topics as T

    lake = ntsb.settings().lake
    if not lake.exists(narratives.VECTORS_KEY):
        raise T.TopicsError(
            f"no narrative vectors at {lake.uri(narratives.VECTORS_KEY)}: materialize ml/narrative_embeddings"
        )
    kept = lake.read_parquet(TOPICS_MODEL) if lake.exists(TOPICS_MODEL) and not config.refit else None
    with closing(an.connect(lake)) as con:
        out = T.topics(con, lake.read_parquet(narratives.VECTORS_KEY), k=config.k or None, model=kept)
    meta = _store(lake, "topics", out.tables)
    table, by_year = out.tables["topics"], out.tables["by_year"]
    if table.empty:
        return dg.MaterializeResult(
            metadata=meta | {"topics": 0, "dagster/row_count": 0, "note": "too few events with a narrative to cluster"}
        )
    if out.refit is not None and out.model is not None:
        lake.write_parquet(TOPICS_MODEL, out.model)
    fitted = int(T.fit_info(out.model).get("events", 0)) if out.model is not None else 0
    meta["fit"] = (
        f"fitted now on {fitted:,} events ({'asked' if config.refit else out.refit})"
        if out.refit is not None
        else f"kept: fitted on {fitted:,} events, within {T.REFIT_CHANGE:.0%} of these; each event assigned "
        "to its nearest topic"
    )
    share = by_year.pivot(index="topic", columns="year", values="share").fillna(0.0)
    fig, ax = _figure(1, 1, size=(11, 0.28 * len(table) + 1.5))
    ax.imshow(share.to_numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(share)), [f"{t}: {table.label[t]}" for t in share.index], fontsize=7)
    years = list(share.columns)
    step = max(1, len(years) // 15)
    ax.set_xticks(range(0, len(years), step), [str(y) for y in years[::step]], fontsize=7)
    ax.set(title="each topic's share of the year's events", xlabel="year")
    emerging = table.dropna(subset=["lift"]).sort_values("lift", ascending=False)
    meta |= {
        "plot": _plot(lake, "topics", fig, "topics per year"),
        "topics": len(table),
        "events": int(table.events.sum()),
        "dagster/row_count": len(table),
        "topics (largest first)": dg.MetadataValue.md(
            md_table(
                ["topic", "label", "events", "share", f"share, last {T.RECENT_YEARS} years", "lift", "peak year"],
                [
                    (r.topic, r.label, r.events, _fmt(r.share), _fmt(r.recent_share), _fmt(r.lift, 2), r.peak_year)
                    for r in table.itertuples()
                ],
            )
        ),
        "emerging (highest lift)": dg.MetadataValue.md(
            md_table(
                ["topic", "label", "lift", "terms"],
                [(r.topic, r.label, _fmt(r.lift, 2), r.terms) for r in emerging.head(5).itertuples()],
            )
        ),
    }
    return dg.MaterializeResult(metadata=meta)


analytics_assets = [trends, make_model_risk, geo_clusters, correlations, topics]
