"""VOD comment objects to messages: the one mapping TwitchDownloader JSON and Twitch GQL share.

Both formats hold the same Twitch comment under different key names (TwitchDownloader's
``Comment`` in ChatRoot.cs copies the older v5 API, GQL's ``VideoComment`` is camelCase):
:class:`_CommentKeys` names them per format, :func:`_map_comment` reads one comment object with
them, and :func:`_read_comments` streams a ``comments`` array through it onto the clock
(:func:`collector.formats.clock._clocked`).  What only one format has (TwitchDownloader's
``body``, notices and bits; GQL's text made of fragments) comes from the format's ``read_body``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from collector.events import ChatEvent, ChatMessage, EmoteUse, Malformed, deterministic_message_id
from collector.formats.clock import _clocked, _Comment, _VodClock
from collector.formats.common import _Bad, _opt_str, _utc
from collector.formats.jsonscan import _array_items, _JsonReader, _load_object


@dataclass(frozen=True, slots=True)
class _CommentKeys:
    """Where a format keeps each field of a comment object (``message`` and ``commenter`` are
    the same in both)."""

    created_at: str
    offset: str
    message_id: str
    user_id: str  # in ``commenter``, as login and display_name
    login: str
    display_name: str
    badges: str  # in ``message``: a list of {badge_set: …, "version": …}
    badge_set: str
    color: str  # in ``message``


#: Each field's key: (TwitchDownloader JSON, Twitch GQL).
_KEY_TABLE = {
    "created_at": ("created_at", "createdAt"),
    "offset": ("content_offset_seconds", "contentOffsetSeconds"),
    "message_id": ("_id", "id"),
    "user_id": ("_id", "id"),
    "login": ("name", "login"),
    "display_name": ("display_name", "displayName"),
    "badges": ("user_badges", "userBadges"),
    "badge_set": ("_id", "setID"),
    "color": ("user_color", "userColor"),
}
_TD_COMMENT_KEYS = _CommentKeys(**{field: td for field, (td, _) in _KEY_TABLE.items()})
_GQL_COMMENT_KEYS = _CommentKeys(**{field: gql for field, (_, gql) in _KEY_TABLE.items()})


class _Body(NamedTuple):
    """What a format reads from a comment's ``message`` in its own way."""

    text: str
    emotes: tuple[EmoteUse, ...]
    kind: str = "chat"
    bits: int = 0
    extra: Mapping[str, str] = {}


#: ``read_body(message)``: the format's reading of the ``message`` object; raises :class:`_Bad`.
_ReadBody = Callable[[Mapping[str, Any]], _Body]

# Go writes up to nine fractional digits; where datetime refuses them, six are kept.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _comment_time(value: object, key: str) -> datetime:
    """A comment's ``created_at`` in UTC (an unmarked time is UTC); :class:`_Bad` naming ``key``."""
    if not isinstance(value, str):
        raise _Bad(f"missing {key}")
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    try:
        return _utc(datetime.fromisoformat(_FRACTION.sub(r"\1", value)))
    except ValueError:
        raise _Bad(f"bad {key} {value[:40]!r}") from None


def _map_comment(
    obj: Mapping[str, Any],
    keys: _CommentKeys,
    read_body: _ReadBody,
    *,
    channel: str,
    platform: str,
    raw: str,
    channel_platform_id: str | None = None,
) -> _Comment:
    """One comment object as a :class:`ChatMessage` (``source="replay"``), placed by its own
    ``created_at`` so far (the clock may move it).  Raises :class:`_Bad` naming the bad field.

    A comment without an id gets :func:`deterministic_message_id` (``derived_id``); a deleted
    account's comment (``commenter: null``) is kept without a user.
    """
    sent_at = _comment_time(obj.get(keys.created_at), keys.created_at)
    message = obj.get("message")
    if not isinstance(message, dict):
        raise _Bad("missing message")
    body = read_body(message)
    commenter = obj.get("commenter")
    if commenter is not None and not isinstance(commenter, dict):
        raise _Bad("commenter must be an object or null")
    commenter = commenter or {}
    user_id = _opt_str(commenter, keys.user_id, allow_int=True)
    login = _opt_str(commenter, keys.login)
    display = _opt_str(commenter, keys.display_name)
    message_id = _opt_str(obj, keys.message_id)
    derived = not message_id
    if not message_id:
        message_id = deterministic_message_id(
            platform, channel, sent_at, user_id or login or display, body.text
        )
    badges: dict[str, str] = {}
    for badge in message.get(keys.badges) or ():
        badge_set = badge.get(keys.badge_set) if isinstance(badge, dict) else None
        if isinstance(badge_set, str) and badge_set:
            version = badge.get("version")
            badges[badge_set] = "" if version is None else str(version)
    extra = dict(body.extra)
    color = message.get(keys.color)
    if isinstance(color, str) and color:
        extra["color"] = color
    offset = obj.get(keys.offset)
    offset_s: float | None = None
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        offset_s = float(offset)
        extra["content_offset_seconds"] = repr(offset_s)
    msg = ChatMessage(
        platform=platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=body.text,
        user_id=user_id,
        user_login=login.lower() if login else None,
        user_name=display,
        kind=body.kind,
        badges=badges,
        is_mod="moderator" in badges or "broadcaster" in badges,
        is_subscriber="subscriber" in badges or "founder" in badges,
        bits=body.bits,
        channel_platform_id=channel_platform_id,
        emotes=body.emotes,
        source="replay",
        extra=extra,
    )
    return _Comment(msg, offset_s, raw, derived)


def _read_comments(
    reader: _JsonReader,
    name: str,
    keys: _CommentKeys,
    to_comment: Callable[[Mapping[str, Any], str], _Comment],
    clock: _VodClock,
) -> Iterator[ChatEvent]:
    """Stream a ``comments`` array whose ``[`` was just consumed: ``to_comment(object, raw)``
    maps each item, a bad item becomes :class:`Malformed` (``comments item N: …``), and
    ``clock`` places them (:func:`collector.formats.clock._clocked`)."""

    def comments() -> Iterator[_Comment | Malformed]:
        for item in _array_items(reader, name, "comments"):
            if isinstance(item, Malformed):
                yield item
                continue
            number, raw, value = item
            try:
                yield to_comment(_load_object(value), raw)
            except _Bad as exc:
                yield Malformed(raw, f"comments item {number}: {exc}", name)

    yield from _clocked(
        comments(), name=name, created_key=keys.created_at, offset_key=keys.offset, clock=clock
    )
