"""The HTTP API over what the asset graph materialized (FastAPI): ``create_app`` in
``app.py``, the routes in ``routers/``, the data backends in ``store.py``."""
