"""The dashboard's entry point: ``ntsb dashboard`` (or ``streamlit run ntsb_dashboard/app.py``).

Eight pages over what the asset graph materialized; see docs/dashboard.md."""

import streamlit as st

st.set_page_config(page_title="NTSB aviation safety", page_icon=":material/flight:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("pages/trends.py", title="Trends", icon=":material/show_chart:"),
    st.Page("pages/map.py", title="Map", icon=":material/map:"),
    st.Page("pages/aircraft.py", title="Aircraft", icon=":material/flight:"),
    st.Page("pages/causes.py", title="Causes", icon=":material/report:"),
    st.Page("pages/explorer.py", title="Event explorer", icon=":material/search:"),
    st.Page("pages/quality.py", title="Data quality", icon=":material/fact_check:"),
    st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
]
st.navigation(PAGES).run()
