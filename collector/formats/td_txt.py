"""Reader for TwitchDownloader's text export."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from collector.events import (
    ChatEvent,
    ChatMessage,
    Malformed,
    deterministic_message_id,
)
from collector.formats.detect import _TD_TXT_LINE, _TD_TXT_PLAIN
from collector.formats.stream import _text_lines

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
