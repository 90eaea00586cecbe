"""The ``ntsb`` command line: ingest releases, build the asset graph, query the warehouse,
run the demo. Every command reads the same NTSB_* settings as the Dagster code."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]


def _console():
    from .console import console

    return console()


@contextmanager
def _reporting(settings, as_json: bool, verbose: bool):
    """Progress for a long command (bars, lines or JSON events: ntsb_assets/console.py) and
    the libraries' output in the log file; yields the reporter."""
    from .console import Reporter, is_terminal, third_party_to_log

    mode = "json" if as_json else ("tty" if is_terminal() else "plain")
    # with --json, standard output is the JSON document alone: shown output goes to stderr
    shown = contextlib.redirect_stdout(sys.stderr) if as_json and verbose else contextlib.nullcontext()
    with Reporter(mode) as reporter, third_party_to_log(settings.home, verbose) as log, shown:
        reporter.log = log
        yield reporter


def _settings():
    from .lib import warehouse
    from .settings import SettingsError, get_settings

    if not warehouse.wait_listeners:  # say why a command waits, even while Dagster's log is quiet
        warehouse.wait_listeners.append(_say_waiting)
    settings = get_settings()
    try:
        settings.check()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _say_waiting(message: str) -> None:
    """A wait, told where the reader looks: through the progress reporter while one runs
    (its streams are the terminal's; the process's own go to the log file then), else on
    standard error."""
    from .lib import progress

    if progress.listeners:
        progress.note(message)
    else:
        _console().print(message, style="yellow", markup=False, highlight=False)


def _dagster_home(settings) -> Path:
    """DAGSTER_HOME (absolute) with the project's instance config in it and its storage created."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    cfg = home / "dagster.yaml"
    src = REPO / "deploy" / "dagster.embedded.yaml"
    if src.exists():  # the project's file, kept current (one it did not write is left alone)
        template = src.read_text()
        current = cfg.read_text() if cfg.exists() else None
        if current is None or (current != template and current.splitlines()[:1] == template.splitlines()[:1]):
            cfg.write_text(template)
    for k, v in (("DO_NOT_TRACK", "1"), ("DAGSTER_DISABLE_TELEMETRY", "1")):
        os.environ.setdefault(k, v)
    _create_instance_storage(home)
    return home


def _create_instance_storage(home: Path) -> None:
    """Dagster creates its storage's tables on a home's first use. Two processes doing that at
    once (two `ntsb ingest` on a new home, a command beside the daemon) fail with "table runs
    already exists", or leave two alembic heads that break every later command. The first
    command on a home creates them under an exclusive lock on the home; a marker names the
    instance configuration they were created for (the file and its PostgreSQL settings), so
    later commands skip this until that changes."""
    import fcntl
    import hashlib

    cfg = home / "dagster.yaml"
    config = (cfg.read_text() if cfg.exists() else "") + "".join(
        f"\n{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("DAGSTER_PG_")
    )
    stamp = hashlib.sha256(config.encode()).hexdigest()[:16]
    marker = home / ".storage-created"
    if marker.exists() and marker.read_text() == stamp:
        return
    with open(home / ".storage.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes, or its process dies
        if marker.exists() and marker.read_text() == stamp:  # another command created them meanwhile
            return
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:  # run, event-log and schedule storage
            instance.get_runs(limit=1)
            instance.all_instigator_state()
            instance.get_daemon_heartbeats()
        marker.write_text(stamp)


class _Failed(Exception):
    pass


def _require_free_port(host: str, port: int, option: str = "--port") -> None:
    """Fail before any banner when the address cannot be listened on."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                f"(another service there? choose another with {option})"
            ) from None


def _definitions():
    """The Dagster definitions, with the dbt manifest they need built first."""
    from .transform.project import prepare_manifest

    prepare_manifest()
    from .definitions import defs

    return defs


IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def _wait_for_daemon_runs(instance, release_id: str) -> list:
    """One writer at a time, visibly, and no release ingested twice at once: while the
    Dagster daemon of this home runs, an ingest run of the same release that it queued or
    runs is waited for, saying which (Ctrl-C stops the wait). Without a live daemon, or for
    a run whose event log has been silent for STALE_RUN seconds (its process was killed),
    nothing is waited for. Returns the runs waited for."""
    import time

    import dagster as dg

    from .lib import progress

    waited: dict = {}
    told = 0.0
    while True:
        try:
            beats = list(instance.get_daemon_heartbeats().values())
        except Exception:  # an instance without a daemon's tables
            beats = []
        if not any(time.time() - b.timestamp < 120 for b in beats):
            return list(waited.values())
        runs = [
            r
            for r in instance.get_runs(
                filters=dg.RunsFilter(
                    statuses=[dg.DagsterRunStatus[s] for s in IN_FLIGHT],
                    job_name="ingest_release",
                    tags={"dagster/partition": release_id},
                )
            )
            if time.time() - _last_event(instance, r) < STALE_RUN
        ]
        if not runs:
            return list(waited.values())
        waited.update({r.run_id: r for r in runs})
        if time.monotonic() - told >= 60:
            progress.note(
                f"{release_id}: the Dagster daemon already ingests it (run {runs[0].run_id[:8]}); "
                "waiting for that run instead of starting another"
            )
            told = time.monotonic()
        time.sleep(2)


STALE_RUN = 600.0


def _last_event(instance, run) -> float:
    """When the run last logged an event (its creation when none)."""
    records = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records
    if records:
        return records[0].event_log_entry.timestamp
    return instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()


def _reconciliation_of(settings, release_id: str) -> dict | None:
    """What the warehouse recorded for a release it has loaded (raw._reconciliation)."""
    from .lib.cdc import COUNTS

    with settings.warehouse.session(read_only=settings.warehouse.dialect == "postgres") as s:
        if s.columns("_reconciliation") is None:
            return None
        rows = s.query(f"SELECT * FROM raw._reconciliation WHERE release_id = {s.ph}", (release_id,)).to_pylist()
    if not rows:
        return None
    return {
        "release": release_id,
        "tables": {r["table_name"]: {c: r.get(c) or 0 for c in COUNTS} for r in rows},
        "code_lag": [],
        "by": "a run already on this home",
    }


