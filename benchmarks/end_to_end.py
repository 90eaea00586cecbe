"""The whole graph end to end, from the raw release to the serving snapshot, through the
project's Dagster jobs (in process, as the automation runs them), embedded and on PostgreSQL:
wall time and peak RSS per stage, then one monthly update end to end.

    python benchmarks/end_to_end.py [--events 100000] [--new 2000] [--changed 1000]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--skip-pg] [--write docs/benchmarks.md]

Stages: extract (release archived, every table to typed Parquet in the lake, the lake's
schema-drift checks), load/CDC (the raw schema), quality (the release's statistical gate, the
raw gates: Great Expectations), dbt (models, snapshot, tests), archive
(Parquet by event year and the whole tables), analytics, ml (features and their
changed_since_training check; training, its checks and the promotion when that check fails;
batch predictions), serving (the API's snapshot or published version).

Each stage runs in a process forked from one that has imported the code location and opened
the Dagster instance once (as a run worker of a long-lived code server), so its time excludes
imports and its memory excludes every earlier stage. Its peak RSS is the process's own
high-water mark (VmHWM) plus the largest peak of the processes it waited for (dbt): an upper
bound. The releases are
generated first (not timed). The lake is a local folder in both deployments (S3 is covered
by the tests, not timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, scratch_database

sys.path.insert(0, str(REPO))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

STAGES = ("extract", "load/CDC", "quality", "dbt", "archive", "analytics", "ml", "serving")
GOALS = {"full build, embedded (s)": 60, "monthly update (s)": 20, "peak RSS (MB)": 2048}  # issue 27


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: its own address space) plus the largest
    peak of the processes it waited for (dbt), an upper bound of the stage's peak."""
    import resource

    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return (hwm + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def stage(results: dict, name: str, *steps) -> dict:
    """Run the ``steps`` (callables) in turn in a process forked from this one, as a run
    worker: the code location is imported (not counted), and no memory of an earlier stage
    is. Records the wall time and peak RSS under ``name``; returns the dicts the steps
    returned, merged (other return values are dropped)."""
    import json

    read, write = os.pipe()
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the stage's process
        os.close(read)
        code, out = 0, {}
        try:
            value: dict = {}
            for step in steps:
                returned = step()
                value |= returned if isinstance(returned, dict) else {}
            out = {"value": value}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails
            code, out = 1, {"error": f"{type(exc).__name__}: {exc}"}
        out["peak_rss_mb"] = _peak_rss_mb()
        os.write(write, json.dumps(out, default=str).encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        out = json.loads(fh.read() or "{}")
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - t
    if status or "error" in out:
        raise SystemExit(f"stage {name} failed: {out.get('error', status)}")
    prev = results.get(name, {"seconds": 0.0, "peak_rss_mb": 0.0})
    results[name] = {"seconds": prev["seconds"] + seconds, "peak_rss_mb": max(prev["peak_rss_mb"], out["peak_rss_mb"])}
    return out["value"]


class Pipeline:
    """The stages of one release, each a subset of the project's jobs run in process, the way
    the automation requests them (ntsb_assets/automation.py)."""

    def __init__(self):
        import dagster as dg
        import great_expectations  # noqa: F401 - imported by the quality stages, as the code server has it

        from ntsb_assets.definitions import defs

        self.dg, self.defs = dg, defs
        with dg.DagsterInstance.get():  # its storage's modules imported here too, not in the first run of each stage
            pass
        graph = defs.resolve_asset_graph()
        self.keys = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
        self.checks = list(graph.asset_check_keys)
        self.config = {"ops": {"ml__severity_model": {"config": {"auc_margin": -1.0, "max_ece": 1.0}}}}

    def _assets(self, *prefixes: str) -> set:
        return {k for s, k in self.keys.items() if s.startswith(prefixes)}

    def _run(self, job_name: str, assets: set, checks: set | None = None, **kw):
        job = self.defs.resolve_job_def(job_name)
        assets &= set(job.asset_layer.executable_asset_keys)
        sub = job.get_subset(asset_selection=assets, asset_check_selection=checks)
        with self.dg.DagsterInstance.get() as instance:
            result = sub.execute_in_process(instance=instance, raise_on_error=False, **kw)
        if not result.success:
            failed = [e.message for e in result.all_events if e.is_failure]
            raise RuntimeError(f"{job_name} failed: {failed}")
        return result

    def _checks(self, *names: str, assets: set | None = None) -> set:
        return {c for c in self.checks if c.name in names and (assets is None or c.asset_key in assets)}

    def release(self, path: Path, results: dict, label: str) -> None:
        from ntsb_assets.lib import registry
        from ntsb_assets.releases import RELEASES
        from ntsb_assets.settings import get_settings

        settings = get_settings()
        pk = registry.register(settings.lake, path).release.release_id
        with self.dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(RELEASES.name, [pk])
        models = self._assets("warehouse/") - self._assets("warehouse/raw/")
        dbt_tests = {c for c in self.checks if c.asset_key in models and "freshness" not in c.name}
        stage(
            results,
            f"{label}extract",
            lambda: self._run("ingest_release", self._assets("releases/", "lake/raw/"), partition_key=pk),
        )
        stage(
            results,
            f"{label}load/CDC",
            lambda: self._run("ingest_release", self._assets("warehouse/raw/"), set(), partition_key=pk),
        )
        stage(
            results,
            f"{label}quality",  # the statistical gate of the release, then the raw gates
            lambda: self._run("ingest_release", set(), self._checks("statistical_gate"), partition_key=pk),
            lambda: self._run("transform", set(), self._checks("schema_gate", "business_gate")),
        )
        stage(results, f"{label}dbt", lambda: self._run("transform", models, dbt_tests))
        stage(
            results,
            f"{label}archive",
            lambda: self._run("transform", self._assets("archive/"), set()),
            lambda: self._archive_years(settings),
        )
        stage(results, f"{label}analytics", lambda: self._run("analytics", self._assets("analytics/")))
        retrained = stage(results, f"{label}ml", self._ml)
        results[f"{label}ml"]["retrained"] = retrained["retrained"]
        stage(results, f"{label}serving", lambda: self._run("serving", self._assets("serving/"), set()))

    def _ml(self) -> dict:
        """The features and their changed_since_training check; when it fails (first build, or
        more changed than the threshold), training, its checks and the promotion; then the
        batch predictions (what the automation requests)."""
        features = self._assets("ml/features")
        result = self._run("ml", features, self._checks("changed_since_training"))
        drifted = any(
            not e.asset_check_evaluation_data.passed
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        if drifted:
            model = self._assets("ml/severity_model", "ml/champion")
            self._run("ml", model, {c for c in self.checks if c.asset_key in model}, run_config=self.config)
        self._run("ml", self._assets("ml/batch_predictions"), set())
        return {"retrained": drifted}

    def _archive_years(self, settings):
        from ntsb_assets.archive import archive_runs

        for tags in archive_runs(settings):
            with self.dg.DagsterInstance.get() as instance:
                result = self.defs.resolve_job_def("archive").execute_in_process(
                    instance=instance, tags=tags, raise_on_error=False
                )
            if not result.success:
                raise RuntimeError(f"archive failed: {tags}")


def deployment(name: str, base: Path, update: Path, env: dict) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix=f"ntsb-e2e-{name}-") as tmp:
        os.environ.update({"NTSB_HOME": f"{tmp}/var", "DAGSTER_HOME": f"{tmp}/var/dagster", **env})
        os.makedirs(f"{tmp}/var/dagster")
        shutil.copy(
            REPO / "deploy" / "dagster.embedded.yaml", f"{tmp}/var/dagster/dagster.yaml"
        )  # the embedded instance
        p = Pipeline()
        t = time.perf_counter()
        p.release(base, results, "")
        results["full build"] = {
            "seconds": time.perf_counter() - t,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results.values()),
        }
        t = time.perf_counter()
        p.release(update, results, "update: ")
        results["monthly update"] = {
            "seconds": time.perf_counter() - t,
            "peak_rss_mb": max(v["peak_rss_mb"] for k, v in results.items() if k.startswith("update: ")),
        }
        for k in env:
            os.environ.pop(k, None)
    return results


def table(title: str, command: str, runs: dict[str, dict]) -> str:
    import platform

    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    names = list(runs)
    lines = [
        f"### {title}",
        "",
        f"`{command}` on {machine}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| stage | " + " | ".join(f"{n} s | {n} peak RSS (MB)" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    for stage in [*STAGES, "full build", *(f"update: {s}" for s in STAGES), "monthly update"]:
        cells, retrained = [], []
        for n in names:
            r = runs[n].get(stage)
            cells += [f"{r['seconds']:.1f}", f"{r['peak_rss_mb']:.0f}"] if r else ["-", "-"]
            retrained += [n] if r and r.get("retrained") else []
        bold = "**" if stage in ("full build", "monthly update") else ""
        note = f" (retrained: {', '.join(retrained)})" if retrained else ""
        lines.append(f"| {bold}{stage}{bold}{note} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=2000)
    ap.add_argument("--changed", type=int, default=1000)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    from ntsb_assets.lib import synth

    with tempfile.TemporaryDirectory(prefix="ntsb-e2e-releases-") as tmp:
        base, update = Path(tmp) / f"synth{args.events}", Path(tmp) / "up01"
        synth.generate(base, args.events, seed=1)
        synth.generate_update(base, update, args.new, args.changed, seed=2)
        runs = {"embedded": deployment("embedded", base, update, {})}
        if not args.skip_pg:
            with scratch_database(args.pg) as url:
                runs["PostgreSQL"] = deployment(
                    "postgres", base, update, {"NTSB_WAREHOUSE_URL": url, "NTSB_MLFLOW_URI": url}
                )
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--write" and (i == 0 or sys.argv[i] != "--write")]
    command = " ".join(["python benchmarks/end_to_end.py", *shown])
    text = table(
        f"End to end, {args.events:,} generated events, then {args.new:,} new + {args.changed:,} changed", command, runs
    )
    emb = runs["embedded"]
    peak = max(r["peak_rss_mb"] for run in runs.values() for r in run.values())
    text += (
        f"\nGoals: full build embedded {emb['full build']['seconds']:.0f} s "
        f"(goal < {GOALS['full build, embedded (s)']} s); "
        f"monthly update {max(r['monthly update']['seconds'] for r in runs.values()):.0f} s at most "
        f"(goal < {GOALS['monthly update (s)']} s); peak RSS {peak:.0f} MB (goal < {GOALS['peak RSS (MB)']} MB).\n"
    )
    print(text)
    if args.write:
        with open(args.write, "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
