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
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from chatpulse.aggregates import backend_of, refresh_range
from chatpulse.db import connect
from chatpulse.errors import ChatpulseError, ConfigError
from chatpulse.settings import Settings
from collector import irc
from collector.codec import decode_events, encode_events
from collector.deadletter import DeadLetters
from collector.emotes import (
    EmoteProviders,
    default_fetch_json_factory,
    find_emoji,
    merge_emotes,
)
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.formats import MissingInputError, detect_format, read_events
from collector.metrics import CollectorMetrics
from collector.sources.base import ChatSource
from collector.spool import Spool, SpoolLockedError
from collector.writer import GAP_CLOSE, GAP_FILLED, GAP_OPEN, BatchResult, Writer

__all__ = ["Pipeline", "ReplaySummary", "open_spool", "replay_files", "run_collector"]

log = logging.getLogger(__name__)


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
    ) -> None:
        self._queue = queue
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
        if self._emotes is not None:
            for e in events:
                room = e.channel_platform_id if isinstance(e, ChatMessage) else None
                if room and room not in self._seen_rooms:
                    self._seen_rooms.add(room)
                    await self._emotes.refresh(room)
        batch = [p for e in events if (p := self._prepare(e)) is not None]
        if batch:
            await self._queue.put(batch)

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
            log.warning(
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
                self._spawn(self._fill(channel, None))
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

    # -- helpers -------------------------------------------------------------------------------
    def _enrich(self, message: ChatMessage) -> ChatMessage:
        if self._emotes is None:  # third-party sets off: emoji still count
            emoji = find_emoji(message.text) if not message.text.isascii() else ()
            if not emoji:
                return message
            return dataclasses.replace(message, emotes=merge_emotes(message.emotes, emoji))
        room = message.channel_platform_id or ""
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


def _emote_providers(settings: Settings, http: httpx.AsyncClient) -> EmoteProviders | None:
    if not settings.emote_providers:
        return None
    return EmoteProviders(
        default_fetch_json_factory(http),
        cache_dir=settings.data_dir / "emotes",
        providers=tuple(settings.emote_providers),
    )


@contextlib.contextmanager
def _writer(
    settings: Settings,
    conninfo: str,
    queue: asyncio.Queue[Any],
    metrics: CollectorMetrics,
    role: str,
) -> Iterator[Writer]:
    """A writer with its dead-letter file and spool (``role``: collect or replay)."""
    dead = DeadLetters(settings.data_dir / "dead-letters" / f"{role}.jsonl")
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
        )


def _collector_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_collector(
    settings: Settings,
    conninfo: str,
    sources: Sequence[ChatSource],
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
) -> BatchResult:
    """Run live sources until ``stop`` is set (or SIGTERM/SIGINT); returns the write totals.

    On stop the sources close, the queue is flushed to the database or the spool, then it
    returns.  A fatal source error (rejected credentials) stops everything and is raised.
    """
    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=settings.queue_size)
    with _writer(settings, conninfo, queue, metrics, "collect") as writer:
        async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
            pipeline = Pipeline(
                queue,
                metrics,
                source_name=sources[0].name if sources else "live",
                emotes=_emote_providers(settings, http),
                recent_messages_url=settings.recent_messages_url,
                http=http,
                platform=settings.platform,
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            source_tasks = [
                asyncio.create_task(s.run(pipeline, stop), name=f"source-{s.name}") for s in sources
            ]
            log.info(
                "collector running",
                extra={"channels": settings.channels, "sources": [s.name for s in sources]},
            )
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                [stopper, writer_task, *source_tasks], return_when=asyncio.FIRST_COMPLETED
            )
            stop.set()
            failure: BaseException | None = None
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


