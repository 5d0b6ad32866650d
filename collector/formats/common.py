"""What every chat-log reader shares: the format names, the errors, and field helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chatpulse.core.errors import ChatpulseError
from collector.events import (
    ChatEvent,
    ChatMessage,
    ModerationEvent,
)

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


def _norm_channel(channel: str) -> str:
    return channel.strip().lstrip("#").lower()


def _override_channel(event: ChatEvent, channel: str | None) -> ChatEvent:
    # A moderation event keeps the event_key made from the line's own channel: still
    # deterministic, so a second replay with the same --channel stays a no-op.
    if channel is None or not isinstance(event, ChatMessage | ModerationEvent):
        return event
    return replace(event, channel=channel)


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


def _utc(when: datetime) -> datetime:
    # System.Text.Json writes DateTimeKind.Utc with "Z"; an unmarked time is taken as UTC.
    return (when.replace(tzinfo=UTC) if when.utcoffset() is None else when).astimezone(UTC)
