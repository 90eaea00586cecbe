"""The ``ntsb`` command line: ingest releases, build the asset graph, query the warehouse,
run the demo. Every command reads the same NTSB_* settings as the Dagster code."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]


def _console():
    from rich.console import Console
    return Console(stderr=True)


def _settings():
    from .lib import warehouse
    from .settings import SettingsError, get_settings
    if not warehouse.wait_listeners:   # say why a command waits, even while Dagster's log is quiet
        warehouse.wait_listeners.append(lambda m: _console().print(m, style="yellow", markup=False, highlight=False))
    settings = get_settings()
    try:
        settings.check()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _dagster_home(settings) -> Path:
    """DAGSTER_HOME (absolute) with the project's instance config in it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    cfg = home / "dagster.yaml"
    src = REPO / "dagster.yaml"
    if not cfg.exists() and src.exists():
        shutil.copyfile(src, cfg)
    for k, v in (("DO_NOT_TRACK", "1"), ("DAGSTER_DISABLE_TELEMETRY", "1")):
        os.environ.setdefault(k, v)
    return home


class _Failed(Exception):
    pass


def _require_free_port(host: str, port: int, option: str = "--port") -> None:
    """Fail before any banner when the address cannot be listened on."""
    import socket
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the servers do: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                                       f"(another service there? choose another with {option})") from None


def _definitions():
    """The Dagster definitions, with the dbt manifest they need built first."""
    from .transform.project import prepare_manifest
    prepare_manifest()
    from .definitions import defs
    return defs


def _run_release(release_id: str, instance) -> dict:
    """Run the ingest job for one release partition in this process; return its
    reconciliation or raise _Failed with the error the run ended with."""
    from .releases import RELEASES
    defs = _definitions()
    if release_id not in instance.get_dynamic_partitions(RELEASES.name):
        instance.add_dynamic_partitions(RELEASES.name, [release_id])
    job = defs.resolve_job_def("ingest_release")
    result = job.execute_in_process(partition_key=release_id, instance=instance, raise_on_error=False,
                                    run_config=QUIET)
    if not result.success:
        failed_checks = [
            f"check {d.check_name} on {d.asset_key.to_user_string()} failed ({d.severity.value}): "
            + "; ".join(f"{k} {v.value}" for k, v in d.metadata.items() if k in ("added", "removed", "retyped") and v.value)
            for d in (e.asset_check_evaluation_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION")
            if not d.passed and d.severity.value == "ERROR"]
        if failed_checks:
            raise _Failed("\n".join(["blocking check(s) failed:", *failed_checks]))
        raise _Failed(_step_errors(result))
    for ev in result.all_events:
        if ev.is_step_materialization:
            mat = ev.step_materialization_data.materialization
            if mat.asset_key.path == ["warehouse", "raw", "_reconciliation"]:
                return mat.metadata["result"].value
    raise _Failed(f"run {result.run_id} did not load the warehouse")


def _step_errors(result) -> str:
    """The errors a failed in-process run ended with, without Dagster's wrapping."""
    messages = []
    for ev in result.all_events:
        if ev.is_step_failure and ev.step_failure_data and ev.step_failure_data.error:
            err = ev.step_failure_data.error
            while err.cause is not None and err.cls_name == "DagsterExecutionStepExecutionError":
                err = err.cause
            if err.cls_name == "DagsterExecutionInterruptedError":
                messages.append("interrupted (Ctrl-C or SIGTERM)")
                continue
            # "package.module.SomeError: message" -> "message"
            messages.append(re.sub(r"^[\w.]+(Error|Exception): ", "", err.message.strip()))
    return "\n".join(messages) or f"run {result.run_id} failed"


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


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reconciliation as JSON.")
def ingest(path: Path, as_json: bool):
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
    with DagsterInstance.get() as instance:
        with console.status(f"ingesting {reg.release.release_id} ({reg.release.size:,} bytes)"):
            try:
                result = _run_release(reg.release.release_id, instance)
            except _Failed as exc:
                raise click.ClickException(f"{path.name}: ingestion failed, the warehouse is unchanged.\n{exc}") from None
    _print_result(result, as_json)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    from .lib.cdc import COUNTS
    t = Table(title=f"release {result['release']}")
    t.add_column("table")
    for c in COUNTS:
        t.add_column(c.replace("_", " "), justify="right")
    for name, counts in result["tables"].items():
        t.add_row(name, *(f"{counts.get(c, 0):,}" for c in COUNTS))
    Console().print(t)
    superseded = sum(c.get("superseded", 0) for c in result["tables"].values())
    if superseded:
        _console().print(f"{superseded:,} changed rows were not applied (superseded): a release registered after "
                         "this one had already loaded a newer version of them, which stays. Releases land in "
                         "registration order (raw._reconciliation).", style="yellow", markup=False)
    lag = sorted(result.get("code_lag", []), key=lambda x: -x["row_count"])
    if lag:
        t = Table(title=f"dictionary lag: {len(lag)} codes no NTSB code source knows, in "
                        f"{sum(x['row_count'] for x in lag):,} rows (loaded, labelled 'unknown code'; raw._code_lag)")
        for c in ("table", "column", "code", "rows", "of the column's"):
            t.add_column(c, justify="right" if c in ("rows", "of the column's") else "left")
        for x in lag[:10]:
            t.add_row(x["table_name"], x["column_name"], x["code"], f"{x['row_count']:,}", f"{x['column_rows']:,}")
        Console().print(t)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--auc-margin", type=float, default=None,
              help="Severity model check: ROC-AUC over the majority baseline needed, validation years "
                   "(default 0.05; -1 accepts any).")
