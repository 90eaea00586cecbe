"""Hostile use and faults: a read-only `ntsb sql`, the landing zone's and a zip's
boundaries, bounded sizes, errors that name their cause. Real warehouses, real files."""

from __future__ import annotations

import pytest

from ntsb_assets.lib.extract import extract_release
from ntsb_assets.lib.load import load_release
from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE
from tests.integration.helpers import ntsb, query


@pytest.fixture(params=["duckdb", "postgres"])
def loaded(request, ntsb_home, monkeypatch):
    """The sample's update release loaded into an embedded or a PostgreSQL warehouse."""
    if request.param == "postgres":
        monkeypatch.setenv("NTSB_WAREHOUSE_URL", request.getfixturevalue("pg_url"))
    s = get_settings()
    load_release(extract_release(SAMPLE / "02_up01JUL2025", s.lake), s.lake, s.warehouse)
    return request.param


def _counts() -> dict[str, int]:
    return {t: query(f"SELECT count(*) AS n FROM raw.{t}")[0]["n"] for t in ("_audit", "events", "narratives")}


WRITES = [
    "BEGIN READ WRITE; DELETE FROM raw._audit; COMMIT; SELECT count(*) AS n FROM raw._audit",
    "BEGIN READ WRITE; DROP TABLE raw.narratives; COMMIT",
    "DELETE FROM raw._audit",
    "DROP TABLE raw.narratives",
    "CREATE TABLE raw.x AS SELECT 1 AS a",
    "select 1; -- a comment is not a statement\nselect 2",
]


@pytest.mark.parametrize("statement", WRITES)
def test_ntsb_sql_cannot_write(loaded, statement):
    before = _counts()
    assert before["_audit"] > 0
    r = ntsb("sql", statement, expect_ok=False)
    assert r.exit_code == 1, r.output
    assert _counts() == before
    if ";" in statement:   # refused before anything ran
        assert "one statement at a time" in r.output


def test_ntsb_sql_reads_no_file_and_no_secret(loaded, ntsb_home, tmp_path):
    secret = get_settings().api_secret_effective() if loaded == "duckdb" else "no secret file in production"
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    if loaded == "postgres":
        probes = ["select pg_read_file('/etc/passwd')", "select lo_import('/etc/passwd')",
                  "select pg_ls_dir('.')", "select set_config('role', 'postgres', false)",
                  f"copy raw.events to '{victim}'", "select pg_sleep(5)"]
    else:
        probes = ["select * from read_text('/etc/passwd')", f"select * from read_text('{ntsb_home}/api_secret')",
                  f"select * from glob('{ntsb_home}/**')", f"copy raw.events to '{victim}'",
                  f"copy (select 'mine' as s) to '{ntsb_home}/api_secret' (header false)",
                  "install httpfs", "load httpfs", f"attach '{tmp_path}/other.duckdb'",
                  "set enable_external_access = true"]
    for probe in probes:
        r = ntsb("sql", "--timeout", "1", probe, expect_ok=False)
        assert r.exit_code == 1, (probe, r.output)
        assert "root:" not in r.output and secret not in r.output
    assert victim.read_text() == "untouched"
    if loaded == "duckdb":
        assert get_settings().api_secret_effective() == secret
    # and reading the warehouse still works
    r = ntsb("sql", "--format", "json", "select count(*) as n from raw.events;")
    assert '"n": 83' in r.output


def test_postgres_reader_role_is_not_privileged(loaded):
    if loaded != "postgres":
        pytest.skip("PostgreSQL roles")
    ntsb("sql", "select 1")
    row = query("SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
                "pg_has_role('ntsb_reader', 'pg_read_server_files', 'MEMBER') AS files, "
                "has_table_privilege('ntsb_reader', 'raw._audit', 'DELETE') AS can_delete, "
                "has_table_privilege('ntsb_reader', 'raw._audit', 'SELECT') AS can_select "
                "FROM pg_roles WHERE rolname = 'ntsb_reader'")[0]
    assert row == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False, "rolbypassrls": False,
                   "files": False, "can_delete": False, "can_select": True}
