"""Chat log files for replay: format detection, streaming readers, and our JSON-lines writer.

Formats (``FORMATS``; the sources behind each are [FORMATS], docs/architecture.md "Sources"):

``irc``
    One raw IRC line per line, as justlog and rustlog store them; an optional leading
    ``[YYYY-MM-DD HH:MM:SS] `` (UTC) stamp is accepted and used as ``received_at``.
``twitchdownloader``
    TwitchDownloader's chat JSON (one root object; ``comments`` array), plain or gzip.
``twitchdownloader-txt``
    TwitchDownloader's text export, ``[timestamp] display_name: body`` per line, in each of
    the three ``--timestamp-format`` variants TwitchDownloaderCLI writes: ``Relative``
    (``[0:00:30]``, the default; needs the stream's start), ``Utc``/``UtcFull``
    (``[2024-01-06 16:00:05 UTC]``) and ``None`` (``display_name: body``, which cannot be
    placed in time: :func:`read_events` refuses it).
``chat-downloader``
    xenova/chat-downloader's JSON array of items (and its predecessor chat_replay_downloader's,
    where ``author`` is a plain string), from YouTube or Twitch.
``twitch-gql``
    A JSON array of Twitch GQL ``VideoComment`` nodes, as twitch-archiver and similar tools save
    a VOD's chat (:mod:`collector.formats_gql`).
``jsonl``
    Our own JSON lines (README, "Collecting chat"), written by
    :func:`write_jsonl`.

Every reader streams: line formats hold one line at a time, and the two single-document JSON
formats are cut into items by a small incremental scanner (:class:`_JsonReader`), so a
multi-gigabyte export never sits in memory whole.  Any file may be gzip-compressed (detected by
its magic bytes, as TwitchDownloader and justlog's archiver write them).

Bad content never raises: each bad line or item becomes :class:`~collector.events.Malformed`
(``source_name`` is the file's path) and reading goes on.  Only an unreadable file
(:class:`OSError`), a corrupt gzip stream, a file that is not the named format at all, or missing
information the caller must supply (a channel, a platform, a start time) raise.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TextIO, cast

from chatpulse.core.errors import ChatpulseError
from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
    ModerationKind,
    Provider,
    deterministic_message_id,
    moderation_event_key,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMATS",
    "FormatError",
    "MissingInputError",
    "Progress",
    "TdJsonHead",
    "detect_format",
    "is_empty",
    "read_events",
    "reason_category",
    "td_json_head",
    "td_txt_timestamps",
    "write_jsonl",
]

#: The values of ``chatpulse replay --format`` (besides ``auto``).
FORMATS = (
    "irc",
    "twitchdownloader",
    "twitchdownloader-txt",
    "chat-downloader",
    "twitch-gql",
    "jsonl",
)

#: ``on_progress(bytes_read, total_bytes)``: bytes of the file on disk (compressed bytes for gzip).
Progress = Callable[[int, int], None]

#: Bytes read from the file at a time; the progress callback is called once per chunk.
DEFAULT_CHUNK_SIZE = 1 << 20

# detect_format looks at this much of the (decompressed) start of the file, never more.
_SNIFF_BYTES = 64 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FormatError(ChatpulseError, ValueError):
    """The file is not (or not recognisably) in the chat log format asked for, or the caller
    must supply information the file lacks (a channel, a platform, a start time)."""


class MissingInputError(FormatError):
    """The file is fine but cannot be placed without something only the user can give (a
    channel, a start time); the message names the option.  ``chatpulse replay`` exits 2."""


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------

# Raw IRC: IRCv3 tags, a nick!user@host or server prefix, or a bare PING ([IRC] framing).
_IRC_LINE = re.compile(r"(?:@\S+ :\S+ [A-Z0-9]+|:\S+ [A-Z0-9]+(?: |$)|PING(?: |$))")
# Optional log stamp before a raw line: ``[2024-01-06 16:19:44] `` (taken as UTC).
_IRC_STAMP = re.compile(
    r"\[(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)(?: ?(?:Z|UTC))?\] "
)
# TwitchDownloader TXT (TD ChatText.cs): relative ``[h:mm:ss]`` (hours may pass 24),
# ``[yyyy-MM-dd HH:mm:ss UTC]`` or ``[yyyy-MM-dd HH:mm:ss.fff UTC]``, then ``name: body``.
_TD_TXT_LINE = re.compile(
    r"\[(?:(?P<h>\d+):(?P<m>[0-5]\d):(?P<s>[0-5]\d)"
    r"|(?P<utc>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,7})?) UTC)\] "
    r"(?P<name>[^:\s][^:]*?):(?: (?P<body>.*))?"
)
# TwitchDownloader TXT written with ``--timestamp-format None``: ``display_name: body``
# (TD ChatText.cs).  Display names hold no blanks or colons.
_TD_TXT_PLAIN = re.compile(r"(?P<name>[^\s:\[@][^\s:]*):(?: (?P<body>.*))?")
_TD_KEYS = re.compile(r'"(?:streamer|video|FileInfo)"\s*:')
_TD_COMMENTS = re.compile(r'"comments"\s*:\s*\[')


def _read_head(path: Path) -> bytes:
    """The first 64 KiB of ``path``, decompressed when it is gzip."""
    with path.open("rb") as raw:
        stream = _maybe_gunzip(raw)
        try:
            return stream.read(_SNIFF_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise FormatError(f"{path}: corrupt gzip stream: {exc}") from exc


def _head_text(head: bytes) -> str:
    return head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")


def is_empty(path: Path) -> bool:
    """True when ``path`` holds nothing but blanks (after gzip decompression)."""
    return not _head_text(_read_head(path))


def detect_format(path: Path) -> str:
    """Return which of :data:`FORMATS` ``path`` is in, from its first 64 KiB only.

    Raises :class:`FormatError` (naming the file) when nothing matches or the file is empty,
    and :class:`OSError` when the file cannot be read.
    """
    head = _read_head(path)
    if not _head_text(head):
        raise FormatError(f"{path}: the file is empty: there is nothing to replay")
    fmt = _sniff(head)
    if fmt is None:
        raise FormatError(
            f"{path}: not a chat log format we know (expected one of {', '.join(FORMATS)}); "
            "name one with --format"
        )
    return fmt


def td_txt_timestamps(path: Path) -> str | None:
    """How a TwitchDownloader TXT export stamps its lines, from its first 64 KiB.

    ``"relative"`` (``[1:52:30]``, time into the VOD), ``"utc"`` (``[2024-01-06 16:20:30 UTC]``)
    or ``"none"`` (``name: text``, ``--timestamp-format None``): the kind most of the first
    200 lines have.  ``None`` when none of them is a TwitchDownloader line.
    """
    kinds: Counter[str] = Counter()
    lines = _head_text(_read_head(path)).split("\n")
    for line in lines[:200]:
        line = line.rstrip("\r")
        if not line.strip():
            continue
        m = _TD_TXT_LINE.fullmatch(line)
        if m is not None:
            kinds["utc" if m["utc"] else "relative"] += 1
        elif _TD_TXT_PLAIN.fullmatch(line):
            kinds["none"] += 1
    return kinds.most_common(1)[0][0] if kinds else None


def _sniff(head: bytes) -> str | None:
    text = _head_text(head)
    if not text:
        return None
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if text[0] == "{":
        # A complete first line that is an object with ``text`` and ``sent_at`` is our JSON
        # lines; a TwitchDownloader export is one document, usually on one line, which the
        # 64 KiB window cuts, so it never parses here.
        try:
            obj = json.loads(first_line)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "text" in obj and "sent_at" in obj:
            return "jsonl"
        if _TD_COMMENTS.search(text) and _TD_KEYS.search(text):
            return "twitchdownloader"
        return None
    if text[0] == "[":
        # IRC first: a raw line's tags hold colons, so it would also pass for "name: body".
        stamp = _IRC_STAMP.match(first_line)
        if stamp and _IRC_LINE.match(first_line, stamp.end()):
            return "irc"
        if _TD_TXT_LINE.match(first_line):
            return "twitchdownloader-txt"
        # GQL comment nodes also carry a "message" key: tell them apart before chat-downloader.
        from collector.formats_gql import looks_like_gql

        if looks_like_gql(head):
            return "twitch-gql"
        if _looks_like_chat_downloader(head):
            return "chat-downloader"
        return None
    if _IRC_LINE.match(first_line):
        return "irc"
    if _looks_like_plain_txt(text, cut=len(head) >= _SNIFF_BYTES):
        return "twitchdownloader-txt"
    return None


def _looks_like_plain_txt(text: str, *, cut: bool) -> bool:
    """TwitchDownloader TXT without timestamps: every one of the first lines is ``name: text``."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if cut:
        lines = lines[:-1]  # the window may end inside the last line
    lines = [line for line in lines[:50] if line.strip()]
    return bool(lines) and all(_TD_TXT_PLAIN.fullmatch(line) for line in lines)


