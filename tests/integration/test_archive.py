"""The Parquet archive, the analytics and the severity model over it, on both deployments
(local lake + DuckDB, S3 through moto + PostgreSQL), from the bundled sample."""

import hashlib
import json

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import chi2_contingency
from sklearn.cluster import DBSCAN

from ntsb_assets import keys
from ntsb_assets.archive import archive_runs, archive_sensor
from ntsb_assets.cli import _run_archive_and_analytics
from ntsb_assets.definitions import defs
from ntsb_assets.lib import analytics as an
from ntsb_assets.lib import archive, features, narratives
from ntsb_assets.resources import NtsbResource
from ntsb_assets.settings import get_settings
from tests.conftest import SAMPLE
from tests.integration.helpers import ingest_json, query
from tests.integration.test_model import severity_model_end_to_end


def _build_marts(instance):
    job = defs.resolve_job_def("transform")
    selection = [k for k in job.asset_layer.executable_asset_keys if k != dg.AssetKey(["docs", "dbt"])]
    assert job.execute_in_process(instance=instance, asset_selection=selection).success


def _archived_files(lake) -> dict[str, str]:
    return {k: hashlib.sha256(lake.get_bytes(k)).hexdigest() for k in lake.list(archive.PREFIX)}


def _mart_rows(settings, table: str) -> list[dict]:
    """The mart's rows as the archive stores them (its columns and types)."""
    with settings.warehouse.session(read_only=True) as s:
        src = archive.source(s, table)
        sql = src.select()
        if src.year_sql:
            sql = sql.replace(" FROM ", f", {src.year_sql} AS year FROM ", 1)
        data = s.query(sql)
    schema = src.schema.append(pa.field("year", pa.int32())) if src.year_sql else src.schema
    return data.select(schema.names).cast(schema).to_pylist()


