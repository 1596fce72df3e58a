"""The server's Prometheus metrics at /metrics: sessions by status, create latency, tool calls, errors.

Each server has its own registry, so nothing here is global. Session counts are read from the store
at scrape time; the rest is reported by the session manager (as its `observer`) and by the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cove.sessions.manager import Observer
from cove.sessions.store import Store
from cove.sessions.validation import STATUSES

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SessionCounts(Collector):
    """`cove_sessions{status}`, counted by the database when Prometheus asks."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("cove_sessions", "Sessions by status", labels=["status"])
        counts = self.store.count_by_status()
        for status in STATUSES:
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


class ServerMetrics(Observer):
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SessionCounts(store))
        self.creates = Histogram(
            "cove_session_create_seconds",
            "Time to create a session, from the request to a RUNNING sandbox",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "cove_tool_calls",
            "Tool calls by tool and outcome: ok, error (the tool failed), invalid (refused), failed (ours)",
            ["tool", "outcome"],
            registry=self.registry,
        )
        self.tool_seconds = Histogram(
            "cove_tool_call_seconds",
            "Tool call latency",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "cove_http_errors",
            "HTTP answers with an error status, by status",
            ["status"],
            registry=self.registry,
        )

    def session_created(self, seconds: float) -> None:
        self.creates.observe(seconds)

    def tool_called(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_seconds.labels(tool).observe(seconds)

    def answered(self, status: int) -> None:
        if status >= 400:
            self.errors.labels(str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
