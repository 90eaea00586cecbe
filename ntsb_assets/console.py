"""How the ``ntsb`` command talks: progress of long work, a log file for what the libraries
say, and consoles that never wrap a line that is not on a terminal.

Progress (``lib/progress.py`` events) is drawn three ways:

- on a terminal: rich progress bars, one per running stage, and a line when each ends;
- piped or redirected: one plain line per stage, when it ends (no colour, no wrapping);
- ``--json``: every event as one JSON object per line, on standard error (standard
  output keeps the command's JSON document).

What dbt, MLflow, Dagster and Great Expectations print goes to ``$NTSB_HOME/logs/ntsb.log``
unless ``--verbose``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from rich.console import Console

from .lib import progress

LOG_NAME = "ntsb.log"


def is_terminal(stream: IO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def console(stdout: bool = False) -> Console:
    """A rich console on standard error (or output) as they are now: on a terminal as rich
    makes it; elsewhere no colour codes and no wrapping (a log line stays one line, a token
    one word)."""
    stream = sys.stdout if stdout else sys.stderr
    if is_terminal(stream):
        return Console(file=stream)
    return Console(
        file=stream,
        width=1000,
        soft_wrap=True,
        no_color=True,
        highlight=False,
        force_terminal=False,
        force_interactive=False,
    )


class Reporter:
    """A progress listener: ``mode`` is tty, plain or json."""

    def __init__(self, mode: str):
        self.mode = mode
        self.stream = sys.stderr  # bound now: while the work runs, sys.stderr goes to the log file
        self.out = console()
        self._bars = None
        self._tasks: dict[tuple[str, str], int] = {}
        self._step_started: dict[tuple, tuple[float, int]] = {}
        if mode == "tty":
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                console=self.out,
                transient=True,
            )

    def __enter__(self):
        if self._bars is not None:
            self._bars.start()
        progress.listeners.append(self)
        return self

    def __exit__(self, *exc):
        progress.listeners.remove(self)
        if self._bars is not None:
            self._bars.stop()

    def say(self, text: str, style: str | None = None) -> None:
        """A line for the reader, between the bars (or as a JSON message)."""
        if self.mode == "json":
            self._json({"kind": "message", "text": text})
        else:
            self.out.print(text, style=style if self.mode == "tty" else None, markup=False, highlight=False)

    def __call__(self, e: progress.Event) -> None:
        if self.mode == "json":
            self._json(e.as_dict())
        elif e.kind == "note":
            self.out.print(e.what, style="yellow" if self.mode == "tty" else None, markup=False, highlight=False)
        elif self.mode == "tty":
            self._draw(e)
        elif e.kind in ("finish", "fail"):
            self.out.print(self._line(e), markup=False, highlight=False)

    def _json(self, doc: dict) -> None:
        self.stream.write(json.dumps({"time": round(time.time(), 3), **doc}, default=str) + "\n")
        self.stream.flush()

    @staticmethod
    def _line(e: progress.Event) -> str:
        head = f"{e.stage} {e.what}".strip()
        if e.kind == "fail":
            return f"✗ {head} failed after {e.seconds:.1f} s: {e.summary}"
        return f"✓ {head}: {e.summary} ({e.seconds:.1f} s)" if e.summary else f"✓ {head} ({e.seconds:.1f} s)"

    def _draw(self, e: progress.Event) -> None:
        bars, key = self._bars, (e.stage, e.what)
        if e.kind == "start":
            self._tasks[key] = bars.add_task(f"{e.stage} {e.what}".strip(), total=e.total, count="")
            return
        task = self._tasks.get(key)  # a step names what it did, not the stage's subject: the stage's latest bar
        if task is None:
            task = next((t for (s, _), t in reversed(self._tasks.items()) if s == e.stage), None)
        if e.kind == "step" and task is not None:
            rate = ""
            if e.unit == "rows" and e.done is not None:  # rows per second of this step
                first = self._step_started.setdefault((e.stage, e.what), (time.perf_counter(), 0))
                seconds = time.perf_counter() - first[0]
                rate = f", {e.done / seconds:,.0f} rows/s" if seconds > 0.5 else ""
            detail = f"{e.what} {e.done:,} {e.unit}{rate}" if e.unit == "rows" and e.done is not None else e.what
            head = next(iter(k for k, t in self._tasks.items() if t == task))
            fields = {"description": f"{head[0]} {head[1]}: {detail}".strip()}
            if e.unit != "rows" and e.done is not None:  # models done of total, years archived: the bar
                fields |= {
                    "completed": e.done,
                    **({"total": e.total} if e.total is not None else {}),
                    "count": f"{e.done}/{e.total} {e.unit}" if e.total is not None else f"{e.done} {e.unit}",
                }
            bars.update(task, **fields)
        elif e.kind in ("finish", "fail"):
            if key in self._tasks:
                bars.remove_task(self._tasks.pop(key))
            self.out.print(self._line(e), style="red" if e.kind == "fail" else None, markup=False, highlight=False)


def log_path(home: Path) -> Path:
    path = home / "logs" / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def third_party_to_log(home: Path, verbose: bool) -> Iterator[Path | None]:
    """What the libraries print and log goes to ``$NTSB_HOME/logs/ntsb.log`` while the
    block runs (standard output and error of this process, Python logging, warnings);
    with ``verbose`` it stays on the terminal. The progress is drawn on the streams as they
    were before (the Reporter holds them), so it still shows."""
    if verbose:
        yield None
        return
    path = log_path(home)
    with path.open("a", encoding="utf-8", buffering=1) as f:
        f.write(f"\n==== ntsb {' '.join(sys.argv[1:])} at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        saved = (root.handlers[:], root.level)
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                yield path
        finally:
            logging.captureWarnings(False)
            root.handlers[:], root.level = saved