def test_archive_round_trip_changed_years_analytics_and_model(deployment):
    for rel in ("00_reference_avall", "01_part121_1982_2019", "02_up01JUL2025"):
        ingest_json(SAMPLE / rel)
    settings = get_settings()
    lake = settings.lake
    resources = {"ntsb": NtsbResource()}
    with dg.DagsterInstance.get() as instance:
        _build_marts(instance)

        # the sensor asks for exactly the runs the plan makes: every year with events, in
        # ranges of consecutive years
        runs = archive_runs(settings)
        requests = archive_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [r.tags for r in requests] == runs
        years = {
            r["y"]
            for r in query(
                "SELECT DISTINCT CAST(extract(year FROM event_date) AS INTEGER) AS y FROM marts.fact_accidents"
            )
        }
        assert len(years) > 30
        assert sorted(
            y
            for t in runs
            for y in range(
                int(t["dagster/asset_partition_range_start"]), int(t["dagster/asset_partition_range_end"]) + 1
            )
        ) == sorted(years)

        published = _run_archive_and_analytics(instance, settings)
        assert sorted(published["archive"]["years"]) == sorted(years)
        assert published["analytics"] == [  # and the model's features and the narratives' vectors
            "analytics/correlations",
            "analytics/geo_clusters",
            "analytics/make_model_risk",
            "analytics/topics",
            "analytics/trends",
            "ml/features",
            "ml/narrative_embeddings",
        ]
        embedded = instance.get_latest_materialization_event(keys.NARRATIVE_EMBEDDINGS).asset_materialization.metadata
        texts = query(
            "SELECT count(*) FILTER (WHERE trim(coalesce(narrative, '')) <> '') "
            "+ count(*) FILTER (WHERE trim(coalesce(probable_cause, '')) <> '') AS n FROM marts.narratives"
        )[0]["n"]
        vectors = lake.read_parquet(narratives.VECTORS_KEY)
        assert embedded["texts"].value + embedded["blank texts (no vector)"].value == 2 * len(
            query("SELECT ev_id FROM marts.narratives")
        )
        assert 0 < embedded["texts embedded now"].value == embedded["texts"].value <= texts
        assert vectors.num_rows >= embedded["texts"].value
        assert vectors.schema.metadata[b"model"] == b"sentence-transformers/all-MiniLM-L6-v2"
        # the sensor has seen this build: nothing more to ask
        again = archive_sensor(
            dg.build_sensor_context(
                instance=instance,
                resources=resources,
                cursor=str(instance.fetch_materializations(keys.FACT, limit=1).records[0].storage_id - 1),
            )
        )
        assert isinstance(again, dg.SkipReason) and "already matches" in again.skip_message

    # round trip: every archived table holds exactly the mart's rows
    for table in (*archive.year_tables(), *archive.whole_tables()):
        got = archive.read(lake, table)
        got = sorted(
            got.select(sorted(got.column_names)).to_pylist(),
            key=lambda r: json.dumps(dict(sorted(r.items())), default=str),
        )
        want = sorted(
            (dict(sorted(r.items())) for r in _mart_rows(settings, table)), key=lambda r: json.dumps(r, default=str)
        )
        assert len(got) == len(want) > 0, table
        assert got == want, table
    files = _archived_files(lake)
    assert all(k.endswith("/" + archive.PART) for k in files)
    assert {k.split("/")[2] for k in files if k.startswith("archive/fact_accidents/")} == {f"year={y}" for y in years}
    assert _codec(lake, archive.table_key("fact_accidents", min(years))) == "ZSTD"

    # one event changes in one year, every event of another year goes: the plan names exactly
    # those years, and rewriting touches only their files
    changed_ev, changed_year = query(
        "SELECT ev_id, CAST(extract(year FROM event_date) AS INTEGER) AS y "
        "FROM marts.fact_accidents ORDER BY ev_id LIMIT 1"
    )[0].values()
    gone_year = query(
        "SELECT CAST(extract(year FROM event_date) AS INTEGER) AS y, count(*) AS n FROM marts.fact_accidents "
        f"WHERE CAST(extract(year FROM event_date) AS INTEGER) <> {changed_year} GROUP BY 1 ORDER BY 2, 1 LIMIT 1"
    )[0]["y"]
    with settings.warehouse.session() as s:
        s.execute(f"UPDATE marts.fact_accidents SET city = 'ARCHIVE TEST' WHERE ev_id = {s.ph}", (changed_ev,))
        s.execute(
            f"DELETE FROM marts.fact_accidents WHERE CAST(extract(year FROM event_date) AS INTEGER) = {s.ph}",
            (gone_year,),
        )
    with settings.warehouse.session(read_only=True) as s:
        plan = archive.plan(s, lake, range(1948, 2100))
    assert plan.changed["fact_accidents"] == sorted({changed_year, gone_year})
    assert plan.years == sorted({changed_year, gone_year})
    with dg.DagsterInstance.get() as instance:
        published = _run_archive_and_analytics(instance, settings)
        embedded = instance.get_latest_materialization_event(keys.NARRATIVE_EMBEDDINGS).asset_materialization.metadata
    assert sorted(published["archive"]["years"]) == sorted({changed_year, gone_year})
    # the narratives did not change: every vector is reused, none computed again
    assert embedded["texts embedded now"].value == 0 and embedded["texts reused"].value > 0
    after = _archived_files(lake)
    rewritten = {k for k in files if after.get(k) != files[k]}
    assert archive.table_key("fact_accidents", changed_year) in rewritten
    # the event-level partitions of the year are gone; the yearly aggregate was not rebuilt,
    # so its file stays as it was
    gone = {k for k in files if f"/year={gone_year}/" in k and not k.startswith("archive/agg_yearly_stats/")}
    assert gone and {k for k in rewritten if f"/year={gone_year}/" in k} == gone
    assert not gone & set(after)
    assert plan.changed["agg_yearly_stats"] == []
    assert {k.split("/")[2] for k in rewritten} <= {f"year={changed_year}", f"year={gone_year}"}
    assert len(files) - len(rewritten) > 100  # everything else is untouched
    assert {r["city"] for r in archive.read(lake, "fact_accidents").to_pylist() if r["ev_id"] == changed_ev} == {
        "ARCHIVE TEST"
    }

    _analytics_match_direct_computation(settings)
    severity_model_end_to_end(settings, deployment)  # trains from this archive: tests/integration/test_model.py
    _features_match_the_marts(settings)


def _features_match_the_marts(settings):
    """ml/features: one row per event, targets from the marts (missing where the severity
    is), no refused column."""
    df = _frame(settings.lake, "ml/features/features.parquet")
    fact = {r["ev_id"]: r for r in query("SELECT ev_id, severity, far_part FROM marts.fact_accidents")}
    assert sorted(df.ev_id) == sorted(fact)
    assert int(df.target_severity.isna().sum()) == sum(r["severity"] is None for r in fact.values())
    features.assert_allowed(c for c in df.columns if not c.startswith("target_"))
    assert int(df.target_fatal.sum()) == sum(r["severity"] == "FATL" for r in fact.values())
    row = df.set_index("ev_id").loc["20140507X51410"]  # a real event: a Part 121 flight
    assert (row.target_severity, row.far_part) == ("SERS", fact["20140507X51410"]["far_part"])
    assert [c for c in df.columns if c not in ("ev_id", "event_date", "target_fatal", "target_severity")] == [
        f.name for f in features.FEATURES
    ]


