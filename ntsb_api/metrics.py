"""Prometheus metrics, one registry per application: requests and latency by route and
status, predictions by class."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ntsb_api_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ntsb_api_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "ntsb_api_predictions",
            "Predictions served, by predicted class",
            ["predicted_class"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)

    def predicted(self, cls: str, n: int = 1) -> None:
        self.predictions.labels(cls).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
