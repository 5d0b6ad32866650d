"""Sniffing a chat log's format from the start of the file (:func:`detect_format`)."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import Counter

from collector.formats.common import _SNIFF_BYTES, FORMATS, FormatError
from collector.formats.gql import looks_like_gql
from collector.formats.jsonscan import _first_item
from collector.formats.stream import ChatLog, _log_name, _maybe_gunzip, _open_log

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
# Keys of a chat-downloader item (one of them is enough).
_CD_KEYS = frozenset({"message", "timestamp", "author"})
_CD_KEY_RE = re.compile(r'"(message|timestamp|author)"\s*:')


def _read_head(log: ChatLog, name: str | None = None) -> bytes:
    """The first 64 KiB of ``log``, decompressed when it is gzip."""
    with _open_log(log) as raw:
        stream = _maybe_gunzip(raw)
        try:
            return stream.read(_SNIFF_BYTES)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise FormatError(f"{_log_name(log, name)}: corrupt gzip stream: {exc}") from exc


def _head_text(head: bytes) -> str:
    return head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")


def is_empty(log: ChatLog) -> bool:
    """True when ``log`` (a path or a file's bytes) holds nothing but blanks (after gzip
    decompression)."""
    return not _head_text(_read_head(log))


def detect_format(log: ChatLog, *, name: str | None = None) -> str:
    """Return which of :data:`FORMATS` ``log`` (a path or a file's bytes) is in, from its first
    64 KiB only.

    Raises :class:`FormatError` (naming the file, or ``name``) when nothing matches or the file
    is empty, and :class:`OSError` when the file cannot be read.
    """
    head = _read_head(log, name)
    label = _log_name(log, name)
    if not _head_text(head):
        raise FormatError(f"{label}: the file is empty: there is nothing to replay")
    fmt = _sniff(head)
    if fmt is None:
        raise FormatError(
            f"{label}: not a chat log format we know (expected one of {', '.join(FORMATS)}); "
            "name one with --format"
        )
    return fmt


def td_txt_timestamps(log: ChatLog) -> str | None:
    """How a TwitchDownloader TXT export stamps its lines, from its first 64 KiB.

    ``"relative"`` (``[1:52:30]``, time into the VOD), ``"utc"`` (``[2024-01-06 16:20:30 UTC]``)
    or ``"none"`` (``name: text``, ``--timestamp-format None``): the kind most of the first
    200 lines have.  ``None`` when none of them is a TwitchDownloader line.
    """
    kinds: Counter[str] = Counter()
    lines = _head_text(_read_head(log)).split("\n")
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
    first = _first_item(head, _CD_KEY_RE)
    # An empty export is "[]": chat-downloader writes that when a chat had nothing.
    return first is not None and (first.empty or bool(_CD_KEYS & first.keys))
