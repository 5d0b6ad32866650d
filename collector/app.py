"""The collector application: sources → enrichment → bounded queue → writer.

:class:`Pipeline` is the :class:`~collector.sources.base.SourceListener` every source talks
to: it counts, adds third-party emotes and emoji, turns connection loss into gap records and a
reconnect into gap fill, and puts events on the queue the :class:`~collector.writer.Writer`
drains.  :func:`run_collector` runs live sources until a signal; :func:`replay_files` loads
chat log files through the same writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from chatpulse.core.aggregates import backend_of, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.errors import ChatpulseError, ConfigError
from chatpulse.core.settings import Settings
from collector import irc
from collector.codec import decode_events, encode_events
from collector.deadletter import DeadLetters
from collector.emotes import (
    EmoteProviders,
    EmoteUrls,
    default_fetch_json_factory,
    find_emoji,
    merge_emotes,
    resolve_channel_id,
)
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.formats import (
    FormatError,
    MissingInputError,
    TdJsonHead,
    detect_format,
    is_empty,
    read_events,
    reason_category,
    td_json_head,
    td_txt_needs_start,
    td_txt_timestamps,
    td_txt_untimed,
)
from collector.metrics import CollectorMetrics
from collector.sources.base import ChatSource
from collector.spool import Spool, SpoolLockedError
from collector.writer import GAP_CLOSE, GAP_FILLED, GAP_OPEN, BatchResult, Writer

__all__ = [
    "FileReport",
    "Pipeline",
    "ReplayFile",
    "ReplaySummary",
    "RoomResolver",
    "open_spool",
    "plan_replay",
    "replay_files",
    "room_resolver",
    "run_collector",
]

log = logging.getLogger(__name__)

#: ``await resolver(platform, channel)``: the channel's platform id, or None when unknown.
RoomResolver = Callable[[str, str], Awaitable[str | None]]


@contextlib.contextmanager
def open_spool(settings: Settings, role: str) -> Iterator[Spool]:
    """Open ``DATA_DIR/spool/<role>`` (the spool locks it: one process at a time)."""
    directory = settings.data_dir / "spool" / role
    try:
        spool = Spool(directory, max_bytes=settings.spool_max_bytes)
    except SpoolLockedError:
        raise ChatpulseError(
            f"another chatpulse process uses the spool {directory}; give this one its own "
            "CHATPULSE_DATA_DIR"
        ) from None
    try:
        yield spool
    finally:
        spool.close()


@dataclass(slots=True)
class _OpenGap:
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
    ) -> None:
        self._queue = queue
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
        self._open_gaps: dict[str, _OpenGap] = {}
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
        batch = [p for e in events if (p := self._prepare(e)) is not None]
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

    def _prepare(self, event: ChatEvent) -> ChatEvent | None:
        if isinstance(event, ChatMessage):
            self.received += 1
            key = (event.channel, event.source)
            counter = self._received.get(key)
            if counter is None:
                counter = self._received[key] = self._metrics.received.labels(*key)
            counter.inc()
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
            gap = _OpenGap(uuid.uuid4().hex, at)
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

    async def _restart_gap(self, channel: str, at: datetime) -> _OpenGap | None:
        """Record the collector's own outage as a gap: from the channel's last message written
        before this run to ``at``, when the channel is joined again.

        The start is found by the writer when it writes the marker, after everything the
        previous run left in the spool (see ``collector.writer._write_gap``); a channel with
        no message yet gets no gap row.  Returns the gap for the fill to report on.
        """
        if self._restart_before is None:
            return None
        gap = _OpenGap(uuid.uuid4().hex, at)
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

    async def _fill(self, channel: str, gap: _OpenGap | None) -> None:
        """Fetch the channel's recent messages and queue them as gap fill."""
        if not self._recent_url or self._http is None:
            return
        async with self._fill_locks.setdefault(channel, asyncio.Lock()):
            await self._fill_locked(channel, gap)

    async def _fill_locked(self, channel: str, gap: _OpenGap | None) -> None:
        assert self._recent_url is not None and self._http is not None
        url = self._recent_url.format(channel=channel)
        lines: list[str] = []
        for attempt in range(3):
            try:
                resp = await self._http.get(url, timeout=10)
                lines = irc.parse_recent_messages(resp.text)
                break
            except (httpx.HTTPError, irc.IrcParseError) as exc:
                log.warning(
                    "gap fill failed",
                    extra={"channel": channel, "attempt": attempt + 1, "error": str(exc)},
                )
                await asyncio.sleep(2**attempt)
        else:
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


