"""The dbt project and its manifest, importable before the manifest exists."""

import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
dbt_project = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def prepare_manifest(force: bool = False) -> Path:
    """Build dbt_project/target/manifest.json with ``dbt parse`` when missing (or forced).
    Run ahead of loading the definitions: ``ntsb prepare`` / ``make setup``."""
    manifest = dbt_project.manifest_path
    if force or not manifest.exists():
        subprocess.run([DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_DIR),
                        "--profiles-dir", str(DBT_DIR)], check=True, cwd=DBT_DIR)
    return manifest
