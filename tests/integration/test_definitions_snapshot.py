"""The code location's definitions against a checked-in snapshot: every asset (group,
upstream keys, partitioned or not, automation condition), check (and its automation
condition), job, schedule and sensor. An accidental change
shows up here and in review; an intended one is recorded with

    NTSB_UPDATE_DEFINITIONS=1 .venv/bin/python -m pytest tests/integration/test_definitions_snapshot.py
"""

import difflib
import json
import os
from pathlib import Path

from ntsb_assets.definitions import defs

SNAPSHOT = Path(__file__).parents[1] / "fixtures" / "definitions.json"


def describe() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
            "automation": _label(node.automation_condition),
        }
    repo = defs.get_repository_def()
    return {
        "groups": sorted({a["group"] for a in assets.values()}),
        "assets": assets,
        "checks": {
            f"{c.asset_key.to_user_string()}:{c.name}": _label(graph.get(c).automation_condition)
            for c in sorted(graph.asset_check_keys, key=lambda c: c.to_user_string())
        },
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": {s.name: s.cron_schedule for s in sorted(repo.schedule_defs, key=lambda s: s.name)},
        "sensors": sorted(s.name for s in repo.sensor_defs),
    }


def _label(condition) -> str | None:
    return None if condition is None else (condition.get_label() or condition.name)


def test_definitions_match_the_checked_in_snapshot():
    now = json.dumps(describe(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("NTSB_UPDATE_DEFINITIONS"):
        SNAPSHOT.write_text(now, encoding="utf-8")
    recorded = SNAPSHOT.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(recorded.splitlines(True), now.splitlines(True), "recorded", "now"))
    assert not diff, f"the definitions changed (record an intended change: see this module's docstring):\n{diff}"
