"""Watermarks of the incremental dbt models (lib/incremental.py) on a real DuckDB file."""

import datetime as dt
import shutil

from ntsb_assets.lib import incremental
from ntsb_assets.lib.warehouse import Warehouse
from ntsb_assets.transform.project import DBT_DIR


def test_a_changed_project_drops_the_watermarks_and_a_build_records_them(tmp_path):
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    before = incremental.project_fingerprint(project)
    assert incremental.project_fingerprint(project) == before
    (project / "target").mkdir()
    (project / "target" / "x.sql").write_text("select 1")  # build output: not the project
    assert incremental.project_fingerprint(project) == before
    model = project / "models" / "marts" / "core" / "fact_accidents.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    edited = incremental.project_fingerprint(project)
    assert edited != before

    wh = Warehouse(f"duckdb:///{tmp_path}/w.duckdb")
    t1, t2 = dt.datetime(2026, 1, 1, 8, 0, 0, 123456), dt.datetime(2026, 2, 1, 9, 30)
    with wh.session() as s:
        assert incremental.prepare(s, before) is None  # nothing loaded yet
        s.ensure_schema()
        s.execute("CREATE TABLE raw._releases (release_id VARCHAR, last_loaded_at TIMESTAMP)")
        s.execute("INSERT INTO raw._releases VALUES ('a', ?), ('b', ?)", (t1, t2))
        assert incremental.prepare(s, before) == t2
        incremental.record(s, ["fact_accidents", "dim_causes"], before, t1)
        incremental.record(s, ["fact_accidents"], before, t2)  # a later build of one model

        def marks():
            return sorted(
                s.query(f"SELECT model, loaded_through FROM {incremental.SCHEMA}.{incremental.TABLE}").to_pylist(),
                key=lambda r: r["model"],
            )

        assert marks() == [
            {"model": "dim_causes", "loaded_through": t1},
            {"model": "fact_accidents", "loaded_through": t2},
        ]
        assert incremental.prepare(s, before) == t2 and len(marks()) == 2  # the same project keeps them
        incremental.prepare(s, edited)
        assert marks() == []
