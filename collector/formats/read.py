"""Reading a chat log: :func:`read_events` picks the reader for a format and streams events."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from collector.events import (
    ChatEvent,
    ChatMessage,
    Malformed,
)
from collector.formats.chat_downloader import _read_chat_downloader
from collector.formats.common import (
    DEFAULT_CHUNK_SIZE,
    FORMATS,
    FormatError,
    MissingInputError,
    Progress,
    _norm_channel,
)
from collector.formats.detect import detect_format, td_txt_timestamps
from collector.formats.gql import read_gql
from collector.formats.irc import _read_irc
from collector.formats.jsonl import _read_jsonl
from collector.formats.stream import ChatLog, Span, _log_name, _read_chunks, lines_before
from collector.formats.td_json import _read_td_json
from collector.formats.td_txt import _read_td_txt
from collector.formats.writer import write_jsonl

# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

#: Formats of one event per line, whose files can be read in parts (``read_events(span=…)``).
SPAN_FORMATS = ("irc", "jsonl")


def read_events(
    log: ChatLog,
    fmt: str,
    *,
    name: str | None = None,
    channel: str | None = None,
    platform: str | None = None,
    on_progress: Progress | None = None,
    start: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_message_chars: int | None = None,
    on_clock: Callable[[str], None] | None = None,
    span: Span | None = None,
) -> Iterator[ChatEvent]:
    """Stream the events of one chat log file, in file order.

    ``log`` is the file's path, or its whole content as bytes (plain or gzip): the same reader
    either way, so callers that hold the data (tests) parse it without a file.  ``name`` is what
    errors and :class:`Malformed` name the log by (default: the path, or ``"<data>"``).
    ``fmt`` is one of :data:`FORMATS`, or ``"auto"`` for :func:`detect_format`.  ``channel``
    and ``platform``, when given, override what the file says (``channel`` is lower-cased, a
    leading ``#`` dropped); ``channel`` is required for ``twitchdownloader-txt`` and
    ``chat-downloader`` (their files name no channel), and for ``jsonl`` lines without one.
    ``start`` (timezone-aware) anchors relative ``[h:mm:ss]`` TwitchDownloader TXT stamps: it
    is the time of offset ``0:00:00``, the VOD's start.  A TXT whose lines are relative needs it,
    and one written without timestamps cannot be read at all (both raise :class:`FormatError`
    here, from the first 64 KiB).  ``max_message_chars``, when given, turns a message with a
    longer text into :class:`Malformed` whose ``raw`` is the whole message as one of our JSON
    lines (:func:`write_jsonl`), so nothing of it is lost.
    It also anchors the VOD offsets of a TwitchDownloader JSON or GQL file whose
    ``created_at`` collapsed (a highlight: see :func:`_clocked`).  For those two formats
    ``on_clock(note)`` is called once, at the end, with one sentence saying which clock placed
    the comments and why.

    Every :class:`ChatMessage` and :class:`ModerationEvent` has ``source="replay"``; files without
    platform ids get :func:`~collector.events.deterministic_message_id`, so reading a file twice
    yields the same ids.  Bad lines or items come back as :class:`Malformed` (``source_name`` is
    the log's name, the reason names the line or item number) and reading goes on.
    ``on_progress(bytes_read, total_bytes)`` is called after each chunk and once at the end.

    ``span`` (a plain file's path and a line format, :data:`SPAN_FORMATS`) reads only the lines
    of that part of the file (:func:`~collector.formats.stream.split_log` cuts them), numbered
    as in the whole file; progress then counts the span's bytes, of the span's length.

    Argument errors (unknown ``fmt``, missing ``channel``, naive or missing ``start``) raise
    :class:`FormatError` here, before any event is read; an unreadable file raises
    :class:`OSError` on first iteration; a file whose structure is not the named format, or a
    corrupt gzip stream, raises :class:`FormatError` during iteration.
    """
    label = _log_name(log, name)
    if fmt == "auto":
        fmt = detect_format(log, name=label)
    if fmt not in FORMATS:
        raise FormatError(f"unknown chat log format {fmt!r}; expected auto or one of {FORMATS}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    chan = _norm_channel(channel) if channel else None
    if fmt in ("twitchdownloader-txt", "chat-downloader", "twitch-gql") and not chan:
        raise MissingInputError(f"{label}: {fmt} files name no channel; pass --channel")
    if start is not None and start.utcoffset() is None:
        raise FormatError("start must be timezone-aware")
    if max_message_chars is not None and max_message_chars < 1:
        raise ValueError("max_message_chars must be positive")
    if fmt == "twitchdownloader-txt":
        try:
            stamps = td_txt_timestamps(log)
        except OSError:
            stamps = None  # raised again, as documented, on first iteration
        if stamps == "relative" and start is None:
            raise FormatError(td_txt_needs_start(label))
        if stamps == "none":
            raise FormatError(td_txt_untimed(label))
    first_line = 1
    if span is not None:
        if fmt not in SPAN_FORMATS or not isinstance(log, Path):
            raise ValueError(f"a span is read from a file of a line format {SPAN_FORMATS}")
        first_line = lines_before(log, span[0]) + 1
    chunks = _read_chunks(log, chunk_size, on_progress, label, span)
    events: Iterator[ChatEvent]
    if fmt == "irc":
        events = _read_irc(chunks, label, chan, platform or "twitch", first_line)
    elif fmt == "twitchdownloader-txt":
        assert chan is not None
        events = _read_td_txt(chunks, label, chan, platform or "twitch", start)
    elif fmt == "jsonl":
        events = _read_jsonl(chunks, label, chan, platform, first_line)
    elif fmt == "twitchdownloader":
        events = _read_td_json(chunks, label, chan, platform or "twitch", start, on_clock)
    elif fmt == "twitch-gql":
        assert chan is not None
        events = read_gql(chunks, label, chan, platform or "twitch", start, on_clock)
    else:
        assert chan is not None
        events = _read_chat_downloader(chunks, label, chan, platform)
    if max_message_chars is not None:
        events = _cap_messages(events, max_message_chars, label)
    return events


def td_txt_needs_start(path: Path | str) -> str:
    """The error for a relative-stamped TwitchDownloader TXT given without a start."""
    return (
        f"{path}: TwitchDownloader TXT with relative [h:mm:ss] timestamps: the file does not say "
        "when the stream started; pass --start TIME (ISO 8601, e.g. 2024-01-06T16:00:00Z), or "
        "give a TwitchDownloader JSON of the same VOD in the same call"
    )


def td_txt_untimed(path: Path | str) -> str:
    """The error for a TwitchDownloader TXT written with ``--timestamp-format None``."""
    return (
        f"{path}: TwitchDownloader TXT without timestamps (--timestamp-format None): its "
        "messages cannot be placed in time; export it again with --timestamp-format Utc "
        "or Relative"
    )


def reason_category(reason: str) -> str:
    """A :class:`Malformed` reason without its line or item number and the quoted input:
    what a summary counts by (``line 12: bad UTC timestamp '…'`` -> ``bad UTC timestamp``)."""
    text = _REASON_WHERE.sub("", reason, count=1)
    cut = _REASON_DETAIL.search(text)
    return (text[: cut.start()] if cut else text).strip() or "malformed"


_REASON_WHERE = re.compile(r"^(?:line|item|[a-z-]+ item) \d+: ")
_REASON_DETAIL = re.compile(r": | '| \"| \(char ")


def _cap_messages(events: Iterator[ChatEvent], cap: int, name: str) -> Iterator[ChatEvent]:
    for event in events:
        if isinstance(event, ChatMessage) and len(event.text) > cap:
            whole = io.StringIO()
            write_jsonl([event], whole)
            yield Malformed(
                whole.getvalue().rstrip("\n"),
                f"message longer than max_message_chars ({cap}): {len(event.text)} characters",
                name,
            )
        else:
            yield event
