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
    if ";" in statement:  # refused before anything ran
        assert "one statement at a time" in r.output


def test_ntsb_sql_reads_no_file_and_no_secret(loaded, ntsb_home, tmp_path):
    secret = get_settings().api_secret_effective() if loaded == "duckdb" else "no secret file in production"
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    if loaded == "postgres":
        probes = [
            "select pg_read_file('/etc/passwd')",
            "select lo_import('/etc/passwd')",
            "select pg_ls_dir('.')",
            "select set_config('role', 'postgres', false)",
            f"copy raw.events to '{victim}'",
            "select pg_sleep(5)",
        ]
    else:
        probes = [
            "select * from read_text('/etc/passwd')",
            f"select * from read_text('{ntsb_home}/api_secret')",
            f"select * from glob('{ntsb_home}/**')",
            f"copy raw.events to '{victim}'",
            f"copy (select 'mine' as s) to '{ntsb_home}/api_secret' (header false)",
            "install httpfs",
            "load httpfs",
            f"attach '{tmp_path}/other.duckdb'",
            "set enable_external_access = true",
        ]
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
    row = query(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
        "pg_has_role('ntsb_reader', 'pg_read_server_files', 'MEMBER') AS files, "
        "has_table_privilege('ntsb_reader', 'raw._audit', 'DELETE') AS can_delete, "
        "has_table_privilege('ntsb_reader', 'raw._audit', 'SELECT') AS can_select "
        "FROM pg_roles WHERE rolname = 'ntsb_reader'"
    )[0]
    assert row == {
        "rolsuper": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolbypassrls": False,
        "files": False,
        "can_delete": False,
        "can_select": True,
    }


# ---------------------------------------------------------------- the landing zone and zips
def _release_dir(root, name="relx"):
    import shutil

    d = root / name
    shutil.copytree(SAMPLE / "03_up01DEC2025", d)
    return d


def _raw_tables() -> set[str]:
    s = get_settings()
    if s.warehouse.dialect == "duckdb" and not s.warehouse.path.exists():
        return set()
    with s.warehouse.session(read_only=True) as w:
        return set(w.table_names())


def test_links_devices_and_outside_paths_in_the_landing_zone_are_refused(ntsb_home, tmp_path):
    import os

    from ntsb_assets.lib import registry

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    landing = ntsb_home / "landing"
    landing.mkdir(parents=True)
    (_release_dir(landing, "rel_symlink") / "passwd.csv").symlink_to("/etc/passwd")
    os.link(outside / "secret.csv", _release_dir(landing, "rel_hardlink") / "secret.csv")
    os.mkfifo(_release_dir(landing, "rel_fifo") / "pipe.csv")
    (_release_dir(landing, "rel_dirlink") / "sub").symlink_to(outside, target_is_directory=True)
    (landing / "linked.zip").symlink_to(outside / "secret.csv")
    _release_dir(landing, "rel_good")
    s = get_settings()
    regs, _ = registry.scan_landing(s.landing, s.lake)
    refused = {r.name: r.refused for r in regs if r.refused}
    assert set(refused) == {"rel_symlink", "rel_hardlink", "rel_fifo", "rel_dirlink", "linked.zip"}, refused
    assert "[symlink]" in refused["rel_symlink"] and "passwd.csv" in refused["rel_symlink"]
    assert "[hard_link]" in refused["rel_hardlink"] and "[not_a_file]" in refused["rel_fifo"]
    assert "[symlink]" in refused["rel_dirlink"] and "[symlink]" in refused["linked.zip"]
    assert [r.name for r in regs if r.new] == ["rel_good"]
    assert [r.name for r in registry.all_releases(s.lake)] == ["rel_good"]
    # the same folder handed to `ntsb ingest`: refused before anything is copied or loaded
    r = ntsb("ingest", str(landing / "rel_symlink"), expect_ok=False)
    assert r.exit_code == 1 and "symbolic link" in r.output and "passwd.csv" in r.output
    assert "passwd" not in _raw_tables()
    assert not any("passwd" in k or "secret" in k for k in s.lake.list(""))


def _zip(path, members: dict[str, bytes], links: dict[str, str] | None = None):
    import stat
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


@pytest.mark.parametrize(
    "member,rule",
    [
        ("../../evil.csv", "zip_path"),
        ("/abs/evil.csv", "zip_path"),
        ("sub/../../evil.csv", "zip_path"),
        ("link.csv", "zip_link"),
    ],
)
def test_hostile_zip_members_are_refused_by_name(ntsb_home, tmp_path, member, rule):
    events = (SAMPLE / "03_up01DEC2025" / "events.csv").read_bytes()
    members = {"events.csv": events}
    links = {}
    if rule == "zip_link":
        links[member] = "/etc/passwd"
    else:
        members[member] = b"a,b\n1,2\n"
    z = _zip(tmp_path / "up01XXX.zip", members, links)
    r = ntsb("ingest", str(z), expect_ok=False)
    assert r.exit_code == 1 and f"up01XXX.zip:{member}" in r.output and f"[{rule}]" in r.output, r.output
    assert "evil" not in _raw_tables() and not get_settings().lake.list("raw")


def test_a_zip_bomb_is_refused_before_extraction_and_nothing_spools_outside_home(ntsb_home, tmp_path, monkeypatch):
    import tempfile

    z = _zip(tmp_path / "bomb.zip", {"events.csv": b"ev_id,ev_date\n" + b"0" * (256 << 20)})
    assert z.stat().st_size < 2 << 20
    # any temporary file outside NTSB_HOME would fail: the system's temporary directory is gone
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-tmp"))
    r = ntsb("ingest", str(z), expect_ok=False)
    assert r.exit_code == 1 and "bomb.zip:events.csv" in r.output and "[zip_ratio]" in r.output, r.output
    assert "zip bomb" in r.output
    # a sound zip goes through with its temporary files under NTSB_HOME
    good = _zip(tmp_path / "up01DEC2025.zip", {p.name: p.read_bytes() for p in (SAMPLE / "03_up01DEC2025").iterdir()})
    r = ntsb("ingest", str(good), "--json")
    assert '"events"' in r.output and tempfile.gettempdir() == str(ntsb_home / "tmp")


def test_an_unwritable_lake_is_named_with_its_setting(ntsb_home, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NTSB_LAKE_URL", str(blocker / "lake"))
    r = ntsb("ingest", str(SAMPLE / "03_up01DEC2025"), expect_ok=False)
    assert r.exit_code == 1 and "NTSB_LAKE_URL" in r.output and str(blocker / "lake") in r.output, r.output
    assert "Traceback" not in r.output
    # a lake that cannot take what a run writes (here: a file where the run's folder goes):
    # the first error, naming the setting, not the cleanup's
    lake = tmp_path / "lake"
    (lake / "releases").mkdir(parents=True)
    (lake / "raw").write_text("in the way")
    monkeypatch.setenv("NTSB_LAKE_URL", str(lake))
    r = ntsb("ingest", str(SAMPLE / "03_up01DEC2025"), expect_ok=False)
    assert r.exit_code == 1 and "NTSB_LAKE_URL" in r.output and "cannot write" in r.output, r.output
    assert "Traceback" not in r.output