@click.option("--max-ece", type=float, default=None,
              help="Severity model check: largest calibration error allowed, validation years "
                   "(default 0.05; 1 accepts any).")
def build(as_json: bool, auc_margin: float | None = None, max_ece: float | None = None):
    """Materialize the whole asset graph.

    Scans the landing zone (NTSB_LANDING_URL) for new releases, then ingests, in
    registration order, every release the warehouse has not loaded yet; then dbt build
    with its checks and the docs site, the Parquet archive of the event years whose rows
    changed, and the analytics.
    """
    from dagster import DagsterInstance
    from rich.progress import Progress

    from .lib import registry
    settings = _settings()
    _dagster_home(settings)
    regs, _ = registry.scan_landing(settings.landing, settings.lake)
    for r in regs:
        if r.duplicate_of:
            _console().print(f"{r.name}: same content as release {r.duplicate_of}; skipped")
        if r.refused:
            _console().print(f"{r.name}: refused, not registered: {r.refused}", style="red", markup=False)
    loaded = _loaded_releases(settings)
    todo = [r for r in registry.all_releases(settings.lake) if r.release_id not in loaded]
    results = []
    # with --json, standard output is the JSON document alone: what the work prints (dbt's log
    # through dagster-dbt) goes to standard error
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet, DagsterInstance.get() as instance, Progress(console=_console(), transient=True) as progress:
        task = progress.add_task("ingesting releases", total=len(todo))
        for rel in todo:
            progress.update(task, description=f"ingesting {rel.release_id}")
            try:
                results.append(_run_release(rel.release_id, instance))
            except _Failed as exc:
                raise click.ClickException(f"{rel.name}: ingestion failed, the warehouse keeps the "
                                           f"releases before it.\n{exc}") from None
            progress.advance(task)
        progress.update(task, description="dbt build (staging, marts, aggregates)")
        transform = _run_transform(instance)
        progress.update(task, description="Parquet archive and analytics")
        published = _run_archive_and_analytics(instance, settings)
        progress.update(task, description="severity model")
        published["ml"] = _run_ml(instance, settings, {k: v for k, v in (("auc_margin", auc_margin),
                                                                          ("max_ece", max_ece)) if v is not None})
        progress.update(task, description="serving snapshot")
        published["serving"] = _run_serving(instance)
    if as_json:
        click.echo(json.dumps({"releases": results, "already_loaded": sorted(loaded), "transform": transform,
                               **published}, indent=2))
    else:
        for r in results:
            _print_result(r, False)
        _console().print(f"{len(results)} release(s) ingested, {len(loaded)} already loaded; "
                         f"dbt: {transform['models']} models, {transform['checks_passed']} checks passed, "
                         f"{transform['checks_warned']} warned, {transform['checks_failed']} failed.")
        years = published["archive"]["years"]
        _console().print(f"archive: {len(years)} event year(s) rewritten"
                         + (f" ({', '.join(map(str, years))})" if 0 < len(years) <= 10 else "")
                         + f" in {published['archive']['runs']} run(s); then "
                         + ", ".join(published["analytics"]) + ".")
        ml = published["ml"]
        failed = [c for c, ok in ml["checks"].items() if not ok]
        _console().print(f"model: {ml['model']} version {ml['version']} ({ml['family']}, the best candidate on "
                         "the validation years) registered; "
                         + (f"checks failed ({', '.join(failed)}): " if failed else "checks passed; ")
                         + f"champion is version {ml['champion'] or 'none'}; "
                         + f"{ml['predictions']} event(s) predicted by the champion.")
        if not ml["champion"]:
            _console().print("No champion model yet, so the API's predictions answer 503: no candidate passed "
                             "the checks on the validation years (`ntsb model info`, docs/ml.md); to try the "
                             "whole path anyway: ntsb build --auc-margin -1 --max-ece 1")
        _console().print(f"serving: {published['serving']}")


