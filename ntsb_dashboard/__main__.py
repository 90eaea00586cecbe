"""``python -m ntsb_dashboard [streamlit options]``: what ``ntsb dashboard`` runs. The data
layer's imports (pandas, DuckDB, Altair, pydeck, the store) are paid when the server starts,
not by its first visitor; then Streamlit's own command line runs the app."""

import sys
from pathlib import Path

import altair  # noqa: F401
import pydeck  # noqa: F401
from streamlit.web import cli

from ntsb_dashboard import data, geo  # noqa: F401

if __name__ == "__main__":
    sys.argv = ["streamlit", "run", str(Path(__file__).with_name("app.py")), *sys.argv[1:]]
    sys.exit(cli.main())
