"""What the dashboard reads, and nothing else: the API's read layer (``ntsb_api.store``:
the serving snapshot embedded, the marts on PostgreSQL), the analytics tables and check
results in the lake, and the champion model in the registry. No SQL here or in the pages.

Every read is cached under the data version it was read at (releases, model version and
publication time), so a new build is picked up at the next interaction with no restart,
and a version's answers are computed once for every session.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from ntsb_api.store import Store, StoreUnavailable, one_thread_per_request, open_store
from ntsb_assets.lib import analytics as an
from ntsb_assets.lib import serving
from ntsb_assets.settings import get_settings

SEVERITY_LABELS = {"FATL": "fatal", "SERS": "serious", "MINR": "minor", "NONE": "none"}
SEVERITY_ORDER = list(SEVERITY_LABELS)


class NotBuilt(Exception):
    """Nothing to show yet; the message says what to run."""


@dataclass(frozen=True)
class Version:
    """The data version a page reads: its short id (in shared links) and what it names."""

    id: str
    releases: tuple[str, ...]
    model_version: str | None
    created: str | None

    @property
    def text(self) -> str:
        return serving.header({"releases": list(self.releases), "model_version": self.model_version})


@st.cache_resource(show_spinner=False, max_entries=4)
def _open(where: str) -> Store:
    one_thread_per_request()  # the sessions' reruns search side by side
    return open_store(get_settings())


def _store() -> Store:
    """The store of the settings in effect (one per warehouse; a process normally has one)."""
    settings = get_settings()
    return _open(settings.warehouse_url if settings.deployment == "production" else str(settings.serving_dir))


@st.cache_resource(show_spinner=False, max_entries=4)
def _lake_at(where: str):
    return get_settings().lake


def _lake():
    settings = get_settings()
    return _lake_at(f"{settings.lake_url}|{settings.home}")


def view() -> tuple[Store, Version]:
    """The store pinned to the data version current now, for one run of a page (its data
    and its version stay together while a new build publishes), and that version."""
    try:
        store = _store().pin()
        if not store.has("marts", "fact_accidents"):
            raise NotBuilt("the warehouse has no marts yet")
        v = store.version()
    except (StoreUnavailable, NotBuilt) as exc:
        _open.clear()  # a later build (or a warehouse that comes back) is picked up at the next run
        raise NotBuilt(str(exc)) from None
    digest = hashlib.sha256(
        json.dumps([v.get("releases"), v.get("model_version"), v.get("created")], default=str).encode()
    ).hexdigest()[:12]
    return store, Version(digest, tuple(v.get("releases") or ()), v.get("model_version"), v.get("created"))


def _f(filters) -> dict:
    return dict(filters)


# Cached reads. ``version`` is the cache key; ``_store`` (not hashed) is the pinned view.
@st.cache_data(show_spinner=False, max_entries=512)
def breakdown(version: str, filters: tuple, by: tuple[str, ...], _store: Store) -> pd.DataFrame:
    return _store.breakdown(_f(filters), by)


@st.cache_data(show_spinner=False, max_entries=8)
def options(version: str, _store: Store) -> dict:
    return _store.slice_options()


@st.cache_data(show_spinner=False, max_entries=64)
def points(version: str, filters: tuple, _store: Store) -> pd.DataFrame:
    return _store.points(_f(filters))


@st.cache_data(show_spinner=False, max_entries=128)
def event_list(version: str, filters: tuple, limit: int, _store: Store) -> pd.DataFrame:
    return _store.event_list(_f(filters), limit)


@st.cache_data(show_spinner=False, max_entries=128)
def causes(version: str, filters: tuple, kind: str, by_year: bool, _store: Store) -> pd.DataFrame:
    return _store.causes(_f(filters), kind, by_year=by_year)


@st.cache_data(show_spinner=False, max_entries=8)
def summary(version: str, _store: Store) -> dict:
    return _store.summary()


@st.cache_resource(show_spinner=False, max_entries=1)
def _encoder():
    from ntsb_assets.lib import embeddings

    return embeddings.Encoder(threads=1, cache_dir=get_settings().models_dir)


def _embed(text: str):
    return _encoder().embed_query(text)


@st.cache_data(show_spinner=False, max_entries=256)
def search(version: str, q: str, mode: str, limit: int, _store: Store) -> dict:
    """The API's search (ntsb_api/search.py): {"items": hits} or {"error": why}."""
    from ntsb_api import search as S
    from ntsb_assets.lib.embeddings import EmbeddingError

    try:
        return S.search(_store, _embed, q, mode, {}, limit)
    except (S.NoVectors, EmbeddingError) as exc:  # no vectors in this version; a query with nothing to embed
        return {"items": [], "error": str(exc)}