def _run_transform(instance) -> dict:
    """Materialize the dbt models through Dagster (job ``transform``)."""
    import dagster as dg

    result = _definitions().resolve_job_def("transform").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET)
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = [f"{c.asset_key.to_user_string()} {c.check_name}" for c in checks
              if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    warned = sum(1 for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.WARN)
    if not result.success:
        raise click.ClickException("dbt build failed" + (": " + ", ".join(failed) if failed else f" (run {result.run_id})"))
    models = sum(1 for e in result.all_events if e.is_step_materialization and e.asset_key.path[0] == "warehouse")
    return {"models": models, "checks_passed": len(checks) - len(failed) - warned,
            "checks_warned": warned, "checks_failed": len(failed)}


def _run_archive_and_analytics(instance, settings) -> dict:
    """Archive the event years that changed (job ``archive``, one run per range of years),
    then the analytics and the model's features (job ``analytics``)."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from .archive import archive_runs
    from .lib.archive import ArchiveError
    defs = _definitions()
    try:
        runs = archive_runs(settings)
    except ArchiveError as exc:
        raise click.ClickException(f"archive: {exc}") from None
    years = []
    for tags in runs:
        first, last = (int(tags[t]) for t in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG))
        result = defs.resolve_job_def("archive").execute_in_process(instance=instance, tags=tags,
                                                                     raise_on_error=False, run_config=QUIET)
        if not result.success:
            raise click.ClickException(f"archive of years {first}-{last} failed:\n{_step_errors(result)}")
        years += range(first, last + 1)
    result = defs.resolve_job_def("analytics").execute_in_process(instance=instance, raise_on_error=False,
                                                                  run_config=QUIET)
    if not result.success:
        raise click.ClickException(f"analytics failed:\n{_step_errors(result)}")
    done = sorted(e.asset_key.to_user_string() for e in result.all_events if e.is_step_materialization)
    return {"archive": {"runs": len(runs), "years": years}, "analytics": done}


def _run_ml(instance, settings, thresholds: dict | None = None) -> dict:
    """The ``ml`` job: features, training with its blocking checks, promotion, batch
    predictions. A model that fails its checks is not an error of the build: it stays
    registered without the champion alias, and the previous champion keeps predicting.
    ``thresholds`` overrides the checks' (``auc_margin``, ``max_ece``)."""
    from .lib import tracking
    from .ml import MODEL_KEY, PREDICTIONS_TABLE
    config = {**QUIET, **({"ops": {"ml__severity_model": {"config": thresholds}}} if thresholds else {})}
    result = _definitions().resolve_job_def("ml").execute_in_process(instance=instance, raise_on_error=False,
                                                                     run_config=config)
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and e.asset_check_evaluation_data.asset_key == MODEL_KEY}
    trained = [e.step_materialization_data.materialization.metadata for e in result.all_events
               if e.is_step_materialization and e.asset_key.path == ["ml", "severity_model"]]
    versions = [m["version"].value for m in trained]
    if not versions or (not result.success and all(checks.values())):
        raise click.ClickException(f"severity model failed:\n{_step_errors(result)}")
    with _registry(settings) as client:
        champion = tracking.champion_version(client)
    predicted = 0
    if champion:
        with settings.warehouse.session(read_only=settings.warehouse.dialect == "duckdb") as s:
            if s.columns(PREDICTIONS_TABLE[1], PREDICTIONS_TABLE[0]) is not None:
                predicted = s.query(f"SELECT count(*) AS n FROM {'.'.join(PREDICTIONS_TABLE)}").column(0)[0].as_py()
    return {"model": tracking.MODEL_NAME, "version": versions[0], "family": trained[0]["family"].value,
            "checks": checks, "champion": champion, "predictions": predicted}


