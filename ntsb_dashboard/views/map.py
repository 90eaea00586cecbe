"""Map: the filtered events as points over the state shapes (bundled: no internet
needed), a choropleth of events and fatal share by state, and the DBSCAN clusters of
``analytics/geo_clusters`` with their summaries."""

import altair as alt
import streamlit as st

from ntsb_assets.settings import get_settings
from ntsb_dashboard import data, filters, geo, ui

STATES = alt.NamedData(name="us_states")  # the shapes, added to each spec as a dataset of their own


def with_states(chart: alt.TopLevelMixin) -> dict:
    """The chart's spec with the state shapes as the named dataset its layers read: Altair
    walks inline data value by value (a fifth of a second for the 200 KB of shapes), this
    adds them as they are."""
    spec = chart.to_dict()
    spec.setdefault("datasets", {})["us_states"] = geo.states()["features"]
    return spec


def outline(us: bool) -> alt.Chart:
    return (
        alt.Chart(STATES)
        .mark_geoshape(fill="#f2f2f2", stroke="#9a9a9a", strokeWidth=0.5)
        .project(type="albersUsa" if us else "equirectangular")
    )


# the charts' specs, cached per data version and view
@st.cache_data(show_spinner=False, max_entries=32)
def choropleth_spec(version: str, view: tuple, metric: str, _by_state) -> dict:
    return with_states(
        alt.Chart(STATES)
        .mark_geoshape(stroke="white", strokeWidth=0.5)
        .encode(
            color=alt.Color(f"{metric}:Q", scale=alt.Scale(scheme="orangered"), title=metric.replace("_", " ")),
            tooltip=[
                alt.Tooltip("properties.name:N", title="state"),
                alt.Tooltip("events:Q", format=","),
                alt.Tooltip("fatal_share:Q", format=".1%"),
            ],
        )
        .transform_lookup(lookup="id", from_=alt.LookupData(_by_state, "state", ["events", "fatal_share"]))
        .project(type="albersUsa")
        .properties(height=420)
    )


@st.cache_data(show_spinner=False, max_entries=8)
def clusters_spec(version: str, us: bool, _clusters) -> dict:
    rings = (
        alt.Chart(_clusters)
        .mark_circle(stroke="black", strokeWidth=0.8, fillOpacity=0.25)
        .encode(
            longitude="centroid_longitude:Q",
            latitude="centroid_latitude:Q",
            size=alt.Size("events:Q", scale=alt.Scale(range=[30, 1500])),
            color=alt.Color("fatal_rate:Q", scale=alt.Scale(scheme="reds"), title="fatal rate"),
            tooltip=["cluster", "place", "events", alt.Tooltip("fatal_rate:Q", format=".1%"), "radius_km", "top_makes"],
        )
        .project(type="albersUsa" if us else "equirectangular")
    )
    return with_states((outline(us) + rings).properties(height=420))


store, version = ui.start("Map")
f = filters.sidebar(store, version)
st.caption(f"Showing {f.describe()}.")
key = f.store()
pts = data.points(version.id, key, store)
by_state = data.breakdown(version.id, key, ("state",), store).dropna(subset=["state"])
if pts.empty and by_state.empty:
    ui.no_events()
    st.stop()

projection = st.radio("View", ["United States", "World"], horizontal=True, key="projection")
us = projection.startswith("United")

st.subheader(f"{len(pts):,} events with coordinates")
located = pts.assign(highest_injury=pts.severity.map(ui.severity_label), date=pts.event_date.astype(str))[
    ["ev_id", "date", "highest_injury", "fatalities", "make", "model", "latitude", "longitude"]
]
style = get_settings().map_style
st.pydeck_chart(geo.Prebuilt(geo.points_spec(version.id, key, ui.SEVERITY_RGB, us, style, _points=located)), height=560)
st.markdown(
    " ".join(
        f'<span style="color:rgb({r},{g},{b})">&#9679;</span> {name}' for name, (r, g, b) in ui.SEVERITY_RGB.items()
    ),
    unsafe_allow_html=True,
)  # constants only
st.caption(
    "Highest injury; drawn with WebGL over the bundled state shapes"
    + ("." if style else " (no map tiles: NTSB_MAP_STYLE adds them). Scroll to zoom, drag to pan.")
)
ui.downloads(located, "points", version)

st.subheader("Events by state")
by_state["fatal_share"] = by_state.fatal_events / by_state.events
metric = st.radio("Colour states by", ["events", "fatal_share"], horizontal=True, key="choropleth")
st.vega_lite_chart(spec=choropleth_spec(version.id, key, metric, _by_state=by_state), width="stretch")
ui.downloads(by_state, "states", version)

st.subheader("Clusters (DBSCAN)")
clusters = data.lake_table(version.id, "analytics/geo_clusters/clusters.parquet")
if clusters is None or clusters.empty:
    st.info("No clusters: analytics/geo_clusters is not materialized (ntsb build), or it found none.")
else:
    st.caption(
        "Clusters of every located event (the asset's own run, not these filters): centroid, size, "
        "radius, fatal rate and the commonest makes."
    )
    st.vega_lite_chart(spec=clusters_spec(version.id, us, _clusters=clusters), width="stretch")
    ui.table(clusters, "clusters", version)