def _run_release(release_id: str, instance) -> dict:
    """Run the ingest job for one release partition in this process; return its
    reconciliation or raise _Failed with the error the run ended with. A run of the daemon
    that already ingests it is waited for, not repeated."""
    import time

    from . import keys
    from .lib import progress
    from .releases import RELEASES
    from .settings import get_settings

    with progress.stage("ingest", release_id) as stage:
        started = time.perf_counter()
        if _wait_for_daemon_runs(instance, release_id):
            done = _reconciliation_of(get_settings(), release_id)
            if done is not None:
                stage["summary"] = _ingest_line(done, 0) + " (by the run waited for)"
                return done
        if release_id not in instance.get_dynamic_partitions(RELEASES.name):
            instance.add_dynamic_partitions(RELEASES.name, [release_id])
        run = _materialize(instance, "ingest_release", partition_key=release_id)
        if not run.success:
            failed_checks = [
                f"check {d.check_name} on {d.asset_key.to_user_string()} failed ({d.severity.value}): "
                + "; ".join(
                    f"{k} {v.value}" for k, v in d.metadata.items() if k in ("added", "removed", "retyped") and v.value
                )
                for d in run.checks
                if not d.passed and d.severity.value == "ERROR"
            ]
            if failed_checks:
                raise _Failed("\n".join(["blocking check(s) failed:", *failed_checks]))
            raise _Failed(run.errors)
        for mat in run.materialized(keys.RECONCILIATION):
            reconciliation = mat.metadata["result"].value
            stage["summary"] = _ingest_line(reconciliation, time.perf_counter() - started)
            return reconciliation
        raise _Failed(f"run {run.run_id} did not load the warehouse")


def _ingest_line(result: dict, seconds: float) -> str:
    """A release's reconciliation in one line: the real totals over its tables."""
    from .lib.cdc import COUNTS

    tables = result["tables"]
    total = {c: sum(t.get(c, 0) for t in tables.values()) for c in COUNTS}
    parts = [f"{total[c]:,} {c.replace('_', ' ')}" for c in COUNTS[1:] if total[c] or c in ("inserted", "updated")]
    lag = result.get("code_lag", [])
    return (
        f"{len(tables)} tables, {total['rows_in']:,} rows in: "
        + ", ".join(parts)
        + (f"; {len(lag)} codes unknown to NTSB's code sources" if lag else "")
        + (f" ({total['rows_in'] / seconds:,.0f} rows/s)" if seconds > 0 else "")
    )


@dataclass
class _Run:
    """What one run materialized and checked, read back from the instance's records."""

    run_id: str
    success: bool
    materializations: list  # AssetMaterialization, in the order they were recorded
    checks: list  # AssetCheckEvaluation
    errors: str  # the errors of its failed steps, without Dagster's wrapping

    def materialized(self, key) -> list:
        return [m for m in self.materializations if m.asset_key == key]

    @classmethod
    def of(cls, instance, run_id: str, success: bool = True) -> _Run:
        """A run's materializations, check evaluations and step errors, from its records."""
        import dagster as dg

        kinds = {
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.STEP_FAILURE,
        }
        events = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(run_id, of_type=kinds).records]
        of = lambda kind: [e for e in events if e.event_type == kind]  # noqa: E731
        return cls(
            run_id,
            success,
            [e.event_specific_data.materialization for e in of(dg.DagsterEventType.ASSET_MATERIALIZATION)],
            [e.asset_check_evaluation_data for e in of(dg.DagsterEventType.ASSET_CHECK_EVALUATION)],
            _step_errors([e.step_failure_data.error for e in of(dg.DagsterEventType.STEP_FAILURE)])
            or f"run {run_id} failed",
        )


def _materialize(instance, job: str, **kwargs) -> _Run:
    """Run one of the jobs the automation declares (ntsb_assets/jobs.py) in this process:
    ``partition_key``, ``tags``, ``run_config`` and ``asset_selection`` as Dagster takes them."""
    from .lib.memory import release_memory

    run_config = {**QUIET, **kwargs.pop("run_config", {})}
    result = (
        _definitions()
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False, run_config=run_config, **kwargs)
    )
    release_memory()  # the next run starts from what this one freed, not from its peak
    return _Run.of(instance, result.run_id, result.success)


def _step_errors(errors: list) -> str:
    messages = []
    for err in errors:
        while err.cause is not None and err.cls_name == "DagsterExecutionStepExecutionError":
            err = err.cause
        if err.cls_name == "DagsterExecutionInterruptedError":
            messages.append("interrupted (Ctrl-C or SIGTERM)")
            continue
        # "package.module.SomeError: message" -> "message"
        messages.append(re.sub(r"^[\w.]+(Error|Exception): ", "", err.message.strip()))
    return "\n".join(messages)


QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ntsb-lakehouse")
def main():
    """NTSB aviation accident lakehouse.

    Turns NTSB releases (avall.mdb, Pre2008.mdb, monthly upDDMON.mdb files, or folders and
    zips of mdb-export CSVs) into a Parquet lake and a warehouse, as Dagster assets.

    Configuration comes from NTSB_* environment variables or a .env file: NTSB_HOME (default
    ./var) holds the embedded DuckDB warehouse, lake and Dagster instance; NTSB_WAREHOUSE_URL
    and NTSB_LAKE_URL select PostgreSQL and S3/MinIO instead.
    """