def _looks_like_chat_downloader(head: bytes) -> bool:
    reader = _JsonReader(iter([head]), final=False)
    reader.take()  # the "["
    nxt = reader.peek()
    if nxt == "]":
        return True  # an empty export: chat-downloader writes "[]" when a chat had nothing
    if nxt != "{":
        return False
    raw, complete = reader.scan_value(keep=True)
    if complete:
        try:
            item = json.loads(raw)
        except ValueError:
            return False
        return isinstance(item, dict) and bool({"message", "timestamp", "author"} & item.keys())
    # First item longer than the window: fall back to its leading keys.
    return bool(re.search(r'"(?:message|timestamp|author)"\s*:', raw))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_events(
    path: Path,
    fmt: str,
    *,
    channel: str | None = None,
    platform: str | None = None,
    on_progress: Progress | None = None,
    start: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_message_chars: int | None = None,
    on_clock: Callable[[str], None] | None = None,
) -> Iterator[ChatEvent]:
    """Stream the events of one chat log file, in file order.

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
    ``str(path)``, the reason names the line or item number) and reading goes on.
    ``on_progress(bytes_read, total_bytes)`` is called after each chunk and once at the end.

    Argument errors (unknown ``fmt``, missing ``channel``, naive or missing ``start``) raise
    :class:`FormatError` here, before any event is read; an unreadable file raises
    :class:`OSError` on first iteration; a file whose structure is not the named format, or a
    corrupt gzip stream, raises :class:`FormatError` during iteration.
    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise FormatError(f"unknown chat log format {fmt!r}; expected auto or one of {FORMATS}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    chan = _norm_channel(channel) if channel else None
    if fmt in ("twitchdownloader-txt", "chat-downloader", "twitch-gql") and not chan:
        raise MissingInputError(f"{path}: {fmt} files name no channel; pass --channel")
    if start is not None and start.utcoffset() is None:
        raise FormatError("start must be timezone-aware")
    if max_message_chars is not None and max_message_chars < 1:
        raise ValueError("max_message_chars must be positive")
    if fmt == "twitchdownloader-txt":
        try:
            stamps = td_txt_timestamps(path)
        except OSError:
            stamps = None  # raised again, as documented, on first iteration
        if stamps == "relative" and start is None:
            raise FormatError(td_txt_needs_start(path))
        if stamps == "none":
            raise FormatError(td_txt_untimed(path))
    chunks = _read_chunks(path, chunk_size, on_progress)
    name = str(path)
    events: Iterator[ChatEvent]
    if fmt == "irc":
        events = _read_irc(chunks, name, chan, platform or "twitch")
    elif fmt == "twitchdownloader-txt":
        assert chan is not None
        events = _read_td_txt(chunks, name, chan, platform or "twitch", start)
    elif fmt == "jsonl":
        events = _read_jsonl(chunks, name, chan, platform)
    elif fmt == "twitchdownloader":
        events = _read_td_json(chunks, name, chan, platform or "twitch", start, on_clock)
    elif fmt == "twitch-gql":
        from collector.formats_gql import read_gql

        assert chan is not None
        events = read_gql(chunks, name, chan, platform or "twitch", start, on_clock)
    else:
        assert chan is not None
        events = _read_chat_downloader(chunks, name, chan, platform)
    if max_message_chars is not None:
        events = _cap_messages(events, max_message_chars, name)
    return events


def td_txt_needs_start(path: Path) -> str:
    """The error for a relative-stamped TwitchDownloader TXT given without a start."""
    return (
        f"{path}: TwitchDownloader TXT with relative [h:mm:ss] timestamps: the file does not say "
        "when the stream started; pass --start TIME (ISO 8601, e.g. 2024-01-06T16:00:00Z), or "
        "give a TwitchDownloader JSON of the same VOD in the same call"
    )


def td_txt_untimed(path: Path) -> str:
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


def _norm_channel(channel: str) -> str:
    return channel.strip().lstrip("#").lower()


def _maybe_gunzip(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def _read_chunks(path: Path, chunk_size: int, on_progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as raw:
        total = path.stat().st_size
        stream = _maybe_gunzip(raw)
        while True:
            try:
                data = stream.read(chunk_size)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                # A truncated .gz (a logger killed mid-write) ends here; what came before stands.
                raise FormatError(f"{path}: corrupt or truncated gzip stream: {exc}") from exc
            if not data:
                break
            if on_progress is not None:
                on_progress(raw.tell(), total)
            yield data
        if on_progress is not None:
            on_progress(total, total)


def _iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending: list[bytes] = []
    for chunk in chunks:
        begin = 0
        while (nl := chunk.find(b"\n", begin)) >= 0:
            pending.append(chunk[begin:nl])
            yield b"".join(pending)
            pending.clear()
            begin = nl + 1
        if begin < len(chunk):
            pending.append(chunk[begin:])
    if pending:
        yield b"".join(pending)


def _text_lines(chunks: Iterator[bytes], name: str) -> Iterator[tuple[int, str | Malformed]]:
    """(line number, text) per non-blank line; undecodable lines come back as Malformed."""
    for number, line in enumerate(_iter_lines(chunks), 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                Malformed(
                    line.decode("utf-8", "replace"), f"line {number}: not UTF-8: {exc.reason}", name
                ),
            )


def _override_channel(event: ChatEvent, channel: str | None) -> ChatEvent:
    # A moderation event keeps the event_key made from the line's own channel: still
    # deterministic, so a second replay with the same --channel stays a no-op.
    if channel is None or not isinstance(event, ChatMessage | ModerationEvent):
        return event
    return replace(event, channel=channel)


# --- irc ------------------------------------------------------------------------------------


def _read_irc(
    chunks: Iterator[bytes], name: str, channel: str | None, platform: str
) -> Iterator[ChatEvent]:
    # Imported here so that the other formats work even where the IRC parser is not installed.
    from collector.irc import parse_event

    for number, line in _text_lines(chunks, name):
        if isinstance(line, Malformed):
            yield line
            continue
        received_at = None
        stamp = _IRC_STAMP.match(line)
        if stamp:
            try:
                received_at = datetime.fromisoformat(f"{stamp[1]}T{stamp[2]}").replace(tzinfo=UTC)
            except ValueError:
                yield Malformed(line, f"line {number}: bad log timestamp {stamp[0]!r}", name)
                continue
            line = line[stamp.end() :]
        event = parse_event(line, received_at=received_at, source="replay", platform=platform)
        if isinstance(event, Malformed):
            yield Malformed(event.raw, f"line {number}: {event.reason}", name)
        elif isinstance(event, ControlEvent) and not _known_non_chat(event):
            # A bare word or a command IRC does not have: not chat, so kept for a human.
            command = event.params.get("command", "")
            yield Malformed(line, f"line {number}: unknown IRC command {command[:40]!r}", name)
        else:
            yield _override_channel(event, channel)


# Commands that carry nothing to store and that the parser passes through as ``other``
# (Twitch IRC guide; RFC 1459/2812 for the rest); numerics (001-999) are replies.
_IRC_NON_CHAT = frozenset(
    {
        "USERSTATE",
        "GLOBALUSERSTATE",
        "HOSTTARGET",
        "WHISPER",
        "MODE",
        "NICK",
        "PASS",
        "USER",
        "QUIT",
        "ERROR",
        "SERVERCHANGE",
        "CLEARMSG",
        "CLEARCHAT",
        "USERNOTICE",
        "PRIVMSG",
        "NOTICE",
        "ROOMSTATE",
        "JOIN",
        "PART",
        "CAP",
        "PING",
        "PONG",
        "RECONNECT",
    }
)
_IRC_NUMERIC = re.compile(r"\d{3}")


def _known_non_chat(event: ControlEvent) -> bool:
    if event.kind != "other":
        return True
    command = event.params.get("command", "")
    return command in _IRC_NON_CHAT or bool(_IRC_NUMERIC.fullmatch(command))


# --- TwitchDownloader TXT -----------------------------------------------------------------------


def _read_td_txt(
    chunks: Iterator[bytes], name: str, channel: str, platform: str, start: datetime | None
) -> Iterator[ChatEvent]:
    for number, line in _text_lines(chunks, name):
        if isinstance(line, Malformed):
            yield line
            continue
        event = _td_txt_event(line, channel=channel, platform=platform, start=start)
        if isinstance(event, Malformed):
            yield Malformed(event.raw, f"line {number}: {event.reason}", name)
        else:
            yield event


def _td_txt_event(
    line: str, *, channel: str, platform: str, start: datetime | None
) -> ChatMessage | Malformed:
    m = _TD_TXT_LINE.fullmatch(line)
    if m is None:
        if _TD_TXT_PLAIN.fullmatch(line):
            return Malformed(line, "no timestamp: the line cannot be placed in time")
        return Malformed(line, "not a TwitchDownloader text line '[time] name: message'")
    extra: dict[str, str] = {}
    if m["utc"]:
        try:
            sent_at = datetime.fromisoformat(m["utc"]).replace(tzinfo=UTC)
        except ValueError:
            return Malformed(line, f"bad UTC timestamp {m['utc']!r}")
    elif start is None:
        return Malformed(
            line, "relative timestamp and no start time given (pass the stream's start)"
        )
    else:
        offset = timedelta(hours=int(m["h"]), minutes=int(m["m"]), seconds=int(m["s"]))
        sent_at = start.astimezone(UTC) + offset
        # As a TwitchDownloader JSON does: the report reads the stream's start back from it.
        extra["content_offset_seconds"] = repr(offset.total_seconds())
    display = m["name"]
    text = m["body"] or ""
    login = display.lower() if _LOGIN.fullmatch(display) else None
    return ChatMessage(
        platform=platform,
        channel=channel,
        message_id=deterministic_message_id(platform, channel, sent_at, login or display, text),
        sent_at=sent_at,
        text=text,
        user_login=login,
        user_name=display,
        source="replay",
        extra=extra,
    )


# Twitch logins: letters, digits, underscore.  A display name that is a case variant of one is
# the login; a localized display name (CJK, ...) is not, and gives no login.
_LOGIN = re.compile(r"[A-Za-z0-9_]{1,25}")


# --- jsonl ----------------------------------------------------------------------------------


def _read_jsonl(
    chunks: Iterator[bytes], name: str, channel: str | None, platform: str | None
) -> Iterator[ChatEvent]:
    for number, line in _text_lines(chunks, name):
        if isinstance(line, Malformed):
            yield line
            continue
        event = _jsonl_event(line, channel=channel, platform=platform)
        if isinstance(event, Malformed):
            yield Malformed(event.raw, f"line {number}: {event.reason}", name)
        else:
            yield event


class _Bad(Exception):
    """One field of one item is invalid; the message is the Malformed reason."""


def _opt_str(obj: Mapping[str, Any], key: str, *, allow_int: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{key} must be a string")


def _str_map(obj: Mapping[str, Any], key: str) -> dict[str, str]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad(f"{key} must be an object")
    out: dict[str, str] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise _Bad(f"{key}.{k} must be a string")
        out[k] = str(v)
    return out


def _opt_bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if not isinstance(value, bool):
        raise _Bad(f"{key} must be true or false")
    return value


def _rfc3339(value: str, key: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"{key} is not an RFC 3339 time: {value[:40]!r}") from None
    if when.utcoffset() is None:
        raise _Bad(f"{key} has no UTC offset: {value[:40]!r}")
    return when.astimezone(UTC)


def _jsonl_time(value: object, key: str) -> datetime:
    # README, "Collecting chat": RFC 3339 text, or integer epoch milliseconds.
    if isinstance(value, str):
        return _rfc3339(value, key)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise _Bad(f"{key} out of range: {value}") from None
    if value is None:
        raise _Bad(f"missing {key}")
    raise _Bad(f"{key} must be an RFC 3339 string or integer epoch milliseconds")


def _jsonl_emotes(value: object) -> tuple[EmoteUse, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad("emotes must be a list")
    out: list[EmoteUse] = []
    for item in value:
        if not isinstance(item, dict):
            raise _Bad("emotes items must be objects")
        emote_id, emote_name = item.get("id"), item.get("name")
        provider, count = item.get("provider"), item.get("count", 1)
        if not isinstance(emote_id, str) or not isinstance(emote_name, str):
            raise _Bad("emotes items need string id and name")
        if provider not in _PROVIDERS:
            raise _Bad(f"emote provider must be one of {sorted(_PROVIDERS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _Bad("emote count must be a positive integer")
        out.append(EmoteUse(emote_id, emote_name, _PROVIDERS[provider], count))
    return tuple(out)


_PROVIDERS: dict[str, Provider] = {
    "twitch": "twitch",
    "bttv": "bttv",
    "ffz": "ffz",
    "7tv": "7tv",
    "emoji": "emoji",
}


def _jsonl_event(
    line: str, *, channel: str | None, platform: str | None
) -> ChatMessage | Malformed:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        return Malformed(line, f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return Malformed(line, "not a JSON object")
    try:
        text = obj.get("text")
        if text is None:
            raise _Bad("missing text")
        if not isinstance(text, str):
            raise _Bad("text must be a string")
        sent_at = _jsonl_time(obj.get("sent_at"), "sent_at")
        chan = channel or _opt_str(obj, "channel")
        if not chan:
            raise _Bad("missing channel (and no --channel given)")
        chan = _norm_channel(chan)
        plat = platform or _opt_str(obj, "platform") or "generic"
        user_id = _opt_str(obj, "user_id", allow_int=True)
        user_login = _opt_str(obj, "user_login")
        user_name = _opt_str(obj, "user_name")
        kind = _opt_str(obj, "kind") or "chat"
        bits = obj.get("bits", 0)
        if bits is None:
            bits = 0
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 0:
            raise _Bad("bits must be a non-negative integer")
        received = obj.get("received_at")
        message_id = _opt_str(obj, "id")
        if message_id == "":
            raise _Bad("id must not be empty")
        if message_id is None:
            message_id = deterministic_message_id(
                plat, chan, sent_at, user_id or user_login or user_name, text
            )
        return ChatMessage(
            platform=plat,
            channel=chan,
            message_id=message_id,
            sent_at=sent_at,
            text=text,
            user_id=user_id,
            user_login=user_login,
            user_name=user_name,
            kind=kind,
            badges=_str_map(obj, "badges"),
            is_mod=_opt_bool(obj, "is_mod"),
            is_subscriber=_opt_bool(obj, "is_subscriber"),
            is_first=_opt_bool(obj, "is_first"),
            bits=bits,
            reply_parent_id=_opt_str(obj, "reply_parent_id"),
            channel_platform_id=_opt_str(obj, "channel_platform_id", allow_int=True),
            emotes=_jsonl_emotes(obj.get("emotes")),
            received_at=None if received is None else _jsonl_time(received, "received_at"),
            source="replay",
            extra=_str_map(obj, "extra"),
        )
    except _Bad as exc:
        return Malformed(line, str(exc))


# --- streaming JSON -------------------------------------------------------------------------

_NON_WS = re.compile(r"[^ \t\r\n]")
_STRUCT = re.compile(r'["{}\[\]]')
_STRING_SPECIAL = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,\]}\s]")


class _JsonReader:
    """Cut a JSON text into top-level tokens and whole values without holding it all.

    The scanner only tracks strings, escapes and bracket depth, so it finds where a value ends
    even when the value itself is invalid; each value's text is then given to :func:`json.loads`,
    which makes one bad item a :class:`Malformed` instead of the end of the file.
    """

    def __init__(self, chunks: Iterator[bytes], *, final: bool = True) -> None:
        self._chunks = chunks
        # utf-8-sig drops a byte-order mark; "replace" keeps a stray bad byte from stopping
        # the stream (it lands in one string as U+FFFD).
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._final = final
        self._buf = ""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Append decoded text, dropping what is consumed; False at end of input."""
        if self._eof:
            return False
        for data in self._chunks:
            text = self._decoder.decode(data)
            if text:
                self._buf = self._buf[self._pos :] + text
                self._pos = 0
                return True
        self._eof = True
        tail = self._decoder.decode(b"", final=True) if self._final else ""
        if tail:
            self._buf = self._buf[self._pos :] + tail
            self._pos = 0
            return True
        return False

    def peek(self) -> str:
        """Return the next non-blank character without consuming it; "" at end of input."""
        while True:
            m = _NON_WS.search(self._buf, self._pos)
            if m is not None:
                self._pos = m.start()
                return self._buf[self._pos]
            self._pos = len(self._buf)
            if not self._fill():
                return ""

    def take(self) -> str:
        """Consume and return the next non-blank character ("" at end of input)."""
        c = self.peek()
        if c:
            self._pos += 1
        return c

    def snippet(self, size: int = 200) -> str:
        """Up to ``size`` characters from the current position, for error messages."""
        if len(self._buf) - self._pos < size:
            self._fill()
        return self._buf[self._pos : self._pos + size]

    def scan_value(self, *, keep: bool) -> tuple[str, bool]:
        """Consume the next value; return its text (``""`` unless ``keep``) and whether it was
        complete (False: the input ended inside it)."""
        if not self.peek():
            return "", False
        pieces: list[str] = []
        i = self._pos
        seg = i
        if self._buf[i] not in '"{[':
            # A number or literal ends at the next delimiter, or at end of input.
            while True:
                m = _SCALAR_END.search(self._buf, i)
                if m is not None:
                    i = m.start()
                    break
                i = len(self._buf)
                if keep:
                    pieces.append(self._buf[seg:i])
                self._pos = i
                if not self._fill():
                    return "".join(pieces), True
                i = seg = self._pos
            if keep:
                pieces.append(self._buf[seg:i])
            self._pos = i
            return "".join(pieces), True
        depth = 0
        in_string = False
        while True:
            buf = self._buf
            done = False
            while True:
                if in_string:
                    m = _STRING_SPECIAL.search(buf, i)
                    if m is None:
                        i = len(buf)
                        break
                    j = m.start()
                    if buf[j] == "\\":
                        if j + 1 >= len(buf):
                            i = j  # the escaped character is in the next chunk
                            break
                        i = j + 2
                        continue
                    in_string = False
                    i = j + 1
                    if depth == 0:
                        done = True
                        break
                else:
                    m = _STRUCT.search(buf, i)
                    if m is None:
                        i = len(buf)
                        break
                    j = m.start()
                    c = buf[j]
                    i = j + 1
                    if c == '"':
                        in_string = True
                    elif c in "{[":
                        depth += 1
                    else:
                        depth -= 1
                        if depth <= 0:
                            done = True
                            break
            if keep:
                pieces.append(buf[seg:i])
            self._pos = i
            if done:
                return "".join(pieces), True
            if not self._fill():
                # Input ended inside the value; a lone trailing backslash is kept.
                if keep and self._pos < len(self._buf):
                    pieces.append(self._buf[self._pos :])
                self._pos = len(self._buf)
                return "".join(pieces), False
            i = seg = self._pos

    def read_value(self) -> tuple[str, object, bool]:
        """Consume the next value; return its text, its decoded value (an :class:`_Invalid`
        when the text is not JSON) and whether it was complete.

        An object or array is decoded in place by the C decoder (``raw_decode`` at the current
        position), which is several times faster than scanning it here first; only when that
        fails (the value runs into the next chunk, or is invalid) does :meth:`scan_value` find
        its end.  A scalar always goes through the scanner: its text could be cut by a chunk.
        """
        if not self.peek():
            return "", _Invalid("no value"), False
        start = self._pos
        if self._buf[start] in "{[":
            try:
                value, end = _DECODER.raw_decode(self._buf, start)
            except ValueError:
                pass
            else:
                self._pos = end
                return self._buf[start:end], value, True
        raw, complete = self.scan_value(keep=True)
        if not complete:
            return raw, _Invalid("cut off"), False
        try:
            return raw, json.loads(raw), True
        except ValueError as exc:
            return raw, _Invalid(str(exc)), True


