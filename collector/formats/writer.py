"""Our JSON-lines writer (:func:`write_jsonl`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from collector.events import (
    ChatMessage,
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
