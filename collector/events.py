"""Typed chat events: what every source produces and the writer consumes.

The model is platform-neutral.  Sources fill what they know; the writer turns
events into rows of ``chat.messages``, ``chat.emote_uses`` and
``chat.moderation_events``.  Everything here is pure (no I/O, no clock).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ChatEvent",
    "ChatMessage",
    "ControlEvent",
    "EmoteUse",
    "Malformed",
    "MessageKind",
    "ModerationEvent",
    "ModerationKind",
    "Provider",
    "Source",
    "deterministic_message_id",
    "moderation_event_key",
    "new_message",
]

#: Where a row came from: a live connection, a gap fill after a reconnect, or a file replay.
Source = Literal["live", "gapfill", "replay"]
#: Emote providers, the values of ``chat.emote_uses.provider``.
Provider = Literal["twitch", "bttv", "ffz", "7tv", "emoji"]
#: ``chat.messages.kind``.  Open-ended: USERNOTICE ``msg-id`` values pass through as they are
#: (``sub``, ``resub``, ``subgift``, ``submysterygift``, ``raid``, ``announcement``, ...).
MessageKind = str
ModerationKind = Literal["ban", "timeout", "delete", "clear"]


@dataclass(frozen=True, slots=True)
class EmoteUse:
    """One emote in one message; ``count`` is how many times it appears there."""

    emote_id: str
    emote_name: str
    provider: Provider
    count: int = 1


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message (or user notice such as a sub or raid), immutable once seen.

    ``channel`` is the channel login, lower case.  ``message_id`` is the platform's id, or
    :func:`deterministic_message_id` when the platform gives none, so that a replay of the same
    data is a no-op.  ``sent_at`` is the platform's time (timezone-aware UTC).
    """

    platform: str
    channel: str
    message_id: str
    sent_at: datetime
    text: str
    user_id: str | None = None
    user_login: str | None = None
    user_name: str | None = None
    kind: MessageKind = "chat"
    badges: dict[str, str] = field(default_factory=dict)
    is_mod: bool = False
    is_subscriber: bool = False
    is_first: bool = False
    bits: int = 0
    reply_parent_id: str | None = None
    channel_platform_id: str | None = None
    emotes: tuple[EmoteUse, ...] = ()
    received_at: datetime | None = None
    source: Source = "live"
    #: Extra platform fields worth keeping (USERNOTICE ``msg-param-*``, colour, ...).
    extra: dict[str, str] = field(default_factory=dict)


class _Unfrozen:
    """ChatMessage's slots, in its layout, without its frozen ``__setattr__``: new_message fills
    one with plain attribute stores, then makes it a ChatMessage (``__class__`` assignment,
    which CPython allows between classes of the same slots; a TypeError here at the first
    message if ChatMessage ever changes layout, e.g. gains ``__weakref__`` or a base class)."""

    __slots__ = ChatMessage.__slots__


def new_message(
    platform: str,
    channel: str,
    message_id: str,
    sent_at: datetime,
    text: str,
    user_id: str | None,
    user_login: str | None,
    user_name: str | None,
    kind: MessageKind,
    badges: dict[str, str],
    is_mod: bool,
    is_subscriber: bool,
    is_first: bool,
    bits: int,
    reply_parent_id: str | None,
    channel_platform_id: str | None,
    emotes: tuple[EmoteUse, ...],
    received_at: datetime | None,
    source: Source,
    extra: dict[str, str],
) -> ChatMessage:
    """``ChatMessage(...)`` with every field given, in the order they are declared: the same
    object, built as a :class:`_Unfrozen` by plain attribute stores and then made a
    ChatMessage (the frozen dataclass's ``__init__`` goes through ``object.__setattr__`` once
    per field; each slot's ``__set__`` called directly was half that: this is a third of
    it again, about 5,000 against 16,000 instructions).  For the parsers' and decoders' hot
    paths; ``tests/unit/test_events.py`` keeps the order in step with the class."""
    m: Any = object.__new__(_Unfrozen)
    m.platform = platform
    m.channel = channel
    m.message_id = message_id
    m.sent_at = sent_at
    m.text = text
    m.user_id = user_id
    m.user_login = user_login
    m.user_name = user_name
    m.kind = kind
    m.badges = badges
    m.is_mod = is_mod
    m.is_subscriber = is_subscriber
    m.is_first = is_first
    m.bits = bits
    m.reply_parent_id = reply_parent_id
    m.channel_platform_id = channel_platform_id
    m.emotes = emotes
    m.received_at = received_at
    m.source = source
    m.extra = extra
    m.__class__ = ChatMessage
    built: ChatMessage = m
    return built


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    """A ban, timeout, single-message deletion or full chat clear.

    ``event_key`` is deterministic (see :func:`moderation_event_key`) so the same event seen
    twice, live and from a gap fill, is stored once.
    """

    platform: str
    channel: str
    at: datetime
    kind: ModerationKind
    event_key: str
    target_user_id: str | None = None
    target_login: str | None = None
    target_message_id: str | None = None
    duration_s: int | None = None
    channel_platform_id: str | None = None
    source: Source = "live"
    #: Platform fields worth keeping, ``chat.moderation_events.extra``: for instance the raw
    #: ``tmi-sent-ts`` when it was unusable and ``at`` fell back to the received time.
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """Connection-level events a source acts on and the writer ignores.

    ``kind`` is one of ``ping``, ``pong``, ``reconnect``, ``roomstate``, ``notice``, ``join``,
    ``part``, ``welcome``, ``cap``, ``auth_failed``, ``other``.
    """

    kind: str
    channel: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line or frame that could not be understood: counted and dead-lettered, never fatal."""

    raw: str
    reason: str
    source_name: str = ""


ChatEvent = ChatMessage | ModerationEvent | ControlEvent | Malformed


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def deterministic_message_id(
    platform: str, channel: str, sent_at: datetime, user: str | None, text: str
) -> str:
    """Return a stable id for a message its platform gave no id to.

    A hash of platform, channel, sent_at (to the microsecond, UTC), user and text, so replaying
    the same file twice yields the same ids and the unique key drops the second copy.
    """
    return "h:" + _digest(platform, channel.lower(), sent_at.isoformat(), user or "", text)


def moderation_event_key(
    platform: str,
    channel: str,
    at: datetime,
    kind: str,
    target: str | None,
    target_message_id: str | None = None,
) -> str:
    """Return the deterministic key of a moderation event (``chat.moderation_events.event_key``)."""
    return _digest(
        platform, channel.lower(), at.isoformat(), kind, target or "", target_message_id or ""
    )
