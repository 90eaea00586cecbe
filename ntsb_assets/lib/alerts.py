"""Failure alerts: what failed (run, job, assets, steps and their errors), recorded in the
lake under ``alerts/`` and, when ``NTSB_ALERT_WEBHOOK_URL`` is set, POSTed there as JSON
(Slack-compatible: the body has a ``text`` field)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field


@dataclass
class Alert:
    run_id: str
    job: str
    assets: list[str]  # the assets the failed steps were materializing
    failures: list[dict] = field(default_factory=list)  # {step, error}
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def text(self) -> str:
        what = ", ".join(self.assets) or ", ".join(f["step"] for f in self.failures) or "the run"
        first = self.failures[0]["error"].splitlines()[0] if self.failures else "no step error recorded"
        return f"NTSB lakehouse: {self.job} failed ({what}): {first} [run {self.run_id}]"

    def record(self, lake) -> str:
        key = f"alerts/{self.at[:10]}/{self.run_id}.json"
        lake.put_json(key, {**asdict(self), "text": self.text})
        return key


def post(url: str, alert: Alert, attempts: int = 2, timeout: float = 10.0) -> int:
    """POST the alert; returns the HTTP status. Raises OSError after ``attempts``."""
    body = json.dumps({**asdict(alert), "text": alert.text}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except (urllib.error.URLError, OSError):
            if attempt == attempts:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")
