"""Facts the SQL and the Python both use, kept once: the ``vars`` of ``dbt_project.yml``
(the type map, the earliest event date, the fatalities outlier bound). dbt reads them with
``var()``; Python reads them here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DBT_PROJECT_FILE = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"


def _load() -> dict[str, Any]:
    with DBT_PROJECT_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)["vars"]


VARS: dict[str, Any] = _load()