_DECODER = json.JSONDecoder()


class _Invalid:
    """A value whose text is not JSON (``reason`` is the decoder's message)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _array_items(
    reader: _JsonReader, name: str, what: str
) -> Iterator[tuple[int, str, object] | Malformed]:
    """Yield (item number, item text, decoded item) for an array whose ``[`` was just consumed;
    the decoded item is an :class:`_Invalid` when its text is not JSON (see
    :func:`_load_object`).

    Commas are optional and empty slots skipped: being lenient about separators costs nothing,
    and each item is still validated by the JSON decoder.
    """
    number = 0
    while True:
        c = reader.peek()
        if c == "":
            yield Malformed("", f"file ends before the {what} array is closed", name)
            return
        if c == "]":
            reader.take()
            return
        if c == ",":
            reader.take()
            continue
        number += 1
        raw, value, complete = reader.read_value()
        if not complete:
            yield Malformed(raw, f"{what} item {number}: cut off at end of file", name)
            return
        yield number, raw, value


def _load_object(value: object) -> dict[str, Any]:
    """The decoded array item as an object; :class:`_Bad` when it is not one."""
    if isinstance(value, _Invalid):
        raise _Bad(f"invalid JSON: {value.reason}")
    obj = value
    if not isinstance(obj, dict):
        raise _Bad("not a JSON object")
    return obj


# --- TwitchDownloader JSON ----------------------------------------------------------------------


def _read_td_json(
    chunks: Iterator[bytes],
    name: str,
    channel: str | None,
    platform: str,
    start: datetime | None = None,
    on_clock: Callable[[str], None] | None = None,
) -> Iterator[ChatEvent]:
    reader = _JsonReader(chunks)
    if reader.take() != "{":
        raise FormatError(f"{name}: not a TwitchDownloader chat JSON (no root object)")
    header: dict[str, Any] = {}
    while True:
        c = reader.peek()
        if c in ("}", ""):
            return
        if c == ",":
            reader.take()
            continue
        if c != '"':
            yield Malformed(reader.snippet(), "root object: expected a property name", name)
            return
        key_raw, _ = reader.scan_value(keep=True)
        try:
            key = json.loads(key_raw)
        except ValueError:
            yield Malformed(key_raw, "root object: bad property name", name)
            return
        if reader.take() != ":":
            yield Malformed(key_raw, f"root object: no ':' after {key_raw}", name)
            return
        if key == "comments":
            if reader.peek() != "[":
                raw, _ = reader.scan_value(keep=True)
                yield Malformed(raw[:200], "comments is not an array", name)
                continue
            reader.take()
            yield from _td_comments(reader, name, channel, platform, header, start, on_clock)
        elif key in ("FileInfo", "streamer", "video", "clipper"):
            raw, _ = reader.scan_value(keep=True)
            try:
                header[key] = json.loads(raw)
            except ValueError:
                yield Malformed(raw[:200], f"{key} is not valid JSON", name)
        else:
            # embeddedData holds base64 emote images: skipped without being kept.
            reader.scan_value(keep=False)


def _header_dict(header: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = header.get(key)
    return value if isinstance(value, dict) else {}


def _td_channel(streamer: Mapping[str, Any], video: Mapping[str, Any]) -> str | None:
    """The channel login a TD file names: ``streamer.login``/``streamer.name`` (current files),
    else ``video.user_login``/``video.user_name`` (files written from Twitch's older API).  A
    display name that is no login (localized) is skipped."""
    for value in (
        streamer.get("login"),
        streamer.get("name"),
        video.get("user_login"),
        video.get("user_name"),
    ):
        if isinstance(value, str) and _LOGIN.fullmatch(value.strip().lstrip("#")):
            return _norm_channel(value)
    return None


def _platform_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value) if value not in ("", 0) else None


def _td_comments(
    reader: _JsonReader,
    name: str,
    channel: str | None,
    platform: str,
    header: Mapping[str, Any],
    start: datetime | None,
    on_clock: Callable[[str], None] | None,
) -> Iterator[ChatEvent]:
    # TD writes FileInfo, streamer, clipper, video, then comments (ChatRoot.cs property order),
    # so the channel and the video's start are known before the first comment.
    streamer = _header_dict(header, "streamer")
    video = _header_dict(header, "video")
    chan = channel or _td_channel(streamer, video)
    if chan is None:
        raise MissingInputError(
            f"{name}: no streamer.name or video.user_login before the comments; pass --channel"
        )
    room_id = _platform_id(streamer.get("id")) or _platform_id(video.get("user_id"))
    anchor: datetime | None = None
    created = video.get("created_at")
    if isinstance(created, str):
        try:
            anchor = _utc(datetime.fromisoformat(created))
        except ValueError:
            anchor = None
    video_type = video.get("type")

    def comments() -> Iterator[_Comment | Malformed]:
        for item in _array_items(reader, name, "comments"):
            if isinstance(item, Malformed):
                yield item
                continue
            number, raw, value = item
            try:
                yield _td_comment(_load_object(value), chan, platform, room_id, raw)
            except _Bad as exc:
                yield Malformed(raw, f"comments item {number}: {exc}", name)

    yield from _clocked(
        comments(),
        name=name,
        created_key="created_at",
        offset_key="content_offset_seconds",
        anchor=anchor,
        anchor_name="video.created_at",
        start=start,
        video_type=video_type if isinstance(video_type, str) else None,
        on_clock=on_clock,
    )


def _utc(when: datetime) -> datetime:
    # System.Text.Json writes DateTimeKind.Utc with "Z"; an unmarked time is taken as UTC.
    return (when.replace(tzinfo=UTC) if when.utcoffset() is None else when).astimezone(UTC)


def _td_comment(
    obj: Mapping[str, Any], channel: str, platform: str, room_id: str | None, raw: str
) -> _Comment:
    created = obj.get("created_at")
    if not isinstance(created, str):
        raise _Bad("missing created_at")
    try:
        sent_at = _utc(datetime.fromisoformat(created))
    except ValueError:
        raise _Bad(f"bad created_at {created[:40]!r}") from None
    message = obj.get("message")
    if not isinstance(message, dict):
        raise _Bad("missing message")
    text = message.get("body")
    if not isinstance(text, str):
        raise _Bad("missing message.body")
    commenter = obj.get("commenter")
    commenter = commenter if isinstance(commenter, dict) else {}
    user_id = _opt_str(commenter, "_id", allow_int=True)
    login = _opt_str(commenter, "name")
    display = _opt_str(commenter, "display_name")
    message_id = _opt_str(obj, "_id")
    derived = not message_id
    if not message_id:
        message_id = deterministic_message_id(
            platform, channel, sent_at, user_id or login or display, text
        )
    badges: dict[str, str] = {}
    for badge in message.get("user_badges") or ():
        if isinstance(badge, dict) and isinstance(badge.get("_id"), str):
            badges[badge["_id"]] = str(badge.get("version") or "")
    notice = message.get("user_notice_params")
    msg_id = None
    if isinstance(notice, dict):
        # "msg_id" in TwitchDownloader's files, "msg-id" in files from Twitch's older API.
        msg_id = notice.get("msg_id") or notice.get("msg-id")
    extra: dict[str, str] = {}
    kind = "chat"
    if isinstance(msg_id, str) and msg_id:
        extra["msg_id"] = msg_id
        # Highlighted / sub-mode-skip messages are ordinary chat with a flag (TW msg-id list).
        if msg_id not in _CHAT_MSG_IDS:
            kind = msg_id
    color = message.get("user_color")
    if isinstance(color, str) and color:
        extra["color"] = color
    offset = obj.get("content_offset_seconds")
    offset_s: float | None = None
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        offset_s = float(offset)
        extra["content_offset_seconds"] = repr(offset_s)
    bits = message.get("bits_spent")
    channel_id = _opt_str(obj, "channel_id", allow_int=True) or room_id
    msg = ChatMessage(
        platform=platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        user_id=user_id,
        user_login=login.lower() if login else None,
        user_name=display,
        kind=kind,
        badges=badges,
        is_mod="moderator" in badges or "broadcaster" in badges,
        is_subscriber="subscriber" in badges or "founder" in badges,
        bits=bits if isinstance(bits, int) and not isinstance(bits, bool) and bits > 0 else 0,
        channel_platform_id=channel_id,
        emotes=_td_emotes(message, text),
        source="replay",
        extra=extra,
    )
    return _Comment(msg, offset_s, raw, derived)


# --- the clock of VOD comment files -------------------------------------------------------------


class _Comment(NamedTuple):
    """One comment of a VOD chat file, placed by its own ``created_at`` so far."""

    message: ChatMessage
    offset: float | None  # seconds into the video
    raw: str
    derived_id: bool  # the file gave no id: message_id came from deterministic_message_id


# A file is decided once its offsets span this much, or after this many comments, or at its end.
_CLOCK_DECIDE_SPAN_S = 600.0
_CLOCK_LOOKAHEAD = 10_000
# Below this offset span a collapse is too small to tell (unless the video says highlight).
_CLOCK_MIN_SPAN_S = 10.0


class _Span:
    __slots__ = ("hi", "lo")

    def __init__(self) -> None:
        self.lo = float("inf")
        self.hi = float("-inf")

    def add(self, value: float) -> None:
        if value < self.lo:
            self.lo = value
        if value > self.hi:
            self.hi = value

    @property
    def width(self) -> float:
        return self.hi - self.lo if self.hi >= self.lo else 0.0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _clocked(
    comments: Iterator[_Comment | Malformed],
    *,
    name: str,
    created_key: str,
    offset_key: str,
    anchor: datetime | None,
    anchor_name: str,
    start: datetime | None,
    video_type: str | None,
    on_clock: Callable[[str], None] | None,
) -> Iterator[ChatEvent]:
    """Yield the comments' messages, each placed on the right clock.

    A VOD comment carries two times: ``created_at`` (when it was sent) and its offset into the
    video.  They agree (``created_at - offset`` is the video's start) except where Twitch gives
    every comment of a *highlight* the moment the highlight was made: thousands of comments
    over 48 minutes of offsets with ``created_at`` all within seconds.  Every file is checked:
    when the ``created_at`` span is under half the offsets' span (and the offsets span at least
    10 s, or ``video_type`` is ``highlight``), comments are placed at ``start`` (``--start``) or
    else ``anchor`` (``video.created_at``) plus their offset, the file's own ``created_at``
    kept in ``extra``; with neither, :class:`MissingInputError` asks for ``--start``.  The
    decision is taken on a bounded look-ahead (offsets spanning 10 minutes, 10,000 comments,
    or the file's end), so memory stays flat; ``on_clock`` gets the whole file's figures.
    """
    created = _Span()
    offsets = _Span()
    held: list[_Comment | Malformed] | None = []
    base: datetime | None = None  # set when the offsets place the comments
    for item in comments:
        if isinstance(item, _Comment) and item.offset is not None:
            created.add(item.message.sent_at.timestamp())
            offsets.add(item.offset)
        if held is not None:
            held.append(item)
            if offsets.width >= _CLOCK_DECIDE_SPAN_S or len(held) >= _CLOCK_LOOKAHEAD:
                base = _clock_base(created, offsets, anchor, start, video_type, name, created_key)
                for h in held:
                    yield _placed(h, base, name, offset_key, created_key)
                held = None
            continue
        yield _placed(item, base, name, offset_key, created_key)
    if held is not None:
        base = _clock_base(created, offsets, anchor, start, video_type, name, created_key)
        for h in held:
            yield _placed(h, base, name, offset_key, created_key)
    if on_clock is not None:
        on_clock(
            _clock_note(
                base, created, offsets, start, anchor_name, video_type, created_key, offset_key
            )
        )


def _collapsed(created: _Span, offsets: _Span, video_type: str | None) -> bool:
    if offsets.width <= 0:
        return False
    evidence = offsets.width >= _CLOCK_MIN_SPAN_S or video_type == "highlight"
    return evidence and created.width < 0.5 * offsets.width


def _clock_base(
    created: _Span,
    offsets: _Span,
    anchor: datetime | None,
    start: datetime | None,
    video_type: str | None,
    name: str,
    created_key: str,
) -> datetime | None:
    if not _collapsed(created, offsets, video_type):
        return None
    base = start or anchor
    if base is None:
        raise MissingInputError(
            f"{name}: the comments' {created_key} span {_duration(created.width)} while their "
            f"offsets span {_duration(offsets.width)}, so {created_key} is not when they were "
            "sent, and the file names no start; pass --start (the video's start, ISO 8601)"
        )
    return base.astimezone(UTC)


def _placed(
    item: _Comment | Malformed, base: datetime | None, name: str, offset_key: str, created_key: str
) -> ChatEvent:
    if isinstance(item, Malformed):
        return item
    msg = item.message
    if base is None:
        return msg
    if item.offset is None:
        return Malformed(
            item.raw, f"no {offset_key}: this file's comments are placed by their offsets", name
        )
    sent_at = base + timedelta(seconds=item.offset)
    message_id = msg.message_id
    if item.derived_id:
        message_id = deterministic_message_id(
            msg.platform,
            msg.channel,
            sent_at,
            msg.user_id or msg.user_login or msg.user_name,
            msg.text,
        )
    extra = dict(msg.extra)
    extra[created_key] = _rfc3339_out(msg.sent_at)
    return replace(msg, sent_at=sent_at, message_id=message_id, extra=extra)


def _clock_note(
    base: datetime | None,
    created: _Span,
    offsets: _Span,
    start: datetime | None,
    anchor_name: str,
    video_type: str | None,
    created_key: str,
    offset_key: str,
) -> str:
    spans = (
        f"the comments' {created_key} span {_duration(created.width)}, their offsets "
        f"{_duration(offsets.width)}"
    )
    typed = f", video.type {video_type}" if video_type else ""
    if base is None:
        if offsets.width <= 0:
            return f"clock: {created_key} (no offsets to check it against)"
        note = f"clock: {created_key}, because it follows the offsets ({spans}{typed})"
        return note + ("; --start not needed, not used" if start is not None else "")
    origin = "--start" if start is not None else anchor_name
    return (
        f"clock: {origin} + {offset_key}, because {created_key} collapsed ({spans}{typed}); "
        f"each comment's own {created_key} is kept in extra"
    )


@dataclass(frozen=True, slots=True)
class TdJsonHead:
    """What a TwitchDownloader JSON says about its video, read from the head of the file.

    ``created_at`` is ``video.created_at`` (UTC); ``start_s``/``end_s`` are ``video.start`` and
    ``video.end``, the trim of the download in seconds into the video; ``video_type`` is
    ``video.type`` when the file has one; ``is_clip`` is true when a ``clipper`` is present.
    """

    channel: str | None
    channel_id: str | None
    video_id: str | None
    video_type: str | None
    created_at: datetime | None
    start_s: float
    end_s: float | None
    is_clip: bool

    @property
    def offset_origin(self) -> datetime | None:
        """The clock time of ``content_offset_seconds`` 0, or None when the file cannot say.

        TwitchDownloader takes each comment's offset from Twitch as it is: seconds from the
        start of the video, whatever the trim (``video.start``) of the download (TD
        ChatDownloader.cs keeps ``contentOffsetSeconds``; ChatText.cs writes it as the
        relative stamp).  So offset 0 is ``video.created_at``.  A clip's ``created_at`` is
        when the clip was made and its offsets count from the start of the VOD: no origin.
        """
        if self.is_clip:
            return None
        return self.created_at


def td_json_head(path: Path) -> TdJsonHead:
    """Read ``streamer``, ``clipper`` and ``video`` of a TwitchDownloader JSON (plain or gzip)
    without loading its comments: TD writes them before ``comments`` (ChatRoot.cs order), so
    only the head of the file is read; a file in another order is scanned, never held.

    Raises :class:`FormatError` when the file is not a JSON object, :class:`OSError` when it
    cannot be read.
    """
    chunks = _read_chunks(path, _SNIFF_BYTES, None)
    header: dict[str, Any] = {}
    try:
        reader = _JsonReader(chunks)
        if reader.take() != "{":
            raise FormatError(f"{path}: not a TwitchDownloader chat JSON (no root object)")
        while "video" not in header:
            c = reader.peek()
            if c == ",":
                reader.take()
                continue
            if c != '"':
                break  # end of the object, or something TD never writes
            key_raw, _ = reader.scan_value(keep=True)
            if reader.take() != ":":
                break
            keep = key_raw in ('"streamer"', '"clipper"', '"video"')
            raw, _ = reader.scan_value(keep=keep)
            if keep:
                with contextlib.suppress(ValueError):
                    header[key_raw.strip('"')] = json.loads(raw)
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # closes the file now, not at garbage collection
    streamer = header.get("streamer")
    streamer = streamer if isinstance(streamer, dict) else {}
    video = header.get("video")
    video = video if isinstance(video, dict) else {}
    login = streamer.get("login") or streamer.get("name") or video.get("user_login")
    room = streamer.get("id") or video.get("user_id")
    created: datetime | None = None
    raw_created = video.get("created_at")
    if isinstance(raw_created, str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(raw_created)
            created = created.replace(tzinfo=UTC) if created.utcoffset() is None else created
            created = created.astimezone(UTC)
    start = video.get("start")
    end = video.get("end")
    video_id = video.get("id")
    video_type = video.get("type")
    return TdJsonHead(
        channel=_norm_channel(login) if isinstance(login, str) and login.strip() else None,
        channel_id=str(room) if isinstance(room, int | str) and room not in ("", 0) else None,
        video_id=str(video_id) if isinstance(video_id, int | str) and video_id != "" else None,
        video_type=video_type if isinstance(video_type, str) and video_type else None,
        created_at=created,
        start_s=float(start) if isinstance(start, int | float) else 0.0,
        end_s=float(end) if isinstance(end, int | float) else None,
        is_clip=isinstance(header.get("clipper"), dict),
    )


_CHAT_MSG_IDS = frozenset({"highlighted-message", "skip-subs-mode-message"})


def _td_emotes(message: Mapping[str, Any], text: str) -> tuple[EmoteUse, ...]:
    counts: Counter[tuple[str, str]] = Counter()
    fragments = message.get("fragments")
    if isinstance(fragments, list) and fragments:
        # Fragments carry the emote's text itself, so no offsets are needed.
        for frag in fragments:
            if not isinstance(frag, dict):
                continue
            emoticon = frag.get("emoticon")
            frag_text = frag.get("text")
            if isinstance(emoticon, dict) and isinstance(frag_text, str) and frag_text:
                emote_id = emoticon.get("emoticon_id")
                if isinstance(emote_id, str | int) and str(emote_id):
                    counts[(str(emote_id), frag_text)] += 1
    else:
        # Fallback for files without fragments.  TD writes end = begin + UTF-16 length + 1
        # ([FORMATS], TD ChatDownloader.cs L213-221); we read begin as a UTF-16 offset too
        # (an inference) and clamp out-of-range values.
        units = text.encode("utf-16-le")
        for emote in message.get("emoticons") or ():
            if not isinstance(emote, dict):
                continue
            emote_id, begin, end = emote.get("_id"), emote.get("begin"), emote.get("end")
            if not (isinstance(emote_id, str) and isinstance(begin, int) and isinstance(end, int)):
                continue
            lo, hi = max(begin, 0) * 2, min(end - 1, len(units) // 2) * 2
            name = units[lo:hi].decode("utf-16-le", "ignore").strip()
            if emote_id and name:
                counts[(emote_id, name)] += 1
    return tuple(EmoteUse(i, n, "twitch", c) for (i, n), c in counts.items())


# --- chat-downloader -----------------------------------------------------------------------

# chat-downloader's message_type names mapped back to our kinds: Twitch USERNOTICE msg-ids are
# restored (CD sites/twitch.py _MESSAGE_GROUP_REMAPPINGS); YouTube's paid items get short names.
_CD_KINDS = {
    "text_message": "chat",
    "highlighted_message": "chat",
    "send_message_in_subscriber_only_mode": "chat",
    "paid_message": "superchat",
    "paid_sticker": "supersticker",
    "membership_item": "membership",
    "sponsorships_gift_purchase_announcement": "membership_gift",
    "sponsorships_gift_redemption_announcement": "membership_gift_received",
    "subscription": "sub",
    "resubscription": "resub",
    "subscription_gift": "subgift",
    "anonymous_subscription_gift": "anonsubgift",
    "mystery_subscription_gift": "submysterygift",
    "anonymous_mystery_subscription_gift": "anonsubmysterygift",
    "extend_subscription": "extendsub",
    "standard_pay_forward": "standardpayforward",
    "community_pay_forward": "communitypayforward",
    "prime_community_gift_received": "primecommunitygiftreceived",
    "prime_paid_upgrade": "primepaidupgrade",
    "gift_paid_upgrade": "giftpaidupgrade",
    "anonymous_gift_paid_upgrade": "anongiftpaidupgrade",
    "reward_gift": "rewardgift",
    "raid": "raid",
    "unraid": "unraid",
    "ritual": "ritual",
    "bits_badge_tier": "bitsbadgetier",
}
_CD_YOUTUBE_TYPES = frozenset(
    {"paid_message", "paid_sticker", "membership_item", "sponsorships_gift_purchase_announcement"}
)
_CD_TWITCH_TYPES = frozenset(
    {"subscription", "resubscription", "subscription_gift", "raid", "ban_user", "clear_chat"}
)
_YOUTUBE_CHANNEL_ID = re.compile(r"UC[0-9A-Za-z_-]{22}")
# How many items to look through for platform evidence before asking the caller.
_PLATFORM_LOOKAHEAD = 1000


def _read_chat_downloader(
    chunks: Iterator[bytes], name: str, channel: str, platform: str | None
) -> Iterator[ChatEvent]:
    reader = _JsonReader(chunks)
    if reader.take() != "[":
        raise FormatError(f"{name}: not a chat-downloader JSON array")
    items = _array_items(reader, name, "chat-downloader")
    held: list[tuple[int, str, dict[str, Any]] | Malformed] = []
    plat = platform
    if plat is None:
        # Neither format version names its platform; look ahead (bounded) for evidence.
        looked = 0
        for item in items:
            if isinstance(item, Malformed):
                held.append(item)
                continue
            number, raw, value = item
            try:
                obj = _load_object(value)
            except _Bad as exc:
                held.append(Malformed(raw, f"item {number}: {exc}", name))
                continue
            held.append((number, raw, obj))
            looked += 1
            plat = _cd_platform_hint(obj)
            if plat is not None or looked >= _PLATFORM_LOOKAHEAD:
                break
        # The loop ends at evidence, at the look-ahead limit, or at end of file.
        if plat is None and looked:
            raise FormatError(
                f"{name}: cannot tell whether this chat-downloader file is YouTube or Twitch "
                "chat; pass --platform"
            )
    for entry in held:
        if isinstance(entry, Malformed):
            yield entry
        else:
            number, raw, obj = entry
            yield _cd_event_or_malformed(obj, raw, number, name, channel, plat or "")
    for item in items:
        if isinstance(item, Malformed):
            yield item
            continue
        number, raw, value = item
        try:
            obj = _load_object(value)
        except _Bad as exc:
            yield Malformed(raw, f"item {number}: {exc}", name)
            continue
        yield _cd_event_or_malformed(obj, raw, number, name, channel, plat or "")


def _cd_platform_hint(obj: Mapping[str, Any]) -> str | None:
    author = obj.get("author")
    author_id = author.get("id") if isinstance(author, dict) else obj.get("author_id")
    if isinstance(author_id, str) and _YOUTUBE_CHANNEL_ID.fullmatch(author_id):
        return "youtube"
    message_type = obj.get("message_type")
    if message_type in _CD_YOUTUBE_TYPES or (
        isinstance(message_type, str) and message_type.startswith("ticker_")
    ):
        return "youtube"
    if message_type in _CD_TWITCH_TYPES:
        return "twitch"
    # Twitch user ids are numeric (CD remaps the GQL commenter id / the user-id tag).
    if isinstance(author_id, int) or (isinstance(author_id, str) and author_id.isdigit()):
        return "twitch"
    return None


def _cd_event_or_malformed(
    obj: Mapping[str, Any], raw: str, number: int, name: str, channel: str, platform: str
) -> ChatEvent:
    try:
        return _cd_event(obj, channel, platform)
    except _Bad as exc:
        return Malformed(raw, f"item {number}: {exc}", name)


def _cd_time(obj: Mapping[str, Any]) -> datetime:
    ts = obj.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise _Bad("missing timestamp")
    # CD timestamps are microseconds since the epoch (CD docs/items.rst; the samples' values
    # such as 1562541137129857 are 2019).  Anything outside 1973..5138 is not microseconds.
    if not 1e14 <= ts < 1e17:
        raise _Bad(f"timestamp {ts} is not in microseconds since the epoch")
    return _EPOCH + timedelta(microseconds=int(ts))


def _cd_event(obj: Mapping[str, Any], channel: str, platform: str) -> ChatEvent:
    sent_at = _cd_time(obj)
    message_type = obj.get("message_type")
    # chat_replay_downloader (2020) repeats each paid message as a ticker entry with
    # ``ticker_duration``; chat-downloader marks them ``ticker_*``.  Not messages: control.
    if "ticker_duration" in obj or (
        isinstance(message_type, str) and message_type.startswith("ticker_")
    ):
        return ControlEvent(
            "other", channel=channel, params={"ticker": str(message_type or "ticker")}
        )
    user_id, login, display, badge_list = _cd_author(obj, platform)
    if message_type in ("ban_user", "clear_chat", "delete_message"):
        return _cd_moderation(obj, message_type, channel, platform, sent_at, login)
    if message_type is None:
        kind = "superchat" if "amount" in obj else "chat"
    elif isinstance(message_type, str) and message_type in _CD_KINDS:
        kind = _CD_KINDS[message_type]
    else:
        # Room states, notices, placeholders, viewer-engagement banners: nothing a chatter said.
        return ControlEvent("other", channel=channel, params={"message_type": str(message_type)})
    text = obj.get("message")
    if text is None and kind != "chat":
        text = ""  # a Super Chat, sticker or membership may come without words
    if not isinstance(text, str):
        raise _Bad("missing message")
    badges: dict[str, str] = {}
    for badge in badge_list:
        badges[badge[0]] = badge[1]
    lowered = {k.lower() for k in badges}
    extra: dict[str, str] = {}
    for key in ("amount", "currency", "time_in_seconds", "action_type"):
        value = obj.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            extra[key] = str(value)
    if isinstance(message_type, str):
        extra["message_type"] = message_type
    bits = obj.get("bits")
    reply = obj.get("in_reply_to")
    reply_id = reply.get("message_id") if isinstance(reply, dict) else None
    message_id = obj.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        message_id = deterministic_message_id(
            platform, channel, sent_at, user_id or login or display, text
        )
    return ChatMessage(
        platform=platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        user_id=user_id,
        user_login=login,
        user_name=display,
        kind=kind,
        badges=badges,
        is_mod=bool(lowered & {"moderator", "broadcaster", "owner"}),
        is_subscriber=bool(lowered & {"subscriber", "founder"})
        or any(k.startswith(("member", "new member")) for k in lowered),
        is_first=obj.get("is_first_message") is True,
        bits=bits if isinstance(bits, int) and not isinstance(bits, bool) and bits > 0 else 0,
        reply_parent_id=reply_id if isinstance(reply_id, str) else None,
        channel_platform_id=_opt_str(obj, "channel_id", allow_int=True),
        emotes=_cd_emotes(obj.get("emotes"), platform),
        source="replay",
        extra=extra,
    )


def _cd_author(
    obj: Mapping[str, Any], platform: str
) -> tuple[str | None, str | None, str | None, list[tuple[str, str]]]:
    """(user id, login, display name, badges) from either format version."""
    author = obj.get("author")
    badges: list[tuple[str, str]] = []
    if isinstance(author, dict):
        user_id = _opt_str(author, "id", allow_int=True)
        name = _opt_str(author, "name")
        display = _opt_str(author, "display_name") or name
        for badge in author.get("badges") or ():
            if not isinstance(badge, dict):
                continue
            # Twitch badges have name/version (the IRC badges tag); YouTube ones a title.
            key = badge.get("name") if platform == "twitch" else None
            key = key or badge.get("title") or badge.get("name")
            if isinstance(key, str) and key:
                version = badge.get("version")
                badges.append((key, "1" if version is None else str(version)))
    elif isinstance(author, str):
        # chat_replay_downloader (2020): author is the display name, author_id beside it,
        # badges a comma-separated string ("Verified, Moderator", "Member (2 months)").
        user_id = _opt_str(obj, "author_id", allow_int=True)
        name = display = author
        raw_badges = obj.get("badges")
        if isinstance(raw_badges, str):
            badges = [(b.strip(), "1") for b in raw_badges.split(",") if b.strip()]
    elif author is None:
        user_id = name = display = None
    else:
        raise _Bad("author must be an object or a string")
    # A YouTube name is a display name, never a login; a Twitch display name that is a case
    # variant of the login gives the login.
    login = None
    if platform != "youtube" and name and _LOGIN.fullmatch(name):
        login = name.lower()
    return user_id, login, display, badges


def _cd_emotes(value: object, platform: str) -> tuple[EmoteUse, ...]:
    if platform != "twitch" or not isinstance(value, list):
        return ()
    out: list[EmoteUse] = []
    for emote in value:
        if not isinstance(emote, dict):
            continue
        emote_id, name = emote.get("id"), emote.get("name")
        if not isinstance(emote_id, str | int) or not isinstance(name, str) or not name:
            continue
        # CD keeps the IRC ranges as "b-e,b-e": one use per range ([FORMATS]).
        locations = emote.get("locations")
        count = len(locations.split(",")) if isinstance(locations, str) and locations else 1
        out.append(EmoteUse(str(emote_id), name, "twitch", count))
    return tuple(out)


def _cd_moderation(
    obj: Mapping[str, Any],
    message_type: str,
    channel: str,
    platform: str,
    at: datetime,
    author_login: str | None,
) -> ModerationEvent:
    target_login: str | None = None
    target_message_id: str | None = None
    duration: int | None = None
    kind: ModerationKind
    if message_type == "ban_user":
        banned = obj.get("banned_user")
        target_login = banned.lower() if isinstance(banned, str) and banned else None
        ban_duration = obj.get("ban_duration")
        if isinstance(ban_duration, int) and not isinstance(ban_duration, bool):
            kind, duration = "timeout", ban_duration
        else:
            kind = "ban"
    elif message_type == "delete_message":
        kind = "delete"
        target = obj.get("target_message_id")
        target_message_id = target if isinstance(target, str) else None
        target_login = author_login
    else:
        kind = "clear"
    target_user_id = _opt_str(obj, "target_user_id", allow_int=True)
    return ModerationEvent(
        platform=platform,
        channel=channel,
        at=at,
        kind=kind,
        event_key=moderation_event_key(
            platform, channel, at, kind, target_user_id or target_login, target_message_id
        ),
        target_user_id=target_user_id,
        target_login=target_login,
        target_message_id=target_message_id,
        duration_s=duration,
        channel_platform_id=_opt_str(obj, "channel_id", allow_int=True),
        source="replay",
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _rfc3339_out(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_jsonl(events: Iterable[ChatMessage], fp: TextIO) -> int:
    """Write messages as our JSON lines (one object per line) to ``fp``; return how many.

    Every field of :class:`ChatMessage` except ``source`` is written, so reading the file back
    with ``read_events(path, "jsonl")`` gives equal messages (with ``source="replay"``), ids
    included.  Raises :class:`TypeError` for anything that is not a ``ChatMessage``.
    """
    count = 0
    for msg in events:
        if not isinstance(msg, ChatMessage):
            raise TypeError(f"write_jsonl writes ChatMessage only, got {type(msg).__name__}")
        obj: dict[str, object] = {
            "platform": msg.platform,
            "channel": msg.channel,
            "id": msg.message_id,
            "sent_at": _rfc3339_out(msg.sent_at),
            "user_id": msg.user_id,
            "user_login": msg.user_login,
            "user_name": msg.user_name,
            "text": msg.text,
            "kind": msg.kind,
        }
        if msg.badges:
            obj["badges"] = msg.badges
        if msg.bits:
            obj["bits"] = msg.bits
        if msg.reply_parent_id is not None:
            obj["reply_parent_id"] = msg.reply_parent_id
        for flag in ("is_mod", "is_subscriber", "is_first"):
            if getattr(msg, flag):
                obj[flag] = True
        if msg.channel_platform_id is not None:
            obj["channel_platform_id"] = msg.channel_platform_id
        if msg.emotes:
            obj["emotes"] = [
                {"id": e.emote_id, "name": e.emote_name, "provider": e.provider, "count": e.count}
                for e in msg.emotes
            ]
        if msg.received_at is not None:
            obj["received_at"] = _rfc3339_out(msg.received_at)
        if msg.extra:
            obj["extra"] = msg.extra
        fp.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count
