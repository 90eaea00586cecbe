"""The fault drill: `ntsb ingest` and `ntsb build` killed with SIGKILL at random points, each
followed by the same command run to the end, and the warehouse compared, row by row, with
one that was never killed.

    python benchmarks/fault_drill.py [--runs 50] [--builds 3] [--seed 1] [--warehouse duckdb|postgres]
                                     [--write docs/operations.md]

Releases: a generated base (2,000 events) and monthly updates of it (each 50 new and 50
revised events), registered in order. Every run takes the next release (after the last one,
a random one again), starts `ntsb ingest` on it and kills it: at a named fault point (half the
runs: ``extract``, ``load``, ``commit``, ``committed``; lib/faults.py), or after a random
delay within the time a clean ingest takes. Then it runs `ntsb ingest` again, unkilled, with a
time limit (a run that waits forever for a dead writer's claim does not recover), and
compares every raw table's row hashes with a reference warehouse that loaded the same
releases once, in the same order. ``--builds`` runs of `ntsb build` are killed the same way
(named point ``dbt``, or a random delay) and then run again; a recovered build has marts
that hold every loaded event. Seeded: the same seed, the same kills.

Reported: runs, runs killed (a kill can come after a run ended), runs recovered with exact
counts, rows lost (reference rows missing or different after recovery).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, scratch_database

POINTS = ("extract", "load", "commit", "committed")
RECOVERY_TIMEOUT = 600
PG_ADMIN = os.environ.get("NTSB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def ntsb(
    env: dict, *args: str, fault: str = "", kill_after: float | None = None, timeout: float = RECOVERY_TIMEOUT
) -> tuple[int, str, float]:
    """Run the CLI; killed with SIGKILL after ``kill_after`` seconds when given. Returns
    (exit code, the end of standard error, seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ntsb_assets.cli", *args],
        cwd=REPO,
        env={**env, "NTSB_FAULT": fault},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=kill_after if kill_after is not None else timeout)
    except subprocess.TimeoutExpired:
        if kill_after is None:  # a recovery that does not end: stuck
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return -999, "timed out: stuck", time.perf_counter() - started
        proc.send_signal(signal.SIGKILL)  # the process alone: its children must die with it
        out, err = proc.communicate()
    return proc.returncode, (err or "")[-1500:], time.perf_counter() - started


