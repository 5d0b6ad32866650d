"""``chatpulse ingest``: a bus writer.  Stream messages in, rows in the database exactly once.

Any number of ``ingest`` processes, on any host, share one durable pull consumer.  Each of
a writer's lanes (``writer_lanes``, one database connection each) pulls a batch of up to
``ingest_batch_size`` messages, filled by the server from the backlog or within
``ingest_max_wait_s`` (:mod:`bus.pull`), decodes it (:mod:`collector.codec`), writes it with
the single-process collector's :class:`collector.writer.Writer` (``COPY`` into staging,
``INSERT … ON CONFLICT DO NOTHING``, one transaction) and acknowledges the batch's messages
only after the commit.  A writer killed mid-batch has acknowledged nothing of it: the server
redelivers the batch to a writer after ``ack_wait``, and the unique keys drop what the dead
writer had committed already.  A writer that stops gives back (NAK) what it holds unwritten,
for redelivery at once.

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
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from bus.common import ACK_WAIT_S, Bus, connect, consumer_name
from bus.metrics import BusMetrics
from bus.pull import ACK, PROGRESS, TERM, PullBatches, delivery_count, reply_all
from chatpulse.core.heap import bulk_gc
from chatpulse.core.settings import Settings
from collector.app import dead_letter_path
from collector.codec import CodecError, decode_events
from collector.deadletter import DeadLetters
from collector.events import ChatEvent, Malformed
from collector.metrics import CollectorMetrics
from collector.spool import Spool
from collector.writer import BatchResult, DatabaseUnavailable, Writer

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["IngestTotals", "run_ingest"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestTotals:
    acked: int = 0
    poison: int = 0
    redelivered: int = 0
    #: database writes (batches committed) and the stream messages they carried
    writes: int = 0
    written_messages: int = 0
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
        retry_s: float,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.writer = writer
        self.dead = dead
        self.metrics = metrics
        self.stop = stop
        self.retry_s = retry_s
        self.totals = IngestTotals()

    def _decode(self, msgs: list[Msg]) -> tuple[list[ChatEvent], list[Msg], list[Msg]]:
        """(events, messages to ack after the commit, poison messages)."""
        events: list[ChatEvent] = []
        good: list[Msg] = []
        poison: list[Msg] = []
        redelivered = 0
        for msg in msgs:
            if delivery_count(msg.reply) > 1:
                redelivered += 1
            try:
                events.extend(decode_events(msg.data))
            except CodecError as exc:
                poison.append(msg)
                self.dead.write(
                    Malformed(
                        msg.data.decode("utf-8", "replace"),
                        f"undecodable stream message on {msg.subject}: {exc}",
                        "bus",
                    )
                )
            else:
                good.append(msg)
        if redelivered:
            self.metrics.redelivered.inc(redelivered)
            self.totals.redelivered += redelivered
        return events, good, poison

    async def _write(self, events: list[ChatEvent], msgs: list[Msg], lane: int) -> bool:
        """Write until committed (True) or stopping with the database down (False).

        While a write runs longer than a third of the ack wait (a loaded database), and while
        the database is down, the batch is marked in progress, so the server does not hand it
        to another writer meanwhile.
        """
        while True:
            write = asyncio.ensure_future(self.writer.write_now(events, lane))
            try:
                while not (await asyncio.wait((write,), timeout=ACK_WAIT_S / 3))[0]:
                    with contextlib.suppress(Exception):
                        await reply_all(self.bus.nc, msgs, PROGRESS)
            finally:
                if not write.done():  # cancelled from outside
                    write.cancel()
            try:
                write.result()
                return True
            except DatabaseUnavailable as exc:
                log.warning(
                    "database unavailable; the stream keeps the batch",
                    extra={"events": len(events), "error": str(exc)[:200]},
                )
                if self.stop.is_set():
                    return False
                with contextlib.suppress(Exception):
                    await reply_all(self.bus.nc, msgs, PROGRESS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.retry_s)

    async def lane(self, lane: int) -> None:
        nc = self.bus.nc
        pull = PullBatches(
            nc,
            self.settings.nats_stream,
            consumer_name(self.settings),
            batch=self.settings.ingest_batch_size,
            max_wait_s=self.settings.ingest_max_wait_s,
        )
        await pull.open()
        try:
            while not self.stop.is_set():
                try:
                    msgs = await pull.next_batch(self.stop)
                except Exception as exc:  # the connection is closed
                    log.warning("pull request failed", extra={"error": repr(exc)})
                    self.metrics.up.set(0)
                    await self._pause()
                    continue
                self.metrics.up.set(1 if nc.is_connected else 0)
                if msgs:
                    await self._handle(msgs, lane, pull)
                elif pull.refused is not None:
                    # 409: a limit of a consumer configured elsewhere, or the consumer deleted.
                    # Not a tight loop of refused requests: wait, and make sure it exists.
                    log.warning("pull request refused", extra={"status": pull.refused})
                    await self._pause()
                    with contextlib.suppress(Exception):
                        await self.bus.ensure_consumer()
        finally:
            # what this lane holds unwritten goes to another writer at once
            await pull.close()

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), self.retry_s)

    async def _handle(self, msgs: list[Msg], lane: int, pull: PullBatches) -> None:
        """Write one batch, then acknowledge it; terminate poison messages."""
        nc = self.bus.nc
        events, good, poison = self._decode(msgs)
        if poison:
            with contextlib.suppress(Exception):
                await reply_all(nc, poison, TERM)
            self.metrics.poison.inc(len(poison))
            self.totals.poison += len(poison)
        if good:
            if not await self._write(events, good, lane):
                pull.give_back(good)  # stopping with the database down
                return
            self.totals.writes += 1
            self.totals.written_messages += len(good)
            # Only now, after the commit: a writer killed before this line acked nothing of
            # the batch, and the server redelivers all of it (the unique keys drop repeats).
            with contextlib.suppress(Exception):
                await reply_all(nc, good, ACK)
        with contextlib.suppress(Exception):
            await nc.flush(timeout=5)
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
            bulk_gc(),
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
