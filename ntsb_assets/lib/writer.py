"""One writer of the warehouse at a time, across processes, by a lock that dies with its
process: an OS file lock beside the DuckDB file, a session-level advisory lock on
PostgreSQL. A writer killed at any point (even ``kill -9``) gives the lock up with its
process, so no claim is ever left behind for a later writer to wait on.

A waiting writer says what it waits for (the holder's process, what it does, since when),
again every ``WAIT_REPEAT_SECONDS``, and stays interruptible (Ctrl-C, SIGTERM). The lock is
re-entrant within a process: a step that holds it may call code that takes it again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .warehouse import WAIT_REPEAT_SECONDS, Warehouse, tell_waiting

POLL_SECONDS = 0.25
# PostgreSQL advisory lock key of the warehouse writer (any constant of the project's own)
PG_LOCK_KEY = 0x6E747362_77726974  # "ntsbwrit"

_held = threading.local()
_process_lock = threading.RLock()


def _holder_text(info: dict | None) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid')} on {info.get('host')} ({info.get('what')}), holding it since {info.get('since')}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextmanager
def writer_lock(
    warehouse: Warehouse, what: str, on_wait: Callable[[str], None] | None = None, timeout: float | None = None
) -> Iterator[None]:
    """Hold the warehouse's writer lock while the block runs. ``what`` names the holder in
    the waiters' messages. ``timeout``: give up (TimeoutError) after this many seconds."""
    depth = getattr(_held, "depth", 0)
    if depth:  # this thread holds it already
        _held.depth = depth + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    with _process_lock:  # threads of one process wait here, not on the OS lock
        acquire = _duckdb_lock if warehouse.dialect == "duckdb" else _postgres_lock
        with acquire(warehouse, what, on_wait, timeout):
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0


def _wait(
    try_lock: Callable[[], bool],
    holder: Callable[[], dict | None],
    what: str,
    on_wait: Callable[[str], None] | None,
    timeout: float | None,
    where: str,
) -> None:
    start = time.monotonic()
    told = None
    while not try_lock():
        waited = time.monotonic() - start
        if timeout is not None and waited >= timeout:
            raise TimeoutError(
                f"{what}: the warehouse writer lock ({where}) is still held by "
                f"{_holder_text(holder())} after {waited:.0f} s"
            )
        if told is None or time.monotonic() - told >= WAIT_REPEAT_SECONDS:
            tell_waiting(
                f"{what}: waiting for the warehouse writer lock ({where}), held by "
                f"{_holder_text(holder())}; waited {waited:.0f} s (Ctrl-C or SIGTERM stops waiting)",
                on_wait,
            )
            told = time.monotonic()
        time.sleep(POLL_SECONDS)


@contextmanager
def _duckdb_lock(warehouse: Warehouse, what: str, on_wait, timeout) -> Iterator[None]:
    import fcntl

    path = warehouse.path.with_name(warehouse.path.name + ".writer.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    # not inherited by child processes (O_CLOEXEC, Python's default): the lock is this
    # process's alone and goes when it goes
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def try_lock() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def holder() -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None

    try:
        _wait(try_lock, holder, what, on_wait, timeout, str(path))
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": what, "since": _now()}).encode(),
            0,
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _postgres_lock(warehouse: Warehouse, what: str, on_wait, timeout) -> Iterator[None]:
    import psycopg2

    conn = psycopg2.connect(
        warehouse.dsn, connect_timeout=5, application_name=f"ntsb writer: {what} (pid {os.getpid()})"[:63]
    )
    conn.autocommit = True
    cur = conn.cursor()

    def try_lock() -> bool:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (PG_LOCK_KEY,))
        return cur.fetchone()[0]

    def holder() -> dict | None:
        cur.execute(
            "SELECT a.pid, a.client_addr, a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND (l.classid::bigint << 32 | l.objid::bigint) = %s",
            (PG_LOCK_KEY,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return {
            "pid": f"{row[0]} (server)",
            "host": row[1] or "local socket",
            "what": row[2],
            "since": row[3].isoformat(timespec="seconds"),
        }

    try:
        _wait(try_lock, holder, what, on_wait, timeout, "PostgreSQL advisory lock")
        try:
            yield
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
    finally:
        conn.close()  # a lock still held goes with the session
