"""The previous release of the same source: one definition, used by the release gate and
the schema-drift check."""

from dataclasses import asdict

from ntsb_assets.lib import registry
from ntsb_assets.lib.extract import MANIFEST, previous_manifest, release_prefix, schema_diff
from ntsb_assets.lib.lake import Lake


def _put(lake: Lake, release_id: str, name: str, at: str) -> None:
    rel = registry.Release(release_id, name, release_id * 4, 1, "mdb", f"file:{name}", at)
    lake.put_json(f"releases/{release_id}/release.json", asdict(rel))


def test_the_previous_release_is_the_latest_of_its_family_registered_before(tmp_path):
    lake = Lake(str(tmp_path))
    _put(lake, "b", "up01DEC.mdb", "2025-12-01T00:00:00")
    _put(lake, "a", "up01NOV.mdb", "2025-11-01T00:00:00")
    _put(lake, "c", "avall.mdb", "2025-12-15T00:00:00")  # another source
    _put(lake, "e", "up08JAN.mdb", "2026-01-08T00:00:00")
    _put(lake, "d", "up08JAN.mdb", "2026-01-08T00:00:00")  # same time: the id decides

    def prev(rid, **kw):
        found = registry.previous_of(lake, rid, **kw)
        return found.release_id if found else None

    assert [prev(r) for r in "abcde"] == [None, "a", None, "b", "d"]
    assert prev("e", having=lambda r: r.release_id != "d") == "b"
    assert prev("unknown") is None


def test_the_drift_check_compares_with_the_previous_extracted_release(tmp_path):
    lake = Lake(str(tmp_path))
    _put(lake, "a", "up01NOV.mdb", "2025-11-01T00:00:00")
    _put(lake, "b", "up01DEC.mdb", "2025-12-01T00:00:00")  # registered, never extracted
    _put(lake, "c", "up08JAN.mdb", "2026-01-08T00:00:00")
    lake.put_json(f"{release_prefix('a')}/{MANIFEST}", {"release_id": "a", "tables": {}})
    assert previous_manifest(lake, "c") == {"release_id": "a", "tables": {}}
    assert previous_manifest(lake, "a") is None


def test_a_schema_diff_names_added_removed_and_retyped_columns():
    assert schema_diff({"a": "int", "b": "string", "c": "date"}, {"a": "float", "c": "date", "d": "bool"}) == {
        "added": ["d"],
        "removed": ["b"],
        "retyped": ["a: int -> float"],
    }
