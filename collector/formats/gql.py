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
The mapping itself is the one TwitchDownloader JSON uses (:mod:`collector.formats.comments`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from collector.events import ChatEvent, EmoteUse
from collector.formats.clock import _Comment, _VodClock
from collector.formats.comments import (
    _GQL_COMMENT_KEYS,
    _Body,
    _map_comment,
    _read_comments,
)
from collector.formats.common import FormatError, _Bad
from collector.formats.jsonscan import _first_item, _JsonReader

__all__ = ["looks_like_gql", "read_gql"]

# Keys no other format's items have (chat-downloader's are snake_case).
_GQL_KEYS = frozenset({"contentOffsetSeconds", "createdAt", "commenter"})
_GQL_KEY_RE = re.compile(r'"(contentOffsetSeconds|createdAt|commenter)"\s*:')


def looks_like_gql(head: bytes) -> bool:
    """Whether the start of a file (``[`` first) is a list of GQL comment nodes."""
    first = _first_item(head, _GQL_KEY_RE)
    return first is not None and len(_GQL_KEYS & first.keys) >= 2


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

    def to_comment(obj: Mapping[str, Any], raw: str) -> _Comment:
        return _map_comment(
            obj, _GQL_COMMENT_KEYS, _gql_body, channel=channel, platform=platform, raw=raw
        )

    clock = _VodClock(None, "--start", start, None, on_clock)
    yield from _read_comments(reader, name, _GQL_COMMENT_KEYS, to_comment, clock)


def _gql_body(message: Mapping[str, Any]) -> _Body:
    """The text is the fragments' texts joined; a fragment with an ``emote`` is a Twitch emote."""
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
    return _Body("".join(parts), tuple(EmoteUse(i, n, "twitch", c) for (i, n), c in uses.items()))