def state(env: dict) -> dict[str, list[str]]:
    """Every raw table's row hashes, sorted."""
    code = (
        "import json\nfrom ntsb_assets.settings import get_settings\nwh = get_settings().warehouse\n"
        "if wh.dialect == 'duckdb' and not wh.path.exists():\n    print('{}')\n    raise SystemExit\n"
        "with wh.session(read_only=True) as s:\n"
        "    print(json.dumps({t: sorted(s.query(f'SELECT _row_hash FROM raw.{t}').column(0).to_pylist())"
        " for t in s.table_names() if not t.startswith('_')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def query(env: dict, sql: str) -> list:
    code = (
        "import json, sys\nfrom ntsb_assets.settings import get_settings\n"
        "with get_settings().warehouse.session(read_only=True) as s:\n"
        "    print(json.dumps(s.query(sys.argv[1]).to_pylist(), default=str))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sql], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def reference_load(env: dict, release: Path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom ntsb_assets.settings import get_settings\n"
        "from ntsb_assets.lib import registry\nfrom ntsb_assets.lib.extract import extract_release\n"
        "from ntsb_assets.lib.load import load_release\ns = get_settings()\np = Path(sys.argv[1])\n"
        "rid = registry.register(s.lake, p).release.release_id\n"
        "load_release(extract_release(p, s.lake, release_id=rid), s.lake, s.warehouse)"
    )
    subprocess.run([sys.executable, "-c", code, str(release)], cwd=REPO, env=env, check=True)


def lost(reference: dict, actual: dict) -> int:
    """Reference rows missing from the warehouse (a changed row counts as missing)."""
    from collections import Counter

    return sum(sum((Counter(rows) - Counter(actual.get(t, []))).values()) for t, rows in reference.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--updates", type=int, default=8)
    ap.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    with (
        tempfile.TemporaryDirectory(prefix="ntsb_drill_") as tmp,
        scratch_database(PG_ADMIN) if args.warehouse == "postgres" else _none() as url_a,
        scratch_database(PG_ADMIN) if args.warehouse == "postgres" else _none() as url_b,
    ):
        tmp = Path(tmp)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("NTSB_", "DAGSTER_"))}
        env = {**base_env, "NTSB_HOME": str(tmp / "drill"), "DO_NOT_TRACK": "1"}
        ref = {**base_env, "NTSB_HOME": str(tmp / "reference"), "DO_NOT_TRACK": "1"}
        if url_a:
            env["NTSB_WAREHOUSE_URL"], ref["NTSB_WAREHOUSE_URL"] = url_a, url_b
        releases = [tmp / "releases" / "base"]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ntsb_assets.cli",
                "synth",
                str(releases[0]),
                "--events",
                "2000",
                "--seed",
                str(args.seed),
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        for i in range(args.updates):
            up = tmp / "releases" / f"up{i + 1:02d}MAR"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ntsb_assets.cli",
                    "synth",
                    str(up),
                    "--update-of",
                    str(releases[-1]),
                    "--new",
                    "50",
                    "--changed",
                    "50",
                    "--seed",
                    str(args.seed + i + 1),
                ],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
            )
            releases.append(up)
        # a clean ingest's duration bounds the random delays
        code, err, clean = ntsb({**env, "NTSB_HOME": str(tmp / "timing")}, "ingest", str(releases[0]))
        assert code == 0, err
        print(
            f"clean ingest of the base: {clean:.1f} s; {args.runs} ingest runs, {args.builds} build runs, "
            f"seed {args.seed}, {args.warehouse}",
            flush=True,
        )

        rows, loaded = [], 0
        plan = ["ingest"] * args.runs + ["build"] * args.builds
        rng.shuffle(plan)
        if plan[0] == "build":
            plan.insert(0, plan.pop(plan.index("ingest")))
        for n, kind in enumerate(plan, 1):
            named = rng.random() < 0.5
            if kind == "ingest":
                if loaded < len(releases):
                    release, loaded = releases[loaded], loaded + 1
                    reference_load(ref, release)
                else:
                    release = rng.choice(releases)
                cmd = ("ingest", str(release))
                fault = rng.choice(POINTS) if named else ""
                delay = None if named else rng.uniform(0.5, clean)
            else:
                cmd = ("build", "--auc-margin", "-1", "--max-ece", "1")
                fault = "dbt" if named else ""
                delay = None if named else rng.uniform(2.0, 90.0)
            code, err, secs = ntsb(env, *cmd, fault=fault, kill_after=delay)
            killed = code == -signal.SIGKILL
            again, err2, secs2 = ntsb(env, *cmd)
            actual, reference = state(env), state(ref)
            missing = lost(reference, actual)
            exact = again == 0 and actual == reference
            if kind == "build" and exact:
                events = query(env, "SELECT count(*) AS n FROM raw.events")[0]["n"]
                fact = query(env, "SELECT count(DISTINCT ev_id) AS n FROM marts.fact_accidents")[0]["n"]
                exact = fact == events
            how = f"at {fault}" if fault else f"after {delay:.1f} s"
            print(
                f"[{n:3d}/{len(plan)}] {kind:6s} {Path(cmd[1]).name if kind == 'ingest' else '':10s} "
                f"killed {how:18s} {'killed' if killed else f'ended first ({code})':16s} "
                f"recovery {secs2:5.1f} s {'exact' if exact else 'NOT EXACT'}"
                + (f", {missing} rows lost" if missing else ""),
                flush=True,
            )
            if not exact:
                print(err2, file=sys.stderr)
            rows.append(
                {"kind": kind, "fault": fault, "delay": delay, "killed": killed, "recovered": exact, "lost": missing}
            )

    total, killed = len(rows), sum(r["killed"] for r in rows)
    recovered = sum(r["recovered"] for r in rows if r["killed"])
    lost_rows = sum(r["lost"] for r in rows)
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    command = (
        f"python benchmarks/fault_drill.py --runs {args.runs} --builds {args.builds} --seed {args.seed} "
        f"--updates {args.updates} --warehouse {args.warehouse}"
    )
    line = (
        f"| {args.warehouse} | {total} ({args.runs} ingest, {args.builds} build) | {killed} | "
        f"{recovered} of {killed} | {sum(r['recovered'] for r in rows)} of {total} | {lost_rows} |"
    )
    print(
        "\n| warehouse | runs | killed | killed runs that recovered with exact counts | "
        "all runs exact after recovery | rows lost |\n|---|---|---:|---:|---:|---:|\n" + line
    )
    print(f"`{command}` on {machine}, {time.strftime('%Y-%m-%d')}")
    if args.write:
        _write(args.write, line, command, machine)


def _write(doc: Path, line: str, command: str, machine: str) -> None:
    begin, end = "<!-- fault-drill -->", "<!-- /fault-drill -->"
    text = doc.read_text(encoding="utf-8")
    if begin not in text:
        raise SystemExit(f"{doc} has no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    block, tail = rest.split(end, 1)
    lines = [x for x in block.strip().splitlines() if x.startswith("| ") and not x.startswith(("| warehouse", "|---"))]
    warehouse = line.split("|")[1].strip()
    lines = [x for x in lines if x.split("|")[1].strip() != warehouse] + [line]
    body = [
        "| warehouse | runs | killed | killed runs that recovered with exact counts | "
        "all runs exact after recovery | rows lost |",
        "|---|---|---:|---:|---:|---:|",
        *sorted(lines),
        "",
        f"Last: `{command}` on {machine}, {time.strftime('%Y-%m-%d')}; each warehouse is its own run "
        "(`--warehouse duckdb|postgres`).",
    ]
    doc.write_text(head + begin + "\n" + "\n".join(body) + "\n" + end + tail, encoding="utf-8")


class _none:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
