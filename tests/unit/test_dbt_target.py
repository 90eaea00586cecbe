"""The dbt target directories of a deployment carry dbt's partial-parse state from one
invocation to the next (no dbt run: the state file is dbt's to write); the dbt resource
knows its executable's version without asking it each run."""

import re
import subprocess

from packaging import version

from ntsb_assets.transform.assets import dbt_resource
from ntsb_assets.transform.project import DBT_EXECUTABLE, KEEP_TARGETS, PARTIAL_PARSE, run_target


def test_the_resource_knows_the_executables_version():
    out = subprocess.run([DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True).stdout
    assert dbt_resource._cli_version == version.parse(re.search(r"(\d+\.\d+\.\d+)", out).group(1))


def test_partial_parse_state_passes_to_the_next_invocation_and_old_targets_go(tmp_path):
    with run_target(tmp_path, "build") as first:
        assert not (first / PARTIAL_PARSE).exists()  # nothing to start from
        (first / PARTIAL_PARSE).write_bytes(b"state-1")  # what dbt leaves
    with run_target(tmp_path, "docs") as second:
        assert (second / PARTIAL_PARSE).read_bytes() == b"state-1"
        (second / PARTIAL_PARSE).write_bytes(b"state-2")
    assert (tmp_path / "dbt" / PARTIAL_PARSE).read_bytes() == b"state-2"
    for _ in range(KEEP_TARGETS + 2):
        with run_target(tmp_path, "build") as last:
            pass
    runs = list((tmp_path / "dbt" / "runs").iterdir())
    assert len(runs) == KEEP_TARGETS and last in runs and first not in runs
