"""Serve a static site stored in the lake (the dbt docs site) over HTTP on one address.

Every request reads the lake, so a newly published site is served without a restart."""

from __future__ import annotations

import mimetypes
import posixpath
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

from .lake import Lake

INDEX = "static_index.html"


def make_server(lake: Lake, prefix: str, host: str = "127.0.0.1", port: int = 8580) -> ThreadingHTTPServer:
    """An HTTP server for the files under ``prefix``; ``/`` is the single-file site."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ntsb-docs"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = posixpath.normpath(unquote(urlparse(self.path).path)).lstrip("/")
            if path in ("", "."):
                path = INDEX
            if path.startswith(".."):
                return self.send_error(404)
            key = posixpath.join(prefix, path)
            if not lake.exists(key):
                return self.send_error(404, f"{path} is not in the published site")
            body = lake.get_bytes(key)
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(path)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # quiet; the CLI prints the address
            pass

    return ThreadingHTTPServer((host, port), Handler)
