"""The dashboard's entry point, run by ``ntsb dashboard`` (which gives Streamlit its
settings: headless, no usage statistics, no file watcher).

Eight pages over what the asset graph materialized; see docs/dashboard.md."""

import streamlit as st

st.set_page_config(page_title="NTSB aviation safety", page_icon=":material/flight:", layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/trends.py", url_path="trends", title="Trends", icon=":material/show_chart:"),
    st.Page("views/map.py", url_path="map", title="Map", icon=":material/map:"),
    st.Page("views/aircraft.py", url_path="aircraft", title="Aircraft", icon=":material/flight:"),
    st.Page("views/causes.py", url_path="causes", title="Causes", icon=":material/report:"),
    st.Page("views/explorer.py", url_path="explorer", title="Event explorer", icon=":material/search:"),
    st.Page("views/quality.py", url_path="quality", title="Data quality", icon=":material/fact_check:"),
    st.Page("views/model.py", url_path="model", title="Model", icon=":material/model_training:"),
]
st.navigation(PAGES).run()
