"""Event explorer: search over the narratives in the API's three modes (keyword, by meaning,
hybrid: ntsb_api/search.py), a filterable table of events, and one event's page: narrative,
the events with similar narratives, aircraft, crew, findings, the sequence of events, and
the champion model's prediction with its SHAP explanation."""

import re

import altair as alt
import pandas as pd
import streamlit as st

from ntsb_api.search import MAX_QUERY
from ntsb_dashboard import data, filters, ui

EV_ID = re.compile(r"^[0-9A-Za-z]{6,20}$")
LIMIT = 1000
SEARCH_DEPTH = 100  # hits asked of the search, then filtered by the sidebar (the API's most)
SIMILAR = 10

store, version = ui.start("Event explorer")
f = filters.sidebar(store, version)


def show_event(ev_id: str) -> None:
    doc = data.event(version.id, ev_id, store)
    if doc is None:
        st.warning(f"No event {ev_id} in this data version.")
        return
    st.header(f"{doc['ev_id']}  ·  {doc.get('ntsb_no') or ''}")
    place = ", ".join(x for x in (doc.get("city"), doc.get("state"), doc.get("country")) if x)
    a, b, c, d = st.columns(4)
    a.metric("Date", str(doc.get("event_date")))
    b.metric("Highest injury", ui.severity_label(doc.get("severity")))
    c.metric("Fatalities", doc.get("fatalities") or 0)
    d.metric("Aircraft", doc.get("aircraft_count") or len(doc.get("aircraft", [])))
    st.markdown(
        f"**Where** {place or 'unknown'}  \n**Phase of flight** {doc.get('phase_of_flight_label') or '-'}"
        f"  ·  **Weather** {doc.get('weather_condition') or '-'}  ·  **Light** {doc.get('light_condition') or '-'}"
        f"  ·  **FAR part** {doc.get('far_part') or '-'}  \n**Release** `{doc.get('release_id')}`"
    )
    st.subheader("Narrative")
    narratives = doc.get("narratives") or []
    if not narratives:
        st.caption("No narrative in this release.")
    for n in narratives:
        if n.get("probable_cause"):
            st.markdown(f"**Probable cause** (aircraft {n.get('aircraft_key')}): {n['probable_cause']}")
        if n.get("narrative"):
            st.text(n["narrative"])
    if narratives:
        st.subheader("Similar events")
        near = data.similar(version.id, ev_id, SIMILAR, store)
        if near.get("error"):
            st.caption(f"None shown: {near['error']}.")
        else:
            st.caption("The events whose narratives are nearest to this one's by meaning (the API's similar events).")
            similar = pd.DataFrame(
                [
                    {
                        "ev_id": h["ev_id"],
                        "event_date": h["event_date"],
                        "severity": h["severity"],
                        "make": h["make"],
                        "model": h["model"],
                        "similarity": round(h["score"], 3),
                        "passage": (h.get("passage") or {}).get("text"),
                    }
                    for h in near["items"]
                ]
            )
            ui.table(similar, f"{ev_id}-similar", version)
    st.subheader("Aircraft")
    aircraft = pd.DataFrame(doc.get("aircraft") or [])
    ui.table(aircraft, f"{ev_id}-aircraft", version)
    st.subheader("Crew")
    crew = {k: v for k, v in (doc.get("crew") or {}).items() if v is not None}
    if crew:
        ui.table(pd.DataFrame([crew]), f"{ev_id}-crew", version)
    else:
        st.caption("No crew record.")
    findings = pd.DataFrame(doc.get("findings") or [])
    st.subheader("Findings")
    if findings.empty or not (findings.cause_kind == "finding").any():
        st.caption("No findings.")
    else:
        found = findings[findings.cause_kind == "finding"].drop(columns=["cause_kind"])
        ui.table(found, f"{ev_id}-findings", version)
    st.subheader("Sequence of events")
    if findings.empty or not (findings.cause_kind == "occurrence").any():
        st.caption("No sequence of events recorded.")
    else:
        seq = findings[findings.cause_kind == "occurrence"].sort_values(["aircraft_key", "occurrence_no", "seq_no"])
        ui.table(seq.drop(columns=["cause_kind"]), f"{ev_id}-sequence", version)
    st.subheader("Severity model")
    pred = doc.get("prediction")
    if pred:
        probs = pd.DataFrame(
            {
                "highest injury": [ui.severity_label(c) for c in data.SEVERITY_ORDER],
                "probability": [pred.get(f"p_{c.lower()}") for c in data.SEVERITY_ORDER],
            }
        )
        st.markdown(
            f"Predicted **{ui.severity_label(pred['predicted_class'])}** by {pred['model_name']} "
            f"version {pred['model_version']} (P(fatal) {pred['p_fatal_outcome']:.1%})."
        )
        st.altair_chart(
            alt.Chart(probs)
            .mark_bar()
            .encode(
                x=alt.X("probability:Q", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                y=alt.Y("highest injury:N", sort=None),
            )
            .properties(height=120),
            width="stretch",
        )
    else:
        st.caption("No batch prediction for this event.")
    why = data.explanation(version.id, version.model_version, ev_id)
    if "error" in why:
        st.caption(f"No SHAP explanation: {why['error']}.")
    else:
        contrib = pd.DataFrame(why["contributions"])
        contrib["label"] = contrib.feature + " = " + contrib.value.astype(str)
        st.markdown(
            f"Why (champion version {why['model_version']}): each feature's SHAP contribution to the "
            "log-odds of a fatal outcome; positive pushes toward fatal."
        )
        st.altair_chart(
            alt.Chart(contrib)
            .mark_bar()
            .encode(
                x=alt.X("shap_log_odds:Q", title="SHAP (log-odds of fatal)"),
                y=alt.Y("label:N", sort=None, title=None),
                color=alt.condition("datum.shap_log_odds > 0", alt.value("#b2182b"), alt.value("#2166ac")),
            )
            .properties(height=28 * len(contrib) + 20),
            width="stretch",
        )


chosen = st.query_params.get("event")
if chosen and EV_ID.match(chosen):
    if st.button("Back to the list", icon=":material/arrow_back:"):
        ui.set_param("event", None)
        st.rerun()
    show_event(chosen)
    st.stop()
if chosen:
    st.warning("That event id is not one NTSB would issue; showing the list.")
    ui.set_param("event", None)

MODES = {"hybrid": "Hybrid", "semantic": "By meaning", "keyword": "Keyword"}
mode_param = st.query_params.get("mode")
mode = st.radio(
    "Search mode",
    list(MODES),
    index=list(MODES).index(mode_param) if mode_param in MODES else 0,
    format_func=MODES.get,
    horizontal=True,
    key="mode",
    help="Keyword: the words, stemmed. By meaning: the narratives' sentence vectors, so other words for the "
    "same thing match. Hybrid: both rankings fused (the API's default).",
)
ui.set_param("mode", None if mode == "hybrid" else mode)
q = st.text_input(
    "Search the narratives",
    value=(st.query_params.get("q") or "")[:MAX_QUERY],
    max_chars=MAX_QUERY,
    key="q",
    placeholder="e.g. carburetor icing",
)
ui.set_param("q", q.strip() or None)
if q.strip():
    found = data.search(version.id, q.strip(), mode, SEARCH_DEPTH, store)
    if found.get("error"):
        st.warning(f"{MODES[mode]} search is not available: {found['error']}")
    hits = found["items"]
    ids = tuple(h["ev_id"] for h in hits)
    events = data.event_list(version.id, f.store(ev_id=ids), LIMIT, store) if ids else pd.DataFrame()
    if not events.empty:
        by_id = {h["ev_id"]: h for h in hits}
        events.insert(1, "score", events.ev_id.map(lambda e: by_id[e]["score"]))
        events.insert(2, "passage", events.ev_id.map(lambda e: (by_id[e].get("passage") or {}).get("text")))
        rank = {h["ev_id"]: i for i, h in enumerate(hits)}  # the search's order (ties as it broke them)
        events = events.sort_values("ev_id", key=lambda ids: ids.map(rank)).reset_index(drop=True)
    st.caption(f"{len(events):,} of the best {len(hits):,} matches pass the filters ({f.describe()}).")
else:
    events = data.event_list(version.id, f.store(), LIMIT, store)
    st.caption(
        f"The newest {len(events):,} events of {f.describe()} (at most {LIMIT:,}; narrow the filters or search)."
    )
if events.empty:
    ui.no_events()
    st.stop()
picked = st.dataframe(
    events,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="events_table",
    column_config=ui.EVENT_COLUMNS,
)
ui.downloads(events, "events", version)
rows = picked.selection.rows if picked and picked.selection else []
if rows:
    ui.set_param("event", events.iloc[rows[0]].ev_id)
    st.rerun()
st.caption("Select a row to open the event.")
