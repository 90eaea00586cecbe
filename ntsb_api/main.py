"""The ASGI application for uvicorn (``ntsb api``; ``uvicorn ntsb_api.main:app``)."""

from .app import create_app

app = create_app()
