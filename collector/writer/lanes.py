"""The writer task: a bounded queue in, batches on two lanes, the spool while the database is down.

One :class:`Writer` per collector drains a bounded queue, batches by size and time, and writes
each batch with :func:`collector.writer.batch.write_events`.  While the database is unreachable
(:func:`collector.writer.classify.is_unavailable`), batches go to the on-disk spool (fsynced
before they count as written) and are replayed in order when it returns; while anything is
spooled, new batches queue behind it.  A batch the database rejects for its content is split
until the offending events are isolated; those go to the dead-letter file, the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from collector.codec import decode_events, encode_events
from collector.deadletter import DeadLetters
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed
from collector.metrics import CollectorMetrics
from collector.spool import Spool, SpoolFullError
from collector.writer.batch import GAP_FILLED, GAP_KINDS, BatchResult, write_events
from collector.writer.channels import ChannelRegistry
from collector.writer.classify import DatabaseUnavailable, is_unavailable

__all__ = ["Writer"]

log = logging.getLogger(__name__)


def _event_raw(event: ChatEvent) -> str:
    return encode_events([event]).decode("utf-8", "replace")


class Writer:
    """Consume events from ``queue`` and write them; see the module docstring.

    ``conninfo`` is used for one dedicated connection, reopened after failures.  Put
    :data:`Writer.STOP` on the queue (or call :meth:`stop`) to flush and finish: every event
    before it ends up in the database or the spool.
    """

    STOP: Final = object()

    def __init__(
        self,
        conninfo: str,
        queue: asyncio.Queue[Any],
        *,
        spool: Spool,
        dead_letters: DeadLetters,
        metrics: CollectorMetrics,
        batch_size: int = 2000,
        flush_interval_s: float = 0.5,
        retry_s: float = 1.0,
        collector_id: str = "",
        on_written: Callable[[BatchResult], None] | None = None,
        lanes: int = 2,
        ready: asyncio.Event | None = None,
    ) -> None:
        self._conninfo = conninfo
        # Set once the schema is known to be there (the collector checks it in the background
        # while it already collects): until then every batch goes to the spool.
        self._ready = ready
        self._queue = queue
        self._spool = spool
        self._dead = dead_letters
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_s = flush_interval_s
        self._retry_s = retry_s
        self._collector_id = collector_id
        self._on_written = on_written
        # Two connections ("lanes"): while PostgreSQL inserts one batch, the next is copied in
        # on the other, so Python and the database work at the same time.  Batches that carry
        # gap bookkeeping, and spool replay, wait for both lanes and go one at a time.
        self._conns: list[psycopg.AsyncConnection[Any] | None] = [None] * lanes
        self._inflight: list[asyncio.Task[None] | None] = [None] * lanes
        self._channels = ChannelRegistry()
        self._fill_counts: dict[str, int] = {}
        self._drain_lock = asyncio.Lock()
        self._last_drain_try = 0.0
        self.db_up: bool | None = None  # unknown until the first attempt
        self.totals = BatchResult()
        self.spooled_batches = 0
        metrics.spool_limit.set(spool.max_bytes)
        metrics.watch_spool(
            lambda: float(spool.size_bytes),
            lambda: at.timestamp() if (at := spool.oldest_appended_at) is not None else None,
        )

    @property
    def spool_pending(self) -> int:
        """Batches still waiting in the spool (the database was down and is not back yet)."""
        return self._spool.pending_records

    async def stop(self) -> None:
        """Ask the writer to flush what is queued and return from :meth:`run`."""
        await self._queue.put(self.STOP)

    async def write_now(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        """Write ``events`` now on ``lane``'s connection, never to the spool (the bus writer:
        the stream holds what is not written yet).  Malformed events go to the dead letters,
        rows the database rejects are isolated as usual; raises :class:`DatabaseUnavailable`
        when nothing could be committed."""
        for e in events:
            if isinstance(e, Malformed):
                self._dead.write(e)
        return await self._write([e for e in events if not isinstance(e, Malformed)], lane)

    # -- connection ----------------------------------------------------------------------------
    async def _connection(self, lane: int = 0) -> psycopg.AsyncConnection[Any]:
        if self._ready is not None and not self._ready.is_set():
            raise DatabaseUnavailable("the schema is not checked yet (waiting for the database)")
        conn = self._conns[lane]
        if conn is None or conn.closed:
            try:
                conn = self._conns[lane] = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    connect_timeout=5,
                    application_name="chatpulse-collector",
                    # A silently cut network must surface as an error, not hang the writer.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    tcp_user_timeout=10_000,
                )
            except psycopg.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
        return conn

    async def _drop_connection(self, lane: int | None = None) -> None:
        for i in range(len(self._conns)) if lane is None else (lane,):
            conn, self._conns[i] = self._conns[i], None
            if conn is not None:
                with contextlib.suppress(Exception):  # already broken; closing is best effort
                    await conn.close()

    def _set_db(self, up: bool) -> None:
        if up != self.db_up and not (self.db_up is None and up):
            log.warning(
                "database reachable again" if up else "database unreachable: spooling",
                extra={"spool_bytes": self._spool.size_bytes},
            )
        self.db_up = up
        self._metrics.db_up.set(1 if up else 0)

    # -- writing -------------------------------------------------------------------------------
    async def _write(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        """Write a batch, isolating rows the database rejects; raises DatabaseUnavailable.

        The batch is cut after each gap-fill marker, so a marker counts exactly the gap-fill
        rows that came before it in the stream.
        """
        cuts = [
            i + 1
            for i, e in enumerate(events)
            if isinstance(e, ControlEvent) and e.kind == GAP_FILLED
        ]
        if (cuts and cuts[-1] != len(events)) or len(cuts) > 1:
            result = BatchResult()
            start = 0
            for end in [*cuts, len(events)]:
                if end > start:
                    result.merge(await self._write_one(events[start:end], lane))
                start = end
            return result
        return await self._write_one(events, lane)

    async def _write_one(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        started = time.perf_counter()
        try:
            conn = await self._connection(lane)
            result = await asyncio.wait_for(
                write_events(
                    conn,
                    events,
                    self._channels,
                    collector_id=self._collector_id,
                    fill_counts=self._fill_counts,
                ),
                timeout=60,
            )
        except Exception as exc:
            if is_unavailable(exc):
                await self._drop_connection(lane)
                self._set_db(False)
                raise DatabaseUnavailable(str(exc)) from exc
            # A value the database rejects, or one with no UTF-8 form (a lone surrogate in a
            # field that is not COPY text): find the event and dead-letter it, keep the rest.
            if not isinstance(exc, psycopg.Error | UnicodeEncodeError):
                raise
            return await self._isolate(events, exc, lane)
        self._set_db(True)
        self._metrics.write_latency.observe(time.perf_counter() - started)
        self._account(events, result)
        return result

    async def _isolate(
        self, events: Sequence[ChatEvent], exc: psycopg.Error | UnicodeEncodeError, lane: int = 0
    ) -> BatchResult:
        if len(events) == 1:
            event = events[0]
            if isinstance(exc, UnicodeEncodeError):
                reason = f"not storable as UTF-8 text: {str(exc).strip()[:300]}"
            else:
                reason = f"rejected by the database: {exc.sqlstate} {str(exc).strip()[:300]}"
            log.error("event rejected by the database; dead-lettered", extra={"reason": reason})
            self._dead.write(Malformed(_event_raw(event), reason, "writer"))
            self._metrics.malformed.labels("writer").inc()
            result = BatchResult(dead_lettered=1)
            self.totals.merge(result)
            return result
        half = len(events) // 2
        result = await self._write_one(events[:half], lane)
        result.merge(await self._write_one(events[half:], lane))
        return result

    def _account(self, events: Sequence[ChatEvent], result: BatchResult) -> None:
        m = self._metrics
        for (channel, source), staged in result.staged.items():
            inserted = result.inserted.get((channel, source), 0)
            m.written.labels(channel, source).inc(inserted)
            m.duplicates.labels(channel, source).inc(staged - inserted)  # once per batch
        for channel, count in result.moderation_inserted.items():
            m.moderation.labels(channel).inc(count)
        for channel, count in result.gaps_recovered.items():
            m.gap_recovered.labels(channel).inc(count)
        now = datetime.now(UTC)
        oldest = min(
            (
                e.received_at
                for e in events
                if isinstance(e, ChatMessage) and e.received_at and e.source == "live"
            ),
            default=None,
        )
        if oldest is not None:
            m.ingest_delay.observe(max(0.0, (now - oldest).total_seconds()))
        m.batches.labels("written").inc()
        self.totals.merge(result)
        if self._on_written is not None:
            self._on_written(result)

    async def _to_spool(self, events: Sequence[ChatEvent], stopping: bool, lane: int = 0) -> bool:
        """Append to the spool (fsynced).  When it is full, wait for the database (this is
        the backpressure that eventually slows the sources); returns False only if stopping
        with both the database and the spool unavailable."""
        payload = encode_events(events)
        while True:
            try:
                await asyncio.to_thread(self._spool.append, payload)
                self.spooled_batches += 1
                self._metrics.batches.labels("spooled").inc()
                return True
            except SpoolFullError:
                if await self._drain(lane):
                    try:
                        await self._write(events, lane)  # accounted by _write_one
                        return True
                    except DatabaseUnavailable:
                        pass
                if stopping:
                    log.error(
                        "spool full and database down at shutdown: events lost",
                        extra={"events": len(events)},
                    )
                    return False
                log.error("spool full; waiting for the database", extra={"events": len(events)})
                await asyncio.sleep(self._retry_s)

    async def _drain(self, lane: int = 0) -> bool:
        """Replay the spool into the database, oldest first; True when it is empty.

        Uses ``lane``'s connection (the caller's own); one drain runs at a time.
        """
        async with self._drain_lock:
            return await self._drain_locked(lane)

    async def _drain_locked(self, lane: int) -> bool:
        self._last_drain_try = time.monotonic()
        while True:
            head = await asyncio.to_thread(self._spool.peek)
            if head is None:
                return True
            record_id, payload = head
            try:
                events = decode_events(payload)
            except Exception as exc:  # a record we wrote but cannot read: keep it aside
                self._dead.write(
                    Malformed(
                        payload.decode("utf-8", "replace"),
                        f"unreadable spool record: {exc}",
                        "spool",
                    )
                )
                await asyncio.to_thread(self._spool.ack, record_id)
                continue
            try:
                await self._write(events, lane)
            except DatabaseUnavailable:
                return False
            await asyncio.to_thread(self._spool.ack, record_id)
            log.info(
                "spooled batch replayed",
                extra={"events": len(events), "spool_bytes": self._spool.size_bytes},
            )

    async def _commit(self, events: list[ChatEvent], stopping: bool = False) -> None:
        for e in events:
            if isinstance(e, Malformed):
                self._dead.write(e)
        events = [e for e in events if not isinstance(e, Malformed)]
        if not events:
            return
        ordered = stopping or any(
            isinstance(e, ControlEvent) and e.kind in GAP_KINDS for e in events
        )
        if not ordered and not self._spool.pending_records and len(self._inflight) > 1:
            lane = await self._free_lane()
            self._inflight[lane] = asyncio.create_task(self._write_lane(events, lane))
            return
        # Gap bookkeeping counts what came before it, and spooled batches go first: wait for
        # the lanes, then write in order.
        await self._settle()
        if self._spool.pending_records and not await self._drain():
            await self._to_spool(events, stopping)
            return
        try:
            await self._write(events)
        except DatabaseUnavailable:
            await self._to_spool(events, stopping)

    async def _write_lane(self, events: list[ChatEvent], lane: int) -> None:
        try:
            await self._write(events, lane)
        except DatabaseUnavailable:
            # Order across lanes does not matter for rows (the unique key decides), and gap
            # markers never travel on a lane.
            await self._to_spool(events, False, lane)

    async def _free_lane(self) -> int:
        """A lane with no batch in flight, waiting for the oldest when all are busy."""
        for lane, task in enumerate(self._inflight):
            if task is None or task.done():
                if task is not None:
                    task.result()  # re-raise what a lane hit (programming errors only)
                return lane
        busy = [t for t in self._inflight if t is not None]
        await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
        return await self._free_lane()

    async def _settle(self) -> None:
        """Wait until no batch is in flight on any lane."""
        for lane, task in enumerate(self._inflight):
            if task is not None:
                self._inflight[lane] = None
                await task

    async def run(self) -> None:
        """Run until :data:`STOP` is dequeued; flushes everything before returning."""
        loop = asyncio.get_running_loop()
        batch: list[ChatEvent] = []
        deadline = 0.0
        if self._spool.pending_records:
            log.info(
                "spool holds batches from an earlier run; replaying",
                extra={"records": self._spool.pending_records},
            )
            await self._drain()
        while True:
            self._metrics.queue_depth.set(self._queue.qsize())
            timeout = self._flush_s if not batch else max(0.0, deadline - loop.time())
            if not batch and self._spool.pending_records:
                timeout = min(timeout, self._retry_s)
            stopping = False
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                item = None
            while item is not None:
                if item is self.STOP:
                    stopping = True
                    break
                if not batch:
                    deadline = loop.time() + self._flush_s
                if isinstance(item, list):
                    batch.extend(item)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    item = None
            if batch and (stopping or len(batch) >= self._batch_size or loop.time() >= deadline):
                await self._commit(batch, stopping)
                batch = []
            elif (
                not batch
                and self._spool.pending_records
                and time.monotonic() - self._last_drain_try >= self._retry_s
            ):
                await self._settle()
                await self._drain()
            if stopping:
                await self._settle()
                if self._spool.pending_records:
                    await self._drain()
                await self._drop_connection()
                return