@st.cache_data(show_spinner=False, max_entries=256)
def similar(version: str, ev_id: str, limit: int, _store: Store) -> dict:
    """The API's similar events: {"items": events} or {"error": why}."""
    from ntsb_api import search as S

    try:
        return S.similar(_store, ev_id, {}, limit)
    except (S.NoVectors, S.NoNarrative) as exc:
        return {"items": [], "error": str(exc)}


@st.cache_data(show_spinner=False, max_entries=512)
def event(version: str, ev_id: str, _store: Store) -> dict | None:
    doc = _store.event(ev_id)
    return json.loads(doc) if doc else None


@st.cache_data(show_spinner=False, max_entries=8)
def releases(version: str, _store: Store) -> pd.DataFrame:
    return _store.releases()


@st.cache_data(show_spinner=False, max_entries=8)
def quality_tables(version: str, _store: Store) -> dict[str, pd.DataFrame]:
    return _store.quality_tables()


@st.cache_data(show_spinner=False, max_entries=8)
def checks(version: str) -> list[dict]:
    from ntsb_assets.lib import quality

    return quality.read_checks(_lake())


@st.cache_data(show_spinner=False, max_entries=32)
def lake_table(version: str, key: str) -> pd.DataFrame | None:
    """An analytics table (``analytics/<asset>/<table>.parquet``), or None before it exists."""
    lake = _lake()
    return lake.read_parquet(key).to_pandas() if lake.exists(key) else None


@st.cache_data(show_spinner=False, max_entries=8)
def lake_json(version: str, key: str):
    lake = _lake()
    return lake.get_json(key) if lake.exists(key) else None


def wilson(k, n) -> tuple:
    return an.wilson(k, n)


def linear_trend(x, y) -> tuple[float, float, float]:
    return an.linear_trend(x, y)


# ---- the model (the registry's champion)
@st.cache_data(show_spinner=False, max_entries=4)
def model_info(model_version: str | None) -> dict:
    """The champion's card data, metrics and plots (``tracking.info``, the logged card and
    PNGs), or ``{"error": ...}`` without one."""
    from ntsb_assets.lib import tracking

    store = tracking.Store.from_settings(get_settings())
    try:
        with tracking.session(store) as client:
            info = tracking.info(client)
            info["card"] = tracking.card(client)
            info["plots"] = {
                name: tracking.artifact_bytes(client, info["run_id"], f"plots/{name}")
                for name in ("reliability.png", "shap_summary.png")
            }
            info["importance"] = pd.read_csv(
                io.BytesIO(tracking.artifact_bytes(client, info["run_id"], "feature_importance.csv"))
            )
            return info
    except Exception as exc:  # no champion, no registry: the page says so
        return {"error": str(exc)}


@st.cache_resource(show_spinner=False, max_entries=2)
def _champion(model_version: str | None):
    from ntsb_assets.lib import tracking

    return tracking.load_champion(tracking.Store.from_settings(get_settings()))


@st.cache_data(show_spinner=False, max_entries=256)
def explanation(version: str, model_version: str | None, ev_id: str) -> dict:
    """The champion's prediction for one event with its SHAP contributions, from the event's
    row of ``ml/features``; ``{"error": ...}`` when there is no champion or no row."""
    import pyarrow.compute as pc

    from ntsb_assets.lib import features

    lake = _lake()
    if not lake.exists(features.FEATURES_KEY):
        return {"error": "ml/features is not materialized"}
    table = lake.read_parquet(features.FEATURES_KEY)
    rows = table.filter(pc.equal(table["ev_id"], ev_id)).to_pylist()
    if not rows:
        return {"error": f"{ev_id} has no feature row (ml/features)"}
    try:
        model, v = _champion(model_version)
    except Exception as exc:
        return {"error": f"no champion model: {exc}"}
    return {**model.explain(rows[0], top=8), "model_version": v}


# ---- downloads
def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def parquet_bytes(df: pd.DataFrame, version: Version) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {
            **(table.schema.metadata or {}),
            b"ntsb.data_version": version.text.encode(),
            b"ntsb.data_version_id": version.id.encode(),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
