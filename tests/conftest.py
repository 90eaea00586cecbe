"""Shared fixtures: an isolated NTSB_HOME per test, a throw-away PostgreSQL database, and
moto's standalone S3 server. Real components only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "landing"
MDB_FIXTURES = Path(__file__).parent / "fixtures" / "mdb"
PG_ADMIN_URL = os.environ.get("NTSB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


def pytest_configure(config):
    """The Dagster definitions load a dbt manifest: build it before tests import them. The
    narrative encoder's int8 graph is built once for the session, not once per test home."""
    import tempfile

    from ntsb_assets.transform.project import prepare_manifest

    prepare_manifest()
    if "NTSB_MODEL_CACHE" not in os.environ:
        config._ntsb_model_cache = os.environ["NTSB_MODEL_CACHE"] = tempfile.mkdtemp(prefix="ntsb-test-models-")


def pytest_unconfigure(config):
    import shutil

    made = getattr(config, "_ntsb_model_cache", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop("NTSB_MODEL_CACHE", None)


@pytest.fixture
def ntsb_home(tmp_path, monkeypatch) -> Path:
    """An empty embedded deployment: NTSB_HOME and DAGSTER_HOME in a temporary directory."""
    home = tmp_path / "var"
    monkeypatch.setenv("NTSB_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    for k in ("NTSB_WAREHOUSE_URL", "NTSB_LAKE_URL", "NTSB_LANDING_URL", "NTSB_S3_ENDPOINT", "NTSB_MLFLOW_URI"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return home


@pytest.fixture(autouse=True)
def _temporary_directory_restored():
    """Settings.check() makes $NTSB_HOME/tmp the process's temporary directory (tempfile's,
    and TMPDIR for the children): undone after every test, since its NTSB_HOME goes away
    (a TMPDIR that does not exist stops Chromium, for one)."""
    import tempfile

    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    yield
    tempfile.tempdir = saved[0]
    if saved[1] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved[1]


def _pg_admin():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database, dropped afterwards."""
    with pg_database() as url:
        yield url


@contextmanager
def pg_database():
    name = f"ntsb_test_{uuid.uuid4().hex[:10]}"
    conn = _pg_admin()
    conn.cursor().execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        cur = conn.cursor()
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()


DEPLOYMENT_VARIABLES = (
    "NTSB_WAREHOUSE_URL",
    "NTSB_LAKE_URL",
    "NTSB_LANDING_URL",
    "NTSB_S3_ENDPOINT",
    "NTSB_MLFLOW_URI",
    "NTSB_API_SECRET",
    "NTSB_REDIS_URL",
    "NTSB_API_RATE_LIMIT",
    "NTSB_API_AUTH_FAILURE_LIMIT",
)


@contextmanager
def deployment_home(kind: str, root: Path, s3_endpoint: str, redis_db: int):
    """A deployment under ``root`` (NTSB_HOME ``root/var``), its environment set and ``root``
    the working directory for the block; yields the environment. ``production``: a
    PostgreSQL database made for it (dropped after), an S3 bucket on moto, Redis database
    ``redis_db``; ``embedded``: nothing else."""
    home = root / "var"
    env = {"NTSB_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    with pg_database() if kind == "production" else nullcontext() as url:
        if url:
            bucket = f"ntsb-{uuid.uuid4().hex[:8]}"
            env |= {
                "NTSB_WAREHOUSE_URL": url,
                "NTSB_MLFLOW_URI": url,
                "NTSB_LAKE_URL": f"s3://{bucket}/lake",
                "NTSB_LANDING_URL": f"s3://{bucket}/landing",
                "NTSB_S3_ENDPOINT": s3_endpoint,
                "NTSB_S3_ACCESS_KEY": "testing",
                "NTSB_S3_SECRET_KEY": "testing",
                "NTSB_API_SECRET": "a-test-secret-that-is-long-enough-0123456789",
                "NTSB_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            }
        with pytest.MonkeyPatch.context() as mp:
            for k in DEPLOYMENT_VARIABLES:
                mp.delenv(k, raising=False)
            for k, v in env.items():
                mp.setenv(k, v)
            mp.chdir(root)
            yield env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone S3 server on a free loopback port."""
    # the locked moto next to this interpreter, before any other on PATH
    local = Path(sys.executable).with_name("moto_server")
    exe = str(local) if local.exists() else shutil.which("moto_server")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def production_env(ntsb_home, pg_url, s3_endpoint, monkeypatch):
    """Production deployment: PostgreSQL warehouse, S3 lake and landing zone (moto)."""
    bucket = f"ntsb-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NTSB_WAREHOUSE_URL", pg_url)
    monkeypatch.setenv("NTSB_MLFLOW_URI", pg_url)  # MLflow's tables go to the public schema
    monkeypatch.setenv("NTSB_LAKE_URL", f"s3://{bucket}/lake")
    monkeypatch.setenv("NTSB_LANDING_URL", f"s3://{bucket}/landing")
    monkeypatch.setenv("NTSB_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("NTSB_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("NTSB_S3_SECRET_KEY", "testing")
    return {"pg_url": pg_url, "bucket": bucket}


@pytest.fixture(params=["embedded", "production"])
def deployment(request):
    """Each deployment in turn: embedded, then PostgreSQL + S3."""
    request.getfixturevalue("ntsb_home" if request.param == "embedded" else "production_env")
    return request.param


def copy_release(name: str, dest: Path, new_name: str | None = None) -> Path:
    target = dest / (new_name or name)
    shutil.copytree(SAMPLE / name, target)
    return target
