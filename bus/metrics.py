"""The bus's Prometheus metrics (``chatpulse_bus_*``), beside the collector's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["BusMetrics"]


class BusMetrics:
    """Declared once per process on its registry; collectors and writers use different parts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # -- collectors ------------------------------------------------------------------------
        self.published = Counter(
            "chatpulse_bus_published",
            "Events published to the JetStream stream (acknowledged by it)",
            ["channel"],
            registry=registry,
        )
        self.publish_duplicates = Counter(
            "chatpulse_bus_publish_duplicates",
            "Publishes the stream dropped as duplicates (Nats-Msg-Id seen within its window)",
            registry=registry,
        )
        self.publish_retries = Counter(
            "chatpulse_bus_publish_retries",
            "Batches published again because the server did not acknowledge them in time",
            registry=registry,
        )
        self.up = Gauge(
            "chatpulse_bus_up", "1 while connected to the NATS server", registry=registry
        )
        self.leases_owned = Gauge(
            "chatpulse_bus_leases_owned",
            "Channels whose lease this collector holds",
            ["collector"],
            registry=registry,
        )
        self.channels = Gauge(
            "chatpulse_bus_channels",
            "Channels in the shared channel list (as this collector last read it)",
            registry=registry,
        )
        self.orphaned = Gauge(
            "chatpulse_bus_orphaned_channels",
            "Channels of the shared list with no live lease (as this collector last read it)",
            registry=registry,
        )
        self.takeovers = Counter(
            "chatpulse_bus_takeovers",
            "Channels taken over from a collector whose lease expired",
            ["channel"],
            registry=registry,
        )
        # -- writers ---------------------------------------------------------------------------
        self.consumed = Counter(
            "chatpulse_bus_consumed",
            "Stream messages written and acknowledged by this writer",
            registry=registry,
        )
        self.redelivered = Counter(
            "chatpulse_bus_redelivered",
            "Stream messages this writer received more than once (a writer died or was slow)",
            registry=registry,
        )
        self.poison = Counter(
            "chatpulse_bus_poison",
            "Stream messages that could not be decoded (dead-lettered and terminated)",
            registry=registry,
        )
        self.consumer_pending = Gauge(
            "chatpulse_bus_consumer_pending",
            "Messages of the stream not yet delivered to any writer (consumer lag)",
            registry=registry,
        )
        self.consumer_ack_pending = Gauge(
            "chatpulse_bus_consumer_ack_pending",
            "Messages delivered to writers and not yet acknowledged",
            registry=registry,
        )
