# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus metrics (prometheus_client; multiprocess mode under gunicorn).

``dualstore serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh folder under the data
directory, so ``/metrics`` on any worker reports the sum over all workers of this server
(gauges: live sum for open streams, live max for index sizes). Without that variable
(e.g. the app run in-process) each process reports only itself.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

disable_created_metrics()  # type: ignore[no-untyped-call]  # reason: no *_created series

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_enabled() -> bool:
    """True when metrics are shared between worker processes through files."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The server's metrics; one instance per process (create it once)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dualstore_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dualstore_http_request_duration_seconds",
            "Time to produce the response head (streams: until the stream opens).",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.open_streams = Gauge(
            "dualstore_sse_open_streams",
            "SSE streams currently open.",
            ["collection"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.events_sent = Counter(
            "dualstore_sse_events_sent",
            "SSE events written to clients (insert and heartbeat).",
            ["collection", "event"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "dualstore_vector_index_size",
            "Vectors in the collection's hnswlib index (largest over live workers).",
            ["collection"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.documents_inserted = Counter(
            "dualstore_documents_inserted",
            "Documents created by POST (idempotent replays not counted).",
            ["collection"],
            registry=self.registry,
        )

    def stream_opened(self, collection: str) -> None:
        """Call when an SSE stream starts."""
        self.open_streams.labels(collection).inc()

    def stream_closed(self, collection: str) -> None:
        """Call when an SSE stream ends (always pair with stream_opened)."""
        self.open_streams.labels(collection).dec()

    def event_sent(self, collection: str, event: str = "insert", count: int = 1) -> None:
        """Call for every SSE event written."""
        self.events_sent.labels(collection, event).inc(count)

    def render(self) -> bytes:
        """The exposition text (all workers' values in multiprocess mode)."""
        if multiprocess_enabled():
            registry = CollectorRegistry()
            _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def mark_process_dead(pid: int) -> None:
    """gunicorn child_exit hook: drop a dead worker's live gauges."""
    if multiprocess_enabled():
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
