"""Guardrails a new user meets first: an empty release, a warehouse folder that does not
exist, a port already taken, a synthetic release among real ones. Each is refused with the
thing named, and nothing is created. And the demo's services stop with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

from ntsb_assets.settings import get_settings
from tests.integration.browser import free_port
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


def test_a_synthetic_release_is_refused_in_a_real_home_unless_allowed(ntsb_home, tmp_path):
    """`ntsb synth` marks what it writes; a generated release does not mix silently with
    real ones. With --allow-synthetic it loads, and the reconciliation line says what."""
    from tests.conftest import SAMPLE

    real = ntsb("ingest", str(SAMPLE / "00_reference_avall"))
    # not on a terminal: the stage's one line, whole (never wrapped), with the real totals
    line = next(x for x in real.output.splitlines() if x.startswith("✓ ingest 00_reference_avall"))
    assert "7 tables, 8,066 rows in: 8,063 inserted" in line and line.endswith(" s)"), real.output
    synthetic = tmp_path / "synth01"
    ntsb("synth", "--events", "40", "--seed", "3", str(synthetic))
    r = ntsb("ingest", str(synthetic), expect_ok=False)
    assert r.exit_code == 1 and "synth01 is synthetic" in r.output and "00_reference_avall" in r.output, r.output
    assert "--allow-synthetic" in r.output
    with get_settings().warehouse.session(read_only=True) as s:
        assert s.query("SELECT count(*) AS n FROM raw._releases").column(0)[0].as_py() == 1  # nothing loaded
    done = json.loads(ntsb("ingest", str(synthetic), "--allow-synthetic", "--json").stdout)
    assert done["tables"]["events"]["inserted"] == 40


def test_the_demo_stops_every_service_on_sigint_and_none_is_orphaned(ntsb_home, tmp_path):
    """`ntsb demo` supervises the Dagster webserver and daemon, the API and the dashboard: `ntsb status`
    lists them while they answer; SIGINT to the demo stops them and every process under
    them (no child left under PID 1), and the state file goes."""
    ports = [free_port() for _ in range(4)]
    env = {**os.environ, "NTSB_HOME": str(ntsb_home)}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ntsb_assets.cli",
            "demo",
            "--no-build",
            "--port",
            str(ports[0]),
            "--api-port",
            str(ports[1]),
            "--docs-port",
            str(ports[2]),
            "--dashboard-port",
            str(ports[3]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        seen = ""
        deadline = time.monotonic() + 240
        while "ntsb stop" not in seen and time.monotonic() < deadline and demo.poll() is None:
            seen += demo.stdout.readline()
        assert f"http://127.0.0.1:{ports[0]}" in seen and f"http://127.0.0.1:{ports[1]}/docs" in seen, seen
        assert f"Dashboard     http://127.0.0.1:{ports[3]}" in seen, seen
        assert "dbt docs      not built yet" in seen  # nothing built in this home: said, not served
        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "ntsb_assets.cli", "status", "--json"],
                env=env,
                capture_output=True,
                text=True,
                cwd=tmp_path,
                check=True,
            ).stdout
        )
        assert status["supervisor"] == demo.pid
        by_name = {s["name"]: s for s in status["services"]}
        assert set(by_name) == {"dagster-webserver", "dagster-daemon", "api", "dashboard"}
        assert by_name["api"]["answers"] and by_name["dagster-webserver"]["answers"] and by_name["dashboard"]["answers"]
        groups = [s["pid"] for s in status["services"]]
        members = [
            int(p)
            for g in groups
            for p in subprocess.run(["pgrep", "-g", str(g)], capture_output=True, text=True).stdout.split()
        ]
        assert len(members) > len(groups)  # the services' own children (code servers) are in their groups
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    deadline = time.monotonic() + 15  # a killed process is gone once its new parent has reaped it
    while (left := [_running(p) for p in members if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"orphaned after SIGINT: {left}"
    assert not (ntsb_home / "services.json").exists()


def _running(pid: int) -> str | None:
    """The command line of a live (not zombie) process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return None
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"{pid}: " + f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return None


def test_a_sensor_meets_a_busy_warehouse_with_a_log_line_not_a_wait(ntsb_home, tmp_path):
    """While another process writes the embedded warehouse, the archive sensor's tick does
    not wait for it (a tick has a deadline): it skips, saying why, and the next tick looks
    again."""
    import dagster as dg

    from ntsb_assets import keys
    from ntsb_assets.archive import archive_sensor
    from ntsb_assets.resources import NtsbResource

    get_settings().check()  # the empty warehouse file
    path = get_settings().warehouse.path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with dg.instance_for_test() as instance:
            instance.report_runless_asset_event(dg.AssetMaterialization(keys.FACT))
            ctx = dg.build_sensor_context(instance=instance, resources={"ntsb": NtsbResource()})
            started = time.monotonic()
            result = archive_sensor(ctx)
            assert time.monotonic() - started < 10
            assert isinstance(result, dg.SkipReason) and "warehouse busy" in result.skip_message
            assert str(holder.pid) in result.skip_message or "in use by another process" in result.skip_message
            assert ctx.cursor is None  # not moved: the next tick looks again
    finally:
        holder.kill()
        holder.wait()


def test_the_cli_and_the_daemon_on_one_home_ingest_a_release_once(ntsb_home, tmp_path):
    """The demo's daemon picks a release up from the landing zone; `ntsb ingest` of the same
    release meanwhile waits for that run, says so, and reports its result: one ingest run
    for the release, none failed."""
    import shutil

    import dagster as dg

    from tests.conftest import SAMPLE

    ports = [free_port() for _ in range(4)]
    env = {**os.environ, "NTSB_HOME": str(ntsb_home)}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ntsb_assets.cli",
            "demo",
            "--no-build",
            "--port",
            str(ports[0]),
            "--api-port",
            str(ports[1]),
            "--docs-port",
            str(ports[2]),
            "--dashboard-port",
            str(ports[3]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    release = "00_reference_avall"
    try:
        seen = ""
        deadline = time.monotonic() + 240
        while "ntsb stop" not in seen and time.monotonic() < deadline and demo.poll() is None:
            seen += demo.stdout.readline()
        assert "ntsb stop" in seen, seen
        landing = ntsb_home / "landing" / release
        shutil.copytree(SAMPLE / release, landing)
        with dg.DagsterInstance.get() as instance:
            ingest_runs = lambda: instance.get_runs(filters=dg.RunsFilter(job_name="ingest_release"))  # noqa: E731
            deadline = time.monotonic() + 180  # the landing-zone sensor ticks every 60 s
            while not ingest_runs() and time.monotonic() < deadline:
                time.sleep(1)
            assert ingest_runs(), "the daemon did not pick the release up"
            r = ntsb("ingest", str(landing))
            assert "already ingests it" in r.output or "(by the run waited for)" in r.output, r.output
            runs = ingest_runs()
            assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS, [
                (x.run_id, x.status) for x in runs
            ]
            failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
            assert not failed, [(x.job_name, x.run_id) for x in failed]
        with get_settings().warehouse.session(read_only=True) as s:
            assert s.query("SELECT loads FROM raw._releases").column(0).to_pylist() == [1]  # loaded once
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
