"""The deploy files parse and agree with the code (no container engine runs here)."""

from pathlib import Path

import yaml

from ntsb_assets.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent


def _instance_config_ok(path: Path):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema
    cfg = yaml.safe_load(path.read_text())
    result = validate_config(dagster_instance_config_schema(), cfg)
    assert result.success, [e.message for e in result.errors]
    return cfg


def test_instance_configs_validate_against_dagster_schema():
    prod = _instance_config_ok(DEPLOY / "dagster.yaml")
    assert prod["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    embedded = _instance_config_ok(REPO / "dagster.yaml")
    assert embedded["telemetry"]["enabled"] is False
    assert embedded["concurrency"]["pools"]["default_limit"] == 1


def test_compose_sets_only_real_settings():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = compose["x-ntsb-env"]
    fields = {f"NTSB_{k.upper()}" for k in Settings.model_fields}
    assert {k for k in env if k.startswith("NTSB_")} <= fields
    assert set(compose["services"]) >= {"postgres", "minio", "webserver", "daemon"}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile and "mdbtools" in dockerfile