def _emote_providers(
    settings: Settings, http: httpx.AsyncClient, *, failure_log_level: int = logging.WARNING
) -> EmoteProviders | None:
    if not settings.emote_providers:
        return None
    return EmoteProviders(
        default_fetch_json_factory(http),
        cache_dir=settings.data_dir / "emotes",
        providers=tuple(settings.emote_providers),
        urls=EmoteUrls(settings.bttv_api_url, settings.ffz_api_url, settings.seventv_api_url),
        failure_log_level=failure_log_level,
    )


def room_resolver(
    settings: Settings,
    conninfo: str,
    http: httpx.AsyncClient,
    *,
    channel: str | None = None,
    channel_id: str | None = None,
    lookup: bool = True,
) -> RoomResolver:
    """Find a channel's platform id when its events carry none.

    In order: ``channel_id`` (``--channel-id``; for ``channel``, or any channel when None), the
    id already stored in ``chat.channels.platform_id``, then for Twitch Helix (when
    ``twitch_client_id`` and ``twitch_oauth_token`` are set) and IVR by login (not without
    ``lookup``: nothing is asked over the network).
    """
    wanted = channel.lstrip("#").lower() if channel else None

    async def resolve(platform: str, name: str) -> str | None:
        if channel_id and (wanted is None or wanted == name):
            return channel_id
        try:
            async with await connect(conninfo, autocommit=True) as conn:
                cur = await conn.execute(
                    "SELECT platform_id FROM chat.channels WHERE platform = %s AND name = %s",
                    (platform, name),
                )
                row = await cur.fetchone()
            if row is not None and row[0]:
                return str(row[0])
        except Exception as exc:  # database down: the providers may still know
            log.debug("stored channel id not readable", extra={"error": repr(exc)})
        if platform != "twitch" or not lookup:
            return None
        token = settings.twitch_oauth_token
        found = await resolve_channel_id(
            http,
            name,
            helix_url=settings.helix_api_url,
            client_id=settings.twitch_client_id,
            token=token.get_secret_value() if token else None,
            ivr_url=settings.ivr_api_url,
        )
        if found.channel_id is None:
            log.debug("channel id not found", extra={"channel": name, "errors": found.errors})
        else:
            log.info(
                "channel id found",
                extra={"channel": name, "channel_id": found.channel_id, "via": found.source},
            )
        return found.channel_id

    return resolve


@contextlib.contextmanager
def _writer(
    settings: Settings,
    conninfo: str,
    queue: asyncio.Queue[Any],
    metrics: CollectorMetrics,
    role: str,
    ready: asyncio.Event | None = None,
) -> Iterator[Writer]:
    """A writer with its dead-letter file and spool (``role``: collect or replay)."""
    dead = DeadLetters(dead_letter_path(settings, role))
    with dead, open_spool(settings, role) as spool:
        yield Writer(
            conninfo,
            queue,
            spool=spool,
            dead_letters=dead,
            metrics=metrics,
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_s,
            collector_id=_collector_id(),
            lanes=settings.writer_lanes,
            ready=ready,
        )


async def _prepare(prepare: Callable[[], Awaitable[object]], ready: asyncio.Event) -> None:
    await prepare()
    ready.set()


def dead_letter_path(settings: Settings, role: str) -> Path:
    """The dead-letter file of ``role`` (collect or replay)."""
    return settings.data_dir / "dead-letters" / f"{role}.jsonl"


