"""Aircraft: make and model with events, fatal events and the fatal rate's Wilson 95%
interval, for the filtered events; a minimum support; select a row for its events."""

import streamlit as st

from ntsb_dashboard import data, filters, ui

store, version = ui.start("Aircraft")
f = filters.sidebar(store, version)
st.caption(f"Showing {f.describe()}. Make and model are the event's first aircraft's.")
try:
    default_support = max(1, min(1000, int(st.query_params.get("min_support", 10))))
except ValueError:
    default_support = 10
support = st.number_input(
    "Minimum events per make and model", min_value=1, max_value=1000, value=default_support, key="min_support"
)
ui.set_param("min_support", support if support != 10 else None)

table = data.breakdown(version.id, f.store(), ("make", "model"), store).dropna(subset=["make"])
table = table[table.events >= support].copy()
if table.empty:
    ui.no_events("makes and models with that many events")
    st.stop()
table["fatal_rate"] = table.fatal_events / table.events
table["ci_low"], table["ci_high"] = data.wilson(table.fatal_events, table.events)
table = table.sort_values(["ci_low", "events"], ascending=[False, False]).reset_index(drop=True)
table = table[["make", "model", "events", "fatal_events", "fatalities", "fatal_rate", "ci_low", "ci_high"]]
st.caption(
    f"{len(table):,} makes and models; sorted by the interval's lower bound (click a header to sort by another column)."
)
picked = st.dataframe(
    table,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="aircraft_table",
    column_config={
        "fatal_rate": st.column_config.ProgressColumn("fatal rate", format="percent", min_value=0, max_value=1),
        "ci_low": st.column_config.NumberColumn("95% CI low", format="percent"),
        "ci_high": st.column_config.NumberColumn("95% CI high", format="percent"),
    },
)
ui.downloads(table, "aircraft", version)

rows = picked.selection.rows if picked and picked.selection else []
if rows:
    make, model = table.iloc[rows[0]][["make", "model"]]
    st.subheader(f"Events: {make} {model}")
    events = data.event_list(version.id, f.store(make=make, model=model), 5000, store)
    ui.table(
        events,
        f"events-{make}-{model}".replace(" ", "_").replace("/", "_"),
        version,
        key="drill",
        column_config=ui.EVENT_COLUMNS,
    )
    st.caption("Open one in the Event explorer: its id in the search box, or `?event=<ev_id>` on that page.")
else:
    st.caption("Select a row to see its events.")
