"""Causes: findings (or occurrences) as a Pareto chart, cause categories over time, and
the conditions against a fatal outcome (``analytics/correlations``: chi-square, Cramér's V)."""

import altair as alt
import streamlit as st

from ntsb_dashboard import data, filters, ui

store, version = ui.start("Causes")
f = filters.sidebar(store, version)
st.caption(f"Showing {f.describe()}.")
kinds = {"finding": "Findings", "occurrence": "Occurrences"}
default = st.query_params.get("kind") if st.query_params.get("kind") in kinds else "finding"
kind = st.radio(
    "Cause", list(kinds), format_func=kinds.get, horizontal=True, index=list(kinds).index(default), key="kind"
)
ui.set_param("kind", kind if kind != "finding" else None)
causes = data.causes(version.id, f.store(), kind, False, store)
if causes.empty:
    ui.no_events(f"{kinds[kind].lower()}")
else:
    top = st.slider("Causes shown", 5, 50, 20, key="top")
    pareto = causes.head(top).copy()
    total = causes.events.sum()
    pareto["cumulative_share"] = causes.events.cumsum().head(top) / total
    pareto["label"] = pareto.cause_description.fillna(pareto.cause_code).str.slice(0, 70)
    order = list(pareto.label)
    bars = (
        alt.Chart(pareto)
        .mark_bar()
        .encode(
            x=alt.X("label:N", sort=order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=220)),
            y=alt.Y("events:Q", title="events"),
            tooltip=["cause_code", "cause_description", "category", "events", "fatal_events"],
        )
    )
    line = (
        alt.Chart(pareto)
        .mark_line(point=True, color="#b2182b")
        .encode(
            x=alt.X("label:N", sort=order),
            y=alt.Y(
                "cumulative_share:Q",
                title="cumulative share of cause mentions",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
        )
    )
    st.subheader(f"Pareto of {kinds[kind].lower()}")
    st.altair_chart(alt.layer(bars, line).resolve_scale(y="independent").properties(height=380), width="stretch")
    ui.table(causes, f"{kind}s", version)

    st.subheader("Cause categories over time")
    by_year = data.causes(version.id, f.store(), kind, True, store)
    st.altair_chart(
        alt.Chart(by_year)
        .mark_area()
        .encode(
            x=alt.X("year:Q", axis=alt.Axis(format="d")),
            y=alt.Y("events:Q", stack="normalize", title="share of events", axis=alt.Axis(format="%")),
            color=alt.Color("category:N", title="category"),
            tooltip=["year", "category", "events"],
        )
        .properties(height=300),
        width="stretch",
    )
    ui.downloads(by_year, f"{kind}-categories-by-year", version)

st.subheader("Conditions against a fatal outcome")
summary = data.lake_table(version.id, "analytics/correlations/summary.parquet")
levels = data.lake_table(version.id, "analytics/correlations/levels.parquet")
if summary is None:
    st.info("analytics/correlations is not materialized yet (ntsb build).")
else:
    st.caption(
        "Every event (the asset's own run, not these filters): chi-square test of independence and "
        "Cramér's V of each condition against a fatal outcome."
    )
    st.altair_chart(
        alt.Chart(summary)
        .mark_bar()
        .encode(
            x=alt.X("cramers_v:Q", title="Cramér's V"),
            y=alt.Y("condition:N", sort="-x", title=None),
            tooltip=[
                "condition",
                "events",
                "levels",
                alt.Tooltip("chi2:Q", format=".1f"),
                "dof",
                alt.Tooltip("p_value:Q", format=".2g"),
                alt.Tooltip("cramers_v:Q", format=".3f"),
            ],
        )
        .properties(height=160),
        width="stretch",
    )
    ui.table(summary, "correlations", version)
    if levels is not None:
        with st.expander("Fatal rate per level, with Wilson 95% intervals"):
            ui.table(levels, "correlation-levels", version)