def _codec(lake, key):
    import pyarrow.parquet as pq

    with lake.fs.open_input_file(lake.full(key)) as fh:
        return pq.ParquetFile(fh).metadata.row_group(0).column(0).compression


def _frame(lake, key):
    import pyarrow.parquet as pq

    with lake.fs.open_input_file(lake.full(key)) as fh:
        return pq.read_table(fh).to_pandas()


def _analytics_match_direct_computation(settings):
    lake = settings.lake
    fact = query(
        "SELECT ev_id, event_date, severity, is_fatal, make, model, latitude, longitude, weather_condition "
        "FROM marts.fact_accidents"
    )
    # trends: fatal events per year, and the fitted line, against the warehouse
    yearly = _frame(lake, "analytics/trends/yearly.parquet")
    direct = {}
    for r in fact:
        if r["severity"] == "FATL":
            direct[r["event_date"].year] = direct.get(r["event_date"].year, 0) + 1
    got = {int(r.year): int(r.events) for r in yearly[yearly.severity == "FATL"].itertuples()}
    assert got == direct
    total = yearly[yearly.severity == "ALL"]
    assert int(total.events.sum()) == len(fact)
    season = _frame(lake, "analytics/trends/seasonality.parquet")
    assert int(season[season.month == 6].events.iloc[0]) == sum(r["event_date"].month == 6 for r in fact)

    # make/model risk: the first row's counts and its Wilson interval
    risk = _frame(lake, "analytics/make_model_risk/risk.parquet")
    top = risk.iloc[0]
    rows = [
        r
        for r in fact
        if (r["make"] or "").strip().upper() == top.make and (r["model"] or "").strip().upper() == top.model
    ]
    k, n = sum(bool(r["is_fatal"]) for r in rows), len(rows)
    assert (int(top.accidents), int(top.fatal_accidents)) == (n, k)
    z, p = 1.959964, k / n  # the interval solves |p - x| = z * sqrt(x (1 - x) / n) for x
    roots = np.roots([1 + z * z / n, -(2 * p + z * z / n), p * p])
    assert sorted(roots.real) == pytest.approx([top.ci_low, top.ci_high], abs=1e-5)
    assert risk.accidents.min() >= 10

    # clusters: plain DBSCAN on every located event (no de-duplication) finds the same clusters
    located = [r for r in fact if r["latitude"] is not None and r["longitude"] is not None]
    min_samples = an.auto_min_samples(len(located))
    labels = (
        DBSCAN(eps=25 / an.EARTH_RADIUS_KM, min_samples=min_samples, metric="haversine")
        .fit(np.radians([[r["latitude"], r["longitude"]] for r in located]))
        .labels_
    )
    sizes = sorted(np.bincount(labels[labels >= 0]).tolist(), reverse=True)
    clusters = _frame(lake, "analytics/geo_clusters/clusters.parquet")
    assert clusters.events.tolist() == sizes and sizes
    geojson = json.loads(lake.get_bytes("analytics/geo_clusters/clusters.geojson"))
    assert len(geojson["features"]) == len(sizes)
    assert geojson["features"][0]["geometry"]["type"] == "Point"

    # correlations: chi-square and Cramér's V of weather against a fatal outcome
    summary = _frame(lake, "analytics/correlations/summary.parquet").set_index("condition")
    levels: dict[str, list[int]] = {}
    for r in fact:
        if r["weather_condition"] is not None and r["is_fatal"] is not None:
            levels.setdefault(r["weather_condition"], [0, 0])[0 if r["is_fatal"] else 1] += 1
    big = {lv: c for lv, c in levels.items() if sum(c) >= 30}
    small = [c for lv, c in levels.items() if sum(c) < 30]
    table = list(big.values()) + ([[sum(c[0] for c in small), sum(c[1] for c in small)]] if small else [])
    chi2 = chi2_contingency(np.array(table), correction=False)[0]
    assert summary.loc["weather", "chi2"] == pytest.approx(chi2)
    assert summary.loc["weather", "cramers_v"] == pytest.approx((chi2 / sum(map(sum, table))) ** 0.5)

    # each asset's plot is in the lake and in its materialization metadata
    with dg.DagsterInstance.get() as instance:
        for name in ("trends", "geo_clusters", "correlations", "topics"):
            assert lake.get_bytes(f"analytics/{name}/plot.png").startswith(b"\x89PNG")
            meta = instance.get_latest_materialization_event(keys.analytics(name)).asset_materialization.metadata
            assert meta["plot"].value.startswith("![")
        meta = instance.get_latest_materialization_event(
            keys.analytics("make_model_risk")
        ).asset_materialization.metadata
        assert top.make in meta["riskiest (by lower bound)"].value
