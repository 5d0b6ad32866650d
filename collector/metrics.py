"""The collector's Prometheus metrics, declared once.

Each process makes one :class:`CollectorMetrics` on its registry (tests pass a fresh
``CollectorRegistry``).  Spool size and age are read from the spool at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from collector.irc import repair_counts

__all__ = ["CollectorMetrics"]


class CollectorMetrics:
    """Counters and gauges named ``chatpulse_*`` as the README's metrics table lists them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "chatpulse_messages_received",
            "Chat messages received from sources",
            ["channel", "source"],
            registry=registry,
        )
        self.written = Counter(
            "chatpulse_messages_written",
            "Chat messages newly written to the database",
            ["channel", "source"],
            registry=registry,
        )
        self.duplicates = Counter(
            "chatpulse_messages_duplicate",
            "Chat messages already in the database (dropped)",
            ["channel", "source"],
            registry=registry,
        )
        self.malformed = Counter(
            "chatpulse_messages_malformed",
            "Lines or frames that could not be parsed",
            ["source"],
            registry=registry,
        )
        self.moderation = Counter(
            "chatpulse_moderation_events_written",
            "Moderation events newly written",
            ["channel"],
            registry=registry,
        )
        self.connected = Gauge(
            "chatpulse_connection_up",
            "1 while the live source is connected",
            ["source"],
            registry=registry,
        )
        self.reconnects = Counter(
            "chatpulse_reconnects",
            "Live source disconnects followed by a reconnect attempt",
            ["source"],
            registry=registry,
        )
        self.gaps = Counter(
            "chatpulse_gaps", "Gaps recorded (disconnects)", ["channel"], registry=registry
        )
        self.gap_recovered = Counter(
            "chatpulse_gap_recovered_messages",
            "Messages brought back by gap fill",
            ["channel"],
            registry=registry,
        )
        self.write_latency = Histogram(
            "chatpulse_write_latency_seconds",
            "Time to write one batch to the database",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.ingest_delay = Histogram(
            "chatpulse_ingest_delay_seconds",
            "From receipt to database commit (oldest of a batch)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.batches = Counter(
            "chatpulse_write_batches", "Batches handled", ["outcome"], registry=registry
        )
        self.queue_depth = Gauge(
            "chatpulse_queue_depth", "Events waiting for the writer", registry=registry
        )
        self.db_up = Gauge(
            "chatpulse_database_up", "1 while the writer reaches the database", registry=registry
        )
        self.spool_bytes = Gauge(
            "chatpulse_spool_bytes", "Bytes waiting in the on-disk spool", registry=registry
        )
        self.spool_oldest_age = Gauge(
            "chatpulse_spool_oldest_age_seconds",
            "Age of the oldest spooled batch",
            registry=registry,
        )
        self.spool_limit = Gauge(
            "chatpulse_spool_limit_bytes", "Spool size limit", registry=registry
        )
        registry.register(_IrcRepairs())

    def watch_spool(self, size: Callable[[], float], oldest_at: Callable[[], float | None]) -> None:
        """Compute the spool gauges at scrape time from the spool's own state."""
        self.spool_bytes.set_function(size)

        def age() -> float:
            at = oldest_at()
            return 0.0 if at is None else max(0.0, time.time() - at)

        self.spool_oldest_age.set_function(age)


class _IrcRepairs(Collector):
    """``chatpulse_irc_repairs_total{kind}``: lines the IRC parser repaired instead of losing
    them (:func:`collector.irc.repair_counts`), read at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "chatpulse_irc_repairs",
            "IRC lines repaired instead of lost (emote ranges, unusable tags or stamps)",
            labels=["kind"],
        )
        for kind, count in repair_counts().items():
            family.add_metric([kind], count)
        yield family
