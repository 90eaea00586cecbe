"""Headless Chromium (Debian's `chromium`) for tests that must see a page render, and a
helper to run a server process and stop it by its process id."""

from __future__ import annotations

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
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-dev-shm-usage", "--disable-extensions",
                  "--hide-scrollbars", "--window-size=1400,900"]


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
        subprocess.run([*base, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120,
                       env=_env())
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
        self.log = tempfile.TemporaryFile()   # a pipe nobody reads would fill and block the server
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
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
