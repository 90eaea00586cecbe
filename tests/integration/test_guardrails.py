"""Guardrails a new user meets first: an empty release, a warehouse folder that does not
exist, a port already taken. Each is refused with the thing named, and nothing is created."""

from __future__ import annotations

import socket
import zipfile

from tests.integration.helpers import ntsb


def test_an_empty_release_is_refused_naming_it(ntsb_home, tmp_path):
    empty = tmp_path / "up01JAN"
    empty.mkdir()
    (empty / "README.txt").write_text("a readme is not a table")
    r = ntsb("ingest", str(empty), expect_ok=False)
    assert r.exit_code == 1 and str(empty) in r.output and "[empty_release]" in r.output, r.output
    with zipfile.ZipFile(tmp_path / "up01FEB.zip", "w") as zf:
        zf.writestr("LICENSE.txt", "not a table")
    r = ntsb("ingest", str(tmp_path / "up01FEB.zip"), expect_ok=False)
    assert r.exit_code == 1 and "up01FEB.zip" in r.output and "[empty_release]" in r.output, r.output
    assert not (ntsb_home / "lake" / "releases").exists() or not any((ntsb_home / "lake" / "releases").iterdir())


def test_a_missing_warehouse_folder_is_refused_and_nothing_is_created(ntsb_home, tmp_path, monkeypatch):
    missing = tmp_path / "nonexistent" / "dir"
    monkeypatch.setenv("NTSB_WAREHOUSE_URL", f"duckdb:///{missing}/w.duckdb")
    r = ntsb("info", expect_ok=False)
    assert r.exit_code == 1 and "NTSB_WAREHOUSE_URL" in r.output and str(missing) in r.output, r.output
    assert not (tmp_path / "nonexistent").exists() and not ntsb_home.exists()


def test_a_busy_port_is_refused_before_the_banner(ntsb_home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = ntsb("api", "--port", str(port), expect_ok=False)
    assert r.exit_code == 1 and f"127.0.0.1:{port}" in r.output and "--port" in r.output, r.output
    assert "API on" not in r.output
