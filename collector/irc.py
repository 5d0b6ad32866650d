"""Twitch chat over IRC: parse lines into typed events, build outgoing lines.

Pure: text in, :mod:`collector.events` out; no sockets, no clock.  The WebSocket client feeds
:func:`split_frame` output to :func:`parse_event` (which never raises) and sends what
:func:`format_line` builds.  The gap filler feeds :func:`parse_recent_messages` output to
:func:`parse_event` with ``source="gapfill"``.

Protocol sources cited below as [IRC] and [RM] are listed in docs/architecture.md, "Sources".
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chatpulse.core.errors import ChatpulseError
from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
    ModerationKind,
    Source,
    deterministic_message_id,
    moderation_event_key,
    new_message,
)

log = logging.getLogger(__name__)

__all__ = [
    "IrcMessage",
    "IrcParseError",
    "RecentMessagesError",
    "RecentMessagesResponse",
    "escape_tag_value",
    "format_line",
    "parse_emotes",
    "parse_event",
    "parse_line",
    "parse_recent_messages",
    "parse_recent_messages_response",
    "repair_counts",
    "split_frame",
    "to_event",
    "unescape_tag_value",
]


class IrcParseError(ChatpulseError, ValueError):
    """A line (or a recent-messages body) that is not well-formed; the message says why."""


class RecentMessagesError(IrcParseError):
    """A recent-messages error body (HTTP 4xx/5xx shape): no messages, only an error code.

    ``error_code`` is the service's machine-readable code (``channel_ignored``,
    ``invalid_channel_login``, ...) or ``None`` when the body gave none.
    """

    def __init__(self, message: str, *, error_code: str | None, error: str | None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.error = error


@dataclass(frozen=True, slots=True)
class IrcMessage:
    """One parsed IRC line.

    ``tags`` are unescaped; ``command`` is upper case (IRC commands are case-insensitive);
    ``params`` holds the middle parameters and, last, the trailing one (without its ``:``).
    """

    tags: dict[str, str]
    prefix: str | None
    command: str
    params: tuple[str, ...]

    @property
    def nick(self) -> str | None:
        """The sender's nick from a ``nick!user@host`` prefix; ``None`` for a server prefix."""
        prefix = self.prefix
        if not prefix:
            return None
        for sep in ("!", "@"):
            if sep in prefix:
                return prefix.split(sep, 1)[0] or None
        # A bare prefix with a dot is a server name (``tmi.twitch.tv``), not a user.
        return None if "." in prefix else prefix

    @property
    def channel(self) -> str | None:
        """The first ``#channel`` parameter, lower case, without ``#``; ``None`` if none."""
        for param in self.params:
            if param.startswith("#"):
                return param[1:].lower()
        return None

    @property
    def trailing(self) -> str:
        """The last parameter (the message text of PRIVMSG/NOTICE/PING), ``""`` if none."""
        return self.params[-1] if self.params else ""


# --------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------

_set_tags, _set_prefix, _set_command, _set_params = (
    getattr(IrcMessage, name).__set__ for name in IrcMessage.__slots__
)

# IRC commands are letters or a three-digit numeric (RFC 1459 section 2.3.1).
_COMMAND_RE = re.compile(r"[A-Za-z]+|[0-9]{3}")
# Characters no single IRC line may carry: line separators end the line, NUL is forbidden.
_FORBIDDEN = ("\r", "\n", "\x00")

_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}


def unescape_tag_value(value: str) -> str:
    """Undo IRCv3 tag-value escaping.

    ``\\:`` -> ``;``, ``\\s`` -> space, ``\\\\`` -> ``\\``, ``\\r`` -> CR, ``\\n`` -> LF, any
    other ``\\X`` -> ``X``, a trailing lone ``\\`` is dropped ([IRC] "IRCv3 tag-value
    unescape", TIRS ``decode_tag_value``).  One pass, left to right, so ``\\s\\s`` is two spaces
    (Chatterino PR #3711 broke on that).
    """
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is None:
            break  # trailing lone backslash: dropped
        out.append(_UNESCAPES.get(nxt, nxt))
    return "".join(out)


