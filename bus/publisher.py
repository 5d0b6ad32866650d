"""The collector's sink for ``--sink nats``: events from the pipeline queue to the stream.

It drains the same queue the :class:`collector.writer.Writer` drains in single-process mode and
publishes each event as one stream message on ``chat.<platform>.<channel>`` with its unique key
as ``Nats-Msg-Id``, so a publish repeated after a lost acknowledgement, or the same message
from two collectors within the stream's duplicate window, is stored once (and the database's
unique key catches what the window misses).

Gap bookkeeping must not depend on which writer gets which message, so it travels
self-contained: a ``gap_close`` message also carries its ``gap_open`` (inserting a gap is
idempotent), and a gap fill (the recent messages fetched after a reconnect or a takeover) is
one stream message holding the gap's markers, every filled event and the ``gap_filled`` marker,
which one writer writes in one transaction, so the gap's ``recovered`` count is exact.

A batch is retried until the server acknowledges every message of it; meanwhile the queue
fills and the sources wait (back-pressure), nothing is dropped.  Malformed input goes to the
collector's own dead-letter file, as in single-process mode.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bus.common import msg_id, subject_for
from bus.metrics import BusMetrics
from collector.codec import encode_events
from collector.deadletter import DeadLetters
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.writer import GAP_CLOSE, GAP_FILLED, GAP_OPEN

if TYPE_CHECKING:
    from nats.js import JetStreamContext

__all__ = ["BusPublisher", "Outgoing"]

log = logging.getLogger(__name__)

#: Most events one gap-fill stream message carries (recent-messages answers hold up to 800);
#: beyond it the fill is published as plain messages and the marker counts what it sees.
_MAX_BUNDLE = 2_000


@dataclass(slots=True)
class Outgoing:
    """One stream message to publish."""

    subject: str
    msg_id: str
    payload: bytes
    channel: str


class BusPublisher:
    """Drain ``queue`` (events, lists of events, :data:`STOP`) into the JetStream stream."""

    STOP: Final = object()

    def __init__(
        self,
        js: JetStreamContext,
        queue: asyncio.Queue[Any],
        *,
        dead_letters: DeadLetters,
        metrics: BusMetrics,
        platform: str,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        ack_timeout_s: float = 5.0,
        retry_s: float = 0.5,
    ) -> None:
        self._js = js
        self._queue = queue
        self._dead = dead_letters
        self._metrics = metrics
        self._platform = platform
        self._batch_size = batch_size
        self._flush_s = flush_interval_s
        self._ack_timeout_s = ack_timeout_s
        self._retry_s = retry_s
        self._open: dict[str, ControlEvent] = {}
        self._close: dict[str, ControlEvent] = {}
        self._fills: dict[str, list[ChatEvent]] = {}
        self.published = 0
        self.duplicates = 0

    async def stop(self) -> None:
        await self._queue.put(self.STOP)

    # -- turning events into stream messages ---------------------------------------------------
    def _out(
        self, events: Sequence[ChatEvent], ident: str, channel: str, platform: str
    ) -> Outgoing:
        return Outgoing(subject_for(platform, channel), ident, encode_events(events), channel)

    def _platform_of(self, event: ControlEvent) -> str:
        return str(event.params.get("platform") or self._platform)

    def prepare(self, events: Sequence[ChatEvent]) -> list[Outgoing]:
        """The stream messages for ``events`` (in order); gap fills are held until their marker."""
        out: list[Outgoing] = []
        for ev in events:
            if isinstance(ev, ChatMessage | ModerationEvent):
                if ev.source == "gapfill":
                    self._fills.setdefault(ev.channel, []).append(ev)
                    continue
                ident = msg_id(ev)
                assert ident is not None
                out.append(self._out([ev], ident, ev.channel, ev.platform))
            elif isinstance(ev, Malformed):
                self._dead.write(ev)
            elif isinstance(ev, ControlEvent):
                out.extend(self._control(ev))
        return out

    def _control(self, ev: ControlEvent) -> list[Outgoing]:
        channel = ev.channel or ""
        key = str(ev.params.get("key") or "")
        platform = self._platform_of(ev)
        if ev.kind == GAP_OPEN and key:
            self._open[key] = ev
            return [self._out([ev], f"g:{GAP_OPEN}:{key}", channel, platform)]
        if ev.kind == GAP_CLOSE and key:
            self._close[key] = ev
            carried = [e for e in (self._open.get(key), ev) if e is not None]
            return [self._out(carried, f"g:{GAP_CLOSE}:{key}", channel, platform)]
        if ev.kind == GAP_FILLED:
            filled = self._fills.pop(channel, [])
            markers = [e for e in (self._open.pop(key, None), self._close.pop(key, None)) if e]
            if len(filled) > _MAX_BUNDLE:
                plain = [
                    self._out([e], msg_id(e) or uuid.uuid4().hex, channel, platform) for e in filled
                ]
                filled = []
            else:
                plain = []
            ident = f"f:{key}" if key else f"f:{uuid.uuid4().hex}"
            return [*plain, self._out([*markers, *filled, ev], ident, channel, platform)]
        return []

    def _leftover_fills(self) -> list[Outgoing]:
        """At shutdown: fills whose marker never came, as plain messages."""
        out = []
        for channel, events in self._fills.items():
            for e in events:
                out.append(self._out([e], msg_id(e) or uuid.uuid4().hex, channel, self._platform))
        self._fills.clear()
        return out

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, batch: list[Outgoing], *, give_up_after_s: float | None = None) -> bool:
        """Publish ``batch`` until every message is acknowledged; False only when giving up."""
        loop = asyncio.get_running_loop()
        deadline = None if give_up_after_s is None else loop.time() + give_up_after_s
        todo = batch
        while todo:
            futures: list[asyncio.Future[Any]] = []
            sent: list[Outgoing] = []
            try:
                for o in todo:
                    futures.append(
                        await self._js.publish_async(
                            o.subject, o.payload, headers={"Nats-Msg-Id": o.msg_id}
                        )
                    )
                    sent.append(o)
            except Exception as exc:
                log.warning("publish failed; retrying", extra={"error": repr(exc)})
            if futures:
                await asyncio.wait(futures, timeout=self._ack_timeout_s)
            failed = todo[len(sent) :]
            for o, fut in zip(sent, futures, strict=True):
                if not fut.done():
                    fut.cancel()
                    failed.append(o)
                elif fut.cancelled() or fut.exception() is not None:
                    failed.append(o)
                else:
                    self._metrics.published.labels(o.channel).inc()
                    self.published += 1
                    if getattr(fut.result(), "duplicate", False):
                        self.duplicates += 1
                        self._metrics.publish_duplicates.inc()
            self._metrics.up.set(0 if failed else 1)
            if failed:
                self._metrics.publish_retries.inc()
                if deadline is not None and loop.time() >= deadline:
                    log.error(
                        "NATS unreachable at shutdown: events not published",
                        extra={"events": len(failed)},
                    )
                    return False
                await asyncio.sleep(self._retry_s)
            todo = failed
        return True

    async def run(self) -> None:
        """Run until :data:`STOP` is dequeued; everything before it is published first."""
        loop = asyncio.get_running_loop()
        while True:
            batch: list[Outgoing] = []
            stopping = False
            item = await self._queue.get()
            deadline = loop.time() + self._flush_s
            while True:
                if item is self.STOP:
                    stopping = True
                    break
                batch.extend(self.prepare(item if isinstance(item, list) else [item]))
                if len(batch) >= self._batch_size:
                    break
                try:
                    item = await asyncio.wait_for(
                        self._queue.get(), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    break
            if stopping:
                batch.extend(self._leftover_fills())
            if batch:
                await self.publish(batch, give_up_after_s=30.0 if stopping else None)
            if stopping:
                return
