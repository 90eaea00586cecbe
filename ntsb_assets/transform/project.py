"""The dbt project and its manifest, importable before the manifest exists."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
# what the assets run: dbt, killed when the run's process dies (ntsb_assets/lifeline.py)
DBT_CHILD_EXECUTABLE = str(Path(sys.executable).with_name("ntsb-dbt"))
dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


class NtsbDbtCliResource(DbtCliResource):
    """dagster-dbt's resource, told the executable's version: dagster-dbt asks for it with
    `dbt --version` (about 3 s on two cores) once per resource instance, that is once per
    run. DBT_EXECUTABLE is this environment's dbt, so it is the installed dbt-core's. And
    without the in-process adapter (below)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        """None: dagster-dbt opens an in-process dbt adapter for each invocation (about 3 s on
        two cores: it parses every macro) only to fetch row counts and column metadata, which
        these assets do not ask for."""
        return None

    def cli(self, args, *, env: Mapping[str, str] | None = None, **kwargs):  # type: ignore[override]
        """dagster-dbt's invocation, with ``env`` added to the dbt process's environment: the
        variables ``profiles.yml`` reads (``Settings.dbt_env()``, the configured warehouse).
        dagster-dbt builds that environment from this process's when it starts dbt, so they
        are in place for that moment only, then taken back."""
        if not env:
            return super().cli(args, **kwargs)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return super().cli(args, **kwargs)  # the dbt process has started with them
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def prepare_manifest(force: bool = False) -> Path:
    """Build dbt_project/target/manifest.json with ``dbt parse`` when missing (or forced).
    Run ahead of loading the definitions: ``ntsb prepare`` / ``make setup``."""
    manifest = dbt_project.manifest_path
    if force or not manifest.exists():
        subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)],
            check=True,
            cwd=DBT_DIR,
        )
    return manifest


PARTIAL_PARSE = "partial_parse.msgpack"
KEEP_TARGETS = 5


@contextmanager
def run_target(home: Path, name: str) -> Iterator[Path]:
    """A new dbt target directory under ``<home>/dbt/runs/``, seeded with the partial-parse
    state the previous invocation on this deployment left. dbt's state is tied to the profile
    (the warehouse path is part of it), so the one built by ``ntsb prepare`` is never reused
    and every invocation would parse the whole project again (about 6 s more on two cores).
    The newest invocations' directories are kept for inspection (run_results.json, logs)."""
    root = Path(home).resolve() / "dbt"
    target = root / "runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True)
    state = root / PARTIAL_PARSE
    if state.exists():
        shutil.copy(state, target / PARTIAL_PARSE)
    try:
        yield target
    finally:
        if (target / PARTIAL_PARSE).exists():
            tmp = root / f".{PARTIAL_PARSE}.{uuid.uuid4().hex[:8]}"
            shutil.copy(target / PARTIAL_PARSE, tmp)
            os.replace(tmp, state)
        runs = sorted((root / "runs").iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in runs[KEEP_TARGETS:]:
            shutil.rmtree(old, ignore_errors=True)
