"""Twitch GQL ``VideoComment`` lists: the ``twitch-gql`` replay format.

twitch-archiver (``verbose_chat.json``) and similar tools save a VOD's chat as the list of
``node`` objects of Twitch's ``VideoCommentsByOffsetOrCursor`` GQL answer, often gzipped::

    [{"id": "…", "commenter": {"id": "…", "login": "…", "displayName": "…"} | null,
      "contentOffsetSeconds": 12, "createdAt": "2024-01-06T16:19:44.095Z",
      "message": {"fragments": [{"text": "Kappa", "emote": {"emoteID": "25", "from": 0} | null}],
                  "userBadges": [{"setID": "subscriber", "version": "12"}],
                  "userColor": "#8A2BE2"}}]

(field names as in TwitchDownloader's ``GqlCommentResponse.cs``; extra fields such as
``__typename`` are ignored).  The list names no channel, so the caller supplies it.  A deleted
account's comment (``commenter: null``) is stored without a user.  ``createdAt`` is the sent
time unless it collapsed (see :func:`collector.formats.clock._clocked`); then ``--start`` is needed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from collector.events import ChatEvent, ChatMessage, EmoteUse, Malformed, deterministic_message_id
from collector.formats.clock import _clocked, _Comment
from collector.formats.common import FormatError, _Bad, _opt_str, _utc
from collector.formats.jsonscan import _array_items, _JsonReader, _load_object

__all__ = ["looks_like_gql", "read_gql"]

# Keys no other format's items have (chat-downloader's are snake_case).
_GQL_KEYS = frozenset({"contentOffsetSeconds", "createdAt", "commenter"})
_GQL_KEY_RE = re.compile(r'"(?:contentOffsetSeconds|createdAt|commenter)"\s*:')
# Go writes up to nine fractional digits; where datetime refuses them, six are kept.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def looks_like_gql(head: bytes) -> bool:
    """Whether the start of a file (``[`` first) is a list of GQL comment nodes."""
    reader = _JsonReader(iter([head]), final=False)
    if reader.take() != "[" or reader.peek() != "{":
        return False
    raw, complete = reader.scan_value(keep=True)
    if complete:
        try:
            item = json.loads(raw)
        except ValueError:
            return False
        return isinstance(item, dict) and len(_GQL_KEYS & item.keys()) >= 2
    # First node longer than the window: fall back to its leading keys.
    return len(set(_GQL_KEY_RE.findall(raw))) >= 2


def read_gql(
    chunks: Iterator[bytes],
    name: str,
    channel: str,
    platform: str,
    start: datetime | None,
    on_clock: Callable[[str], None] | None,
) -> Iterator[ChatEvent]:
    """Stream the messages of a GQL comment list (see the module docstring)."""
    reader = _JsonReader(chunks)
    if reader.take() != "[":
        raise FormatError(f"{name}: not a JSON array of Twitch GQL comments")

    def comments() -> Iterator[_Comment | Malformed]:
        for item in _array_items(reader, name, "comments"):
            if isinstance(item, Malformed):
                yield item
                continue
            number, raw, value = item
            try:
                yield _gql_comment(_load_object(value), channel, platform, raw)
            except _Bad as exc:
                yield Malformed(raw, f"comments item {number}: {exc}", name)

    yield from _clocked(
        comments(),
        name=name,
        created_key="createdAt",
        offset_key="contentOffsetSeconds",
        anchor=None,
        anchor_name="--start",
        start=start,
        video_type=None,
        on_clock=on_clock,
    )


def _gql_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise _Bad("missing createdAt")
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    try:
        return _utc(datetime.fromisoformat(_FRACTION.sub(r"\1", value)))
    except ValueError:
        raise _Bad(f"bad createdAt {value[:40]!r}") from None


def _gql_comment(obj: Mapping[str, Any], channel: str, platform: str, raw: str) -> _Comment:
    sent_at = _gql_time(obj.get("createdAt"))
    message = obj.get("message")
    if not isinstance(message, dict):
        raise _Bad("missing message")
    fragments = message.get("fragments")
    if fragments is None:
        fragments = []
    if not isinstance(fragments, list):
        raise _Bad("message.fragments must be a list")
    parts: list[str] = []
    uses: Counter[tuple[str, str]] = Counter()
    for frag in fragments:
        if not isinstance(frag, dict):
            continue
        text = frag.get("text")
        if not isinstance(text, str):
            continue
        parts.append(text)
        emote = frag.get("emote")
        if isinstance(emote, dict) and text.strip():
            emote_id = emote.get("emoteID") or emote.get("id")
            if isinstance(emote_id, str | int) and not isinstance(emote_id, bool):
                # "id" alone reads "25;0" (emote id; position): the part before ";" is the id.
                uses[(str(emote_id).split(";", 1)[0], text.strip())] += 1
    text = "".join(parts)
    commenter = obj.get("commenter")
    if commenter is not None and not isinstance(commenter, dict):
        raise _Bad("commenter must be an object or null")
    user_id = login = display = None
    if commenter:
        user_id = _opt_str(commenter, "id", allow_int=True)
        login = _opt_str(commenter, "login")
        display = _opt_str(commenter, "displayName")
    badges: dict[str, str] = {}
    for badge in message.get("userBadges") or ():
        if isinstance(badge, dict) and isinstance(badge.get("setID"), str) and badge["setID"]:
            version = badge.get("version")
            badges[badge["setID"]] = "" if version is None else str(version)
    extra: dict[str, str] = {}
    color = message.get("userColor")
    if isinstance(color, str) and color:
        extra["color"] = color
    offset = obj.get("contentOffsetSeconds")
    offset_s: float | None = None
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        offset_s = float(offset)
        extra["content_offset_seconds"] = repr(offset_s)
    message_id = _opt_str(obj, "id")
    derived = not message_id
    if not message_id:
        message_id = deterministic_message_id(
            platform, channel, sent_at, user_id or login or display, text
        )
    msg = ChatMessage(
        platform=platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        user_id=user_id,
        user_login=login.lower() if login else None,
        user_name=display,
        badges=badges,
        is_mod="moderator" in badges or "broadcaster" in badges,
        is_subscriber="subscriber" in badges or "founder" in badges,
        emotes=tuple(EmoteUse(i, n, "twitch", c) for (i, n), c in uses.items()),
        source="replay",
        extra=extra,
    )
    return _Comment(msg, offset_s, raw, derived)
