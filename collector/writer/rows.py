"""Chat messages as ``COPY`` text rows of ``chat.messages`` and ``chat.emote_uses``.

The writer sends a batch as one block of PostgreSQL's ``COPY … FROM STDIN`` text format
(https://www.postgresql.org/docs/15/sql-copy.html, "Text Format"): columns separated by a
tab, rows ended by a newline, ``\\N`` for NULL, and a backslash, tab, newline or carriage
return inside a value written as ``\\\\``, ``\\t``, ``\\n``, ``\\r``.  Formatting the rows here,
a few string operations per field, costs a fraction of handing psycopg one Python tuple per row
(its ``write_row`` dumps each value through a per-type adapter): on a replay or a bus writer
this is the writer's largest cost per message after decoding.

The columns are those of ``copy_messages`` and ``copy_emote_uses`` (and their staging twins) in
``sql/queries/collector.sql``, in that order.  Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from datetime import datetime

from collector.events import ChatMessage

__all__ = ["MessageRows", "clean", "encode_rows", "format_messages"]

_NULL = "\\N"
# Characters COPY's text format escapes, and NUL, which PostgreSQL text cannot hold at all.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"})


# A lone surrogate (a JSON source's ``"\\ud800"`` escape) is not Unicode text: it has no UTF-8
# form, and PostgreSQL could not store one anyway.
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str | None) -> str | None:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (one such character must not
    poison a batch)."""
    if not text:
        return text
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def encode_rows(text: str) -> bytes:
    """COPY rows as UTF-8, each lone surrogate replaced by U+FFFD (the rare slow path)."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def _text(value: str | None) -> str:
    """One text value as a COPY field (NUL replaced, as :func:`clean` does)."""
    if value is None:
        return _NULL
    # Five scans in C beat one regular expression search by half on chat-sized strings.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\x00" in value:
        return value.translate(_ESCAPES)
    return value


def _time(value: datetime) -> str:
    # ISO 8601 with its offset (naive stays naive: PostgreSQL reads it in the session's zone,
    # as psycopg's own dumper sends it).
    return value.isoformat()


@functools.lru_cache(maxsize=4096)
def _badges_field(items: tuple[tuple[str, str], ...]) -> str:
    # A channel has a few dozen badge combinations; serialise each once.
    return _text(json.dumps(dict(items)))


@functools.lru_cache(maxsize=4096)
def _extra_field(items: tuple[tuple[str, str], ...]) -> str:
    # Most lines' extra is a colour and a flag or two: a few thousand combinations at most.
    return _text(json.dumps(dict(items), ensure_ascii=False))


class MessageRows:
    """The COPY rows of a batch of messages, one entry per message (same order).

    ``messages[i]`` is the ``chat.messages`` row of message ``i`` (newline included);
    ``uses[i]`` its ``chat.emote_uses`` rows joined (``""`` when it has none); ``keys[i]`` its
    unique key ``(channel_id, message_id, sent_at)``, the message id as stored (NUL replaced).
    """

    __slots__ = ("keys", "messages", "uses")

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.uses: list[str] = []
        self.keys: list[tuple[int, str, datetime]] = []


def format_messages(
    messages: Sequence[ChatMessage],
    channel_ids: dict[tuple[str, str], int],
    received_default: datetime,
) -> MessageRows:
    """The COPY rows of ``messages``; ``channel_ids`` maps (platform, channel) to its
    ``chat.channels.id`` and must hold every message's.  Raises :class:`KeyError` otherwise."""
    out = MessageRows()
    rows, all_uses, keys = out.messages, out.uses, out.keys
    received_text = _time(received_default)
    last_channel: tuple[str, str] | None = None
    channel_id = 0
    channel_text = ""
    for m in messages:
        channel = (m.platform, m.channel)
        if channel != last_channel:
            channel_id = channel_ids[channel]
            channel_text = str(channel_id)
            last_channel = channel
        message_id = m.message_id
        if not message_id.isascii() or "\x00" in message_id:  # clean()'s work, rarely needed
            message_id = clean(message_id) or ""
        sent_at = m.sent_at
        sent_text = sent_at.isoformat()  # _time, inline
        keys.append((channel_id, message_id, sent_at))
        user_id, login, name, text = m.user_id, m.user_login, m.user_name, m.text
        kind, reply = m.kind, m.reply_parent_id
        source: str = m.source
        # One test over the message's text fields together instead of one per field: nearly
        # every message needs no escape at all (None reads "None" here, which needs none).
        probe = f"{message_id}{user_id}{login}{name}{text}{kind}{reply}{source}"
        if "\\" in probe or "\t" in probe or "\n" in probe or "\r" in probe or "\x00" in probe:
            message_id_text = _text(message_id)
            user_id, login, name = _text(user_id), _text(login), _text(name)
            text, kind, reply, source = _text(text), _text(kind), _text(reply), _text(source)
        else:
            message_id_text = message_id
            user_id = _NULL if user_id is None else user_id
            login = _NULL if login is None else login
            name = _NULL if name is None else name
            reply = _NULL if reply is None else reply
        head = f"{sent_text}\t{channel_text}\t{message_id_text}\t"
        emote_count = 0
        if m.emotes:
            tail = f"\t{user_id}\n"
            parts = []
            for e in m.emotes:
                emote_count += e.count
                parts.append(
                    f"{head}{_text(e.emote_id)}\t{_text(e.emote_name)}\t{_text(e.provider)}"
                    f"\t{e.count}{tail}"
                )
            all_uses.append("".join(parts))
        else:
            all_uses.append("")
        received = m.received_at
        rows.append(
            f"{head}{user_id}\t{login}\t{name}\t{text}"
            f"\t{kind}\t{_badges_field(tuple(m.badges.items())) if m.badges else '{}'}"
            f"\t{'t' if m.is_mod else 'f'}\t{'t' if m.is_subscriber else 'f'}"
            f"\t{'t' if m.is_first else 'f'}\t{int(m.bits)}\t{reply}"
            f"\t{emote_count}\t{_extra_field(tuple(m.extra.items())) if m.extra else _NULL}"
            f"\t{received_text if received is None else _time(received)}\t{source}\n"
        )
    return out
