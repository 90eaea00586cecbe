"""Data quality: per release, the reconciliation of every load, the quarantine by rule,
the dictionary-lag report (codes NTSB's code tables do not know yet), and the latest
result of every quality check."""

import streamlit as st

from ntsb_dashboard import data, ui

store, version = ui.start("Data quality")
ui.remember_query({}, version)
tables = data.quality_tables(version.id, store)
releases = tables["releases"]
names = list(releases.release_id) if len(releases) else list(version.releases)
choice = st.selectbox("Release", ["every release", *names], key="release")


def of_release(df):
    return df if choice == "every release" or df.empty else df[df.release_id == choice]


st.subheader("Reconciliation")
st.caption(
    "Per table: rows in = inserted + updated + unchanged + quarantined + superseded, checked in the load's "
    "own transaction."
)
rec = of_release(tables["reconciliation"])
if rec.empty:
    st.info("No reconciliation recorded (the snapshot predates it, or nothing was loaded).")
else:
    counted = [c for c in ("inserted", "updated", "unchanged", "quarantined", "superseded") if c in rec]
    rec = rec.assign(balanced=rec.rows_in == rec[counted].sum(axis=1))
    a, b, c = st.columns(3)
    a.metric("Rows in", f"{int(rec.rows_in.sum()):,}")
    b.metric("Quarantined", f"{int(rec.quarantined.sum()):,}")
    c.metric("Tables balanced", f"{int(rec.balanced.sum())} of {len(rec)}")
    ui.table(rec, "reconciliation", version)

st.subheader("Quarantine by rule")
quarantine = of_release(tables["quarantine"])
if quarantine.empty:
    st.success("No row quarantined.")
else:
    st.bar_chart(quarantine.groupby("rule").rows_quarantined.sum(), horizontal=True)
    ui.table(quarantine, "quarantine", version)

st.subheader("Dictionary lag")
st.caption(
    "Codes that no NTSB code source knows: the rows are loaded with the code as delivered and the label 'unknown code'."
)
lag = of_release(tables["code_lag"])
if lag.empty:
    st.success("Every code is known to NTSB's code tables.")
else:
    ui.table(lag, "dictionary-lag", version)

st.subheader("Quality checks")
checks = data.checks(version.id)
if not checks:
    st.info("No quality check has run yet (ntsb build runs them).")
else:
    import pandas as pd

    df = pd.DataFrame(checks)
    a, b, c = st.columns(3)
    a.metric("Checks", len(df))
    b.metric("Passed", int(df.passed.sum()))
    c.metric(
        "Failed (errors / warnings)",
        f"{int((~df.passed & (df.severity == 'ERROR')).sum())} / {int((~df.passed & (df.severity != 'ERROR')).sum())}",
    )
    st.dataframe(
        df[
            [
                "asset",
                "check",
                "passed",
                "severity",
                "rows",
                "expectations_evaluated",
                "expectations_failed",
                "unexpected_rows",
                "quarantined_rows",
                "description",
                "checked_at",
                "data_docs",
            ]
        ],
        hide_index=True,
        column_config={"data_docs": st.column_config.LinkColumn("Data Docs")},
    )
    ui.downloads(df, "checks", version)
