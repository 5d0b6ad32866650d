"""The clipper's Prometheus metrics, declared once per process on a given registry.

Clips by status and the queue depth are read from ``chat.clips`` when ``/metrics`` is scraped
(:func:`refresh_queue_metrics`), so every API replica reports the same, current numbers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import AsyncConnection

from clipper.jobs import queue_stats

__all__ = ["STATUSES", "ClipperMetrics", "refresh_queue_metrics"]

STATUSES = ("queued", "running", "done", "failed")


class ClipperMetrics:
    """``chatpulse_clip*`` metrics: status counts, queue depth, cut time, webhook latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.clips = Gauge(
            "chatpulse_clips", "Clips in chat.clips by status", ["status"], registry=registry
        )
        self.queue_depth = Gauge(
            "chatpulse_clip_queue_depth",
            "Clip jobs due and waiting for a worker",
            registry=registry,
        )
        self.cut_seconds = Histogram(
            "chatpulse_clip_cut_seconds",
            "Time to cut, check and store one clip",
            ["media"],
            buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.jobs = Counter(
            "chatpulse_clip_jobs",
            "Clip job attempts by outcome (done, retry, failed, waiting, released)",
            ["outcome"],
            registry=registry,
        )
        self.webhook_seconds = Histogram(
            "chatpulse_clip_webhook_seconds",
            "Time to answer a webhook or clip request",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=registry,
        )
        self.webhook_requests = Counter(
            "chatpulse_clip_webhook_requests",
            "Webhook deliveries by HTTP status",
            ["status"],
            registry=registry,
        )


async def refresh_queue_metrics(metrics: ClipperMetrics, conn: AsyncConnection[Any]) -> None:
    """Read the status counts and queue depth from the database into the gauges."""
    by_status, due = await queue_stats(conn)
    for status in STATUSES:
        metrics.clips.labels(status).set(by_status.get(status, 0))
    metrics.queue_depth.set(due)
