"""Helpers for integration tests: run the CLI in-process, make a revised release, and
read the warehouse."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from ntsb_assets.cli import main
from ntsb_assets.settings import get_settings
from tests.conftest import REPO


def ntsb(*args: str, expect_ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if expect_ok:
        assert result.exit_code == 0, result.output
    return result


def ingest_json(path: Path) -> dict:
    return json.loads(ntsb("ingest", str(path), "--json").stdout)


def query(sql: str) -> list[dict]:
    with get_settings().warehouse.session(read_only=True) as s:
        return s.query(sql).to_pylist()


def rewrite_csv(path: Path, edit) -> None:
    """Read a CSV, let ``edit(header, rows)`` change the rows in place, write it back."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    edit(header, body)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body])


def dashboard_page(page: str, **params):
    """One page in AppTest, the URL query ``params`` given as a browser would (after the
    default page's first run, as a link to the page opens it)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(str(REPO / "ntsb_dashboard" / "app.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "overview" or params:
        for k in list(at.query_params):
            del at.query_params[k]
        for k, v in params.items():
            at.query_params[k] = v
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
    return at
