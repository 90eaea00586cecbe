"""A release load killed midway (SIGKILL, no chance to clean up) leaves the warehouse
exactly as it was, on DuckDB and on PostgreSQL."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.load import load_release
from ntsb_assets.settings import get_settings
from tests.conftest import REPO, SAMPLE

CHILD = textwrap.dedent("""
    import sys, time
    from ntsb_assets.lib.extract import extract_release
    from ntsb_assets.lib.load import load_release
    from ntsb_assets.settings import get_settings
    s = get_settings()
    m = extract_release(sys.argv[1], s.lake)

    def on_table(name):
        print("loading", name, flush=True)
        if name == "injury":          # events, aircraft and engines are written, not committed
            time.sleep(120)

    load_release(m, s.lake, s.warehouse, on_table=on_table)
    print("committed", flush=True)
""")


def _snapshot() -> dict:
    wh = get_settings().warehouse
    out = {}
    with wh.session(read_only=True) as s:
        for t in s.table_names():
            h = s.query(f'SELECT count(*) AS n FROM raw."{t}"').column(0)[0].as_py()
            cols = s.columns(t)
            digest = None
            if "_row_hash" in cols:
                digest = sorted(s.query(f'SELECT _row_hash FROM raw."{t}"').column(0).to_pylist())
            out[t] = (h, tuple(cols), digest)
    return out


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_env(request, ntsb_home, monkeypatch):
    if request.param == "postgres":
        monkeypatch.setenv("NTSB_WAREHOUSE_URL", request.getfixturevalue("pg_url"))
    return request.param


def test_sigkill_mid_load_leaves_the_warehouse_unchanged(warehouse_env):
    s = get_settings()
    load_release(extract_release(SAMPLE / "02_up01JUL2025", s.lake), s.lake, s.warehouse)
    before = _snapshot()
    assert before["events"][0] == 83

    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(SAMPLE / "01_part121_1982_2019")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == "loading injury":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert seen[:3] == ["loading events", "loading aircraft", "loading engines"]

    assert _snapshot() == before
    # and the warehouse takes the same release afterwards, whole
    result = load_release(extract_release(SAMPLE / "01_part121_1982_2019", s.lake), s.lake, s.warehouse)
    assert result["tables"]["events"]["inserted"] == 2243
    assert _snapshot()["events"][0] == 83 + 2243
