"""The demo's long-running services (Dagster webserver and daemon, the API, the docs
server), started, watched and stopped together.

``ntsb demo`` becomes their supervisor: each service runs in a session of its own (so a
Ctrl-C reaches the supervisor alone, which stops them in order), asks the kernel to kill it
if the supervisor dies (``PR_SET_PDEATHSIG``), and is listed in
``$NTSB_HOME/services.json`` with its process id and URL, which ``ntsb status`` and ``ntsb
stop`` read. SIGINT or SIGTERM to the supervisor stops every service and the process
groups under them: no child outlives it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

STATE = "services.json"
STOP_GRACE = 20.0  # seconds a service gets to stop before it is killed


@dataclass
class Service:
    name: str
    pid: int
    url: str | None
    log: str


def _child_setup() -> None:  # runs in the child before exec
    from .lifeline import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # not inherited as ignored from a background shell
    die_with_parent()


def state_path(home: Path) -> Path:
    return home / STATE


def start(
    home: Path, name: str, args: list[str], url: str | None, env: dict | None = None
) -> tuple[Service, subprocess.Popen]:
    """Start one service, its output in ``$NTSB_HOME/logs/<name>.log``."""
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=_child_setup,
        )
    return Service(name, proc.pid, url, str(log)), proc


def write_state(home: Path, services: list[Service]) -> None:
    path = state_path(home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "supervisor": os.getpid(),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "services": [asdict(s) for s in services],
            },
            indent=1,
        )
    )
    os.replace(tmp, path)


def read_state(home: Path) -> dict | None:
    path = state_path(home)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def answers(url: str | None, timeout: float = 2.0) -> bool:
    if not url:
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status < 500
    except Exception:
        return False


def wait_until_up(services: list[tuple[Service, subprocess.Popen]], timeout: float, tell) -> list[str]:
    """Wait for every service with a URL to answer; returns the names of those that exited."""
    deadline = time.monotonic() + timeout
    pending = {s.name for s, _ in services if s.url}
    dead: list[str] = []
    while pending and time.monotonic() < deadline:
        for s, p in services:
            if s.name in pending:
                if p.poll() is not None:
                    pending.discard(s.name)
                    dead.append(s.name)
                elif answers(s.url):
                    pending.discard(s.name)
                    tell(s)
        time.sleep(0.5)
    return dead + sorted(pending)


def stop_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # each service leads its own session and group


def stop_all(procs: list[tuple[Service, subprocess.Popen]], grace: float = STOP_GRACE) -> None:
    """SIGINT to the Dagster processes (their graceful stop), SIGTERM to the rest; after
    ``grace`` seconds SIGKILL to whatever is left in their process groups."""
    for s, p in procs:
        if p.poll() is None:
            stop_group(p.pid, signal.SIGINT if s.name.startswith("dagster") else signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _, p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
    for _, p in procs:  # the group too: a webserver's code server, a uvicorn worker
        stop_group(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)


def supervise(home: Path, procs: list[tuple[Service, subprocess.Popen]], tell) -> int:
    """Until SIGINT or SIGTERM, or a service exits on its own; then stop them all. Returns
    the exit status: 0 when asked to stop, 1 when a service died."""
    stopping = {"signal": None}

    def handler(signum, frame):
        stopping["signal"] = signum

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    status = 0
    try:
        while stopping["signal"] is None:
            dead = [s for s, p in procs if p.poll() is not None]
            if dead:
                tell(
                    f"{dead[0].name} exited (code {[p for s, p in procs if s is dead[0]][0].returncode}); "
                    f"stopping the others. Its log: {dead[0].log}"
                )
                status = 1
                break
            time.sleep(0.5)
        if stopping["signal"] is not None:
            tell(f"{signal.Signals(stopping['signal']).name}: stopping {', '.join(s.name for s, _ in procs)}")
        stop_all(procs)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        state = read_state(home)
        if state and state.get("supervisor") == os.getpid():
            state_path(home).unlink(missing_ok=True)
    return status


def stop_running(home: Path, timeout: float = STOP_GRACE + 10) -> str:
    """Stop the services a supervisor started in this home: SIGTERM to the supervisor (it
    stops them in order), then SIGKILL to any service group still there."""
    state = read_state(home)
    if state is None:
        return "nothing is running from this home"
    sup = state.get("supervisor")
    if sup and alive(sup):
        os.kill(sup, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(sup) and time.monotonic() < deadline:
            time.sleep(0.25)
    left = [s for s in state.get("services", []) if alive(s["pid"])]
    for s in left:
        stop_group(s["pid"], signal.SIGKILL)
    state_path(home).unlink(missing_ok=True)
    return f"stopped {', '.join(s['name'] for s in state.get('services', []))}" + (
        f" ({', '.join(s['name'] for s in left)} killed)" if left else ""
    )
