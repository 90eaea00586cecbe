"""Overview: the headline numbers, the latest year against the one before, the data
version with its releases, freshness, and a small trend."""

import altair as alt
import streamlit as st

from ntsb_dashboard import data, ui

store, version = ui.start("NTSB aviation accidents")
ui.remember_query({}, version)
totals = data.breakdown(version.id, (), (), store).iloc[0]
yearly = data.breakdown(version.id, (), ("year",), store).dropna(subset=["year"])

a, b, c = st.columns(3)
a.metric("Events", f"{int(totals.events):,}")
b.metric(
    "Fatal events", f"{int(totals.fatal_events):,}", help=f"{totals.fatal_events / max(totals.events, 1):.1%} of events"
)
c.metric("Fatalities", f"{int(totals.fatalities):,}")

if len(yearly) >= 2:
    last, before = yearly.iloc[-1], yearly.iloc[-2]
    st.subheader(f"{int(last.year)} against {int(before.year)}")
    x, y, z = st.columns(3)
    x.metric(
        f"Events in {int(last.year)}",
        f"{int(last.events):,}",
        f"{int(last.events - before.events):+,}",
        delta_color="inverse",
    )
    y.metric(
        f"Fatal events in {int(last.year)}",
        f"{int(last.fatal_events):,}",
        f"{int(last.fatal_events - before.fatal_events):+,}",
        delta_color="inverse",
    )
    z.metric(
        f"Fatalities in {int(last.year)}",
        f"{int(last.fatalities):,}",
        f"{int(last.fatalities - before.fatalities):+,}",
        delta_color="inverse",
    )
    st.caption("The latest year may still be filling: NTSB adds events for months after they happen.")

st.subheader("Events per year")
st.altair_chart(
    alt.Chart(yearly)
    .mark_line(point=True)
    .encode(
        x=alt.X("year:O", title="year", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("events:Q", title="events"),
        tooltip=["year", "events", "fatal_events", "fatalities"],
    )
    .properties(height=220)
)

st.subheader("Data version")
releases = data.releases(version.id, store)
left, right = st.columns([1, 2])
left.markdown(
    f"**Version** `{version.id}`  \n**Model** {version.model_version or 'none'}  \n"
    f"**Published** {version.created or 'not recorded'} ({ui.ago(version.created)})"
)
left.caption(
    "Cite the version id with any number from this dashboard: it names the releases and the model "
    "these numbers come from."
)
if len(releases):
    with right:
        st.dataframe(releases[["release_id", "kind", "first_loaded_at", "last_loaded_at", "loads"]], hide_index=True)
        ui.downloads(releases, "releases", version)
else:
    right.markdown("\n".join(f"- `{r}`" for r in version.releases) or "no releases")
