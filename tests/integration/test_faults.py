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
from tests.conftest import REPO


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple:
    """A generated base release and a monthly update of it that revises 40 of its events."""
    from tests.integration.helpers import ntsb

    root = tmp_path_factory.mktemp("releases")
    ntsb("synth", str(root / "base"), "--events", "300", "--seed", "3")
    ntsb(
        "synth",
        str(root / "up01MAR"),
        "--update-of",
        str(root / "base"),
        "--new",
        "20",
        "--changed",
        "40",
        "--seed",
        "4",
    )
    return root / "base", root / "up01MAR"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_kind(request, ntsb_home, monkeypatch):
    if request.param == "postgres":
        monkeypatch.setenv("NTSB_WAREHOUSE_URL", request.getfixturevalue("pg_url"))
    return request.param


def state() -> dict[str, list]:
    """Every raw table's row hashes, sorted: the warehouse's content."""
    with get_settings().warehouse.session(read_only=True) as s:
        return {
            t: sorted(s.query(f"SELECT _row_hash FROM raw.{t}").column(0).to_pylist())
            for t in s.table_names()
            if not t.startswith("_")
        }


def test_an_older_release_loaded_last_does_not_revert_newer_rows(warehouse_kind, pair):
    BASE, UPDATE = pair
    s = get_settings()
    base = registry.register(s.lake, BASE).release.release_id
    update = registry.register(s.lake, UPDATE).release.release_id
    m_base, m_update = (
        extract_release(BASE, s.lake, release_id=base),
        extract_release(UPDATE, s.lake, release_id=update),
    )
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


