"""Prometheus metrics of one server instance (its own registry, so tests can run many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("bastion_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "status"], registry=self.registry)
        self.decisions = Counter("bastion_decisions", "Guard decisions by direction, action, category and stage.",
                                 ["direction", "action", "category", "stage"], registry=self.registry)
        self.guard_latency = Histogram("bastion_guard_latency_seconds", "Time spent in the guard per decision.",
                                       ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.upstream_latency = Histogram("bastion_upstream_latency_seconds",
                                          "Upstream time to the full response (non-streamed) or first chunk.",
                                          buckets=LATENCY_BUCKETS, registry=self.registry)

    def decision(self, direction: str, action: str, category: str | None, stage: str) -> None:
        self.decisions.labels(direction, action, category or "none", stage).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
