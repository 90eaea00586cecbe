"""Trends: yearly and monthly events by highest injury with least-squares trend lines,
seasonality, and the fatal share with Wilson 95% intervals, for the filtered events."""

import altair as alt
import pandas as pd
import streamlit as st

from ntsb_dashboard import data, filters, ui

store, version = ui.start("Trends")
f = filters.sidebar(store, version)
st.caption(f"Showing {f.describe()}.")
key = f.store()
yearly = data.breakdown(version.id, key, ("year", "severity"), store).dropna(subset=["year"])
if yearly.empty:
    ui.no_events()
    st.stop()
totals = data.breakdown(version.id, key, (), store).iloc[0]
a, b, c, d = st.columns(4)
a.metric("Events", f"{int(totals.events):,}")
b.metric("Fatal events", f"{int(totals.fatal_events):,}")
low, high = data.wilson(totals.fatal_events, totals.events)
c.metric(
    "Fatal share", f"{totals.fatal_events / totals.events:.1%}", help=f"Wilson 95% interval {low:.1%} to {high:.1%}"
)
d.metric("Fatalities", f"{int(totals.fatalities):,}")
yearly["highest_injury"] = yearly["severity"].map(ui.severity_label)
colors = alt.Scale(domain=list(ui.SEVERITY_RGB), range=list(ui.SEVERITY_COLORS.values()))

fits = []
for sev, part in yearly.groupby("highest_injury"):
    if part.year.nunique() >= 3:
        slope, intercept, r2 = data.linear_trend(part.year, part.events)
        fits.append(
            {
                "highest_injury": sev,
                "slope_per_year": slope,
                "r2": r2,
                "from": int(part.year.min()),
                "to": int(part.year.max()),
            }
        )
        yearly.loc[part.index, "trend"] = slope * part.year + intercept

st.subheader("Events per year by highest injury")
base = alt.Chart(yearly).encode(
    x=alt.X("year:Q", title="year", axis=alt.Axis(format="d")),
    color=alt.Color("highest_injury:N", scale=colors, title="highest injury"),
)
chart = base.mark_line(point=True).encode(y=alt.Y("events:Q"), tooltip=["year", "highest_injury", "events"])
if "trend" in yearly:
    chart += base.mark_line(strokeDash=[4, 3], opacity=0.7).encode(y="trend:Q")
st.altair_chart(chart.properties(height=300))
if fits:
    st.caption("Dashed: least-squares trend per highest injury.")
    st.dataframe(
        pd.DataFrame(fits),
        hide_index=True,
        column_config={
            "slope_per_year": st.column_config.NumberColumn("events per year", format="%.2f"),
            "r2": st.column_config.NumberColumn("R²", format="%.3f"),
        },
    )
    ui.downloads(pd.DataFrame(fits), "trend-lines", version)
ui.downloads(yearly.drop(columns=["trend"], errors="ignore"), "yearly", version)

st.subheader("Fatal share per year (Wilson 95% interval)")
per_year = data.breakdown(version.id, key, ("year",), store).dropna(subset=["year"])
per_year["fatal_share"] = per_year.fatal_events / per_year.events
per_year["ci_low"], per_year["ci_high"] = data.wilson(per_year.fatal_events, per_year.events)
band = alt.Chart(per_year).encode(x=alt.X("year:Q", axis=alt.Axis(format="d")))
st.altair_chart(
    (
        band.mark_area(opacity=0.25).encode(
            y=alt.Y("ci_low:Q", title="fatal share", axis=alt.Axis(format="%")), y2="ci_high:Q"
        )
        + band.mark_line(point=True).encode(
            y="fatal_share:Q",
            tooltip=[
                "year",
                "events",
                "fatal_events",
                alt.Tooltip("fatal_share:Q", format=".1%"),
                alt.Tooltip("ci_low:Q", format=".1%"),
                alt.Tooltip("ci_high:Q", format=".1%"),
            ],
        )
    ).properties(height=240)
)
ui.downloads(per_year, "fatal-share", version)

st.subheader("Monthly events and seasonality")
monthly = data.breakdown(version.id, key, ("year", "month"), store).dropna(subset=["year", "month"])
monthly["month_start"] = pd.to_datetime(dict(year=monthly.year, month=monthly.month, day=1))
left, right = st.columns([2, 1])
left.altair_chart(
    alt.Chart(monthly)
    .mark_line()
    .encode(
        x=alt.X("month_start:T", title="month"),
        y=alt.Y("events:Q"),
        tooltip=[alt.Tooltip("month_start:T", format="%Y-%m"), "events", "fatal_events"],
    )
    .properties(height=240)
)
season = monthly.groupby("month", as_index=False).events.mean()
season["index"] = season.events / season.events.mean()
right.altair_chart(
    alt.Chart(season)
    .mark_bar()
    .encode(
        x=alt.X("month:O"),
        y=alt.Y("index:Q", title="seasonal index (1 = an average month)"),
        tooltip=["month", alt.Tooltip("index:Q", format=".2f"), alt.Tooltip("events:Q", format=".1f")],
    )
    + alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="grey").encode(y="y:Q"),
    width="stretch",
)
ui.downloads(monthly.drop(columns=["month_start"]), "monthly", version)