@dataclass(slots=True)
class ReplaySummary:
    """What a replay did, per run."""

    files: list[str] = field(default_factory=list)
    read: int = 0
    messages: int = 0
    inserted: int = 0
    duplicates: int = 0
    moderation: int = 0
    malformed: int = 0
    seconds: float = 0.0
    channels: set[str] = field(default_factory=set)
    #: "FILE: clock: …", one per VOD comment file: which clock placed its comments, and why.
    clocks: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


async def replay_files(
    settings: Settings,
    conninfo: str,
    files: Sequence[Path],
    *,
    fmt: str = "auto",
    channel: str | None = None,
    platform: str | None = None,
    emotes: EmoteProviders | None = None,
    registry: CollectorRegistry | None = None,
    progress: Callable[[str, int, int, int], None] | None = None,
    refresh: bool = True,
) -> ReplaySummary:
    """Load chat log files through the writer; a second run of the same files adds nothing.

    ``progress(file, bytes_read, total_bytes, events)`` is called about twice a second.
    ``emotes`` replaces the third-party emote sources the settings name (the demo serves
    bundled sets through it).
    Aggregates are refreshed for the loaded time range at the end.  Raises
    :class:`ConfigError` for a file that does not exist or whose format cannot be detected.
    """
    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    summary = ReplaySummary()
    for path in files:
        if not path.is_file():
            raise ConfigError(f"replay: no such file: {path}")
    _check_inputs(files, fmt, channel, platform)
    # Replay puts lists of about a thousand events on the queue: bound it in events.
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2, settings.queue_size // _BATCH))
    started = time.perf_counter()
    with _writer(settings, conninfo, queue, metrics, "replay") as writer:
        async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
            pipeline = Pipeline(
                queue,
                metrics,
                source_name="replay",
                emotes=emotes if emotes is not None else _emote_providers(settings, http),
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            try:
                for path in files:
                    file_fmt = detect_format(path) if fmt == "auto" else fmt
                    summary.files.append(f"{path} ({file_fmt})")
                    await _feed_file(path, file_fmt, channel, platform, pipeline, summary, progress)
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
    return summary


_BATCH = 1024


def _check_inputs(
    files: Sequence[Path], fmt: str, channel: str | None, platform: str | None
) -> None:
    """Before anything loads: a file that needs an option the user did not give (a channel)
    stops the replay with :class:`ConfigError` naming it.  Reads no more than the sniff."""
    for path in files:
        file_fmt = detect_format(path) if fmt == "auto" else fmt
        try:
            # Argument checks run when read_events is called; the file is opened only when
            # the returned iterator is, which it never is here.
            read_events(path, file_fmt, channel=channel, platform=platform)
        except MissingInputError as exc:
            raise ConfigError(f"replay: {exc}") from None


def _parse_worker(
    path: str, fmt: str, channel: str | None, platform: str | None, conn: Connection
) -> None:
    """Child process of a replay: read and parse one file, send encoded event batches.

    Messages on the pipe: ``b"E" + events`` (codec), ``b"P" + "done total"`` progress,
    ``b"K" + note`` the clock a VOD comment file was placed by, ``b"D"`` done, ``b"X" + text``
    an error that ends the file, ``b"C" + text`` the same for an option the user must give.
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
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        conn.close()


async def _feed_file(
    path: Path,
    fmt: str,
    channel: str | None,
    platform: str | None,
    pipeline: Pipeline,
    summary: ReplaySummary,
    progress: Callable[[str, int, int, int], None] | None,
) -> None:
    """Parse ``path`` in a worker process (parsing is the costliest step, and the writer and
    PostgreSQL can use the other core meanwhile) and feed its batches to the pipeline."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    worker = ctx.Process(
        target=_parse_worker,
        args=(str(path), fmt, channel, platform, child),
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
                for event in events:
                    if isinstance(event, ChatMessage):
                        summary.messages += 1
                        summary.channels.add(event.channel)
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
    finally:
        parent.close()
        await asyncio.to_thread(worker.join, 10)
        if worker.is_alive():
            worker.kill()