def _ingest(path, fault: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`ntsb ingest PATH --json` in a process of its own, killed by itself at ``fault``."""
    env = {**os.environ, "NTSB_FAULT": fault or ""}
    return subprocess.run(
        [sys.executable, "-m", "ntsb_assets.cli", "ingest", str(path), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _row_counts() -> dict[str, int]:
    with get_settings().warehouse.session(read_only=True) as s:
        return {
            t: s.query(f"SELECT count(*) AS n FROM raw.{t}").column(0)[0].as_py()
            for t in s.table_names()
            if not t.startswith("_")
        }


def test_sigkill_in_every_phase_then_an_ingest_with_exact_counts(warehouse_kind, pair):
    import json

    base = pair[0]
    rows = {k.lower(): v for k, v in json.loads((base / "synth_manifest.json").read_text())["rows"].items()}
    for fault in ("extract", "load", "commit"):
        r = _ingest(base, fault)
        assert r.returncode == -signal.SIGKILL, (fault, r.stderr[-2000:])
        assert _row_counts().get("events", 0) == 0, fault  # nothing of it committed
    r = _ingest(base, "committed")  # killed after the commit, before Dagster heard of it
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert {t: n for t, n in _row_counts().items() if t in rows} == rows
    # no claim, lock or half-extraction is left: the next ingest runs and counts exactly
    r = _ingest(base)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert {t.lower(): c["unchanged"] for t, c in result["tables"].items() if t.lower() in rows} == rows
    assert all(c["inserted"] == c["updated"] == c["quarantined"] == 0 for c in result["tables"].values())
    assert {t: n for t, n in _row_counts().items() if t in rows} == rows


@pytest.mark.parametrize("first", ["update", "base"])
def test_concurrent_ingests_land_in_registration_order(warehouse_kind, pair, first):
    base, update = pair
    s = get_settings()
    for p in (base, update):  # registered in this order: the base is the older release
        registry.register(s.lake, p)
    order = (update, base) if first == "update" else (base, update)
    env = {**os.environ, "NTSB_FAULT": ""}
    procs = []
    for p in order:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "ntsb_assets.cli", "ingest", str(p), "--json"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        time.sleep(1.0)
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    together = state()
    # the same releases loaded one after the other, in registration order, give the same warehouse
    with s.warehouse.session() as w:
        for t in together:
            w.execute(f"DROP TABLE raw.{t}")
    for p in (base, update):
        load_release(
            extract_release(p, s.lake, release_id=registry.register(s.lake, p).release.release_id), s.lake, s.warehouse
        )
    assert state() == together


def test_children_die_with_their_parent(tmp_path):
    """What the extraction workers and `ntsb-dbt` do first: a parent killed with SIGKILL
    takes its child with it (the child would otherwise go on writing)."""
    child = (
        "import time\nfrom ntsb_assets.lifeline import die_with_parent\ndie_with_parent()\n"
        "print('ready', flush=True)\ntime.sleep(120)"
    )
    parent = (
        f"import subprocess, sys\np = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, "
        "text=True)\nassert p.stdout.readline().strip() == 'ready'\nprint(p.pid, flush=True)\n"
        "import time\ntime.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child_pid = int(proc.stdout.readline())
    os.kill(child_pid, 0)  # alive
    proc.kill()
    proc.wait(10)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child_pid}/stat") as fh:  # a zombie is dead, waiting to be reaped
            if fh.read().split(")")[-1].split()[0] == "Z":
                return
        time.sleep(0.1)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the child outlived its parent")


def test_a_waiting_ingest_says_what_it_waits_for_and_stops_on_sigterm(warehouse_kind, pair):
    from ntsb_assets.lib.writer import writer_lock

    s = get_settings()
    with writer_lock(s.warehouse, "a test holding the lock"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ntsb_assets.cli", "ingest", str(pair[0])],
            cwd=REPO,
            env={**os.environ, "NTSB_FAULT": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = ""
        deadline = time.time() + 120
        while "a test holding the lock" not in seen and time.time() < deadline and proc.poll() is None:
            seen += proc.stderr.readline()
        assert "waiting for the warehouse writer lock" in seen and "a test holding the lock" in seen, seen
        assert str(os.getpid()) in seen or warehouse_kind == "postgres"  # DuckDB's lock file names the process
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1 and "interrupted" in err, err
    r = subprocess.run(
        [sys.executable, "-m", "ntsb_assets.cli", "ingest", str(pair[0]), "--json"],
        cwd=REPO,
        env={**os.environ, "NTSB_FAULT": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]


def test_commands_started_together_on_a_new_home_create_dagsters_storage_once(tmp_path):
    """Dagster creates its storage's tables on a home's first use: commands started together
    on a new home (released at once, their imports done), each setting up the home and then
    using the instance, must neither fail with "table runs already exists" nor leave two
    alembic heads behind."""
    import sqlite3

    go = tmp_path / "go"
    script = (
        "import os, sys, time\nfrom ntsb_assets import cli\nfrom ntsb_assets.settings import get_settings\n"
        "print('ready', flush=True)\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.005)\n"
        "cli._dagster_home(get_settings())\nfrom dagster import DagsterInstance\n"
        "with DagsterInstance.get() as i:  # as each command goes on\n"
        "    i.get_runs(limit=1), i.all_instigator_state()"
    )
    for trial in range(3):
        home = tmp_path / f"home{trial}"
        env = {**os.environ, "NTSB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
        env = {k: v for k, v in env.items() if not k.startswith(("NTSB_WAREHOUSE", "NTSB_LAKE", "DAGSTER_PG"))}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(go)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(3)
        ]
        assert [p.stdout.readline().strip() for p in procs] == [b"ready"] * 3  # imports done
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
        go.unlink()
        assert [p.returncode for p in procs] == [0, 0, 0], [e.decode()[-1500:] for _, e in outs]
        dbs = sorted((home / "dagster").rglob("*.db"))
        assert dbs, "no SQLite storage created"
        for db in dbs:
            with sqlite3.connect(db) as c:
                heads = c.execute("SELECT count(*) FROM alembic_version").fetchone()[0]
            assert heads == 1, (db, heads)