def _run_serving(instance) -> str:
    """The ``serving`` job; returns the data version the API now serves."""
    result = _definitions().resolve_job_def("serving").execute_in_process(instance=instance, raise_on_error=False,
                                                                          run_config=QUIET)
    if not result.success:
        raise click.ClickException(f"serving snapshot failed:\n{_step_errors(result)}")
    mats = [e.step_materialization_data.materialization for e in result.all_events if e.is_step_materialization]
    return mats[0].metadata["data version"].value


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
    click.echo(f"{info['name']} version {info['version']} (alias {info['alias']}), data version "
               f"{info['data_version']}, checks {info['checks']}\n"
               f"split by event year: train {split['train']} ({sizes['train']} events), validation "
               f"{split['valid']} ({sizes['valid']}), test {split['test']} ({sizes['test']})\n"
               "metrics on the test years:\n")
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
        except MlflowException as exc:   # no such version
            raise click.ClickException(f"{tracking.MODEL_NAME} version {version}: {exc.message}") from None
    click.echo(f"{tracking.MODEL_NAME}: champion is version {version} (was {before or 'none'})")


@model.command("card")
@click.option("--write", "doc", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Replace the generated model-card section of this markdown file (docs/ml.md).")
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
    doc.write_text(text[:text.index(start) + len(start)] + "\n\n" + body.strip() + "\n\n" + text[text.index(end):],
                   encoding="utf-8")
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
        settings.api_secret_effective()   # refuse to start without a proper secret in production
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    _require_free_port(host, port)
    _console().print(f"API on http://{host}:{port} ({settings.deployment}; docs at /docs)")
    uvicorn.run("ntsb_api.main:app", host=host, port=port, workers=workers, log_level="warning",
                access_log=False)


@main.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=None,
              help="Seconds before the query is stopped (default 300).")
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
@click.option("--defects", type=click.FloatRange(0, 0.5), default=0.0, show_default=True,
              help="Share of events given a known real defect (bad or too early date, coordinate off the "
                   "globe) and of extra orphan rows; each is listed in synth_manifest.json.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Newest event date (default 2026-02-01).")