VERBOSE = click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show what dbt, MLflow and Dagster print (otherwise in $NTSB_HOME/logs/ntsb.log).",
)


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the reconciliation as JSON (progress as JSON lines on standard error).",
)
@click.option(
    "--allow-synthetic",
    is_flag=True,
    help="Load a generated (ntsb synth) release into a home that holds real ones, or the reverse.",
)
@VERBOSE
def ingest(path: Path, as_json: bool, allow_synthetic: bool = False, verbose: bool = False):
    """Ingest one release file or folder now and wait for the result.

    Registers PATH as a release (name + SHA-256), then runs the ingest_release job for it:
    archive, extract every table to Parquet, merge into the warehouse raw schema. Prints,
    per table, rows in = inserted + updated + unchanged + quarantined.
    """
    from dagster import DagsterInstance

    from .lib import registry
    from .lib.sources import SourceError

    settings = _settings()
    _dagster_home(settings)
    console = _console()
    try:
        reg = registry.register(settings.lake, path)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    if reg.duplicate_of:
        msg = {"release": reg.release.release_id, "duplicate_of": reg.duplicate_of, "tables": {}}
        console.print(f"{path.name}: same content as release {reg.duplicate_of}; not ingested again")
        if as_json:
            click.echo(json.dumps(msg, indent=2))
        return
    if not allow_synthetic:
        _refuse_synthetic_mix(settings, [reg.release])
    with _reporting(settings, as_json, verbose), DagsterInstance.get() as instance:
        try:
            result = _run_release(reg.release.release_id, instance)
        except _Failed as exc:
            raise click.ClickException(f"{path.name}: ingestion failed, the warehouse is unchanged.\n{exc}") from None
    _print_result(result, as_json)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    from .console import console
    from .lib.cdc import COUNTS

    out = console(stdout=True)
    t = Table(title=f"release {result['release']}")
    t.add_column("table")
    for c in COUNTS:
        t.add_column(c.replace("_", " "), justify="right")
    for name, counts in result["tables"].items():
        t.add_row(name, *(f"{counts.get(c, 0):,}" for c in COUNTS))
    out.print(t)
    superseded = sum(c.get("superseded", 0) for c in result["tables"].values())
    if superseded:
        _console().print(
            f"{superseded:,} changed rows were not applied (superseded): a release registered after "
            "this one had already loaded a newer version of them, which stays. Releases land in "
            "registration order (raw._reconciliation).",
            style="yellow",
            markup=False,
        )
    lag = sorted(result.get("code_lag", []), key=lambda x: -x["row_count"])
    if lag:
        t = Table(
            title=f"dictionary lag: {len(lag)} codes no NTSB code source knows, in "
            f"{sum(x['row_count'] for x in lag):,} rows (loaded, labelled 'unknown code'; raw._code_lag)"
        )
        for c in ("table", "column", "code", "rows", "of the column's"):
            t.add_column(c, justify="right" if c in ("rows", "of the column's") else "left")
        for x in lag[:10]:
            t.add_row(x["table_name"], x["column_name"], x["code"], f"{x['row_count']:,}", f"{x['column_rows']:,}")
        out.print(t)