def escape_tag_value(value: str) -> str:
    """Escape a tag value so that :func:`unescape_tag_value` gives it back unchanged."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def _parse_tags(raw: str) -> dict[str, str]:
    if (
        raw
        and "\\" not in raw
        and ";;" not in raw
        and ";=" not in raw
        and raw[0] not in "=;"
        and raw[-1] != ";"
    ):
        # Fast path for the common line (no escapes, no empty items or keys): the loop below
        # without its checks.  A plain loop of partition() beats dict() of a list of split()
        # pairs by about 15% on Twitch's 19 tags a line (CPython 3.11); a bare ``key`` gets
        # the empty value, as below.
        fast = {}
        for item in raw.split(";"):
            key, _, value = item.partition("=")
            fast[key] = value
        return fast
    tags = {}
    for item in raw.split(";"):
        if not item:
            continue  # ``a=1;;b=2`` or a trailing ``;``: nothing to keep
        key, sep, value = item.partition("=")
        if not key:
            raise IrcParseError(f"tag without a key: {item!r}")
        # ``k=`` and a bare ``k`` both mean the empty value ([IRC] "Message framing").
        # A repeated key: the last one wins.
        tags[key] = unescape_tag_value(value) if sep else ""
    return tags


def parse_line(line: str) -> IrcMessage:
    """Parse one IRC line: ``[@tags ][:prefix ]COMMAND[ params][ :trailing]``.

    Trailing CR/LF are stripped; tags and prefix are optional.  Raises :class:`IrcParseError`
    when the line is empty, holds CR/LF/NUL inside (split WebSocket frames with
    :func:`split_frame` first), or lacks a valid command.
    """
    rest = line.rstrip("\r\n")
    if "\r" in rest or "\n" in rest or "\x00" in rest:
        raise IrcParseError("line contains CR, LF or NUL; split frames into lines first")
    rest = rest.lstrip(" ")
    if not rest:
        raise IrcParseError("empty line")

    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw_tags)
        rest = rest.lstrip(" ")

    prefix: str | None = None
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        if not prefix:
            raise IrcParseError("empty prefix")
        rest = rest.lstrip(" ")

    command, _, rest = rest.partition(" ")
    if not command:
        raise IrcParseError("no command")
    if not _COMMAND_RE.fullmatch(command):
        raise IrcParseError(f"invalid command {command[:40]!r}")

    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")  # RFC 1459: parameters are separated by one or more spaces
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])  # the trailing parameter runs to the end, spaces included
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    # Each slot set directly: the same object as IrcMessage(...), whose frozen __init__ costs
    # three times as much, on every line a replay parses.
    msg: IrcMessage = object.__new__(IrcMessage)
    _set_tags(msg, tags)
    _set_prefix(msg, prefix)
    _set_command(msg, command.upper())
    _set_params(msg, tuple(params))
    return msg


def format_line(
    command: str,
    *params: str,
    tags: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> str:
    """Build one outgoing IRC line, without the CR LF terminator (the transport adds it).

    Tag values are escaped; the last parameter gets a ``:`` when it is empty, has a space or
    starts with ``:``.  ``parse_line(format_line(c, *p, tags=t, prefix=x))`` gives back
    ``IrcMessage(t, x, c.upper(), p)``.  Raises :class:`ValueError` for anything that cannot be
    sent faithfully: an invalid command, a tag key with ``=``, ``;`` or a space, a NUL in a tag
    value (IRCv3 escaping has no form for it), a middle
    parameter that is empty, has a space or starts with ``:``, or CR/LF/NUL anywhere.
    """
    if not _COMMAND_RE.fullmatch(command):
        raise ValueError(f"invalid IRC command {command!r}")
    parts: list[str] = []
    if tags:
        items: list[str] = []
        for key, value in tags.items():
            if not key or any(ch in key for ch in "=; ") or _has_forbidden(key):
                raise ValueError(f"invalid tag key {key!r}")
            if "\x00" in value:
                raise ValueError(f"tag {key!r}: NUL cannot be escaped")
            items.append(f"{key}={escape_tag_value(value)}")
        parts.append("@" + ";".join(items))
    if prefix is not None:
        if not prefix or " " in prefix or _has_forbidden(prefix):
            raise ValueError(f"invalid prefix {prefix!r}")
        parts.append(":" + prefix)
    parts.append(command)
    for i, param in enumerate(params):
        if _has_forbidden(param):
            raise ValueError(f"parameter {i} contains CR, LF or NUL")
        if i == len(params) - 1:
            needs_colon = not param or " " in param or param.startswith(":")
            parts.append(":" + param if needs_colon else param)
        elif not param or " " in param or param.startswith(":"):
            raise ValueError(f"middle parameter {i} must be non-empty, without spaces or ':'")
        else:
            parts.append(param)
    return " ".join(parts)


def _has_forbidden(text: str) -> bool:
    return any(ch in text for ch in _FORBIDDEN)


def split_frame(data: str) -> list[str]:
    """Split one WebSocket text frame into IRC lines, dropping empty ones.

    A frame can hold several lines separated by CR LF ([IRC] "Endpoints"; tmi.js, TIRS).
    A lone LF also ends a line, so a server that omits the CR does not glue lines together.
    """
    return [line for line in data.replace("\r\n", "\n").split("\n") if line.strip(" \r")]


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_ACTION_PREFIX = "\x01ACTION "
# Messages in which these appear tell the client its login failed (seen as NOTICE * :...;
# [IRC] "Login"; TwitchIO 2.x and other clients match the same two texts).
_AUTH_FAILED_TEXTS = ("Login authentication failed", "Improperly formatted auth")
# Tags kept in ChatMessage.extra besides every ``msg-param-*`` / ``source-*`` / paid-chat tag.
_EXTRA_TAGS = (
    "color",
    "msg-id",
    "system-msg",
    "custom-reward-id",
    "reply-parent-user-id",
    "reply-parent-user-login",
    "reply-parent-display-name",
    "reply-parent-msg-body",
    "reply-thread-parent-msg-id",
    "returning-chatter",
    "vip",
    "rm-deleted",
)
_EXTRA_PREFIXES = ("msg-param-", "source-", "pinned-chat-paid-")
# Badges that carry moderator powers in the channel: ``is_mod`` includes the broadcaster.
_MOD_BADGES = frozenset({"broadcaster", "moderator", "lead_moderator"})
# ``badge-info`` items that hold the exact subscription months ([IRC] PRIVMSG tags).
_MONTHS_BADGES = ("subscriber", "founder")


class _Reject(Exception):
    """Internal: the line parsed but cannot become a valid event (becomes Malformed)."""


# --------------------------------------------------------------------------------------------
# Repairs: real Twitch oddities the parser fixes instead of losing a line
# --------------------------------------------------------------------------------------------

#: Keys of :func:`repair_counts`.
REPAIR_KINDS = (
    "emote_range_clamped",
    "emote_range_realigned",
    "emote_range_dropped",
    "tag_dropped",
    "sent_ts_fallback",
)
_repairs: Counter[str] = Counter()
_repairs_lock = threading.Lock()


def _count_repair(kind: str, n: int = 1) -> None:
    if n:
        with _repairs_lock:
            _repairs[kind] += n


def repair_counts() -> dict[str, int]:
    """How often this process's parser repaired a line instead of losing it, by kind.

    ``emote_range_clamped``: an emote range ran past the end of the text (twitchdev/issues#104)
    and was cut at its end; ``emote_range_realigned``: a range that did not line up with the
    text was named from another use of the same emote, or moved by the one shift that lines up
    every such range of the message (a ``/me`` sub notice counts from ``ACTION``,
    twitchdev/issues#175); ``emote_range_dropped``: a range that could be neither (left to the
    channel's emote sets); ``tag_dropped``: an optional tag (``bits``, ``ban-duration``,
    ``badge-info``) with an unusable value was dropped, the message kept; ``sent_ts_fallback``: an
    unusable ``tmi-sent-ts`` (negative on real CLEARMSG lines) was replaced by the received time.
    Every kind is present, zero when it never happened.  Counts only grow (Prometheus counters).
    """
    with _repairs_lock:
        return {kind: _repairs[kind] for kind in REPAIR_KINDS}


# --------------------------------------------------------------------------------------------
# Emotes
# --------------------------------------------------------------------------------------------

# How far a misaligned emote range may be moved to line up: "ACTION " is 7 code points.
_MAX_EMOTE_SHIFT = 8


@dataclass(frozen=True, slots=True)
class EmoteRanges:
    """The emote uses of one message and what had to be repaired to get them.

    ``clamped``, ``realigned`` and ``dropped`` count ranges; see :func:`repair_counts`.
    """

    uses: tuple[EmoteUse, ...]
    clamped: int = 0
    realigned: int = 0
    dropped: int = 0


def _lines_up(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end+1]`` can be an emote code: inside the text, no space or control
    character, and not cutting a word (emote codes are letters, digits and ``_``; a code may
    touch an emoji or punctuation, as in Chatterino's emotes3.json ``😂Kappa😂 &Kappa``)."""
    if start < 0 or end >= len(text) or start > end:
        return False
    code = text[start : end + 1]
    # U+0020 is the one character that is both printable and a space.
    if " " in code or not code.isprintable():
        return False
    # A word character (letter, digit, ``_``) on both sides of either edge cuts a word; tested
    # inline, as this runs for every emote range of every message.
    if start > 0:
        before, first = text[start - 1], code[0]
        if (before.isalnum() or before == "_") and (first.isalnum() or first == "_"):
            return False
    if end + 1 < len(text):
        after, last = text[end + 1], code[-1]
        if (after.isalnum() or after == "_") and (last.isalnum() or last == "_"):
            return False
    return True


def _common_shift(text: str, ranges: list[tuple[str, int, int]]) -> int | None:
    """The smallest shift that lines up every one of ``ranges``, each id with one name."""
    for distance in range(1, _MAX_EMOTE_SHIFT + 1):
        for shift in (-distance, distance):
            names: dict[str, str] = {}
            for emote_id, start, end in ranges:
                if not _lines_up(text, start + shift, end + shift):
                    break
                code = text[start + shift : end + shift + 1]
                if names.setdefault(emote_id, code) != code:
                    break
            else:
                return shift
    return None


def parse_emote_ranges(tag: str, text: str) -> EmoteRanges:
    """Turn a Twitch ``emotes`` tag into emote uses, repairing the ranges Twitch gets wrong.

    The tag is ``id:start-end,start-end/id2:...``; offsets are 0-based, inclusive, in Unicode
    code points of ``text`` (for ``/me``, of the text without the ACTION wrapper) ([IRC]
    "Emote range semantics").  Real lines break this in two ways, and a misaligned slice is
    never taken as an emote's name (it would be a fake emote such as ``" Kapp"``):

    * a range runs past the end of the text (twitchdev/issues#104): its end is clamped to the
      text ([IRC] says to clamp) and used when the clamped slice lines up, else repaired as
      below;
    * a range does not line up with the text (a ``/me`` sub notice counts from ``ACTION``;
      twitchdev/issues#175; or a range is off by one): the emote is named from another use of
      the same id in the message, or every such range is moved by the one smallest shift (up to
      8 code points) that lines them all up with one name per id; failing both it is dropped,
      left to the channel's emote sets.

    Ranges that are malformed or reversed are dropped, never fatal.  One use per emote id with
    its count, in order of first appearance in the text.
    """
    if not tag:
        return _NO_EMOTES
    n = len(text)
    ranges: list[tuple[str, int, int]] = []
    dropped = 0
    for group in tag.split("/"):
        emote_id, sep, spans = group.partition(":")
        if not emote_id or not sep:
            dropped += bool(group)
            continue
        for rng in spans.split(","):
            start_s, dash, end_s = rng.partition("-")
            if not dash or not _is_number(start_s) or not _is_number(end_s):
                dropped += bool(rng)
                continue
            start, end = int(start_s), int(end_s)
            if start > end:
                dropped += 1
                continue
            ranges.append((emote_id, start, end))

    # Ranges that line up as they are; the others are repaired together: first by the one
    # shift that lines them all up (a whole message counted from the wrong place), else one by
    # one: clamped at the end of the text, named from another use, or dropped.
    clamped = realigned = 0
    found: dict[str, list[tuple[int, str]]] = {}
    misaligned: list[tuple[str, int, int]] = []
    for emote_id, start, end in ranges:
        if _lines_up(text, start, end):
            found.setdefault(emote_id, []).append((start, text[start : end + 1]))
        else:
            misaligned.append((emote_id, start, end))
    extra_counts: dict[str, int] = {}
    shift = _common_shift(text, misaligned) if misaligned else None
    unnamed: list[tuple[str, int, int]] = []
    for emote_id, start, end in misaligned:
        if shift is not None:
            found.setdefault(emote_id, []).append(
                (start + shift, text[start + shift : end + shift + 1])
            )
            realigned += 1
        elif end >= n and _lines_up(text, start, n - 1):
            found.setdefault(emote_id, []).append((start, text[start:n]))
            clamped += 1
        else:
            unnamed.append((emote_id, start, end))
    for emote_id, start, _end in unnamed:
        if emote_id in found and start < n:
            # Another use of the same id names it; a range wholly past the text is no use.
            extra_counts[emote_id] = extra_counts.get(emote_id, 0) + 1
            realigned += 1
        else:
            dropped += 1
    uses: list[tuple[int, EmoteUse]] = []
    for emote_id, spots in found.items():
        first, name = min(spots)
        count = len(spots) + extra_counts.get(emote_id, 0)
        uses.append((first, EmoteUse(emote_id, name, "twitch", count)))
    uses.sort(key=lambda item: item[0])
    return EmoteRanges(tuple(use for _, use in uses), clamped, realigned, dropped)


_NO_EMOTES = EmoteRanges(())


def parse_emotes(tag: str, text: str) -> tuple[EmoteUse, ...]:
    """The emote uses of :func:`parse_emote_ranges` (one per id with its count)."""
    return parse_emote_ranges(tag, text).uses


def _is_number(text: str) -> bool:
    # ASCII only: str.isdigit() accepts "²", which int() then rejects.
    return text.isascii() and text.isdigit()


def _parse_badges(tag: str) -> dict[str, str]:
    badges: dict[str, str] = {}
    for item in tag.split(","):
        # ``name/version``; split on the first ``/`` only ([IRC] PRIVMSG tags, ``badge-info``).
        # An item without ``/`` is dropped, as Chatterino does (snapshot badges-invalid.json).
        name, sep, version = item.partition("/")
        if name and sep:
            badges[name] = version
    return badges


# --------------------------------------------------------------------------------------------
# Times and optional tags
# --------------------------------------------------------------------------------------------

_INT32_MAX = 2**31 - 1  # bits and duration_s are SQL integer columns


def _ms_to_datetime(raw: str) -> datetime | str:
    """The datetime of a millisecond stamp, or why it is unusable."""
    if not _is_number(raw):
        return "is not a millisecond timestamp"
    try:
        # A multiple of a constant: a third of the cost of timedelta(milliseconds=...); the
        # same OverflowError past timedelta's or datetime's range.
        return _EPOCH + _MILLISECOND * int(raw)
    except OverflowError:
        return "out of range"


def _received_time(msg: IrcMessage, received_at: datetime | None) -> datetime | None:
    # recent-messages' own receive time first (a gap-fill line arrives long after it was sent),
    # then ours (live, or the log's stamp in a replay).
    rm_received = msg.tags.get("rm-received-ts")
    if rm_received:
        at = _ms_to_datetime(rm_received)
        if isinstance(at, datetime):
            return at
    return received_at


def _event_time(msg: IrcMessage, received_at: datetime | None) -> tuple[datetime, dict[str, str]]:
    """The event's time and what to keep in ``extra`` about it.

    ``tmi-sent-ts`` when usable; else the received time (``rm-received-ts``, else
    ``received_at``) with the unusable raw stamp kept as ``extra["tmi-sent-ts"]``.  Real CLEARMSG
    lines carry negative stamps (dank-twitch-irc's clearmsg test, -6795364578871).
    """
    raw = msg.tags.get("tmi-sent-ts")
    if raw:
        at = _ms_to_datetime(raw)
        if isinstance(at, datetime):
            return at, {}
        fallback = _received_time(msg, received_at)
        if fallback is None:
            raise _Reject(f"tmi-sent-ts {at}: {raw[:40]!r}, and no received time to use instead")
        log.debug(
            "unusable tmi-sent-ts; using the received time",
            extra={"command": msg.command, "value": raw[:40]},
        )
        _count_repair("sent_ts_fallback")
        return fallback, {"tmi-sent-ts": raw}
    fallback = _received_time(msg, received_at)
    if fallback is None:
        raise _Reject(f"{msg.command} without tmi-sent-ts and no received_at")
    return fallback, {}


def _require_channel(msg: IrcMessage) -> str:
    channel = msg.channel
    if not channel:
        raise _Reject(f"{msg.command} without a #channel")
    return channel


def _opt(tags: Mapping[str, str], key: str) -> str | None:
    return tags.get(key) or None


def _drop_tag(msg: IrcMessage, key: str, raw: str, kept: dict[str, str]) -> None:
    # One unusable optional tag costs that field, never the message: the raw value stays in
    # ``extra`` under the tag's own name.
    log.debug(
        "unusable optional tag dropped", extra={"command": msg.command, "tag": key, "value": raw}
    )
    _count_repair("tag_dropped")
    kept[key] = raw


def _opt_int_tag(msg: IrcMessage, key: str, kept: dict[str, str]) -> int | None:
    """An optional non-negative integer tag; ``None`` (and the raw value in ``kept``) when the
    value is not one or does not fit an SQL integer."""
    raw = msg.tags.get(key)
    if not raw:
        return None
    if _is_number(raw) and int(raw) <= _INT32_MAX:
        return int(raw)
    _drop_tag(msg, key, raw, kept)
    return None


def _sub_months(msg: IrcMessage, kept: dict[str, str]) -> str | None:
    """Exact subscription months from ``badge-info`` (``subscriber/N`` or ``founder/N``)."""
    info = msg.tags.get("badge-info")
    if not info:
        return None
    for item in info.split(","):
        name, sep, months = item.partition("/")
        if name in _MONTHS_BADGES and sep:
            if _is_number(months):
                return str(int(months))
            _drop_tag(msg, "badge-info", info, kept)
            return None
    return None


def _keeps(key: str) -> bool:
    kept = _KEPT.get(key)
    if kept is None:
        kept = key in _EXTRA_TAGS or key.startswith(_EXTRA_PREFIXES)
        if len(_KEPT) < 4096:  # bounded: a hostile file may invent tag names
            _KEPT[key] = kept
    return kept


#: Tag name -> whether ``extra`` keeps it: a line has some twenty tags, from a small set.
_KEPT: dict[str, bool] = {}
#: A line's tag names, in order -> those ``extra`` keeps: the lines of one source carry the
#: same few tag lists, and a line keeps two or three of its twenty tags.
_KEPT_OF: dict[tuple[str, ...], tuple[str, ...]] = {}


def _extra(tags: Mapping[str, str]) -> dict[str, str]:
    names = tuple(tags)
    kept = _KEPT_OF.get(names)
    if kept is None:
        kept = tuple(k for k in names if _keeps(k))
        if len(_KEPT_OF) < 4096:  # bounded, as _KEPT
            _KEPT_OF[names] = kept
    return {k: v for k in kept if (v := tags[k])}


def _chat_message(
    msg: IrcMessage,
    *,
    kind: str,
    text: str,
    user_login: str | None,
    received_at: datetime | None,
    source: Source,
    platform: str,
    notes: Mapping[str, str] | None = None,
) -> ChatMessage:
    tags = msg.tags
    channel = _require_channel(msg)
    sent_at, kept = _event_time(msg, received_at)
    badges = _parse_badges(tags.get("badges", ""))
    user_id = _opt(tags, "user-id")
    message_id = _opt(tags, "id") or deterministic_message_id(
        platform, channel, sent_at, user_id or user_login, text
    )
    bits = _opt_int_tag(msg, "bits", kept)
    months = _sub_months(msg, kept)
    emotes = parse_emote_ranges(tags.get("emotes", ""), text)
    repaired = emotes.clamped or emotes.realigned or emotes.dropped
    if repaired:
        _count_repair("emote_range_clamped", emotes.clamped)
        _count_repair("emote_range_realigned", emotes.realigned)
        _count_repair("emote_range_dropped", emotes.dropped)
    extra = _extra(tags)
    if months is not None:
        extra["sub-months"] = months
    if repaired:
        for key, count in (
            ("emote-ranges-clamped", emotes.clamped),
            ("emote-ranges-realigned", emotes.realigned),
            ("emote-ranges-dropped", emotes.dropped),
        ):
            if count:
                extra[key] = str(count)
    if kept:
        extra.update(kept)
    if notes:
        extra.update(notes)
    # new_message: ChatMessage(...) at half the cost, the fields in their declared order.
    return new_message(
        platform,
        channel,
        message_id,
        sent_at,
        text,
        user_id,
        user_login,
        _opt(tags, "display-name"),
        kind,
        badges,
        tags.get("mod") == "1" or not _MOD_BADGES.isdisjoint(badges),
        tags.get("subscriber") == "1" or "subscriber" in badges,
        tags.get("first-msg") == "1",
        bits or 0,
        _opt(tags, "reply-parent-msg-id"),
        _opt(tags, "room-id"),
        emotes.uses,
        received_at,
        source,
        extra,
    )


def _privmsg(
    msg: IrcMessage, received_at: datetime | None, source: Source, platform: str
) -> ChatMessage:
    if len(msg.params) < 2:
        raise _Reject("PRIVMSG without text")
    text = msg.params[1]
    kind = "chat"
    # ``/me``: ``\x01ACTION <text>\x01``; emote offsets refer to the inner text ([IRC],
    # Chatterino snapshot action.json; TIRS sets is_action on exactly this shape).
    if text.startswith(_ACTION_PREFIX) and text.endswith("\x01"):
        kind = "action"
        text = text[len(_ACTION_PREFIX) : -1]
    return _chat_message(
        msg,
        kind=kind,
        text=text,
        user_login=msg.nick,
        received_at=received_at,
        source=source,
        platform=platform,
    )


def _usernotice(
    msg: IrcMessage, received_at: datetime | None, source: Source, platform: str
) -> ChatMessage:
    # The prefix is the server; the user is in the tags.  ``msg-id`` is an open set
    # (sub, resub, subgift, raid, announcement, viewermilestone, ...; [IRC] USERNOTICE).
    text = msg.params[1] if len(msg.params) >= 2 else ""
    notes: dict[str, str] = {}
    if text.startswith(_ACTION_PREFIX) and text.endswith("\x01"):
        # A ``/me`` sub message (real: TIRS test_sneaky_action_invalid_emote_tag).  The kind stays
        # the notice's; the text is unwrapped as for PRIVMSG and ``extra["action"]`` says so.
        # Twitch counts this one's emote ranges from ``ACTION``, so parse_emote_ranges lines
        # them up again (twitchdev/issues#175).
        text = text[len(_ACTION_PREFIX) : -1]
        notes["action"] = "1"
    return _chat_message(
        msg,
        kind=msg.tags.get("msg-id") or "usernotice",
        text=text,
        user_login=_opt(msg.tags, "login"),
        received_at=received_at,
        source=source,
        platform=platform,
        notes=notes,
    )


def _moderation(
    msg: IrcMessage,
    *,
    kind: ModerationKind,
    target_user_id: str | None,
    target_login: str | None,
    target_message_id: str | None,
    duration_s: int | None,
    received_at: datetime | None,
    source: Source,
    platform: str,
    kept: dict[str, str] | None = None,
) -> ModerationEvent:
    channel = _require_channel(msg)
    at, stamp = _event_time(msg, received_at)
    key = moderation_event_key(
        platform, channel, at, kind, target_user_id or target_login, target_message_id
    )
    return ModerationEvent(
        platform=platform,
        channel=channel,
        at=at,
        kind=kind,
        event_key=key,
        target_user_id=target_user_id,
        target_login=target_login,
        target_message_id=target_message_id,
        duration_s=duration_s,
        channel_platform_id=_opt(msg.tags, "room-id"),
        source=source,
        extra={**(kept or {}), **stamp},
    )


def _clearchat(
    msg: IrcMessage, received_at: datetime | None, source: Source, platform: str
) -> ModerationEvent:
    # ``CLEARCHAT #chan :login`` with ban-duration = timeout (s), without = ban; no target at all
    # = whole chat cleared ([IRC] "CLEARCHAT", TIRS clearchat.rs).
    target_login = (msg.params[1] if len(msg.params) >= 2 else "").lower() or None
    target_user_id = _opt(msg.tags, "target-user-id")
    kept: dict[str, str] = {}
    duration = _opt_int_tag(msg, "ban-duration", kept)
    kind: ModerationKind
    if target_login is None and target_user_id is None:
        kind, duration = "clear", None
    else:
        # A ban-duration that is there but unusable is still a timeout, of unknown length.
        kind = "timeout" if msg.tags.get("ban-duration") else "ban"
    return _moderation(
        msg,
        kind=kind,
        target_user_id=target_user_id,
        target_login=target_login,
        target_message_id=None,
        duration_s=duration,
        received_at=received_at,
        source=source,
        platform=platform,
        kept=kept,
    )


def _clearmsg(
    msg: IrcMessage, received_at: datetime | None, source: Source, platform: str
) -> ModerationEvent:
    # ``room-id`` is empty on every CLEARMSG (twitchdev/issues#163): channel comes from the name.
    target_message_id = _opt(msg.tags, "target-msg-id")
    if target_message_id is None:
        raise _Reject("CLEARMSG without target-msg-id")
    return _moderation(
        msg,
        kind="delete",
        target_user_id=None,
        target_login=_opt(msg.tags, "login"),
        target_message_id=target_message_id,
        duration_s=None,
        received_at=received_at,
        source=source,
        platform=platform,
    )


def _control(msg: IrcMessage) -> ControlEvent:
    cmd = msg.command
    if cmd in ("PING", "PONG"):
        return ControlEvent(cmd.lower(), text=msg.trailing)
    if cmd == "RECONNECT":
        return ControlEvent("reconnect")
    if cmd == "ROOMSTATE":
        return ControlEvent("roomstate", channel=msg.channel, params=dict(msg.tags))
    if cmd == "NOTICE":
        text = msg.params[1] if len(msg.params) >= 2 else msg.trailing
        kind = "auth_failed" if any(t in text for t in _AUTH_FAILED_TEXTS) else "notice"
        return ControlEvent(kind, channel=msg.channel, params=dict(msg.tags), text=text)
    if cmd in ("JOIN", "PART"):
        login = msg.nick or ""
        return ControlEvent(cmd.lower(), channel=msg.channel, params={"login": login})
    if cmd == "001":
        return ControlEvent("welcome", text=msg.trailing)
    if cmd == "CAP":
        # ``:tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands``
        sub = msg.params[1] if len(msg.params) >= 2 else ""
        return ControlEvent("cap", params={"subcommand": sub}, text=msg.trailing)
    # USERSTATE, GLOBALUSERSTATE, numerics 002-376, HOSTTARGET, WHISPER, ...: nothing to store.
    return ControlEvent(
        "other", channel=msg.channel, params={**msg.tags, "command": cmd}, text=msg.trailing
    )


def to_event(
    msg: IrcMessage,
    *,
    received_at: datetime | None = None,
    source: Source = "live",
    platform: str = "twitch",
) -> ChatEvent:
    """Map a parsed line to a typed event.

    PRIVMSG and USERNOTICE become :class:`ChatMessage`; CLEARCHAT and CLEARMSG become
    :class:`ModerationEvent`; connection-level commands become :class:`ControlEvent` (unknown
    ones with kind ``other``).  Lines from recent-messages (``historical=1``,
    ``rm-received-ts``) map the same way; the caller passes ``source="gapfill"``.

    Times come from ``tmi-sent-ts``; when it is missing or unusable (negative on real CLEARMSG
    lines) from ``rm-received-ts``, else ``received_at``, and an unusable raw stamp is kept in
    ``extra["tmi-sent-ts"]``.  A chat or moderation line with no usable time at all, or without
    a ``#channel``, returns :class:`Malformed`.  An unusable optional tag (``bits``,
    ``ban-duration``, ``badge-info``) drops that field only, its raw value kept in ``extra``;
    see :func:`repair_counts`.
    ``received_at`` must be timezone-aware: a naive one raises :class:`ValueError` (a caller
    bug, not bad input).
    """
    if received_at is not None and received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    try:
        if msg.command == "PRIVMSG":
            return _privmsg(msg, received_at, source, platform)
        if msg.command == "USERNOTICE":
            return _usernotice(msg, received_at, source, platform)
        if msg.command == "CLEARCHAT":
            return _clearchat(msg, received_at, source, platform)
        if msg.command == "CLEARMSG":
            return _clearmsg(msg, received_at, source, platform)
    except _Reject as exc:
        return Malformed(raw=_reconstruct(msg), reason=str(exc))
    return _control(msg)


def _reconstruct(msg: IrcMessage) -> str:
    # For Malformed.raw when only the parsed message is at hand; parse_event keeps the original.
    try:
        return format_line(msg.command, *msg.params, tags=msg.tags, prefix=msg.prefix)
    except ValueError:
        return " ".join((msg.command, *msg.params))


def parse_event(
    line: str | bytes,
    *,
    received_at: datetime | None = None,
    source: Source = "live",
    platform: str = "twitch",
) -> ChatEvent:
    """Parse one raw line (text, or UTF-8 bytes) into an event; never raises for any input.

    Anything that cannot be understood comes back as :class:`Malformed` holding the raw line
    and the reason, for the caller to count and dead-letter.  See :func:`to_event` for the
    mapping and for the one caller error (a naive ``received_at``), which is raised.
    """
    if received_at is not None and received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Malformed(raw=line.decode("utf-8", "replace"), reason=f"not UTF-8: {exc}")
    else:
        text = line
    try:
        msg = parse_line(text)
        event = to_event(msg, received_at=received_at, source=source, platform=platform)
    except Exception as exc:  # the contract is "never raises": any surprise is a bad line
        return Malformed(raw=text, reason=f"{type(exc).__name__}: {exc}")
    if isinstance(event, Malformed):
        return Malformed(raw=text, reason=event.reason)
    return event


# --------------------------------------------------------------------------------------------
# recent-messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecentMessagesResponse:
    """A recent-messages 200 response: raw lines, oldest first, and the service's warning.

    ``error_code`` is ``channel_not_joined`` while the service is not (yet) joined: the lines
    may then be incomplete ([RM] "Errors"; RM2 get_recent_messages.rs still returns them).
    """

    messages: tuple[str, ...]
    error: str | None = None
    error_code: str | None = None


def parse_recent_messages_response(body: str | bytes) -> RecentMessagesResponse:
    """Parse a recent-messages JSON body ``{"messages": [...], "error", "error_code"}``.

    Raises :class:`RecentMessagesError` for an error body (no ``messages``, an ``error_code``,
    e.g. ``channel_ignored``) and :class:`IrcParseError` for anything else that is not that
    shape (bad JSON, ``messages`` not a list of strings).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IrcParseError(f"recent-messages body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IrcParseError("recent-messages body is not a JSON object")
    error = data.get("error")
    error_code = data.get("error_code")
    if not (error is None or isinstance(error, str)) or not (
        error_code is None or isinstance(error_code, str)
    ):
        raise IrcParseError("recent-messages error/error_code are not strings")
    messages = data.get("messages")
    if messages is None:
        if error is not None or error_code is not None:
            raise RecentMessagesError(
                f"recent-messages error {error_code}: {error}", error_code=error_code, error=error
            )
        raise IrcParseError("recent-messages body has no messages")
    if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
        raise IrcParseError("recent-messages messages is not a list of strings")
    return RecentMessagesResponse(messages=tuple(messages), error=error, error_code=error_code)


def parse_recent_messages(body: str | bytes) -> list[str]:
    """Return the raw IRC lines of a recent-messages body, oldest first.

    Lines come back even with ``error_code: channel_not_joined`` (use
    :func:`parse_recent_messages_response` to see that warning).  Raises like
    :func:`parse_recent_messages_response`.
    """
    return list(parse_recent_messages_response(body).messages)
