"""What the benchmark scripts share: a scratch PostgreSQL database, phases run in their
own process, and the markdown report."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# appended to every phase script: the phase's peak RSS is the larger of the process's high
# water mark (VmHWM: its own address space; getrusage's RUSAGE_SELF would carry over the
# launching process's peak) and its largest worker process (parallel extraction)
PEAK_RSS = """
import resource as _r
_hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
_peak = max(_hwm, _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) / 1024
"""


def run_phase(script: str, *args: str) -> dict:
    """Run ``script`` (which prints one JSON line with rows and seconds) in a new process."""
    out = subprocess.run(
        [sys.executable, "-c", script + PEAK_RSS + "print(json.dumps(result | {'peak_rss_mb': _peak}))", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"phase failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def synth(*args: str) -> None:
    """``ntsb synth ARGS`` of this checkout, its output discarded (fails on an error)."""
    subprocess.run([sys.executable, "-m", "ntsb_assets.cli", "synth", *args], cwd=REPO, check=True, capture_output=True)


def timed_cli(args: list[str], env: dict) -> tuple[str, float, float]:
    """One `ntsb ARGS` process of this checkout (run from a worktree, a benchmark measures
    that worktree's code): its standard output, wall seconds and peak RSS in MB (the largest
    of the process and those it waited for, from wait4). Fails naming the home's log."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntsb_assets.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"ntsb {args[0]} failed ({code}); see the log under {env.get('NTSB_HOME')}")
    return out, seconds, usage.ru_maxrss / 1024


@contextmanager
def scratch_database(admin_url: str):
    """A PostgreSQL database for one run, dropped afterwards; yields its URL."""
    import psycopg2

    name = f"ntsb_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.cursor().execute(f"DROP DATABASE {name}")
        admin.close()


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def emit(text: str, write: Path | None) -> str:
    """Print a report, and append it to ``write`` (docs/benchmarks.md) when given."""
    print(text)
    if write:
        with open(write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)
    return text


def report(title: str, command: str, rows: list[tuple[str, dict]], write: Path | None) -> str:
    lines = [
        f"### {title}",
        "",
        f"`{command}` on {machine()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| phase | rows | seconds | rows/s | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "-"
        lines.append(f"| {name} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {rss} |")
    return emit("\n".join(lines) + "\n", write)
