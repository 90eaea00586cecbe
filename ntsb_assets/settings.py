"""One place for configuration: environment variables with the ``NTSB_`` prefix, or a
``.env`` file in the working directory. Defaults are embedded (everything under
``NTSB_HOME``); production is chosen by URLs.

====================  ==========================================  ===============================
setting               embedded default                            production example
====================  ==========================================  ===============================
NTSB_HOME             ./var                                       /srv/ntsb
NTSB_WAREHOUSE_URL    duckdb:///$NTSB_HOME/warehouse.duckdb       postgresql://ntsb@db:5432/ntsb
NTSB_LAKE_URL         $NTSB_HOME/lake                             s3://ntsb-lake/prod
NTSB_LANDING_URL      $NTSB_HOME/landing                          s3://ntsb-landing/incoming
NTSB_S3_ENDPOINT      (AWS)                                       http://minio:9000
NTSB_S3_ACCESS_KEY    -                                           ...
NTSB_S3_SECRET_KEY    -                                           ...
NTSB_S3_REGION        us-east-1                                   us-east-1
NTSB_MLFLOW_URI       sqlite:///$NTSB_HOME/mlflow.db              postgresql://ntsb@db/mlflow
NTSB_API_SECRET       generated in $NTSB_HOME/api_secret          (required: 32+ characters)
NTSB_API_RATE_LIMIT   600 requests per minute per token           600
NTSB_API_AUTH_FAILURE_LIMIT  20 failed authentications a minute per client address: more get 429
NTSB_REDIS_URL        - (rate limits in process)                  redis://redis:6379/0
NTSB_RELEASE_URL      - (the release schedule fetches nothing)    https://.../up{DDMON}.zip
NTSB_ALERT_WEBHOOK_URL - (alerts logged and kept in the lake)     https://hooks.example.org/...
NTSB_DOCS_URL         http://127.0.0.1:8580 (`ntsb docs`)         https://docs.ntsb.example.org
NTSB_MAP_STYLE        - (the dashboard's map has no tiles)        light (Carto's basemap, online)
====================  ==========================================  ===============================

``DAGSTER_HOME`` is ``$NTSB_HOME/dagster`` unless set.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .lib.lake import Lake, LakeError
from .lib.warehouse import PG_OPTIONS, Warehouse, WarehouseError


class SettingsError(Exception):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NTSB_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("var"), description="All embedded state lives here.")
    warehouse_url: str | None = None
    lake_url: str | None = None
    landing_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    mlflow_uri: str | None = None
    api_secret: str | None = None
    api_rate_limit: int = Field(default=600, ge=1, description="Requests per minute per token or client.")
    api_auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed authentications per minute per client address; more get 429."
    )
    redis_url: str | None = None
    alert_webhook_url: str | None = Field(default=None, description="Failed runs are POSTed here as JSON.")
    retrain_threshold: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Share of the labelled events new, changed or gone since the "
        "latest training that retrains the model before the month ends.",
    )
    executor: Literal["in_process", "k8s"] = Field(
        default="in_process",
        description="How a run executes its steps: in its own process, or each step in a "
        "Kubernetes Job of its own (deploy/k8s).",
    )
    release_url: str | None = Field(
        default=None,
        description="Where the release schedule downloads an update; "
        "{DDMON} becomes e.g. 01JUL, {date:%Y%m%d} any strftime form.",
    )
    map_style: str | None = Field(
        default=None,
        description="The dashboard map's basemap (a Carto style name "
        "such as light, or a style URL); none by default: the map draws offline.",
    )
    embed_max_texts: int = Field(
        default=0,
        ge=0,
        description="At most this many narrative texts embedded per materialization of "
        "ml/narrative_embeddings, the latest events' first; the others wait, without vectors, for "
        "the next one (0: all at once). Bounds a build's embedding time on a small machine.",
    )
    model_cache: Path | None = Field(
        default=None,
        description="Where models built from packaged weights are kept (the narrative encoder's "
        "int8 graph, named by version, so homes can share it); $NTSB_HOME/models by default.",
    )
    docs_url: str = Field(
        default="http://127.0.0.1:8580",
        description="Where `ntsb docs` serves the dbt docs and "
        "the Great Expectations Data Docs; the checks link their Data Docs page under it.",
    )

    @field_validator("home")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    # ------------------------------------------------------------ derived
    @property
    def warehouse_url_effective(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.home / 'warehouse.duckdb'}"

    @property
    def lake_url_effective(self) -> str:
        return self.lake_url or str(self.home / "lake")

    @property
    def landing_url_effective(self) -> str:
        return self.landing_url or str(self.home / "landing")

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster").resolve()

    @property
    def mlflow_uri_effective(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def models_dir(self) -> Path:
        """Models built from packaged weights (the narrative encoder's quantized graph)."""
        return self.model_cache or self.home / "models"

    @property
    def tmp_dir(self) -> Path:
        """Temporary files (zip members spooled, Parquet before it is published, the
        extraction workers' and dbt's): under NTSB_HOME, not the system's temporary directory."""
        return self.home / "tmp"

    def use_home_tmp(self) -> None:
        """Make tmp_dir this process's and its children's temporary directory."""
        import tempfile

        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(
                f"NTSB_HOME={str(self.home)!r}: cannot create {self.tmp_dir}: {exc.strerror or exc}"
            ) from None
        tempfile.tempdir = os.environ["TMPDIR"] = str(self.tmp_dir)

    @property
    def serving_dir(self) -> Path:
        """Embedded: where the serving snapshots and their pointer live."""
        return self.home / "serving"

    def api_secret_effective(self) -> str:
        """The JWT signing secret. Production: NTSB_API_SECRET, 32 characters or more, or an
        error. Embedded: that, or a random secret generated once in $NTSB_HOME/api_secret."""
        if self.api_secret:
            if len(self.api_secret) < 32:
                raise SettingsError("NTSB_API_SECRET must be at least 32 characters")
            return self.api_secret
        if self.deployment == "production":
            raise SettingsError(
                "NTSB_API_SECRET is not set: the API refuses to start in production "
                "without a secret of its own (32+ characters)"
            )
        path = self.home / "api_secret"
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            tmp.chmod(0o600)
            os.replace(tmp, path)
        return path.read_text(encoding="utf-8").strip()

    @property
    def deployment(self) -> str:
        return "production" if (self.warehouse_url or "").startswith("postgres") else "embedded"

    @cached_property
    def warehouse(self) -> Warehouse:
        try:
            return Warehouse(self.warehouse_url_effective)
        except WarehouseError as exc:
            raise SettingsError(str(exc)) from None

    def _lake(self, url: str, setting: str) -> Lake:
        try:
            return Lake(
                url,
                endpoint=self.s3_endpoint,
                access_key=self.s3_access_key,
                secret_key=self.s3_secret_key,
                region=self.s3_region,
                setting=setting,
            )
        except LakeError as exc:
            raise SettingsError(str(exc)) from None

    @cached_property
    def lake(self) -> Lake:
        return self._lake(self.lake_url_effective, "NTSB_LAKE_URL")

    @cached_property
    def landing(self) -> Lake:
        return self._lake(self.landing_url_effective, "NTSB_LANDING_URL")

    def check(self) -> None:
        """Fail fast, naming the setting, when a configured component is unreachable."""
        try:
            wh = self.warehouse
            if wh.dialect == "duckdb" and wh.path.parent == self.home:  # the embedded default: home is ours
                try:
                    self.home.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise SettingsError(
                        f"NTSB_HOME={str(self.home)!r}: cannot create it: {exc.strerror or exc}"
                    ) from None
            wh.check()
            self.lake.ensure_ready()
            self.landing.ensure_ready()
            self.use_home_tmp()
        except (WarehouseError, LakeError) as exc:
            raise SettingsError(str(exc)) from None

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt_project/profiles.yml reads: the dbt target is the warehouse."""
        wh = self.warehouse
        if wh.dialect == "duckdb":
            return {"NTSB_DBT_TARGET": "duckdb", "NTSB_DBT_DUCKDB_PATH": str(wh.path)}
        p = urlparse(wh.dsn)
        return {
            "NTSB_DBT_TARGET": "postgres",
            "NTSB_DBT_PG_HOST": p.hostname or "127.0.0.1",
            "NTSB_DBT_PG_PORT": str(p.port or 5432),
            "NTSB_DBT_PG_USER": unquote(p.username or "postgres"),
            "NTSB_DBT_PG_PASSWORD": unquote(p.password or ""),
            "NTSB_DBT_PG_DATABASE": p.path.lstrip("/"),
            "PGOPTIONS": PG_OPTIONS,
        }  # read by libpq, under dbt-postgres's psycopg2

    def describe(self) -> dict[str, str]:
        return {
            "deployment": self.deployment,
            "home": str(self.home),
            "warehouse": self.warehouse.safe_url,
            "lake": self.lake_url_effective,
            "landing": self.landing_url_effective,
            "dagster_home": str(self.dagster_home),
        }


def get_settings() -> Settings:
    return Settings()