@click.option("--update-of", "update_of", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Write a monthly update of this generated base instead.")
@click.option("--new", type=click.IntRange(min=0), default=0, help="With --update-of: new events.")
@click.option("--changed", type=click.IntRange(min=0), default=0, help="With --update-of: changed events.")
def synth(out_dir: Path, events, seed, defects, as_of, update_of, new, changed):
    """Write an NTSB-shaped synthetic release to OUT_DIR.

    A folder of per-table CSV files as mdb-export writes them (all core tables, the real
    code tables and data dictionary), values drawn from distributions fitted on real NTSB
    files, plus synth_manifest.json saying what ingesting it must give.

    \b
      ntsb synth --events 100000 --seed 1 var/synth/base
      ntsb synth --update-of var/synth/base --new 2000 --changed 1000 --seed 2 var/synth/up01
    """
    from rich.progress import Progress

    from .lib import synth as gen
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
            m = gen.generate(out_dir, events, seed, defects=defects,
                             as_of=as_of.date() if as_of else gen.DEFAULT_AS_OF,
                             progress=lambda n: progress.update(task, completed=n))
    rows = sum(m["rows"].values())
    click.echo(f"{out_dir}: {rows:,} rows in {len(m['rows'])} tables, plus {len(m['reference_tables'])} "
               f"reference tables" + (f"; {len(m['defects'])} defective rows" if m["defects"] else "")
               + f"; see {out_dir / gen.MANIFEST}", err=True)


@main.command()
def prepare():
    """Build the dbt manifest the Dagster definitions load (`dbt parse`)."""
    from .transform.project import prepare_manifest
    click.echo(f"dbt manifest: {prepare_manifest(force=True)}")


@main.command()
def info():
    """Show the configuration in effect and the releases loaded."""
    settings = _settings()
    for k, v in settings.describe().items():
        click.echo(f"{k:13} {v}")
    loaded = _loaded_releases(settings) if settings.warehouse.dialect == "postgres" or settings.warehouse.path.exists() else set()
    click.echo(f"{'releases':13} {len(loaded)} loaded")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8580, show_default=True)
def docs(host: str, port: int):
    """Serve the dbt docs site the asset docs/dbt published to the lake."""
    from .lib.docs_server import INDEX, make_server
    from .transform.docs import DOCS_PREFIX
    settings = _settings()
    lake = settings.lake
    if not lake.exists(f"{DOCS_PREFIX}/{INDEX}"):
        raise click.ClickException(f"no dbt docs site at {lake.uri(DOCS_PREFIX)}: materialize the asset "
                                   "docs/dbt first (ntsb build)")
    _require_free_port(host, port)
    server = make_server(lake, DOCS_PREFIX, host, port)
    _console().print(f"dbt docs from {lake.uri(DOCS_PREFIX)} on http://{host}:{server.server_port}; Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True)
@click.option("--api-port", default=8000, show_default=True)
@click.option("--no-ui", is_flag=True, help="Build only; do not start the Dagster UI and the API.")
@click.option("--auc-margin", type=float, default=None, help="Passed to `ntsb build`.")
@click.option("--max-ece", type=float, default=None, help="Passed to `ntsb build`.")
def demo(host: str, port: int, api_port: int, no_ui: bool, auc_margin: float | None, max_ece: float | None):
    """Put the bundled real NTSB sample in the landing zone, build everything, then serve
    the Dagster UI (webserver and daemon) and the HTTP API."""
    settings = _settings()
    if not no_ui:   # before minutes of building, not after
        _require_free_port(host, port)
        _require_free_port(host, api_port, "--api-port")
    sample = REPO / "data" / "sample" / "landing"
    if settings.landing.is_local and sample.exists():
        landing = Path(settings.landing.root)
        for rel in sorted(sample.iterdir()):
            if not (landing / rel.name).exists():
                shutil.copytree(rel, landing / rel.name) if rel.is_dir() else shutil.copyfile(rel, landing / rel.name)
    ctx = click.get_current_context()
    ctx.invoke(build, as_json=False, auc_margin=auc_margin, max_ece=max_ece)
    if no_ui:
        return
    home = _dagster_home(settings)
    os.environ["NTSB_HOME"] = str(settings.home)  # the code server resolves the same paths
    # dagster-dbt validates `dbt` on PATH when the code server loads the definitions: put this
    # environment's scripts first (`make demo` runs without an activated virtualenv)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    import subprocess

    from ntsb_api.auth import create_token
    # the API beside the UI, in the same process group: Ctrl-C stops both
    subprocess.Popen([sys.executable, "-m", "ntsb_assets.cli", "api", "--host", host, "--port", str(api_port)])
    token = create_token(settings.api_secret_effective(), "analyst", 12 * 3600, subject="demo")
    _console().print(f"API on http://{host}:{api_port}/docs; an analyst token for 12 hours:\n{token}")
    _console().print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops both.")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", str(REPO / "workspace.yaml"), "-h", host, "-p", str(port)])


if __name__ == "__main__":
    main()
