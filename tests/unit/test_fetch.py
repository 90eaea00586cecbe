"""Fetching an update into the landing zone: URL templates, file names, retries with
backoff against a real local HTTP server, and the landing zone written in one step."""

import datetime as dt
import http.server
import threading
import zipfile

import pytest

from ntsb_assets.lib import fetch
from ntsb_assets.lib.lake import Lake
from tests.conftest import SAMPLE


class _Server:
    """127.0.0.1 HTTP server answering from a list of (status, body), the last one repeated;
    it keeps the paths asked for (and POST bodies)."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                status, body = outer.answers.pop(0) if len(outer.answers) > 1 else outer.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                outer.requests.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
                status, body = outer.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def release_zip(tmp_path):
    """A real NTSB update (the bundled up01JAN2026 CSVs) as the zip NTSB publishes."""
    path = tmp_path / "up01JAN.zip"
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted((SAMPLE / "04_up01JAN2026").iterdir()):
            z.write(f, f.name)
    return path.read_bytes()


def test_urls_and_file_names():
    day = dt.date(2026, 7, 1)
    assert (
        fetch.release_url("https://example.org/avdata/up{DDMON}.zip", day) == "https://example.org/avdata/up01JUL.zip"
    )
    assert (
        fetch.release_url("https://example.org/{date:%Y}/u{date:%m%d}.zip", day) == "https://example.org/2026/u0701.zip"
    )
    assert fetch.file_name("https://example.org/avdata/up01JUL.zip?x=1") == "up01JUL.zip"
    assert fetch.file_name("https://example.org/DownloadFile?fileID=C%3A%5Cavdata%5Cup08JUL.zip") == "up08JUL.zip"
    with pytest.raises(fetch.FetchError, match="no file name"):
        fetch.file_name("https://example.org/")
    assert [d for d in range(1, 32) if d in fetch.UPDATE_DAYS] == [1, 8, 15, 22]


def test_retries_with_backoff_then_lands_in_one_step(tmp_path, release_zip):
    server = _Server([(503, b"busy"), (429, b"slow down"), (200, release_zip)])
    landing, waits = Lake(str(tmp_path / "landing")), []
    try:
        got = fetch.fetch_release(
            landing, server.url + "/avdata/up{DDMON}.zip", dt.date(2026, 1, 1), backoff=0.5, sleep=waits.append
        )
    finally:
        server.close()
    assert (got.status, got.key, got.attempts, got.bytes) == ("fetched", "up01JAN.zip", 3, len(release_zip))
    assert waits == [0.5, 1.0]  # exponential backoff
    assert landing.get_bytes("up01JAN.zip") == release_zip
    assert landing.list("") == ["up01JAN.zip"]  # no temporary file left beside it
    # the same day again: already there, nothing downloaded
    again = fetch.fetch_release(landing, server.url + "/avdata/up{DDMON}.zip", dt.date(2026, 1, 1))
    assert again.status == "already_present" and len(server.requests) == 3


def test_client_errors_are_not_retried_and_nothing_lands(tmp_path):
    server = _Server([(404, b"no such file")])
    landing = Lake(str(tmp_path / "landing"))
    try:
        with pytest.raises(fetch.FetchError, match="HTTP 404.*not retried"):
            fetch.fetch_release(landing, server.url + "/up{DDMON}.zip", dt.date(2026, 1, 8), sleep=lambda s: None)
        with pytest.raises(fetch.FetchError, match="after 2 attempts"):
            fetch.download(
                "http://127.0.0.1:9/nothing-listens-here.zip",
                tmp_path / "x",
                attempts=2,
                sleep=lambda s: None,
                timeout=2,
            )
    finally:
        server.close()
    assert len(server.requests) == 1 and landing.list("") == []
    assert fetch.fetch_release(landing, None, dt.date(2026, 1, 8)).status == "not_configured"
