"""Helpers for integration tests: run the CLI in-process, make a revised release, and
read the warehouse."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from ntsb_assets.cli import main
from ntsb_assets.settings import get_settings


def ntsb(*args: str, expect_ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if expect_ok:
        assert result.exit_code == 0, result.output
    return result


def ingest_json(path: Path) -> dict:
    return json.loads(ntsb("ingest", str(path), "--json").stdout)


def query(sql: str) -> list[dict]:
    with get_settings().warehouse.session(read_only=True) as s:
        return s.query(sql).to_pylist()


def rewrite_csv(path: Path, edit) -> None:
    """Read a CSV, let ``edit(header, rows)`` change the rows in place, write it back."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    edit(header, body)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body])
