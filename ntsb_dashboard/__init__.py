"""The analysts' dashboard (Streamlit) over what the asset graph materialized: docs/dashboard.md."""
