"""``chatpulse ingest``: a bus writer.  Stream messages in, rows in the database exactly once.

Any number of ``ingest`` processes, on any host, share one durable pull consumer: each fetches
a batch, decodes it (:mod:`collector.codec`), writes it with the single-process collector's
:class:`collector.writer.Writer` (``COPY`` into staging, ``INSERT … ON CONFLICT DO NOTHING``,
one transaction) and acknowledges the batch's messages only after the commit.  A writer killed
mid-batch has acknowledged nothing of it: the server redelivers the batch to a writer after
``ack_wait``, and the unique keys drop what the dead writer had committed already.

While the database is down the writer keeps its batch and tries again (telling the server the
batch is in progress, so it is not redelivered elsewhere); the stream holds the backlog.  A
message that cannot be decoded (a poison message) goes to the dead-letter file and is
terminated, so it is never redelivered and blocks nothing.  Rows the database rejects are
isolated and dead-lettered as in single-process mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bus.common import Bus, connect, consumer_name
from bus.metrics import BusMetrics
from chatpulse.core.settings import Settings
from collector.app import dead_letter_path
from collector.codec import CodecError, decode_events
from collector.deadletter import DeadLetters
from collector.events import ChatEvent, Malformed
from collector.metrics import CollectorMetrics
from collector.spool import Spool
from collector.writer import BatchResult, DatabaseUnavailable, Writer

__all__ = ["IngestTotals", "run_ingest"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestTotals:
    acked: int = 0
    poison: int = 0
    redelivered: int = 0
    written: BatchResult | None = None


class _Ingest:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        writer: Writer,
        dead: DeadLetters,
        metrics: BusMetrics,
        stop: asyncio.Event,
        *,
        fetch_batch: int,
        retry_s: float,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.writer = writer
        self.dead = dead
        self.metrics = metrics
        self.stop = stop
        self.fetch_batch = fetch_batch
        self.retry_s = retry_s
        self.totals = IngestTotals()

    def _decode(self, msgs: list[Any]) -> tuple[list[ChatEvent], list[Any], list[Any]]:
        """(events, messages to ack after the commit, poison messages)."""
        events: list[ChatEvent] = []
        good: list[Any] = []
        poison: list[Any] = []
        for msg in msgs:
            try:
                if msg.metadata.num_delivered > 1:
                    self.metrics.redelivered.inc()
                    self.totals.redelivered += 1
            except Exception:  # not a JetStream message (cannot happen on a bound consumer)
                pass
            try:
                events.extend(decode_events(msg.data))
                good.append(msg)
            except CodecError as exc:
                poison.append(msg)
                self.dead.write(
                    Malformed(
                        msg.data.decode("utf-8", "replace"),
                        f"undecodable stream message on {msg.subject}: {exc}",
                        "bus",
                    )
                )
        return events, good, poison

    async def _write(self, events: list[ChatEvent], msgs: list[Any], lane: int) -> bool:
        """Write until committed (True) or stopping with the database down (False)."""
        while True:
            try:
                await self.writer.write_now(events, lane)
                return True
            except DatabaseUnavailable as exc:
                log.warning(
                    "database unavailable; the stream keeps the batch",
                    extra={"events": len(events), "error": str(exc)[:200]},
                )
                if self.stop.is_set():
                    return False
                for msg in msgs:  # not redelivered elsewhere while we wait
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.retry_s)

    async def lane(self, lane: int) -> None:
        import nats.errors

        sub = await self.bus.js.pull_subscribe_bind(
            durable=consumer_name(self.settings), stream=self.settings.nats_stream
        )
        while not self.stop.is_set():
            try:
                msgs = await sub.fetch(self.fetch_batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except Exception as exc:  # server away: the client reconnects by itself
                log.warning("fetch failed", extra={"error": repr(exc)})
                self.metrics.up.set(0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.retry_s)
                continue
            self.metrics.up.set(1)
            events, good, poison = self._decode(msgs)
            for msg in poison:
                with contextlib.suppress(Exception):
                    await msg.term()
                self.metrics.poison.inc()
                self.totals.poison += 1
            if good and not await self._write(events, good, lane):
                return  # stopping: the server redelivers the batch to another writer
            for msg in good:
                with contextlib.suppress(Exception):
                    await msg.ack()
            with contextlib.suppress(Exception):
                await self.bus.nc.flush(timeout=5)
            self.metrics.consumed.inc(len(good))
            self.totals.acked += len(good)

    async def watch_lag(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                info = await self.bus.js.consumer_info(
                    self.settings.nats_stream, consumer_name(self.settings)
                )
                self.metrics.consumer_pending.set(info.num_pending or 0)
                self.metrics.consumer_ack_pending.set(info.num_ack_pending or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 2.0)


def _writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_ingest(
    settings: Settings,
    conninfo: str,
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    retry_s: float = 1.0,
    prepare: Callable[[], Awaitable[object]] | None = None,
) -> IngestTotals:
    """Consume the stream into the database until ``stop`` is set.

    ``prepare`` (the application's schema check) runs once the bus is reachable, before the
    first write.  Signals are the caller's: ``chatpulse ingest`` sets ``stop`` on SIGTERM.
    """
    registry = registry or CollectorRegistry()
    metrics = BusMetrics(registry)
    collector_metrics = CollectorMetrics(registry)
    stop = stop or asyncio.Event()
    bus = await connect(settings, name=f"chatpulse-ingest {_writer_id()}")
    try:
        await bus.ensure_stream()
        await bus.ensure_consumer()
        if prepare is not None:
            await prepare()
        # The writer's spool is never used here (the stream is the buffer): a scratch one.
        with (
            tempfile.TemporaryDirectory(prefix="chatpulse-ingest-") as scratch,
            Spool(Path(scratch), max_bytes=1 << 20) as spool,
            DeadLetters(dead_letter_path(settings, "ingest")) as dead,
        ):
            lanes = settings.writer_lanes
            writer = Writer(
                conninfo,
                asyncio.Queue(),
                spool=spool,
                dead_letters=dead,
                metrics=collector_metrics,
                batch_size=settings.batch_size,
                collector_id=_writer_id(),
                lanes=lanes,
            )
            ingest = _Ingest(
                settings,
                bus,
                writer,
                dead,
                metrics,
                stop,
                fetch_batch=settings.batch_size,
                retry_s=retry_s,
            )
            log.info("bus writer running", extra={"lanes": lanes})
            tasks = [asyncio.create_task(ingest.lane(i), name=f"lane-{i}") for i in range(lanes)]
            tasks.append(asyncio.create_task(ingest.watch_lag(), name="lag"))
            try:
                await asyncio.gather(*tasks)
            finally:
                stop.set()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await writer._drop_connection()
            ingest.totals.written = writer.totals
            return ingest.totals
    finally:
        await bus.close()