def _collector_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_collector(
    settings: Settings,
    conninfo: str,
    sources: Sequence[ChatSource],
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    prepare: Callable[[], Awaitable[object]] | None = None,
) -> BatchResult:
    """Run live sources until ``stop`` is set; returns the write totals.

    On stop the sources close, the queue is flushed to the database or the spool, then it
    returns.  A fatal source error (rejected credentials) stops everything and is raised.

    ``prepare`` (the schema check, which waits for the database) runs beside collection:
    until it returns, everything collected goes to the spool; if it raises, the collector
    stops and raises that.  Each channel's first join records the time the collector was not
    running as a ``collector_restart`` gap, which gap fill then covers.
    """
    started = datetime.now(UTC)
    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    stop = stop or asyncio.Event()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=settings.queue_size)
    ready = asyncio.Event() if prepare is not None else None
    with _writer(settings, conninfo, queue, metrics, "collect", ready) as writer:
        async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
            pipeline = Pipeline(
                queue,
                metrics,
                source_name=sources[0].name if sources else "live",
                emotes=_emote_providers(settings, http),
                recent_messages_url=settings.recent_messages_url,
                http=http,
                platform=settings.platform,
                restart_gaps_before=started,
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            source_tasks = [
                asyncio.create_task(s.run(pipeline, stop), name=f"source-{s.name}") for s in sources
            ]
            prepare_task = (
                asyncio.create_task(_prepare(prepare, ready), name="schema")
                if prepare is not None and ready is not None
                else None
            )
            log.info(
                "collector running",
                extra={"channels": settings.channels, "sources": [s.name for s in sources]},
            )
            stopper = asyncio.create_task(stop.wait())
            watched = {stopper, writer_task, *source_tasks}
            if prepare_task is not None:
                watched.add(prepare_task)
            while True:
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if (
                    prepare_task is not None
                    and done == {prepare_task}
                    and not prepare_task.exception()
                ):
                    watched.discard(prepare_task)  # schema ready: collection goes on
                    continue
                break
            stop.set()
            failure: BaseException | None = None
            if prepare_task is not None:
                if not prepare_task.done():
                    prepare_task.cancel()
                await asyncio.wait([prepare_task])
                if not prepare_task.cancelled() and prepare_task.exception() is not None:
                    failure = prepare_task.exception()
            for task in source_tasks:
                try:
                    await asyncio.wait_for(task, timeout=10)
                except Exception as exc:
                    failure = failure or exc
            await pipeline.wait_tasks()
            if not writer_task.done():
                await writer.stop()
                await writer_task
            elif writer_task.exception() is not None:
                failure = failure or writer_task.exception()
            stopper.cancel()
    log.info(
        "collector stopped",
        extra={
            "written": writer.totals.written,
            "duplicates": writer.totals.duplicates,
            "spooled_batches": writer.spooled_batches,
        },
    )
    if failure is not None:
        raise failure
    return writer.totals


@dataclass(frozen=True, slots=True)
class ReplayFile:
    """One file of a replay, checked: its format, channel and start (see :func:`plan_replay`).

    ``note`` says where the times come from when the file alone does not say it.
    """

    path: Path
    fmt: str
    channel: str | None
    start: datetime | None = None
    note: str = ""
    #: The TwitchDownloader JSON whose start this TXT takes; loaded first, and the TXT lines
    #: that are its comments (same second into the VOD, name and text) are not stored twice.
    anchor: Path | None = None


@dataclass(slots=True)
class FileReport:
    """What one file of a replay held (counted as it was read, before the database)."""

    path: str
    fmt: str
    note: str = ""
    messages: int = 0
    moderation: int = 0
    malformed: int = 0
    #: Lines of a TXT that are comments of the JSON it took its start from (not stored again).
    in_anchor: int = 0
    #: Malformed lines by :func:`~collector.formats.reason_category`.
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def nothing_loaded(self) -> bool:
        """Every line of the file was malformed: the file loaded nothing."""
        return (
            self.malformed > 0
            and self.messages == 0
            and self.moderation == 0
            and not self.in_anchor
        )


@dataclass(slots=True)
class ReplaySummary:
    """What a replay did, per run (and per file in ``per_file``)."""

    files: list[str] = field(default_factory=list)
    read: int = 0
    messages: int = 0
    inserted: int = 0
    duplicates: int = 0
    moderation: int = 0
    malformed: int = 0
    seconds: float = 0.0
    channels: set[str] = field(default_factory=set)
    #: Emote uses (sum of counts) added to messages that were already stored.
    emote_uses_backfilled: int = 0
    #: One line per channel whose third-party emotes could not be loaded.
    emote_warnings: list[str] = field(default_factory=list)
    per_file: list[FileReport] = field(default_factory=list)
    #: Where malformed lines were kept.
    dead_letters: Path | None = None
    #: "FILE: clock: …", one per VOD comment file: which clock placed its comments, and why.
    clocks: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def plan_replay(
    files: Sequence[Path],
    *,
    fmt: str = "auto",
    channel: str | None = None,
    start: datetime | None = None,
) -> list[ReplayFile]:
    """Check every file of a replay before anything is loaded; return what to load.

    Reads only the head of each file.  A relative-stamped TwitchDownloader TXT takes ``start``,
    else the ``video.created_at`` of a TwitchDownloader JSON given in the same call (the only
    one, or the one whose name matches), which also names its channel when ``channel`` is not
    given.  Raises :class:`ConfigError` (one line naming the file and the option to use) for a
    missing, unreadable, empty or unrecognised file, a file that needs ``--channel`` or
    ``--start``, and a TXT without timestamps.
    """
    if start is not None and start.utcoffset() is None:
        raise ConfigError("--start: give a time zone (e.g. 2024-01-06T16:00:00Z)")
    resolved: list[tuple[Path, str]] = []
    for path in files:
        if not path.is_file():
            raise ConfigError(f"replay: no such file: {path}")
        try:
            if is_empty(path):
                raise ConfigError(f"replay: {path}: the file is empty: there is nothing to replay")
            resolved.append((path, detect_format(path) if fmt == "auto" else fmt))
        except FormatError as exc:
            raise ConfigError(f"replay: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"replay: {path}: cannot read it: {exc.strerror or exc}") from None
    heads: list[tuple[Path, TdJsonHead]] = []
    for path, file_fmt in resolved:
        if file_fmt == "twitchdownloader":
            with contextlib.suppress(FormatError, OSError):
                heads.append((path, td_json_head(path)))
    plan: list[ReplayFile] = []
    for path, file_fmt in resolved:
        file_channel, file_start, note = channel, start, ""
        anchor: Path | None = None
        if file_fmt == "twitchdownloader-txt":
            stamps = td_txt_timestamps(path)
            if stamps == "none":
                raise ConfigError(f"replay: {td_txt_untimed(path)}")
            if stamps == "relative" and start is not None:
                note = f"relative stamps counted from --start {_iso(start)}"
            elif stamps == "relative":
                found = _anchor_for(path, heads)
                if found is None:
                    raise ConfigError(f"replay: {td_txt_needs_start(path)}")
                json_path, head = found
                anchor = json_path
                file_start = head.offset_origin
                file_channel = channel or head.channel
                note = (
                    f"relative stamps counted from video.created_at {_iso(file_start)} "
                    f"of {json_path.name}"
                )
        if (
            file_fmt in ("twitchdownloader-txt", "chat-downloader", "twitch-gql")
            and not file_channel
        ):
            raise ConfigError(f"replay: {path}: {file_fmt} files name no channel; pass --channel")
        plan.append(ReplayFile(path, file_fmt, file_channel, file_start, note, anchor))
    # A TXT goes after the JSON it takes its start from (see ReplayFile.anchor).
    return sorted(plan, key=lambda item: item.anchor is not None)


def _iso(when: datetime | None) -> str:
    return "?" if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _anchor_for(
    txt: Path, heads: Sequence[tuple[Path, TdJsonHead]]
) -> tuple[Path, TdJsonHead] | None:
    """The TwitchDownloader JSON of the same VOD as ``txt``: the only one that gives a start,
    or among several the one whose name (before the first dot) is the TXT's."""
    usable = [(p, h) for p, h in heads if h.offset_origin is not None]
    if len(usable) == 1:
        return usable[0]
    stem = txt.name.split(".", 1)[0]
    same = [(p, h) for p, h in usable if p.name.split(".", 1)[0] == stem]
    return same[0] if len(same) == 1 else None


async def replay_files(
    settings: Settings,
    conninfo: str,
    files: Sequence[Path],
    *,
    fmt: str = "auto",
    channel: str | None = None,
    platform: str | None = None,
    start: datetime | None = None,
    emotes: EmoteProviders | None = None,
    registry: CollectorRegistry | None = None,
    progress: Callable[[str, int, int, int], None] | None = None,
    refresh: bool = True,
    channel_id: str | None = None,
) -> ReplaySummary:
    """Load chat log files through the writer; a second run of the same files adds nothing.

    Every file is checked first (:func:`plan_replay`, which raises :class:`ConfigError`), so
    a bad file stops the replay before anything is loaded.  ``start`` anchors relative
    TwitchDownloader TXT stamps.  Malformed lines go to the dead-letter file and the debug
    log; ``summary.per_file`` counts them by reason.
    ``progress(file, bytes_read, total_bytes, events)`` is called about twice a second.
    ``emotes`` replaces the third-party emote sources the settings name (the demo serves
    bundled sets through it).  ``channel_id`` is the platform id of ``channel`` (of every
    channel when ``channel`` is None) for files that do not carry it; without it the id is
    looked up (see :func:`room_resolver`) so that the channel's emote sets can be loaded.
    Aggregates are refreshed for the loaded time range at the end.  Raises
    :class:`ConfigError` for a file that does not exist or whose format cannot be detected.
    """
    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    summary = ReplaySummary(dead_letters=dead_letter_path(settings, "replay"))
    plan = plan_replay(files, fmt=fmt, channel=channel, start=start)
    # Replay puts lists of about a thousand events on the queue: bound it in events.
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2, settings.queue_size // _BATCH))
    started = time.perf_counter()
    with _writer(settings, conninfo, queue, metrics, "replay") as writer:
        async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
            if emotes is None:
                emotes = _emote_providers(settings, http, failure_log_level=logging.DEBUG)
            resolver = (
                room_resolver(
                    settings,
                    conninfo,
                    http,
                    channel=channel,
                    channel_id=channel_id,
                    lookup=emotes is not None,
                )
                if emotes is not None or channel_id
                else None
            )
            pipeline = Pipeline(
                queue,
                metrics,
                source_name="replay",
                emotes=emotes,
                room_resolver=resolver,
                malformed_log_level=logging.DEBUG,
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            anchors = {item.anchor: Counter[_CommentKey]() for item in plan if item.anchor}
            try:
                for item in plan:
                    summary.files.append(f"{item.path} ({item.fmt})")
                    report = FileReport(str(item.path), item.fmt, item.note)
                    summary.per_file.append(report)
                    await _feed_file(
                        item,
                        platform,
                        settings.max_message_chars or None,
                        pipeline,
                        summary,
                        report,
                        progress,
                        record=anchors.get(item.path),
                        skip=anchors.get(item.anchor) if item.anchor else None,
                    )
                    if writer_task.done():
                        break
            finally:
                await pipeline.wait_tasks(within_s=5)
                if not writer_task.done():
                    await writer.stop()
                await writer_task
        left_in_spool = writer.spool_pending
    totals = writer.totals
    summary.inserted = totals.written
    summary.duplicates = totals.messages - totals.written
    summary.moderation = sum(totals.moderation_inserted.values())
    summary.malformed = pipeline.malformed
    summary.emote_uses_backfilled = totals.emote_uses_backfilled
    summary.emote_warnings = list(pipeline.emote_warnings)
    summary.seconds = time.perf_counter() - started
    if left_in_spool:
        log.warning(
            "database unreachable: replayed rows wait in the spool; run replay again "
            "or any collector with this data dir to write them"
        )
    elif refresh and totals.min_sent_at is not None:
        async with await connect(conninfo, autocommit=True) as conn:
            if await backend_of(conn) == "timescaledb":
                await refresh_range(conn, totals.min_sent_at, totals.max_sent_at)
            else:
                await refresh_range(conn, None, None)
    if not left_in_spool:
        await _record_stream_starts(conninfo, plan, platform)
    return summary


async def _record_stream_starts(
    conninfo: str, plan: Sequence[ReplayFile], platform: str | None
) -> None:
    """A replay's start (``--start``, a TwitchDownloader JSON's ``video.created_at``) marks a
    stream start for ``chatpulse analyze`` (chat.stream_hints)."""
    from chatpulse.core.hints import add_stream_hint

    starts: list[tuple[str, datetime]] = []
    for item in plan:
        at, channel = item.start, item.channel
        if item.fmt == "twitchdownloader":
            with contextlib.suppress(FormatError, OSError):
                head = td_json_head(item.path)
                at = at or head.offset_origin
                channel = channel or head.channel
        if at is not None and channel:
            starts.append((channel, at))
    if not starts:
        return
    async with await connect(conninfo, autocommit=True) as conn:
        for channel, at in starts:
            cur = await conn.execute(
                "SELECT id FROM chat.channels WHERE name = %s AND platform = %s",
                (channel, platform or "twitch"),
            )
            row = await cur.fetchone()
            if row is not None:
                await add_stream_hint(conn, row[0], at, "replay")


_BATCH = 1024

# (whole seconds into the VOD, display name, text): how a TwitchDownloader TXT line and the
# same comment in a JSON of the VOD meet (the TXT stamp is the comment's offset, cut to seconds).
_CommentKey = tuple[int, str, str]


def _record_comments(events: Sequence[ChatEvent], into: Counter[_CommentKey]) -> None:
    for event in events:
        if isinstance(event, ChatMessage):
            offset = event.extra.get("content_offset_seconds")
            with contextlib.suppress(ValueError, TypeError):
                into[(int(float(offset or "")), event.user_name or "", event.text)] += 1


def _drop_known(
    events: list[ChatEvent], known: Counter[_CommentKey], start: datetime, report: FileReport
) -> list[ChatEvent]:
    kept: list[ChatEvent] = []
    for event in events:
        if isinstance(event, ChatMessage):
            offset = int((event.sent_at - start).total_seconds())
            key = (offset, event.user_name or "", event.text)
            if known[key] > 0:
                known[key] -= 1
                report.in_anchor += 1
                continue
        kept.append(event)
    return kept


def _parse_worker(
    path: str,
    fmt: str,
    channel: str | None,
    platform: str | None,
    start: str | None,
    max_message_chars: int | None,
    conn: Connection,
) -> None:
    """Child process of a replay: read and parse one file, send encoded event batches.

    Messages on the pipe: ``b"E" + events`` (codec), ``b"P" + "done total"`` progress,
    ``b"K" + note`` the clock a VOD comment file was placed by, ``b"D"`` done, ``b"X" + text``
    an error that ends the file, ``b"C" + text`` the same for an option the user must give,
    ``b"F" + text`` the same for a file that is not the format named.
    """
    last = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            conn.send_bytes(b"P" + f"{done} {total}".encode())

    try:
        batch: list[ChatEvent] = []
        for event in read_events(
            Path(path),
            fmt,
            channel=channel,
            platform=platform,
            on_progress=on_progress,
            start=None if start is None else datetime.fromisoformat(start),
            max_message_chars=max_message_chars,
            on_clock=lambda note: conn.send_bytes(b"K" + note.encode()),
        ):
            batch.append(event)
            if len(batch) >= _BATCH:
                conn.send_bytes(b"E" + encode_events(batch))
                batch = []
        if batch:
            conn.send_bytes(b"E" + encode_events(batch))
        conn.send_bytes(b"D")
    except MissingInputError as exc:
        conn.send_bytes(b"C" + str(exc).encode())
    except FormatError as exc:
        conn.send_bytes(b"F" + str(exc).encode())
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        conn.close()


async def _feed_file(
    item: ReplayFile,
    platform: str | None,
    max_message_chars: int | None,
    pipeline: Pipeline,
    summary: ReplaySummary,
    report: FileReport,
    progress: Callable[[str, int, int, int], None] | None,
    *,
    record: Counter[_CommentKey] | None = None,
    skip: Counter[_CommentKey] | None = None,
) -> None:
    """Parse ``item.path`` in a worker process (parsing is the costliest step, and the writer
    and PostgreSQL can use the other core meanwhile) and feed its batches to the pipeline.

    ``record`` collects the comments of a TwitchDownloader JSON that a TXT takes its start
    from; ``skip`` drops the TXT lines that are those comments (each one once).
    """
    path = item.path
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    worker = ctx.Process(
        target=_parse_worker,
        args=(
            str(path),
            item.fmt,
            item.channel,
            platform,
            None if item.start is None else item.start.isoformat(),
            max_message_chars,
            child,
        ),
        name="chatpulse-parse",
        daemon=True,
    )
    worker.start()
    child.close()
    try:
        while True:
            try:
                data = await asyncio.to_thread(parent.recv_bytes)
            except EOFError:
                raise ChatpulseError(f"replay: the parser of {path} died") from None
            tag, body = data[:1], data[1:]
            if tag == b"E":
                events = decode_events(body)
                summary.read += len(events)
                if record is not None:
                    _record_comments(events, record)
                if skip is not None and item.start is not None:
                    events = _drop_known(events, skip, item.start, report)
                for event in events:
                    if isinstance(event, ChatMessage):
                        summary.messages += 1
                        report.messages += 1
                        summary.channels.add(event.channel)
                    elif isinstance(event, ModerationEvent):
                        report.moderation += 1
                    elif isinstance(event, Malformed):
                        report.malformed += 1
                        report.reasons[reason_category(event.reason)] += 1
                await pipeline.on_events(events)
            elif tag == b"P" and progress is not None:
                done, total = (int(x) for x in body.split())
                progress(str(path), done, total, summary.read)
            elif tag == b"K":
                summary.clocks.append(f"{path}: {body.decode(errors='replace')}")
            elif tag == b"D":
                break
            elif tag == b"C":
                raise ConfigError(f"replay: {body.decode(errors='replace')}")
            elif tag == b"X":
                raise ChatpulseError(f"replay: {path}: {body.decode(errors='replace')}")
            elif tag == b"F":
                raise ConfigError(f"replay: {body.decode(errors='replace')}")
    finally:
        parent.close()
        await asyncio.to_thread(worker.join, 10)
        if worker.is_alive():
            worker.kill()
