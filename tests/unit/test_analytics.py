"""The analytics functions and the archive plan, on small tables in an in-memory DuckDB."""

import duckdb
import pytest

from ntsb_assets.lib import analytics as an
from ntsb_assets.lib.archive import Plan

# coordinates of real airports: Los Angeles, Chicago O'Hare, and Denver far from both
LAX, ORD, DEN = (33.9425, -118.408), (41.9786, -87.9048), (39.8561, -104.6737)


def _fact(rows):
    """A fact_accidents view with the columns the analytics read."""
    con = duckdb.connect()
    con.execute("""CREATE TABLE fact_accidents (ev_id VARCHAR, event_date DATE, year INTEGER, severity VARCHAR,
                   is_fatal BOOLEAN, fatalities INTEGER, make VARCHAR, model VARCHAR, latitude DOUBLE,
                   longitude DOUBLE, weather_condition VARCHAR, light_condition VARCHAR,
                   phase_of_flight_label VARCHAR, far_part VARCHAR)""")
    con.executemany(
        "INSERT INTO fact_accidents VALUES (?, ?, year(CAST(? AS DATE)), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r[0], r[1], r[1], *r[2:]) for r in rows],
    )
    con.execute("ALTER TABLE fact_accidents ADD COLUMN city VARCHAR")
    con.execute("ALTER TABLE fact_accidents ADD COLUMN state VARCHAR")
    return con


def test_wilson_interval_matches_published_values():
    lo, hi = an.wilson([0, 5, 81], [10, 10, 263])
    # 0/10: (0, 0.2775); 5/10: (0.2366, 0.7634); 81/263: (0.2553, 0.3662) (Newcombe 1998, table I)
    assert lo.tolist() == pytest.approx([0.0, 0.2366, 0.2553], abs=1e-4)
    assert hi.tolist() == pytest.approx([0.2775, 0.7634, 0.3662], abs=1e-4)


def test_cramers_v_of_perfect_and_no_association():
    chi2, p, dof, v = an.cramers_v([[10, 0], [0, 10]])
    assert (chi2, dof, v) == (pytest.approx(20.0), 1, pytest.approx(1.0)) and p < 1e-4
    assert an.cramers_v([[10, 10], [20, 20]])[3] == pytest.approx(0.0)
    assert an.cramers_v([[10, 10]]) == (0.0, 1.0, 0, 0.0)  # one level: nothing to test


def test_linear_trend_recovers_a_line():
    slope, intercept, r2 = an.linear_trend([2000, 2001, 2002, 2003], [10, 12, 14, 16])
    assert (slope, intercept + slope * 2000, r2) == (pytest.approx(2.0), pytest.approx(10.0), pytest.approx(1.0))


def test_trends_leave_a_partial_last_year_out_of_the_fit():
    rows = [
        (
            f"e{y}{m}",
            f"{y}-{m:02d}-15",
            "FATL" if m == 1 else "NONE",
            m == 1,
            1 if m == 1 else 0,
            "CESSNA",
            "172",
            None,
            None,
            "VMC",
            "DAYL",
            "Cruise",
            "091",
        )
        for y in (2020, 2021, 2022)
        for m in range(1, 13)
    ] + [("e2023", "2023-03-01", "NONE", False, 0, "CESSNA", "172", None, None, "VMC", "DAYL", "Cruise", "091")]
    out = an.trends(_fact(rows))
    line = out["trend_lines"].set_index("severity").loc["ALL"]
    assert (line.fit_from, line.fit_to) == (2020, 2022)
    assert line.slope_per_year == pytest.approx(0.0)
    season = out["seasonality"].set_index("month")
    assert season.loc[3, "events"] == 4 and season.loc[1, "fatal_events"] == 3
    yearly = out["yearly"]
    assert yearly[(yearly.severity == "FATL") & (yearly.year == 2021)].events.item() == 1


def test_dbscan_on_deduplicated_weighted_points_equals_plain_dbscan():
    rows, n = [], 0
    for (lat, lon), count in ((LAX, 12), (ORD, 8)):
        for i in range(count):  # half the events at the same coordinates (the airport), half spread
            d = 0 if i % 2 else 0.01 * (i % 5)
            rows.append(
                (
                    f"ev{n:03d}",
                    "2020-01-01",
                    "FATL" if i < 3 else "NONE",
                    i < 3,
                    0,
                    "PIPER" if i % 3 else "CESSNA",
                    "PA-28",
                    lat + d,
                    lon - d,
                    "VMC",
                    "DAYL",
                    "Landing",
                    "091",
                )
            )
            n += 1
    rows.append(("ev999", "2020-01-01", "NONE", False, 0, "BEECH", "35", *DEN, "VMC", "DAYL", "Cruise", "091"))
    con = _fact(rows)
    con.execute("UPDATE fact_accidents SET city = 'LOS ANGELES', state = 'CA' WHERE latitude < 34.5")
    con.execute("UPDATE fact_accidents SET city = 'INGLEWOOD', state = 'CA' WHERE ev_id = 'ev000'")
    out = an.geo_clusters(con, eps_km=5, min_samples=4)
    clusters = out["clusters"]
    assert clusters.events.tolist() == [12, 8]  # largest first
    assert clusters.place.tolist() == ["Los Angeles, CA", None]  # the commonest place, named
    assert clusters.centroid_latitude[0] == pytest.approx(LAX[0], abs=0.02)
    assert clusters.fatal_events.tolist() == [3, 3]
    assert clusters.top_makes[0].startswith("PIPER (8)")
    assert out["geojson"]["properties"]["noise"] == 1
    assert out["events"].set_index("ev_id").loc["ev999", "cluster"] == -1
    feature = out["geojson"]["features"][1]
    assert feature["geometry"]["coordinates"] == [clusters.centroid_longitude[1], clusters.centroid_latitude[1]]


def test_rare_levels_are_pooled_before_the_chi_square():
    rows = [
        (
            f"e{i}",
            "2020-01-01",
            "FATL" if i % 4 == 0 else "NONE",
            i % 4 == 0,
            0,
            "CESSNA",
            "172",
            None,
            None,
            "IMC" if i < 40 else "VMC" if i < 100 else "UNK",
            "DAYL",
            "Cruise",
            "091",
        )
        for i in range(105)
    ]
    df = an.contingency(_fact(rows), "weather_condition", min_level=30)
    assert dict(zip(df.level, df.events, strict=True)) == {"VMC": 60, "IMC": 40, "OTHER": 5}


def test_plan_runs_cover_consecutive_years_once():
    keys = [str(y) for y in range(1948, 2027)]
    plan = Plan({"fact_accidents": [1982, 1983, 1984, 2025]}, [1982, 1983, 1984, 1990, 2025, 2026])
    assert plan.ranges(keys) == [(1982, 1984), (1990, 1990), (2025, 2026)]
    assert Plan({}, []).ranges(keys) == []
