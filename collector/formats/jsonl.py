"""Reader for our own JSON lines (README, "Collecting chat")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

from collector.events import (
    ChatEvent,
    ChatMessage,
    EmoteUse,
    Malformed,
    Provider,
    deterministic_message_id,
)
from collector.formats.common import (
    _EPOCH,
    _Bad,
    _norm_channel,
    _opt_bool,
    _opt_str,
    _rfc3339,
    _str_map,
)
from collector.formats.stream import _text_lines

# --- jsonl ----------------------------------------------------------------------------------


def _read_jsonl(
    chunks: Iterator[bytes],
    name: str,
    channel: str | None,
    platform: str | None,
    first_line: int = 1,
) -> Iterator[ChatEvent]:
    for number, line in _text_lines(chunks, name, first_line):
        if isinstance(line, Malformed):
            yield line
            continue
        event = _jsonl_event(line, channel=channel, platform=platform)
        if isinstance(event, Malformed):
            yield Malformed(event.raw, f"line {number}: {event.reason}", name)
        else:
            yield event


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
