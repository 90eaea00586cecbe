"""Faults and races: releases land in registration order whatever order their loads
commit in; a writer killed at any point leaves no claim behind and the next ingest gives
exact counts; concurrent ingests wait for each other. DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ntsb_assets.lib import registry
from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.load import load_release
from ntsb_assets.settings import get_settings
from tests.conftest import REPO, SAMPLE



@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple:
    """A generated base release and a monthly update of it that revises 40 of its events."""
    from tests.integration.helpers import ntsb
    root = tmp_path_factory.mktemp("releases")
    ntsb("synth", str(root / "base"), "--events", "300", "--seed", "3")
    ntsb("synth", str(root / "up01MAR"), "--update-of", str(root / "base"), "--new", "20", "--changed", "40",
         "--seed", "4")
    return root / "base", root / "up01MAR"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_kind(request, ntsb_home, monkeypatch):
    if request.param == "postgres":
        monkeypatch.setenv("NTSB_WAREHOUSE_URL", request.getfixturevalue("pg_url"))
    return request.param



def state() -> dict[str, list]:
    """Every raw table's row hashes, sorted: the warehouse's content."""
    with get_settings().warehouse.session(read_only=True) as s:
        return {t: sorted(s.query(f"SELECT _row_hash FROM raw.{t}").column(0).to_pylist())
                for t in s.table_names() if not t.startswith("_")}


def test_an_older_release_loaded_last_does_not_revert_newer_rows(warehouse_kind, pair):
    BASE, UPDATE = pair
    s = get_settings()
    base = registry.register(s.lake, BASE).release.release_id
    update = registry.register(s.lake, UPDATE).release.release_id
    m_base, m_update = extract_release(BASE, s.lake, release_id=base), extract_release(UPDATE, s.lake, release_id=update)
    load_release(m_update, s.lake, s.warehouse)
    late = load_release(m_base, s.lake, s.warehouse)
    superseded = {t: c["superseded"] for t, c in late["tables"].items() if c["superseded"]}
    assert superseded, late
    for c in late["tables"].values():
        assert c["rows_in"] == c["inserted"] + c["updated"] + c["unchanged"] + c["quarantined"] + c["superseded"]
    out_of_order = state()
    # the same two releases loaded in registration order give the same warehouse
    with s.warehouse.session() as w:
        for t in out_of_order:
            w.execute(f"DROP TABLE raw.{t}")
    load_release(m_base, s.lake, s.warehouse)
    again = load_release(m_update, s.lake, s.warehouse)
    assert state() == out_of_order
    assert {t: c["updated"] for t, c in again["tables"].items() if c["updated"]} == superseded
