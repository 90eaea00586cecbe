"""Map: the filtered events as points over the state shapes (bundled: no internet
needed), a choropleth of events and fatal share by state, and the DBSCAN clusters of
``analytics/geo_clusters`` with their summaries."""

import altair as alt
import streamlit as st

from ntsb_dashboard import data, filters, geo, ui

store, version = ui.start("Map")
f = filters.sidebar(store, version)
st.caption(f"Showing {f.describe()}.")
key = f.store()
pts = data.points(version.id, key, store)
by_state = data.breakdown(version.id, key, ("state",), store).dropna(subset=["state"])
if pts.empty and by_state.empty:
    ui.no_events()
    st.stop()

projection = st.radio("Projection", ["United States (Albers)", "World"], horizontal=True, key="projection")
us = projection.startswith("United")
proj = {"type": "albersUsa" if us else "equirectangular"}
shapes = alt.Data(values=geo.states()["features"])
outline = alt.Chart(shapes).mark_geoshape(fill="#f2f2f2", stroke="#9a9a9a", strokeWidth=0.5).project(**proj)

st.subheader(f"{len(pts):,} events with coordinates")
located = pts.assign(highest_injury=pts.severity.map(ui.severity_label),
                     date=pts.event_date.astype(str))[["ev_id", "date", "highest_injury", "fatalities", "make",
                                                       "model", "latitude", "longitude"]]
colors = alt.Scale(domain=["fatal", "serious", "minor", "none", "unknown"], range=list(ui.SEVERITY_COLORS.values()))
points = alt.Chart(located).mark_circle(size=9, opacity=0.55).encode(
    longitude="longitude:Q", latitude="latitude:Q",
    color=alt.Color("highest_injury:N", scale=colors, title="highest injury"),
    tooltip=["ev_id", "date", "highest_injury", "fatalities", "make", "model"]).project(**proj)
st.altair_chart((outline + points).properties(height=520), width="stretch")
if us:
    st.caption("Albers USA draws the 50 states; events elsewhere appear under the World projection.")
ui.downloads(located, "points", version)

st.subheader("Events by state")
by_state["fatal_share"] = by_state.fatal_events / by_state.events
metric = st.radio("Colour states by", ["events", "fatal_share"], horizontal=True, key="choropleth")
choropleth = alt.Chart(shapes).mark_geoshape(stroke="white", strokeWidth=0.5).encode(
    color=alt.Color(f"{metric}:Q", scale=alt.Scale(scheme="orangered"), title=metric.replace("_", " ")),
    tooltip=[alt.Tooltip("properties.name:N", title="state"), alt.Tooltip("events:Q", format=","),
             alt.Tooltip("fatal_share:Q", format=".1%")]).transform_lookup(
    lookup="id", from_=alt.LookupData(by_state, "state", ["events", "fatal_share"])).project(type="albersUsa")
st.altair_chart(choropleth.properties(height=420), width="stretch")
ui.downloads(by_state, "states", version)

st.subheader("Clusters (DBSCAN)")
clusters = data.lake_table(version.id, "analytics/geo_clusters/clusters.parquet")
if clusters is None or clusters.empty:
    st.info("No clusters: analytics/geo_clusters is not materialized (ntsb build), or it found none.")
else:
    st.caption("Clusters of every located event (the asset's own run, not these filters): centroid, size, "
               "radius, fatal rate and the commonest makes.")
    rings = alt.Chart(clusters).mark_circle(stroke="black", strokeWidth=0.8, fillOpacity=0.25).encode(
        longitude="centroid_longitude:Q", latitude="centroid_latitude:Q",
        size=alt.Size("events:Q", scale=alt.Scale(range=[30, 1500])),
        color=alt.Color("fatal_rate:Q", scale=alt.Scale(scheme="reds"), title="fatal rate"),
        tooltip=["cluster", "place", "events", alt.Tooltip("fatal_rate:Q", format=".1%"), "radius_km",
                 "top_makes"]).project(**proj)
    st.altair_chart((outline + rings).properties(height=420), width="stretch")
    st.dataframe(clusters, hide_index=True)
    ui.downloads(clusters, "clusters", version)
