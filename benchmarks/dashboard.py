"""The dashboard at scale, per deployment: what a browser waits for, and the server's time
per filter change.

    python benchmarks/dashboard.py [--events 100000] [--runs 5]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--write docs/benchmarks.md]

Generates N events and builds each deployment as benchmarks/api.py does (warehouse,
archive, a promoted model, predictions, and embedded the serving snapshot), plus the
analytics tables the map and causes pages read. Then ``ntsb dashboard`` runs and headless
Chromium (driven over the DevTools protocol) measures, from the navigation to the page
drawn (its title, its charts or tables drawn, Streamlit's "running" indicator gone):

- the overview's first render: the first visit after the server started (the data version's
  first reads), then visits in a new tab each (the reads cached per data version);
- the map with every located event as a point (over the bundled state shapes).

A filter change is measured as the server's time for the rerun it causes: Streamlit's
AppTest runs the page in this process, a state is picked in the sidebar, and the rerun is
timed (a different state each time, so no answer comes from the cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from api import prepare
from common import REPO, emit, machine, scratch_database
from common import synth as common_synth

DRAWN = (
    "document.querySelector('h1') && !document.querySelector('[data-testid=stStatusWidget]') && "
    "document.querySelectorAll('[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg, "
    "[data-testid=stDeckGlJsonChart] canvas').length >= {charts}"
)


def analytics(home: Path) -> None:
    """The analytics tables the dashboard reads from the lake (as the assets write them)."""
    from ntsb_assets.lib import analytics as an
    from ntsb_assets.lib.lake import Lake

    lake = Lake(str(home / "lake"))
    con = an.connect(lake)
    for name, frames in (("trends", an.trends(con)), ("correlations", an.correlations(con, 30))):
        for table, df in frames.items():
            an.put_frame(lake, f"analytics/{name}/{table}.parquet", df)
    geo = an.geo_clusters(con, 25.0, 0)
    an.put_frame(lake, "analytics/geo_clusters/clusters.parquet", geo["clusters"])
    con.close()


def browser_timings(port: int, runs: int) -> dict:
    from tests.integration.browser import Browser

    out = {}
    base = f"http://127.0.0.1:{port}"
    with Browser(height=1200) as b:
        started = b.open(base + "/")
        b.wait_for(DRAWN.format(charts=1), timeout=300)
        out["overview, first visit"] = time.monotonic() - started
        started = b.open(base + "/map")
        b.wait_for(DRAWN.format(charts=2), timeout=300)
        out["map, first visit"] = time.monotonic() - started
    for page, charts in (("", 1), ("map", 2)):
        times = []
        for _ in range(runs):
            with Browser(height=1200) as b:  # a new browser each time: a new session, nothing cached in it
                started = b.open(f"{base}/{page}")
                b.wait_for(DRAWN.format(charts=charts), timeout=300)
                times.append(time.monotonic() - started)
        out[f"{page or 'overview'}, later visits (median of {runs})"] = statistics.median(times)
    return out


def filter_changes(states: list[str]) -> list[float]:
    """Seconds of server time for each rerun after picking a state on the Trends page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "ntsb_dashboard" / "app.py"), default_timeout=600).run()
    at.switch_page("views/trends.py").run()
    times = []
    for state in states:
        at.multiselect(key="filter_state").set_value([state])
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    return times


def measure(name: str, env: dict, runs: int) -> list[tuple[str, str, float]]:
    """Serve one built deployment and time it."""
    from tests.integration.browser import free_port

    os.environ.update(env)  # this process's AppTest reads the same deployment
    from ntsb_assets.settings import get_settings

    with get_settings().warehouse.session(read_only=True) as s:
        located = (
            s.query("SELECT count(*) FROM marts.fact_accidents WHERE latitude IS NOT NULL AND longitude IS NOT NULL")
            .column(0)[0]
            .as_py()
        )
        states = [
            r["state"]
            for r in s.query(
                "SELECT state FROM marts.fact_accidents WHERE state IS NOT NULL GROUP BY state "
                "ORDER BY count(*) DESC LIMIT 20"
            ).to_pylist()
        ]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntsb_assets.cli", "dashboard", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import urllib.request

        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        timings = browser_timings(port, runs)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
    changes = filter_changes(states[2 : 2 + runs + 3])
    import streamlit as st

    from ntsb_dashboard import data

    store = data._store()
    if hasattr(store, "close"):  # PostgreSQL: its connections, before the scratch database is dropped
        store.close()
    st.cache_resource.clear()
    rows = [
        (name, what + (f" ({located:,} points)" if what.startswith("map") else ""), seconds)
        for what, seconds in timings.items()
    ]
    rows.append((name, f"filter change, server time (median of {len(changes)})", statistics.median(changes)))
    rows.append((name, f"filter change, server time (max of {len(changes)})", max(changes)))
    print(rows, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--only", choices=("embedded", "PostgreSQL"))
    ap.add_argument("--workdir", type=Path, help="keep the embedded deployment here and reuse it when it exists")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp, scratch_database(args.pg) as pg_url:
        tmp = Path(tmp)
        synth = tmp / "synth"
        for name, url in (("embedded", None), ("PostgreSQL", pg_url)):
            if args.only and name != args.only:
                continue
            home = (args.workdir or tmp) / name if name == "embedded" else tmp / name
            url = url or f"duckdb:///{home}/warehouse.duckdb"
            if not (home / "built").exists():
                if not synth.exists():
                    common_synth("--events", str(args.events), "--seed", "1", str(synth))
                print(f"{name}: building {args.events:,} events", flush=True)
                prepare(url, synth, home)
                analytics(home)
                (home / "built").touch()
            env = {
                "NTSB_HOME": str(home),
                "NTSB_WAREHOUSE_URL": url,
                "NTSB_LAKE_URL": str(home / "lake"),
                "NTSB_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}",
            }
            rows += measure(name, env, args.runs)
    lines = [
        f"### Dashboard, {args.events:,} generated events",
        "",
        f"`python benchmarks/dashboard.py --events {args.events} --runs {args.runs}` on {machine()}, "
        f"{time.strftime('%Y-%m-%d')}; headless Chromium on the same machine.",
        "",
        "| deployment | what | seconds |",
        "|---|---|---:|",
    ]
    lines += [f"| {name} | {what} | {seconds:.2f} |" for name, what, seconds in rows]
    emit("\n".join(lines) + "\n", args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
