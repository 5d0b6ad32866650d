"""Replay: load chat log files through the same pipeline and writer as live collection.

:func:`plan_replay` checks every file before anything is loaded; :func:`replay_files` parses
each in a worker process (:mod:`collector.parse_worker`) and feeds its batches to the
:class:`~collector.pipeline.Pipeline`; a second run of the same files adds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from chatpulse.core.aggregates import backend_of, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.errors import ConfigError
from chatpulse.core.heap import bulk_gc
from chatpulse.core.settings import Settings
from collector.emotes import EmoteProviders
from collector.events import ChatEvent, ChatMessage, Malformed, ModerationEvent
from collector.formats import (
    FormatError,
    TdJsonHead,
    detect_format,
    is_empty,
    reason_category,
    td_json_head,
    td_txt_needs_start,
    td_txt_timestamps,
    td_txt_untimed,
)
from collector.metrics import CollectorMetrics
from collector.parse_worker import BATCH, Clock, Progress, parse_in_worker
from collector.pipeline import Pipeline
from collector.wiring import (
    dead_letter_path,
    emote_providers,
    open_writer,
    room_resolver,
    stored_channel,
)

__all__ = ["FileReport", "ReplayFile", "ReplaySummary", "plan_replay", "replay_files"]

log = logging.getLogger(__name__)


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
    #: Events the database would not store (dead-lettered by the writer, the rest kept).
    rejected: int = 0
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
    ``progress(file, bytes_read, total_bytes, events)`` is called about twice a second, and
    once more when a file is read through (``events`` are the file's, read so far).
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
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(2, settings.queue_size // BATCH))
    started = time.perf_counter()
    # No emote sources and no channel id: nothing asks the network, and no HTTP client is made
    # (its TLS context and transport cost about 0.2 s of CPU a run).
    needs_http = emotes is not None or bool(settings.emote_providers) or bool(channel_id)
    with bulk_gc(), open_writer(settings, conninfo, queue, metrics, "replay") as writer:
        async with (
            httpx.AsyncClient(headers={"User-Agent": "chatpulse"})
            if needs_http
            else contextlib.nullcontext(None)
        ) as http:
            if emotes is None and http is not None:
                emotes = emote_providers(settings, http, failure_log_level=logging.DEBUG)
            resolver = (
                room_resolver(
                    settings,
                    conninfo,
                    http,
                    channel=channel,
                    channel_id=channel_id,
                    lookup=emotes is not None,
                )
                if http is not None and (emotes is not None or channel_id)
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
                        _parse_workers(settings),
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
    summary.rejected = totals.dead_lettered
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
            row = await stored_channel(conn, platform or "twitch", channel)
            if row is not None:
                await add_stream_hint(conn, row.id, at, "replay")


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


def _parse_workers(settings: Settings) -> int:
    """Parse processes per large line-format file (``replay_parse_workers``; 0: per core)."""
    return settings.replay_parse_workers or max(1, min(4, os.cpu_count() or 1))


async def _feed_file(
    item: ReplayFile,
    workers: int,
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
    """Parse ``item.path`` in worker processes (parsing is the costliest step; the writer and
    PostgreSQL use the other cores meanwhile) and feed their batches to the pipeline.  A large
    IRC or JSONL file is parsed by ``workers`` processes, one per span of its lines.

    ``record`` collects the comments of a TwitchDownloader JSON that a TXT takes its start
    from; ``skip`` drops the TXT lines that are those comments (each one once).
    """
    path = item.path
    parsed = parse_in_worker(
        path,
        item.fmt,
        channel=item.channel,
        platform=platform,
        start=item.start,
        max_message_chars=max_message_chars,
        workers=workers,
    )
    read = 0  # this file's events, for progress
    async with contextlib.aclosing(parsed):
        async for got in parsed:
            if isinstance(got, Progress):
                if progress is not None:
                    progress(str(path), got.done, got.total, read)
                continue
            if isinstance(got, Clock):
                summary.clocks.append(f"{path}: {got.note}")
                continue
            events = got
            read += len(events)
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
