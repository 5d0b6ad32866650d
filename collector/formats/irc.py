"""Reader for raw IRC lines (justlog, rustlog), optionally stamped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from collector.events import (
    ChatEvent,
    ControlEvent,
    Malformed,
)
from collector.formats.common import _override_channel
from collector.formats.detect import _IRC_STAMP
from collector.formats.stream import _text_lines

# --- irc ------------------------------------------------------------------------------------


def _read_irc(
    chunks: Iterator[bytes], name: str, channel: str | None, platform: str, first_line: int = 1
) -> Iterator[ChatEvent]:
    # Imported here so that the other formats work even where the IRC parser is not installed.
    from collector.irc import parse_event

    for number, line in _text_lines(chunks, name, first_line):
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
