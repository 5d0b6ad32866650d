"""The pipeline between chat sources and the writer queue.

:class:`Pipeline` is the :class:`~collector.sources.base.SourceListener` every source talks
to: it counts, adds third-party emotes and emoji, turns connection loss into gap records and a
reconnect into gap fill (:mod:`collector.gapfill`), and puts events on the queue the
:class:`~collector.writer.Writer` drains.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from collector import irc
from collector.emotes import EmoteProviders, find_emoji, merge_emotes
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.gapfill import GapFillPolicy, fetch_recent
from collector.metrics import CollectorMetrics
from collector.wiring import RoomResolver
from collector.writer import GAP_CLOSE, GAP_FILLED, GAP_OPEN

__all__ = ["OpenGap", "Pipeline"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class OpenGap:
    """A gap this pipeline opened: its key in ``chat.gaps`` and when it started."""

    key: str
    started_at: datetime


class Pipeline:
    """The listener between sources and the writer queue (see the module docstring)."""

    def __init__(
        self,
        queue: asyncio.Queue[Any],
        metrics: CollectorMetrics,
        *,
        source_name: str,
        emotes: EmoteProviders | None = None,
        recent_messages_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        platform: str = "twitch",
        restart_gaps_before: datetime | None = None,
        room_resolver: RoomResolver | None = None,
        malformed_log_level: int = logging.WARNING,
        gap_fill: GapFillPolicy | None = None,
    ) -> None:
        self._queue = queue
        self._gap_fill = gap_fill or GapFillPolicy()
        self._malformed_level = malformed_log_level
        # Live collection: the start of this run.  Each channel's first connection then
        # records the time the collector was not running as a gap (see on_connected).
        self._restart_before = restart_gaps_before
        self._room_resolver = room_resolver
        # (platform, channel) -> platform id found for events that carry none (None: not found)
        self._rooms: dict[tuple[str, str], str | None] = {}
        #: One line per channel whose emotes could not be loaded (the replay summary prints them).
        self.emote_warnings: list[str] = []
        self._metrics = metrics
        self._source = source_name
        self._emotes = emotes
        self._recent_url = recent_messages_url
        self._http = http
        self._platform = platform
        self._open_gaps: dict[str, OpenGap] = {}
        self._seen_rooms: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected_once: set[str] = set()
        self._received: dict[tuple[str, str], Any] = {}
        # One fill at a time per channel, in gap order, so each gap's "recovered" counts what
        # its own fill brought back.
        self._fill_locks: dict[str, asyncio.Lock] = {}
        self.received = 0
        self.malformed = 0

    # -- SourceListener ------------------------------------------------------------------------
    async def on_event(self, event: ChatEvent) -> None:
        prepared = self._prepare(event)
        if prepared is not None:
            await self._queue.put(prepared)

    async def on_events(self, events: Sequence[ChatEvent]) -> None:
        """Many events at once (replay): one queue entry for the lot, same order.

        Unlike live chat, a replay can wait: a channel's emote sets are loaded before its
        first messages are matched, so every message of the file sees them.
        """
        if self._room_resolver is not None:
            events = await self._fill_rooms(events)
        if self._emotes is not None:
            for e in events:
                if not isinstance(e, ChatMessage):
                    continue
                room = e.channel_platform_id
                if room and room not in self._seen_rooms:
                    self._seen_rooms.add(room)
                    await self._emotes.refresh(room)
                    self._warn_unloaded(e.channel, room)
        counts: Counter[tuple[str, str]] = Counter()
        batch = [p for e in events if (p := self._prepare(e, counts)) is not None]
        for key, count in counts.items():
            self._received_counter(key).inc(count)
        if batch:
            await self._queue.put(batch)

    async def _fill_rooms(self, events: Sequence[ChatEvent]) -> Sequence[ChatEvent]:
        """Give messages without a platform id (TXT exports, …) their channel's id.

        The id is resolved once per channel; the first message of each channel in the batch
        carries it (the writer stores it in ``chat.channels.platform_id``), the others are
        matched against the same emote sets in :meth:`_enrich`.
        """
        out: list[ChatEvent] | None = None
        carried: set[tuple[str, str]] = set()
        for i, e in enumerate(events):
            if not isinstance(e, ChatMessage) or e.channel_platform_id:
                continue
            key = (e.platform, e.channel)
            if key not in self._rooms:
                assert self._room_resolver is not None
                self._rooms[key] = await self._room_resolver(e.platform, e.channel)
                if self._rooms[key] is None and self._emotes is not None:
                    self._warn(
                        e.channel,
                        "its platform id is unknown (pass --channel-id, or set "
                        "twitch_client_id and twitch_oauth_token for Helix)",
                    )
            room = self._rooms[key]
            if room and key not in carried:
                carried.add(key)
                if out is None:
                    out = list(events)
                out[i] = dataclasses.replace(e, channel_platform_id=room)
        return events if out is None else out

    def _warn_unloaded(self, channel: str, room: str) -> None:
        assert self._emotes is not None
        failed = self._emotes.failures(room)
        if failed:
            self._warn(channel, failed)

    def _warn(self, channel: str, why: str) -> None:
        line = f"channel emotes of #{channel} not loaded: {why}"
        self.emote_warnings.append(line)
        # The replay summary prints the line (once); the debug log keeps it too.
        log.debug(line, extra={"channel": channel})

    def _received_counter(self, key: tuple[str, str]) -> Any:
        counter = self._received.get(key)
        if counter is None:
            counter = self._received[key] = self._metrics.received.labels(*key)
        return counter

    def _prepare(
        self, event: ChatEvent, counts: Counter[tuple[str, str]] | None = None
    ) -> ChatEvent | None:
        """The event as the queue takes it (None: not for the writer).  A message is counted
        in ``counts`` when given (the caller adds them to the metric once per batch)."""
        if isinstance(event, ChatMessage):
            self.received += 1
            key = (event.channel, event.source)
            if counts is None:
                self._received_counter(key).inc()
            else:
                counts[key] += 1
            return self._enrich(event)
        if isinstance(event, ModerationEvent):
            return event
        if isinstance(event, Malformed):
            self.malformed += 1
            self._metrics.malformed.labels(self._source).inc()
            log.log(
                self._malformed_level,
                "malformed input kept in the dead-letter file",
                extra={"reason": event.reason, "source": self._source},
            )
            return event
        return None

    async def on_connected(self, channels: Sequence[str], at: datetime) -> None:
        self._metrics.connected.labels(self._source).set(1)
        for channel in channels:
            gap = self._open_gaps.pop(channel, None)
            if gap is not None:
                await self._queue.put(
                    ControlEvent(
                        GAP_CLOSE,
                        channel,
                        {"key": gap.key, "at": at.isoformat(), "platform": self._platform},
                    )
                )
                self._spawn(self._fill(channel, gap))
            elif channel not in self._connected_once:
                # First connection of this run: bring back what was said while we were not
                # running (the unique key drops what we already have).
                self._spawn(self._fill(channel, await self._restart_gap(channel, at)))
            self._connected_once.add(channel)

    async def on_disconnected(self, channels: Sequence[str], at: datetime, reason: str) -> None:
        self._metrics.connected.labels(self._source).set(0)
        self._metrics.reconnects.labels(self._source).inc()
        for channel in channels:
            if reason == "stopped" or channel in self._open_gaps:
                # A deliberate stop is not a gap; a failed reconnect continues the open gap.
                continue
            gap = OpenGap(uuid.uuid4().hex, at)
            self._open_gaps[channel] = gap
            self._metrics.gaps.labels(channel).inc()
            log.warning(
                "connection lost: gap opened",
                extra={"channel": channel, "reason": reason, "gap": gap.key},
            )
            await self._queue.put(
                ControlEvent(
                    GAP_OPEN,
                    channel,
                    {
                        "key": gap.key,
                        "at": at.isoformat(),
                        "reason": reason,
                        "platform": self._platform,
                    },
                )
            )

    async def _restart_gap(self, channel: str, at: datetime) -> OpenGap | None:
        """Record the collector's own outage as a gap: from the channel's last message written
        before this run to ``at``, when the channel is joined again.

        The start is found by the writer when it writes the marker, after everything the
        previous run left in the spool (see ``collector.writer.batch._write_gap``); a channel with
        no message yet gets no gap row.  Returns the gap for the fill to report on.
        """
        if self._restart_before is None:
            return None
        gap = OpenGap(uuid.uuid4().hex, at)
        params = {"key": gap.key, "platform": self._platform}
        await self._queue.put(
            ControlEvent(
                GAP_OPEN,
                channel,
                {
                    **params,
                    "since": "last_message",
                    "before": self._restart_before.isoformat(),
                    "reason": "collector_restart",
                },
            )
        )
        await self._queue.put(ControlEvent(GAP_CLOSE, channel, {**params, "at": at.isoformat()}))
        return gap

    # -- helpers -------------------------------------------------------------------------------
    def _enrich(self, message: ChatMessage) -> ChatMessage:
        if self._emotes is None:  # third-party sets off: emoji still count
            emoji = find_emoji(message.text) if not message.text.isascii() else ()
            if not emoji:
                return message
            return dataclasses.replace(message, emotes=merge_emotes(message.emotes, emoji))
        room = message.channel_platform_id or ""
        if not room and self._rooms:
            room = self._rooms.get((message.platform, message.channel)) or ""
        if room and room not in self._seen_rooms:
            self._seen_rooms.add(room)
            self._spawn(self._load_emotes(room))
        found = self._emotes.current(room).match(message.text, message.emotes)
        if not found:
            return message
        return dataclasses.replace(message, emotes=merge_emotes(message.emotes, found))

    async def _load_emotes(self, room: str) -> None:
        assert self._emotes is not None
        await self._emotes.refresh(room)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, channel: str, gap: OpenGap | None) -> None:
        """Fetch the channel's recent messages and queue them as gap fill."""
        if not self._recent_url or self._http is None:
            return
        async with self._fill_locks.setdefault(channel, asyncio.Lock()):
            await self._fill_locked(channel, gap)

    async def _fill_locked(self, channel: str, gap: OpenGap | None) -> None:
        assert self._recent_url is not None and self._http is not None
        url = self._recent_url.format(channel=channel)
        lines = await fetch_recent(self._http, url, self._gap_fill, channel=channel)
        if lines is None:
            return
        now = datetime.now(UTC)
        count = 0
        for line in lines:
            event = irc.parse_event(
                line, received_at=now, source="gapfill", platform=self._platform
            )
            if isinstance(event, (ChatMessage, ModerationEvent)):
                count += 1
                await self.on_event(event)
        # The marker follows the fill's events through the queue, so when the writer meets it
        # every one of them has been written (or spooled, in the same order).
        await self._queue.put(
            ControlEvent(
                GAP_FILLED, channel, {"key": gap.key if gap else "", "platform": self._platform}
            )
        )
        log.info(
            "gap fill queued",
            extra={"channel": channel, "events": count, "gap": gap.key if gap else None},
        )

    async def wait_tasks(self, within_s: float = 15) -> None:
        """Wait for gap fills and emote loads still running (at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=within_s)
