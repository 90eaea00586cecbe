"""The deploy files, validated with the tools that run without a container engine or a
cluster: Dagster's own config schemas (instance, K8sRunLauncher), the Kubernetes API
schemas (kubernetes-validate, strict), the Compose specification's schema
(check-jsonschema), hadolint for the Dockerfile; and they agree with the code."""

import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ntsb_assets.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
BIN = Path(sys.executable).parent
K8S_VERSION = "1.32.0"  # the API version the manifests are checked against
SETTINGS = {f"NTSB_{k.upper()}" for k in Settings.model_fields}


def _validate_instance(cfg: dict) -> dict:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    result = validate_config(dagster_instance_config_schema(), cfg)
    assert result.success, [e.message for e in result.errors]
    return cfg


def _k8s_documents() -> list[dict]:
    return [d for f in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _k8s(kind: str, name: str) -> dict:
    return next(d for d in _k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_instance_configs_validate_against_dagster_schema():
    prod = _validate_instance(yaml.safe_load((DEPLOY / "dagster.yaml").read_text()))
    assert prod["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    embedded = _validate_instance(yaml.safe_load((REPO / "deploy" / "dagster.embedded.yaml").read_text()))
    assert embedded["telemetry"]["enabled"] is False
    # no pool, no run-tag limit: their claims outlive a killed writer (the writer lock does not)
    assert "pools" not in embedded["concurrency"] and "tag_concurrency_limits" not in embedded["concurrency"]["runs"]


def test_kubernetes_instance_uses_the_k8s_run_launcher_with_a_valid_config():
    from dagster._config import validate_config
    from dagster_k8s import K8sRunLauncher

    data = _k8s("ConfigMap", "dagster-instance")["data"]
    instance = _validate_instance(yaml.safe_load(data["dagster.yaml"]))
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = validate_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]
    # the same storage and run limits as deploy/dagster.yaml
    prod = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert instance["storage"] == prod["storage"] and instance["concurrency"] == prod["concurrency"]
    # everything the launcher hands to run pods exists
    assert set(launcher["config"]["env_config_maps"]) == {"ntsb-config"}
    assert set(launcher["config"]["env_secrets"]) == {"ntsb-secrets"}
    assert _k8s("ServiceAccount", launcher["config"]["service_account_name"])
    workspace = yaml.safe_load(data["workspace.yaml"])["load_from"][0]["grpc_server"]
    assert workspace["host"].split(".")[0] == _k8s("Service", "code")["metadata"]["name"]


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_api_schemas(path):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on any unknown or wrong field


def test_kubernetes_config_is_env_only_and_names_real_settings():
    config, secret = _k8s("ConfigMap", "ntsb-config")["data"], _k8s("Secret", "ntsb-secrets")["stringData"]
    keys = set(config) | set(secret)
    assert {k for k in keys if k.startswith("NTSB_")} <= SETTINGS
    assert config["NTSB_EXECUTOR"] == "k8s"
    assert not {k for k in config if re.search("PASSWORD|SECRET|WAREHOUSE_URL|MLFLOW_URI", k)}  # credentials
    assert {"NTSB_API_SECRET", "NTSB_S3_SECRET_KEY", "DAGSTER_PG_PASSWORD", "NTSB_WAREHOUSE_URL"} <= set(secret)
    api = _k8s("Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe", "resources"} <= set(api)
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready" and api["livenessProbe"]["httpGet"]["path"] == "/health"
    dashboard = _k8s("Deployment", "dashboard")["spec"]["template"]["spec"]["containers"][0]
    assert {
        p: dashboard[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    } == dict.fromkeys(("startupProbe", "readinessProbe", "livenessProbe"), "/_stcore/health")
    assert dashboard["args"][:2] == ["ntsb", "dashboard"] and _k8s("Service", "dashboard")
    hpa = _k8s("HorizontalPodAutoscaler", "api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api" and hpa["spec"]["minReplicas"] >= 2


def test_compose_file_validates_against_the_compose_specification():
    out = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_runs_the_whole_stack_with_real_settings_and_image_targets():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = compose["x-ntsb-env"]
    assert {k for k in env if k.startswith("NTSB_")} <= SETTINGS
    assert set(compose["services"]) == {
        "postgres",
        "minio",
        "redis",
        "mlflow",
        "code",
        "webserver",
        "daemon",
        "api",
        "dashboard",
    }
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (DEPLOY / "Dockerfile").read_text(), re.M))
    used = {s["build"]["target"] for s in compose["services"].values() if "build" in s}
    assert used == {"code", "dagster", "api", "dashboard"} and used <= targets
    # secrets are interpolated from deploy/.env, whose template lists every one of them
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text())) <= example


def test_dockerfile_passes_hadolint():
    out = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "warning", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_k8s_setting_gives_every_job_the_k8s_job_executor():
    script = (
        "from ntsb_assets.definitions import defs; "
        "print(sorted({j.executor_def.name for j in defs.resolve_all_job_defs() if j.name != 'fetch_release'}))"
    )
    names = {}
    for executor in ("in_process", "k8s"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "NTSB_EXECUTOR": executor},
        )
        assert out.returncode == 0, out.stderr[-3000:]
        names[executor] = out.stdout.strip().splitlines()[-1]
    assert names == {"in_process": "['in_process']", "k8s": "['k8s']"}