@main.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print the results as JSON (progress as JSON lines on standard error)."
)
@click.option(
    "--auc-margin",
    type=float,
    default=None,
    help="Severity model check: ROC-AUC over the majority baseline needed, validation years "
    "(default 0.05; -1 accepts any).",
)
@click.option(
    "--max-ece",
    type=float,
    default=None,
    help="Severity model check: largest calibration error allowed, validation years (default 0.05; 1 accepts any).",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Train the severity model even when its features changed less than NTSB_RETRAIN_THRESHOLD "
    "since the latest training (what the automation does monthly).",
)
@click.option(
    "--allow-synthetic",
    is_flag=True,
    help="Load generated (ntsb synth) releases into a home that holds real ones, or the reverse.",
)
@VERBOSE
def build(
    as_json: bool,
    auc_margin: float | None = None,
    max_ece: float | None = None,
    retrain: bool = False,
    allow_synthetic: bool = False,
    verbose: bool = False,
):
    """Materialize the whole asset graph, as the automation would (ntsb_assets/automation.py).

    Scans the landing zone (NTSB_LANDING_URL) for new releases, then ingests, in
    registration order, every release the warehouse has not loaded yet; then the quality
    gates, dbt build with its tests and the docs site, the Parquet archive of the event years
    whose rows changed, the analytics and the model's features; the severity model when its
    features changed beyond NTSB_RETRAIN_THRESHOLD (or with --retrain); the batch
    predictions and the API's serving snapshot. Shows progress as it goes and ends with one
    summary.
    """
    import time

    from dagster import DagsterInstance

    from .lib import registry

    started = time.perf_counter()
    settings = _settings()
    _dagster_home(settings)
    regs, _ = registry.scan_landing(settings.landing, settings.lake)
    for r in regs:
        if r.duplicate_of:
            _console().print(f"{r.name}: same content as release {r.duplicate_of}; skipped", markup=False)
        if r.refused:
            _console().print(f"{r.name}: refused, not registered: {r.refused}", style="red", markup=False)
    loaded = _loaded_releases(settings)
    todo = [r for r in registry.all_releases(settings.lake) if r.release_id not in loaded]
    if not allow_synthetic:
        _refuse_synthetic_mix(settings, todo, loaded)
    results = []
    with _reporting(settings, as_json, verbose) as reporter, DagsterInstance.get() as instance:
        for rel in todo:
            try:
                results.append(_run_release(rel.release_id, instance))
            except _Failed as exc:
                raise click.ClickException(
                    f"{rel.name}: ingestion failed, the warehouse keeps the releases before it.\n{exc}"
                ) from None
        transform = _run_transform(instance)
        published = _run_archive_and_analytics(instance, settings)
        published["ml"] = _run_ml(
            instance,
            settings,
            {k: v for k, v in (("auc_margin", auc_margin), ("max_ece", max_ece)) if v is not None},
            retrain=retrain,
        )
        published["serving"] = _run_serving(instance, settings, published["ml"])
        log = reporter.log
    summary = {
        "releases": results,
        "already_loaded": sorted(loaded),
        "transform": transform,
        **published,
        "seconds": round(time.perf_counter() - started, 1),
        "log": str(log) if log else None,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_build(summary)


def _print_build(summary: dict) -> None:
    """The build's one summary: every number from what the runs reported."""
    out = _console()
    results, t = summary["releases"], summary["transform"]
    lag = {(x["table_name"], x["column_name"], x["code"]) for r in results for x in r.get("code_lag", [])}
    lines = [
        f"built in {summary['seconds']:.0f} s",
        f"  releases   {len(results)} ingested, {len(summary['already_loaded'])} already loaded"
        + (
            f"; {len(lag)} codes unknown to NTSB's code sources, loaded as 'unknown code' (raw._code_lag)"
            if lag
            else ""
        ),
        f"  dbt        {t['models']} models and {t['snapshots']} snapshot(s) built; {t['tests']} tests: "
        f"{t['tests_passed']} passed, {t['tests_warned']} warned, {t['tests_failed']} failed",
        f"  checks     {t['checks']} quality checks: {t['checks_passed']} passed, {t['checks_warned']} warned, "
        f"{t['checks_failed']} failed",
    ]
    years, archive = summary["archive"]["years"], summary["archive"]
    lines.append(
        f"  archive    {len(years)} event year(s) rewritten in {archive['runs']} run(s)"
        + (f" ({', '.join(map(str, years))})" if 0 < len(years) <= 10 else "")
    )
    lines.append(f"  analytics  {', '.join(summary['analytics'])}")
    vectors = summary["narrative_vectors"]
    if vectors["texts"] is not None:
        lines.append(
            f"  narratives {vectors['texts']:,} texts with vectors, {vectors['embedded']:,} embedded now"
            + (f"; {vectors['waiting']:,} waiting (NTSB_EMBED_MAX_TEXTS)" if vectors["waiting"] else "")
        )
    ml = summary["ml"]
    failed = [c for c, ok in ml["checks"].items() if not ok]
    drift = ml["drift"]
    if ml["retrained"]:
        model = f"{ml['model']} version {ml['version']} ({ml['family']}) registered; " + (
            f"checks failed ({', '.join(failed)}), not promoted; " if failed else "checks passed; "
        )
    else:
        model = (
            f"not retrained: {drift.get('share', 0):.1%} of the features changed since the latest training "
            f"(threshold {drift.get('threshold', 0):.0%}; --retrain trains anyway); "
        )
    lines.append(f"  model      {model}champion {ml['champion'] or 'none'}; {ml['predictions']:,} events predicted")
    lines.append(f"  serving    data version {summary['serving']}")
    for line in lines:
        out.print(line, markup=False, highlight=False)
    if not ml["champion"]:
        out.print(
            "No champion model yet, so the API's predictions answer 503 (its data routes serve): no "
            "candidate passed the checks on the validation years (`ntsb model info`, docs/ml.md); to "
            "try the whole path anyway: ntsb build --retrain --auc-margin -1 --max-ece 1",
            style="yellow",
            markup=False,
        )
    if summary.get("log"):
        out.print(
            f"per-table counts: ntsb build --json, or raw._reconciliation; what dbt, MLflow and Dagster "
            f"printed: {summary['log']}",
            markup=False,
            highlight=False,
        )


def _refuse_synthetic_mix(settings, releases, loaded: set[str] | None = None) -> None:
    """Generated releases (ntsb synth writes a marker) and real ones do not mix in one home
    unless asked (--allow-synthetic): a synthetic event among real ones would be counted as
    real in every statistic."""
    from .lib import registry

    mixed = registry.synthetic_mix(settings.lake, _loaded_releases(settings) if loaded is None else loaded, releases)
    if mixed:
        raise click.ClickException(mixed + "; use a separate NTSB_HOME, or pass --allow-synthetic")


def _run_transform(instance) -> dict:
    """Materialize the dbt models through Dagster (job ``transform``): the models, dbt's
    tests and the quality checks, counted apart (dbt's tests by their names in the
    manifest, as dbt counts them)."""
    import dagster as dg

    from .lib import progress
    from .transform.project import dbt_project

    with progress.stage("dbt", "build, tests, quality checks, docs") as stage:
        run = _materialize(instance, "transform")
        nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
        dbt_tests = {n["name"] for n in nodes.values() if n["resource_type"] == "test"}
        snapshots = {n["name"] for n in nodes.values() if n["resource_type"] == "snapshot"}
        checks = run.checks

        def counts(group):
            failed = [c for c in group if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
            warned = [c for c in group if not c.passed and c.severity == dg.AssetCheckSeverity.WARN]
            return len(group), len(group) - len(failed) - len(warned), len(warned), failed

        tests = counts([c for c in checks if c.check_name in dbt_tests])
        quality = counts([c for c in checks if c.check_name not in dbt_tests])
        failed = [f"{c.asset_key.to_user_string()} {c.check_name}" for c in tests[3] + quality[3]]
        if not run.success:
            raise click.ClickException(
                "dbt build failed" + (": " + ", ".join(failed) if failed else f":\n{run.errors}")
            )
        built = [m.asset_key.path[-1] for m in run.materializations if m.asset_key.path[0] == "warehouse"]
        out = {
            "models": sum(1 for b in built if b not in snapshots),
            "snapshots": sum(1 for b in built if b in snapshots),
            "tests": tests[0],
            "tests_passed": tests[1],
            "tests_warned": tests[2],
            "tests_failed": len(tests[3]),
            "checks": quality[0],
            "checks_passed": quality[1],
            "checks_warned": quality[2],
            "checks_failed": len(quality[3]),
        }
        stage["summary"] = (
            f"{out['models']} models, {out['snapshots']} snapshot(s); dbt tests {out['tests_passed']} "
            f"passed, {out['tests_warned']} warned; quality checks {out['checks_passed']} passed, "
            f"{out['checks_warned']} warned"
        )
    return out


def _run_archive_and_analytics(instance, settings) -> dict:
    """Archive the event years that changed (job ``archive``, one run per range of years),
    then the analytics and the model's features with their changed_since_training check
    (job ``analytics``)."""
    from . import keys
    from .archive import archive_runs
    from .lib import progress
    from .lib.archive import ArchiveError

    with progress.stage("archive", "Parquet by event year") as stage:
        try:
            runs = archive_runs(settings)
        except ArchiveError as exc:
            raise click.ClickException(f"archive: {exc}") from None
        years = []
        for tags in runs:
            first, last = (int(tags[t]) for t in (keys.PARTITION_RANGE_START, keys.PARTITION_RANGE_END))
            progress.step("archive", f"years {first}-{last}", done=len(years), unit="years")
            run = _materialize(instance, "archive", tags=tags)
            if not run.success:
                raise click.ClickException(f"archive of years {first}-{last} failed:\n{run.errors}")
            years += range(first, last + 1)
        stage["summary"] = f"{len(years)} event year(s) rewritten in {len(runs)} run(s)" if runs else "nothing changed"
    with progress.stage("analytics", "trends, clusters, correlations, risk, model features") as stage:
        run = _materialize(instance, "analytics")
        if not run.success:
            raise click.ClickException(f"analytics failed:\n{run.errors}")
        done = sorted(m.asset_key.to_user_string() for m in run.materializations)
        stage["summary"] = f"{len(done)} assets: " + ", ".join(d.split("/")[-1] for d in done)
        embedded = [m.metadata for m in run.materialized(keys.NARRATIVE_EMBEDDINGS)]
        vectors = {
            name: embedded[-1][label].value if embedded and label in embedded[-1] else None
            for name, label in (
                ("texts", "texts"),
                ("embedded", "texts embedded now"),
                ("waiting", "texts waiting (over NTSB_EMBED_MAX_TEXTS)"),
            )
        }
        if vectors["waiting"]:
            stage["summary"] += (
                f"; {vectors['waiting']:,} narrative texts wait for their vectors (NTSB_EMBED_MAX_TEXTS): "
                "the next build embeds more"
            )
    return {"archive": {"runs": len(runs), "years": years}, "analytics": done, "narrative_vectors": vectors}


def _run_ml(instance, settings, thresholds: dict | None = None, retrain: bool = False) -> dict:
    """The severity model as the automation declares it (``RETRAIN`` in automation.py):
    trained again only when the features just materialized (job ``analytics``) failed their
    ``changed_since_training`` check (never trained, or more changed than
    NTSB_RETRAIN_THRESHOLD), or when asked (``retrain``, the automation's monthly cron).
    A model that fails its checks is not an error of the build: it stays registered without
    the champion alias, and the previous champion keeps predicting. ``thresholds``
    overrides the checks' (``auc_margin``, ``max_ece``)."""
    from . import keys
    from .lib import progress, tracking

    latest = instance.get_latest_materialization_event(keys.FEATURES)
    drift = next(
        (
            c
            for c in reversed(_Run.of(instance, latest.run_id).checks if latest else [])
            if c.asset_key == keys.FEATURES and c.check_name == "changed_since_training"
        ),
        None,
    )
    changed = {k: v.value for k, v in drift.metadata.items()} if drift is not None else {}
    why = "asked" if retrain else ("features changed" if drift is None or not drift.passed else "")
    out: dict = {"model": tracking.MODEL_NAME, "retrained": bool(why), "drift": changed}
    if why:
        config = {"ops": {"ml__severity_model": {"config": thresholds}}} if thresholds else {}
        with progress.stage("model", "train, check, promote") as stage:
            run = _materialize(instance, "ml", asset_selection=[keys.MODEL, keys.CHAMPION], run_config=config)
            checks = {c.check_name: c.passed for c in run.checks if c.asset_key == keys.MODEL}
            trained = [m.metadata for m in run.materialized(keys.MODEL)]
            if not trained or not run.success:
                raise click.ClickException(f"severity model failed:\n{run.errors}")
            failed = [c for c, ok in checks.items() if not ok]
            out.update(version=trained[0]["version"].value, family=trained[0]["family"].value, checks=checks)
            stage["summary"] = f"version {out['version']} ({out['family']}); " + (
                f"checks failed ({', '.join(failed)}), not promoted" if failed else "checks passed"
            )
    else:
        out.update(version=None, family=None, checks={})
    with _registry(settings) as client:
        out["champion"] = tracking.champion_version(client)
    return out


def _run_serving(instance, settings, ml: dict) -> str:
    """The ``serving`` job: the champion's batch predictions, then the API's snapshot (or
    published version); returns the data version the API now serves. Without a champion
    (no version passed its checks yet) there is nothing to predict with, and the automation
    does not request the predictions either: the snapshot alone."""
    from . import keys
    from .lib import progress
    from .lib.predictions import PREDICTIONS_TABLE

    with progress.stage("snapshot", "predictions and what the API serves") as stage:
        run = _materialize(instance, "serving", **({} if ml["champion"] else {"asset_selection": [keys.SNAPSHOT]}))
        if not run.success:
            raise click.ClickException(f"predictions or serving snapshot failed:\n{run.errors}")
        version = next(m.metadata["data version"].value for m in run.materializations if "data version" in m.metadata)
        ml["predictions"] = 0
        if ml["champion"]:
            with settings.warehouse.session(read_only=settings.warehouse.dialect == "duckdb") as s:
                if s.columns(PREDICTIONS_TABLE[1], PREDICTIONS_TABLE[0]) is not None:
                    n = s.query(f"SELECT count(*) AS n FROM {'.'.join(PREDICTIONS_TABLE)}").column(0)[0].as_py()
                    ml["predictions"] = n
        stage["summary"] = f"data version {version}; {ml['predictions']:,} events predicted"
    return version


def _loaded_releases(settings) -> set[str]:
    with settings.warehouse.session(read_only=settings.warehouse.dialect == "postgres") as s:
        if s.columns("_releases") is None:
            return set()
        return set(s.query("SELECT release_id FROM raw._releases").column(0).to_pylist())


@contextmanager
def _registry(settings=None):
    """An MLflow client on the configured store; its errors become command errors."""
    from .lib import tracking

    try:
        with tracking.session(tracking.Store.from_settings(settings or _settings())) as client:
            yield client
    except tracking.TrackingError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def model():
    """The severity model in the MLflow registry (NTSB_MLFLOW_URI)."""


@model.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def model_info(as_json: bool):
    """The champion: name, version, alias, split years, and its test metrics next to both
    baselines'."""
    from .lib import model as M
    from .lib import tracking

    with _registry() as client:
        info = tracking.info(client)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    split, sizes = info["split"], info["sizes"]
    click.echo(
        f"{info['name']} version {info['version']} (alias {info['alias']}), data version "
        f"{info['data_version']}, checks {info['checks']}\n"
        f"split by event year: train {split['train']} ({sizes['train']} events), validation "
        f"{split['valid']} ({sizes['valid']}), test {split['test']} ({sizes['test']})\n"
        "metrics on the test years:\n"
    )
    click.echo(M.metrics_markdown(info["metrics"]))


@model.command("promote")
@click.argument("version")
def model_promote(version: str):
    """Give VERSION the champion alias (a rollback, say); refuses a version whose checks
    did not pass. Batch predictions follow at the next `ntsb build`."""
    from mlflow.exceptions import MlflowException

    from .lib import tracking

    with _registry() as client:
        before = tracking.champion_version(client)
        try:
            tracking.promote(client, version)
        except MlflowException as exc:  # no such version
            raise click.ClickException(f"{tracking.MODEL_NAME} version {version}: {exc.message}") from None
    click.echo(f"{tracking.MODEL_NAME}: champion is version {version} (was {before or 'none'})")


@model.command("card")
@click.option(
    "--write",
    "doc",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replace the generated model-card section of this markdown file (docs/ml.md).",
)
def model_card(doc: Path | None):
    """The champion's model card (the MLflow artifact model_card.md)."""
    from .lib import tracking

    with _registry() as client:
        card = tracking.card(client)
    if doc is None:
        click.echo(card)
        return
    start, end = "<!-- model card: generated -->", "<!-- end of model card -->"
    text = doc.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise click.ClickException(f"{doc}: no {start} ... {end} section to replace")
    body = card.replace("# Model card", "### Model card", 1).replace("\n## ", "\n#### ")
    doc.write_text(
        text[: text.index(start) + len(start)] + "\n\n" + body.strip() + "\n\n" + text[text.index(end) :],
        encoding="utf-8",
    )
    click.echo(f"{doc}: model card rewritten")


@main.group()
def token():
    """API bearer tokens."""


@token.command("create")
@click.option("--role", type=click.Choice(["viewer", "analyst", "admin"]), default="viewer", show_default=True)
@click.option("--ttl", default="1d", show_default=True, help="Lifetime: seconds, or a number with s, m, h or d.")
@click.option("--subject", default="ntsb", show_default=True, help="Who the token is for (the 'sub' claim).")
def token_create(role: str, ttl: str, subject: str):
    """Print a JWT for the API, signed with NTSB_API_SECRET (embedded: the generated secret)."""
    from ntsb_api.auth import create_token

    from .settings import SettingsError, get_settings

    match = re.fullmatch(r"(\d+)([smhd]?)", ttl.strip())
    if not match or int(match.group(1)) <= 0:
        raise click.BadParameter(f"{ttl!r}: use a positive number of seconds, or e.g. 30m, 12h, 7d", param_hint="--ttl")
    seconds = int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    try:
        secret = get_settings().api_secret_effective()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(create_token(secret, role, seconds, subject))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes.")
def api(host: str, port: int, workers: int):
    """Serve the HTTP API (docs at /docs) with uvicorn."""
    import uvicorn

    from .settings import SettingsError, get_settings

    settings = get_settings()
    try:
        settings.api_secret_effective()  # refuse to start without a proper secret in production
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    _require_free_port(host, port)
    _console().print(f"API on http://{host}:{port} ({settings.deployment}; docs at /docs)")
    uvicorn.run("ntsb_api.main:app", host=host, port=port, workers=workers, log_level="warning", access_log=False)


@main.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=None, help="Seconds before the query is stopped (default 300)."
)
def sql(query: str, fmt: str, timeout: float | None):
    """Run one read-only QUERY against the configured warehouse.

    Read-only by construction: one statement; on PostgreSQL as the read-only role
    ntsb_reader (SELECT on the warehouse's schemas only) in a read-only transaction; on
    DuckDB with file, network and extension access disabled.

    Example: ntsb sql "select ev_state, count(*) from raw.events group by 1 order by 2 desc limit 5"
    """
    from .lib.warehouse import USER_QUERY_TIMEOUT, WarehouseError

    settings = _settings()
    wh = settings.warehouse
    if wh.dialect == "duckdb" and not wh.path.exists():
        raise click.ClickException(f"no warehouse yet at {wh.path}: run `ntsb build` or `ntsb ingest PATH` first")
    try:
        data = wh.user_query(query, timeout=timeout or USER_QUERY_TIMEOUT)
    except WarehouseError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # the database's own message says what is wrong
        raise click.ClickException(f"query failed: {str(exc).strip()}") from None
    rows = data.to_pylist()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(data.column_names)
        for r in rows:
            w.writerow(["" if v is None else v for v in r.values()])
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(show_lines=False)
        for c in data.column_names:
            t.add_column(c)
        for r in rows:
            t.add_row(*("" if v is None else str(v) for v in r.values()))
        Console().print(t)
        _console().print(f"{len(rows)} row(s)")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--events", type=click.IntRange(min=1), help="Events in a new base release.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--defects",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of events given a known real defect (bad or too early date, coordinate off the "
    "globe) and of extra orphan rows; each is listed in synth_manifest.json.",
)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Newest event date (default 2026-02-01).")
@click.option(
    "--update-of",
    "update_of",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Write a monthly update of this generated base instead.",
)
@click.option("--new", type=click.IntRange(min=0), default=0, help="With --update-of: new events.")
@click.option("--changed", type=click.IntRange(min=0), default=0, help="With --update-of: changed events.")
@click.option(
    "--flat",
    is_flag=True,
    help="Write the events as NTSB's flat AviationData export instead: OUT_DIR is then the CSV file to write.",
)
@click.option(
    "--pre1982",
    is_flag=True,
    help="Write the events as PRE1982's tables instead (tblFirstHalf, tblSecondHalf, tblOccurrences, "
    "tblSeqOfEvents, ct_Pre1982), dated 1962-1981.",
)
def synth(out_dir: Path, events, seed, defects, as_of, update_of, new, changed, flat=False, pre1982=False):
    """Write an NTSB-shaped synthetic release to OUT_DIR.

    A folder of per-table CSV files as mdb-export writes them (all core tables, the real
    code tables and data dictionary), values drawn from distributions fitted on real NTSB
    files, plus synth_manifest.json saying what ingesting it must give.

    \b
      ntsb synth --events 100000 --seed 1 var/synth/base
      ntsb synth --update-of var/synth/base --new 2000 --changed 1000 --seed 2 var/synth/up01
      ntsb synth --events 78000 --seed 1 --flat var/synth/AviationData.csv
      ntsb synth --events 87000 --seed 1 --pre1982 var/synth/PRE1982
    """
    import tempfile

    from rich.progress import Progress

    from .lib import flat as flat_export
    from .lib import pre1982 as pre1982_tables
    from .lib import synth as gen

    if flat or pre1982:
        option = "--flat" if flat else "--pre1982"
        if flat and pre1982:
            raise click.UsageError("--flat and --pre1982 do not go together")
        if update_of is not None or not events:
            raise click.UsageError(f"{option} writes a base release: give --events N")
        if out_dir.exists():
            raise click.ClickException(f"{out_dir} exists")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ntsb-synth-", dir=out_dir.parent) as tmp:
            gen.generate(
                Path(tmp) / "release", events, seed, defects=defects, as_of=as_of.date() if as_of else gen.DEFAULT_AS_OF
            )
            if flat:
                rows = flat_export.write(Path(tmp) / "release", out_dir)
                click.echo(
                    f"{out_dir}: {rows:,} rows (one per aircraft) of {events:,} events, NTSB's flat export", err=True
                )
                return
            counts = pre1982_tables.write(Path(tmp) / "release", out_dir, seed)
        click.echo(f"{out_dir}: PRE1982's tables, " + ", ".join(f"{t} {n:,} rows" for t, n in counts.items()), err=True)
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        raise click.ClickException(f"{out_dir} is not empty")
    if update_of is not None:
        if events:
            raise click.UsageError("--events and --update-of do not go together")
        try:
            m = gen.generate_update(update_of, out_dir, new, changed, seed)
        except (FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    else:
        if not events:
            raise click.UsageError("give --events N (or --update-of BASE_DIR)")
        with Progress(console=_console(), transient=True) as progress:
            task = progress.add_task("generating events", total=events)
            m = gen.generate(
                out_dir,
                events,
                seed,
                defects=defects,
                as_of=as_of.date() if as_of else gen.DEFAULT_AS_OF,
                progress=lambda n: progress.update(task, completed=n),
            )
    rows = sum(m["rows"].values())
    click.echo(
        f"{out_dir}: {rows:,} rows in {len(m['rows'])} tables, plus {len(m['reference_tables'])} "
        f"reference tables"
        + (f"; {len(m['defects'])} defective rows" if m["defects"] else "")
        + f"; see {out_dir / gen.MANIFEST}",
        err=True,
    )


@main.command()
def prepare():
    """Build the dbt manifest the Dagster definitions load (`dbt parse`)."""
    from .transform.project import prepare_manifest

    click.echo(f"dbt manifest: {prepare_manifest(force=True)}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(as_json: bool):
    """What this home holds and runs: the configuration in effect, each release loaded (when
    and what it brought), the data's freshness, the champion model, and the services of a
    running demo."""
    from . import services

    settings = _settings()
    doc: dict = {"configuration": settings.describe(), "releases": [], "freshness": {}, "model": None, "services": []}
    wh = settings.warehouse
    if wh.dialect == "postgres" or wh.path.exists():
        with wh.session(read_only=wh.dialect == "postgres") as s:
            if s.columns("_releases") is not None:
                doc["releases"] = s.query(
                    "SELECT r.release_id, r.name, r.kind, r.first_loaded_at, r.last_loaded_at, r.loads, "
                    "sum(c.rows_in) AS rows_in, sum(c.inserted) AS inserted, sum(c.updated) AS updated, "
                    "sum(c.quarantined) AS quarantined FROM raw._releases r LEFT JOIN raw._reconciliation c "
                    "ON c.release_id = r.release_id GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY r.first_loaded_at, 1"
                ).to_pylist()
            if s.columns("fact_accidents", "marts") is not None:
                row = s.query(
                    "SELECT count(*) AS events, min(event_date) AS first_event, max(event_date) AS "
                    "last_event FROM marts.fact_accidents"
                ).to_pylist()[0]
                doc["freshness"] = row
            if doc["releases"]:
                doc["freshness"]["last_load"] = max(r["last_loaded_at"] for r in doc["releases"])
    registry_file = settings.home / "mlflow.db"
    if settings.mlflow_uri or registry_file.exists():  # never create an empty registry just to look
        from .lib import tracking

        try:
            with tracking.session(tracking.Store.from_settings(settings)) as client:
                version = tracking.champion_version(client)
                doc["model"] = {"name": tracking.MODEL_NAME, "champion": version}
        except Exception as exc:  # unreachable registry: said, not fatal
            doc["model"] = {"name": tracking.MODEL_NAME, "error": str(exc).splitlines()[0]}
    state = services.read_state(settings.home)
    if state and services.alive(state.get("supervisor", 0)):
        doc["services"] = [
            {"name": s["name"], "url": s["url"], "running": services.alive(s["pid"])} for s in state.get("services", [])
        ]
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    for k, v in doc["configuration"].items():
        click.echo(f"{k:13} {v}")
    fresh = doc["freshness"]
    click.echo(f"{'releases':13} {len(doc['releases'])} loaded" + (":" if doc["releases"] else ""))
    for r in doc["releases"]:
        click.echo(
            f"  {r['release_id']:44} {r['kind']:8} loaded {str(r['last_loaded_at'])[:19]}"
            f"{' (' + str(r['loads']) + ' loads)' if r['loads'] > 1 else ''}: {r['rows_in'] or 0:,} rows in, "
            f"{r['inserted'] or 0:,} inserted, {r['updated'] or 0:,} updated, {r['quarantined'] or 0:,} quarantined"
        )
    if fresh.get("events"):
        click.echo(
            f"{'events':13} {fresh['events']:,} in marts.fact_accidents, {fresh['first_event']} to "
            f"{fresh['last_event']}; last load {str(fresh.get('last_load', '-'))[:19]}"
        )
    model = doc["model"]
    click.echo(
        f"{'model':13} "
        + (
            "no registry yet"
            if model is None
            else f"{model['name']}: {model['error']}"
            if "error" in model
            else f"{model['name']} champion version {model['champion'] or 'none'}"
        )
    )
    if doc["services"]:
        for sv in doc["services"]:
            click.echo(
                f"{'service':13} {sv['name']:18} {'running' if sv['running'] else 'stopped'}"
                f"{'  ' + sv['url'] if sv['url'] else ''}"
            )
    else:
        click.echo(f"{'services':13} none running (ntsb demo starts them)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8580, show_default=True)
def docs(host: str, port: int):
    """Serve the dbt docs site the asset docs/dbt published to the lake at /, and the Great
    Expectations Data Docs of every quality run at /quality/ (the checks link them through
    NTSB_DOCS_URL)."""
    from .lib.docs_server import INDEX, QUALITY_ROUTE, make_server
    from .quality.checks import DOCS_PREFIX as QUALITY_DOCS
    from .transform.docs import DOCS_PREFIX

    settings = _settings()
    lake = settings.lake
    if not lake.exists(f"{DOCS_PREFIX}/{INDEX}"):
        raise click.ClickException(
            f"no dbt docs site at {lake.uri(DOCS_PREFIX)}: materialize the asset docs/dbt first (ntsb build)"
        )
    _require_free_port(host, port)
    server = make_server(lake, DOCS_PREFIX, host, port, quality_prefix=QUALITY_DOCS)
    _console().print(
        f"dbt docs on http://{host}:{server.server_port}/ and Data Docs on "
        f"http://{host}:{server.server_port}/{QUALITY_ROUTE}/ (from {lake.uri('')}); Ctrl-C stops it.",
        markup=False,
        highlight=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def dashboard_args(host: str, port: int) -> list[str]:
    """The dashboard's server (``python -m ntsb_dashboard``, which runs ``streamlit run``):
    headless, no usage statistics, no file watcher (it reads data, not its own source), one
    address."""
    return [
        sys.executable,
        "-m",
        "ntsb_dashboard",
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True)
def dashboard(host: str, port: int):
    """Serve the analysts' dashboard (Streamlit): overview, trends, map, aircraft, causes,
    event explorer, data quality and the model, over what `ntsb build` materialized."""
    settings = _settings()
    _require_free_port(host, port)
    _console().print(
        f"dashboard on http://{host}:{port} ({settings.deployment}); Ctrl-C stops it.", markup=False, highlight=False
    )
    env = {**os.environ, "NTSB_HOME": str(settings.home), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    os.execvpe(sys.executable, dashboard_args(host, port), env)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, help="Dagster UI.")
@click.option("--api-port", default=8000, show_default=True)
@click.option("--docs-port", default=8580, show_default=True, help="dbt docs and Data Docs (ntsb docs).")
@click.option("--dashboard-port", default=8501, show_default=True, help="The dashboard (ntsb dashboard).")
@click.option("--no-ui", is_flag=True, help="Build only; do not start the services.")
@click.option("--no-build", is_flag=True, help="Serve what this home has built, without building.")
@click.option(
    "--auc-margin", type=float, default=None, help="Passed to `ntsb build`, which then trains the model (--retrain)."
)
@click.option(
    "--max-ece", type=float, default=None, help="Passed to `ntsb build`, which then trains the model (--retrain)."
)
@VERBOSE
def demo(
    host: str,
    port: int,
    api_port: int,
    docs_port: int,
    dashboard_port: int,
    no_ui: bool,
    auc_margin: float | None,
    max_ece: float | None,
    verbose: bool = False,
    no_build: bool = False,
):
    """Put the bundled real NTSB sample in the landing zone, build everything, then serve
    the Dagster UI (webserver and daemon), the HTTP API, the dashboard and the docs (dbt
    docs, Data Docs) until Ctrl-C, SIGTERM or `ntsb stop`, which stop them all."""
    from . import services

    settings = _settings()
    if not no_ui:  # before minutes of building, not after
        running = services.read_state(settings.home)
        if running and services.alive(running.get("supervisor", 0)):
            raise click.ClickException(
                f"the demo already runs from {settings.home} (process "
                f"{running['supervisor']}): `ntsb status`, or `ntsb stop` first"
            )
        for p, option in (
            (port, "--port"),
            (api_port, "--api-port"),
            (docs_port, "--docs-port"),
            (dashboard_port, "--dashboard-port"),
        ):
            _require_free_port(host, p, option)
    if not no_build:
        sample = REPO / "data" / "sample" / "landing"
        if settings.landing.is_local and sample.exists():
            landing = Path(settings.landing.root)
            for rel in sorted(sample.iterdir()):
                if not (landing / rel.name).exists():
                    shutil.copytree(rel, landing / rel.name) if rel.is_dir() else shutil.copyfile(
                        rel, landing / rel.name
                    )
        ctx = click.get_current_context()
        # thresholds given: train with them now, even on a home whose model has seen these events
        retrain = auc_margin is not None or max_ece is not None
        ctx.invoke(build, as_json=False, auc_margin=auc_margin, max_ece=max_ece, retrain=retrain, verbose=verbose)
    if no_ui:
        return
    dagster_home = _dagster_home(settings)  # the instance's storage created before the services start
    # the services resolve the same paths; dagster-dbt validates `dbt` on PATH when the code
    # server loads the definitions: this environment's scripts first (`make demo` runs
    # without an activated virtualenv)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "NTSB_HOME": str(settings.home.resolve()),
        "DAGSTER_HOME": str(dagster_home),
        "NTSB_DOCS_URL": f"http://{host}:{docs_port}",
        "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
    }
    workspace = str(REPO / "workspace.yaml")
    cli = [sys.executable, "-m", "ntsb_assets.cli"]
    specs = [
        (
            "dagster-webserver",
            [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", host, "-p", str(port)],
            f"http://{host}:{port}/server_info",
        ),
        ("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace], None),
        ("api", [*cli, "api", "--host", host, "--port", str(api_port)], f"http://{host}:{api_port}/health"),
        ("dashboard", dashboard_args(host, dashboard_port), f"http://{host}:{dashboard_port}/_stcore/health"),
    ]
    from .lib.docs_server import INDEX
    from .transform.docs import DOCS_PREFIX

    has_docs = settings.lake.exists(f"{DOCS_PREFIX}/{INDEX}")
    if has_docs:
        specs.append(("docs", [*cli, "docs", "--host", host, "--port", str(docs_port)], f"http://{host}:{docs_port}/"))
    out = _console()
    procs = [services.start(settings.home, name, args, url, env) for name, args, url in specs]
    services.write_state(settings.home, [s for s, _ in procs])
    with _reporting(settings, False, True):
        from .lib import progress

        with progress.stage("services", ", ".join(s.name for s, _ in procs)) as stage:
            failed = services.wait_until_up(procs, 180, lambda s: progress.step("services", s.name))
            if failed:
                services.stop_all(procs, grace=5)
                services.state_path(settings.home).unlink(missing_ok=True)
                logs = ", ".join(s.log for s, _ in procs if s.name in failed)
                raise click.ClickException(f"{', '.join(failed)} did not start; see {logs}")
            stage["summary"] = "all answer"
    from ntsb_api.auth import create_token

    token = create_token(settings.api_secret_effective(), "analyst", 12 * 3600, subject="demo")
    for line in (
        f"Dagster UI    http://{host}:{port}",
        f"Dashboard     http://{host}:{dashboard_port}",
        f"API docs      http://{host}:{api_port}/docs   (Authorize with the token below)",
        (
            f"dbt docs      http://{host}:{docs_port}/   Data Docs: http://{host}:{docs_port}/quality/"
            if has_docs
            else "dbt docs      not built yet (ntsb build), so not served"
        ),
        f"analyst token for 12 hours:\n{token}",
        f"logs in {settings.home / 'logs'}; `ntsb status` shows the services, `ntsb stop` or Ctrl-C stops them all.",
    ):
        out.print(line, markup=False, highlight=False)
    status = services.supervise(settings.home, procs, lambda m: out.print(m, markup=False, highlight=False))
    if status:
        raise SystemExit(status)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the services as JSON.")
def status(as_json: bool):
    """The demo's services from this NTSB_HOME: process, URL, and whether each answers."""
    from . import services
    from .settings import get_settings

    home = get_settings().home
    state = services.read_state(home)
    rows = []
    if state:
        for s in state.get("services", []):
            up = services.alive(s["pid"])
            rows.append({**s, "running": up, "answers": up and services.answers(s["url"]) if s["url"] else None})
    if as_json:
        click.echo(json.dumps({"supervisor": state and state.get("supervisor"), "services": rows}, indent=2))
        return
    if not rows:
        click.echo(f"no services running from {home} (start them with `ntsb demo`)")
        return
    sup = state.get("supervisor")
    click.echo(
        f"supervisor process {sup} ({'running' if services.alive(sup) else 'gone'}), started {state.get('started_at')}"
    )
    for r in rows:
        health = "" if r["answers"] is None else (" answers" if r["answers"] else " does not answer")
        click.echo(
            f"  {r['name']:18} pid {r['pid']:<7} {'running' if r['running'] else 'stopped'}{health}"
            f"{'  ' + r['url'] if r['url'] else ''}"
        )


@main.command()
def stop():
    """Stop the demo's services started from this NTSB_HOME (as Ctrl-C in the demo would)."""
    from . import services
    from .settings import get_settings

    click.echo(services.stop_running(get_settings().home))


if __name__ == "__main__":
    main()
