"""What every page shares: the data version it reads (or what to run when there is none),
the version in the address, downloads, and the "no events" notice."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import streamlit as st

from . import data

SEVERITY_COLORS = {"FATL": "#b2182b", "SERS": "#ef8a62", "MINR": "#67a9cf", "NONE": "#2166ac", "unknown": "#999999"}
SEVERITY_RGB = {
    data.SEVERITY_LABELS.get(code, code): [int(c[i : i + 2], 16) for i in (1, 3, 5)]
    for code, c in SEVERITY_COLORS.items()
}  # highest injury's label -> the same colour for WebGL
PAGE_KEYS = ("event", "q", "mode", "min_support", "kind")  # a page's own query keys, kept beside the filters
EVENT_COLUMNS = {
    "event_date": st.column_config.DateColumn("event date", format="YYYY-MM-DD"),
    "score": st.column_config.NumberColumn("score", format="%.3f"),
}  # the event lists' columns
VERSION_ID = re.compile(r"^[0-9a-f]{12}$")


def start(title: str):
    """The page's title and its data: the pinned store and the data version. Without built
    data the page says what to run and stops."""
    st.title(title)
    try:
        store, version = data.view()
    except data.NotBuilt as exc:
        st.warning(f"Nothing to show yet: {exc}.")
        st.markdown(
            "Build the data first, then reload this page:\n\n"
            "```\nntsb ingest data/sample/landing/00_reference_avall   # each release you have\n"
            "ntsb build\n```\n\nor `make demo`, which ingests the bundled sample and builds everything."
        )
        st.stop()
    linked = st.query_params.get("data")
    if linked and linked != version.id:  # shown only when it is a version id (the address is anyone's text)
        made_on = f"data version `{linked}`" if VERSION_ID.match(linked) else "another data version"
        st.info(f"This link was made on {made_on}; the data has changed since. What follows is version `{version.id}`.")
    st.caption(version_line(version))
    return store, version


def version_line(version: data.Version) -> str:
    published = f", published {version.created}" if version.created else ""
    return f"Data version `{version.id}`: {version.text}{published}"


def remember_query(params: dict[str, str], version: data.Version) -> None:
    """Put the view's parameters and the data version in the address (no rerun)."""
    keep = {k: st.query_params[k] for k in PAGE_KEYS if k in st.query_params and k not in params}
    wanted = {**keep, **{k: v for k, v in params.items() if v}, "data": version.id}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def set_param(key: str, value) -> None:
    if value in (None, ""):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)


def downloads(df: pd.DataFrame, name: str, version: data.Version, key: str | None = None) -> None:
    """CSV and Parquet downloads of a table (the Parquet file names its data version)."""
    key = key or name
    a, b, _ = st.columns([1, 1, 4])
    stem = f"ntsb-{name}-{version.id}"
    a.download_button(
        "CSV",
        data=lambda: data.csv_bytes(df),
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=f"csv_{key}",
        icon=":material/download:",
        on_click="ignore",
    )
    b.download_button(
        "Parquet",
        data=lambda: data.parquet_bytes(df, version),
        file_name=f"{stem}.parquet",
        mime="application/vnd.apache.parquet",
        key=f"parquet_{key}",
        icon=":material/download:",
        on_click="ignore",
    )


def table(df: pd.DataFrame, name: str, version: data.Version, key: str | None = None, **options) -> None:
    """A table and its downloads (what is shown is what downloads)."""
    st.dataframe(df, hide_index=True, **options)
    downloads(df, name, version, key)


def no_events(what: str = "events") -> None:
    st.info(f"No {what} match these filters.")


def ago(stamp: str | None) -> str:
    if not stamp:
        return "unknown"
    try:
        then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    hours = (dt.datetime.now(dt.UTC) - then).total_seconds() / 3600
    return (
        f"{hours * 60:.0f} minutes ago"
        if hours < 1
        else f"{hours:.1f} hours ago"
        if hours < 48
        else f"{hours / 24:.0f} days ago"
    )


def severity_label(code) -> str:
    return data.SEVERITY_LABELS.get(code, "unknown") if isinstance(code, str) else "unknown"
