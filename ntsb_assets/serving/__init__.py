"""The serving group: what the API reads. Embedded, ``serving/snapshot`` publishes an
immutable DuckDB snapshot and switches the pointer the API follows; on PostgreSQL the API
reads the marts directly and the asset records the data version it sees."""

import dagster as dg

from .. import keys
from ..automation import after
from ..lib import marts, serving
from ..resources import NtsbResource, warehouse_writer

ANALYTICS = ("trends", "geo_clusters", "correlations")


@dg.asset(
    key=keys.SNAPSHOT,
    group_name="serving",
    kinds={"duckdb"},
    deps=[keys.mart(t) for t in marts.served()]
    + [keys.BATCH_PREDICTIONS, keys.RECONCILIATION]  # the load records the dashboard's data quality page shows
    + [keys.NARRATIVE_EMBEDDINGS]  # ml.narrative_vectors: the API's search by meaning
    + [keys.analytics(name) for name in ANALYTICS],
    # not after each dbt build: after the analytics, predictions and embeddings that follow it
    automation_condition=after(
        keys.BATCH_PREDICTIONS, keys.NARRATIVE_EMBEDDINGS, *(keys.analytics(n) for n in ANALYTICS)
    ),
)
@warehouse_writer
def serving_snapshot(ntsb: NtsbResource) -> dg.MaterializeResult:
    """Embedded: copy the marts, predictions and narrative vectors the API reads (with a
    full-text index of the narratives and one JSON document per event) into a new read-only DuckDB file and switch
    ``current.json`` to it. The new file starts from the current one: only the documents and
    index entries of changed events are written again (``serving.publish``). The API picks
    it up at its next request; the files before it stay untouched. PostgreSQL: bring the
    narratives' keyword index in schema ``serving`` up to date and record the data version in
    ``serving.published``, in one transaction; the API reads the marts directly, and loads the
    index and starts a new response cache when the version changes. Runs after
    the analytics outputs the API also serves."""
    settings = ntsb.settings()
    wh = settings.warehouse
    if wh.dialect == "postgres":
        published = serving.record_published(wh)
        return dg.MaterializeResult(
            metadata={
                "mode": "direct: the API reads the marts on PostgreSQL",
                "data version": serving.header(published.version),
                "narratives indexed": published.index["narratives_indexed"],
                "events in the keyword index": published.index["documents"],
            },
        )
    snap = serving.publish(wh.path, settings.serving_dir)
    build = snap.build or {}
    return dg.MaterializeResult(
        data_version=dg.DataVersion(serving.header(snap.version)),
        metadata={
            "mode": "snapshot",
            "path": dg.MetadataValue.path(str(snap.path)),
            "bytes": snap.path.stat().st_size,
            "data version": serving.header(snap.version),
            "started from": build.get("base") or "nothing (built whole)",
            "documents written": build.get("documents_written"),
            "narratives indexed": build.get("narratives_indexed"),
            "tables copied": dg.MetadataValue.json(build.get("tables_copied") or {}),
        },
    )


serving_assets = [serving_snapshot]
