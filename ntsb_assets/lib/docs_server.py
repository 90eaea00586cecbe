"""Serve the static sites stored in the lake over HTTP on one address: the dbt docs site at
``/``, and the Great Expectations Data Docs of every quality run at ``/quality/``.

Every request reads the lake, so a newly published site is served without a restart."""

from __future__ import annotations

import html
import mimetypes
import posixpath
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from .lake import Lake

INDEX = "static_index.html"  # the dbt docs site in one file
DATA_DOCS_INDEX = "index.html"  # a Great Expectations Data Docs site's home
QUALITY_ROUTE = "quality"


def make_server(
    lake: Lake, prefix: str, host: str = "127.0.0.1", port: int = 8580, quality_prefix: str | None = None
) -> ThreadingHTTPServer:
    """An HTTP server for the files under ``prefix`` (``/`` is the single-file site) and,
    given ``quality_prefix``, the Data Docs runs under it at ``/quality/<run>/...`` with a
    list of the runs at ``/quality/``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ntsb-docs"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = posixpath.normpath(unquote(urlparse(self.path).path)).lstrip("/")
            if path.startswith("..") or "\0" in path:
                return self.send_error(404)
            if quality_prefix and (path == QUALITY_ROUTE or path.startswith(QUALITY_ROUTE + "/")):
                rest = path[len(QUALITY_ROUTE) :].lstrip("/")
                if not rest:
                    return self._send(self._runs().encode(), "text/html; charset=utf-8")
                return self._file(quality_prefix, rest)
            return self._file(prefix, INDEX if path in ("", ".") else path)

        def _file(self, root: str, path: str):
            key = posixpath.join(root, path)
            if not lake.exists(key):
                return self.send_error(404, f"{path} is not in the published site")
            self._send(lake.get_bytes(key), mimetypes.guess_type(path)[0] or "application/octet-stream")

        def _send(self, body: bytes, content_type: str):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def _runs(self) -> str:
            """The Data Docs of each quality run, newest first (by the time they were written)."""
            runs: dict = {}
            assert quality_prefix is not None  # the route exists only with a quality prefix
            for key in lake.list(quality_prefix):
                parts = key[len(quality_prefix) :].strip("/").split("/")
                if len(parts) == 2 and parts[1] == DATA_DOCS_INDEX:
                    when = lake.modified(key)
                    runs[parts[0]] = when.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if when else ""
            items = "".join(
                f'<li><a href="/{QUALITY_ROUTE}/{html.escape(r)}/{DATA_DOCS_INDEX}">{html.escape(r)}</a>'
                f" {html.escape(t)}</li>"
                for r, t in sorted(runs.items(), key=lambda x: x[1], reverse=True)
            )
            return (
                "<!doctype html><meta charset=utf-8><title>Data Docs</title>"
                "<h1>Great Expectations Data Docs</h1><p>One site per quality run (Dagster run id), newest "
                f'first. The dbt docs are at <a href="/">/</a>.</p><ul>{items or "<li>none yet</li>"}</ul>'
            )

        def log_message(self, fmt, *args):  # quiet; the CLI prints the address
            pass

    return ThreadingHTTPServer((host, port), Handler)
