"""The HTTP API over materialized outputs (FastAPI). Not built yet: see the API issue.
It will read only what the asset graph materialized, never the raw sources."""
