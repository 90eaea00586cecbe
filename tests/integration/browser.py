"""Headless Chromium (Debian's `chromium`) for tests that must see a page render, and a
helper to run a server process and stop it by its process id."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1400,900",
]


def chromium() -> str:
    """The Chromium executable; CI installs it (.ci/run), so there it must exist."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return exe


def _env() -> dict:
    """Chromium's environment: without the TMPDIR a test's NTSB_HOME gave the process. Chromium
    puts a Unix socket in the temporary directory, and a socket's path holds at most 108
    bytes: under a test's deep NTSB_HOME it aborts."""
    return {k: v for k, v in os.environ.items() if k != "TMPDIR"}


def render(url: str, screenshot: Path | None = None, wait_ms: int = 20000) -> str:
    """The DOM of ``url`` after its scripts ran (and a screenshot when asked)."""
    exe = chromium()
    base = [exe, *CHROMIUM_FLAGS, f"--virtual-time-budget={wait_ms}"]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*base, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120, env=_env()
        )
    out = subprocess.run([*base, "--dump-dom", url], check=True, capture_output=True, timeout=120, env=_env())
    return out.stdout.decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server command run in its own process group, waited for over HTTP, stopped by id."""

    def __init__(self, args: list[str], url: str | None, env: dict | None = None, timeout: float = 120):
        """``url`` None: a process without HTTP (a daemon), given a few seconds to fail."""
        self.url = url
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the browser; a pipe nobody reads would fill and block the server
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + (3 if url is None else timeout)
        while True:
            if url is None and time.monotonic() > deadline:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{args} exited {self.proc.returncode}: {self.output()}")
            if url is None:
                time.sleep(0.5)
                continue
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{url} did not answer within {timeout} s") from None
                time.sleep(0.5)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def ntsb_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ntsb_assets.cli", *args]


class Browser:
    """Headless Chromium driven over the DevTools protocol: for pages that keep a websocket
    open (Streamlit), where "rendered" means a condition in the page holds, not the load
    event. ``wait_for`` polls a JavaScript expression; ``screenshot`` saves a PNG."""

    def __init__(self, width: int = 1400, height: int = 1000):
        import json as _json

        from websockets.sync.client import connect

        self._json = _json
        self.profile = tempfile.mkdtemp(prefix="ntsb-chromium-", dir="/tmp")  # short: the socket path limit
        self.proc = subprocess.Popen(
            [
                chromium(),
                *[f for f in CHROMIUM_FLAGS if not f.startswith("--window-size")],
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
            start_new_session=True,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in _json.load(r) if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, **params):
        self._id += 1
        self.ws.send(self._json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = self._json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return out.get("result", {}).get("value")

    def open(self, url: str) -> float:
        """Navigate; returns the monotonic time the navigation was asked for."""
        started = time.monotonic()
        self.send("Page.navigate", url=url)
        return started

    def wait_for(self, expression: str, timeout: float = 60.0, poll: float = 0.05) -> float:
        """Seconds until ``expression`` is truthy in the page (TimeoutError after ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.evaluate(f"!!({expression})"):
                return time.monotonic() - started
            time.sleep(poll)
        raise TimeoutError(
            f"{expression!r} not true after {timeout} s; the page says: "
            f"{(self.evaluate('document.body && document.body.innerText') or '')[:1500]}"
        )

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        import base64

        path.parent.mkdir(parents=True, exist_ok=True)
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
