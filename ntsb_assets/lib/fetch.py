"""Fetching a new NTSB release into the landing zone.

NTSB adds monthly update files on the 1st, 8th, 15th and 22nd (``upDDMON.zip``). The
download URL is a setting (``NTSB_RELEASE_URL``) and may name the day: ``{DDMON}`` becomes
``01JUL`` for July 1st, ``{date:%Y-%m-%d}`` any ``strftime`` form. The file is downloaded to
a temporary file (retries with exponential backoff on network errors and 5xx/429), then put
into the landing zone in one step, so the landing-zone sensor never sees half a file. A
file already in the landing zone under that name is left alone.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

UPDATE_DAYS = (1, 8, 15, 22)
CRON = "0 6 1,8,15,22 * *"  # 06:00 UTC on NTSB's update days


class FetchError(Exception):
    pass


@dataclass(frozen=True)
class Fetched:
    url: str
    key: str  # where it is in the landing zone ("" when nothing was fetched)
    status: str  # fetched | already_present | not_configured
    bytes: int = 0
    attempts: int = 0


def release_url(template: str, day: dt.date) -> str:
    """The URL for the update of ``day``: ``{DDMON}`` -> 01JUL, ``{date:...}`` -> strftime."""
    return template.format(DDMON=day.strftime("%d%b").upper(), date=day)


def file_name(url: str) -> str:
    """The landing-zone name: the URL path's last part, or a ``fileID=...`` parameter's."""
    parsed = urlparse(url)
    name = PurePosixPath(unquote(parsed.path)).name
    for part in parsed.query.split("&"):  # NTSB's DownloadFile?fileID=C:\avdata\up01JUL.zip
        if part.lower().startswith("fileid="):
            name = unquote(part.split("=", 1)[1]).replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise FetchError(f"{url}: no file name in the URL")
    return name


def download(
    url: str, dest: Path, attempts: int = 4, backoff: float = 30.0, timeout: float = 60.0, sleep=time.sleep
) -> int:
    """Download ``url`` to ``dest``; network errors, 429 and 5xx are retried after backoff,
    2 x backoff, 4 x backoff... seconds. Returns the attempts made; raises FetchError."""
    last = None
    for attempt in range(1, attempts + 1):
        try:
            with (
                urllib.request.urlopen(
                    urllib.request.Request(url, headers={"User-Agent": "ntsb-lakehouse"}), timeout=timeout
                ) as response,
                open(dest, "wb") as out,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            return attempt
        except urllib.error.HTTPError as exc:
            if exc.code != 429 and exc.code < 500:
                raise FetchError(f"{url}: HTTP {exc.code} {exc.reason} (not retried)") from None
            last = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise FetchError(f"{url}: {last} after {attempts} attempts")


def fetch_release(landing, template: str | None, day: dt.date, **retry) -> Fetched:
    """Put the release of ``day`` into ``landing`` (a Lake), unless no URL is configured or
    the landing zone has it already."""
    if not template:
        return Fetched("", "", "not_configured")
    url = release_url(template, day)
    key = file_name(url)
    if landing.exists(key):
        return Fetched(url, key, "already_present")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / key
        attempts = download(url, local, **retry)
        size = local.stat().st_size
        if size == 0:
            raise FetchError(f"{url}: empty file")
        landing.put_file(key, local)
    return Fetched(url, key, "fetched", size, attempts)
