"""VOD chat exports built the way the real tools write them, from real Twitch IRC lines.

The chat is real: the 798 PRIVMSG of tests/fixtures/chatterino-recentmessages-nymn (#nymn,
MIT, see its PROVENANCE.md) and the real sub/resub USERNOTICE lines of
tests/fixtures/chatterino-irc-snapshots (CC0-1.0).  What the tools add around it follows their
source: TwitchDownloader's chat JSON (FACTS.md Part D; Twitch's older v5 comment objects with
``user_notice_params["msg-id"]`` and a Helix-style ``video`` object, as in the highlight export
of issue 20), and the Twitch GQL ``VideoComment`` nodes that twitch-archiver saves
(TwitchDownloader ``GqlCommentResponse.cs``: commenter {id, login, displayName} or null,
contentOffsetSeconds, createdAt, message {fragments [{text, emote {id, emoteID, from} | null}],
userBadges [{id, setID, version}], userColor}).
"""

from __future__ import annotations

import base64
import csv
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector import irc
from collector.events import ChatMessage
from tests.paths import IRC_SNAPSHOTS, nymn_irc_lines

NYMN_ROOM_ID = "62300805"


@dataclass(frozen=True, slots=True)
class RealLine:
    """A real IRC chat line: the parsed message and the fragments its emote ranges give."""

    message: ChatMessage
    fragments: tuple[tuple[str, str | None, int], ...]  # (text, emote id or None, code point)


def _fragments(text: str, emotes_tag: str) -> tuple[tuple[str, str | None, int], ...]:
    ranges: list[tuple[int, int, str]] = []
    for group in emotes_tag.split("/") if emotes_tag else ():
        emote_id, _, spans = group.partition(":")
        for span in spans.split(","):
            first, _, last = span.partition("-")
            if first.isdigit() and last.isdigit() and int(first) <= int(last) < len(text):
                ranges.append((int(first), int(last), emote_id))
    out: list[tuple[str, str | None, int]] = []
    pos = 0
    for lo, hi, emote_id in sorted(ranges):
        if lo < pos:
            continue
        if lo > pos:
            out.append((text[pos:lo], None, pos))
        out.append((text[lo : hi + 1], emote_id, lo))
        pos = hi + 1
    if pos < len(text) or not out:
        out.append((text[pos:], None, pos))
    return tuple(out)


def _real(line: str) -> RealLine | None:
    event = irc.parse_event(line, source="replay")
    if not isinstance(event, ChatMessage):
        return None
    parsed = irc.parse_line(line)
    return RealLine(event, _fragments(event.text, parsed.tags.get("emotes", "")))


def nymn_chat() -> list[RealLine]:
    """The 798 real #nymn chat messages, in order (451 s of chat)."""
    return list(_nymn_chat())


def nymn_chat_lines() -> list[tuple[str, RealLine]]:
    """The same 798 messages with the raw IRC line each was parsed from."""
    return list(_nymn_chat_lines())


@functools.cache
def _nymn_chat_lines() -> tuple[tuple[str, RealLine], ...]:
    return tuple((line, r) for line in nymn_irc_lines() if (r := _real(line)) is not None)


def _nymn_chat() -> tuple[RealLine, ...]:
    return tuple(r for _, r in _nymn_chat_lines())


def sub_notices() -> list[RealLine]:
    """The real sub and resub USERNOTICE lines of the Chatterino snapshots, one per id."""
    path = IRC_SNAPSHOTS / "irc_inputs.tsv"
    seen: set[str] = set()
    out: list[RealLine] = []
    with path.open(encoding="utf-8") as fp:
        for row in csv.reader(fp, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 3 or row[1] != "USERNOTICE":
                continue
            real = _real(row[2])
            if (
                real
                and real.message.kind in ("sub", "resub")
                and real.message.message_id not in seen
            ):
                seen.add(real.message.message_id)
                out.append(real)
    return out


def _iso(when: datetime, digits: int = 3) -> str:
    # TwitchDownloader (System.Text.Json) writes 7 fractional digits, GQL 3, Helix none.
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"
    return (text[: 20 + digits] if digits else text[:19]) + "Z"


# --- TwitchDownloader JSON -------------------------------------------------------------------


def td_comment(
    real: RealLine,
    *,
    created_at: datetime,
    offset: float,
    video_id: str,
    notice_key: str = "msg-id",
) -> dict[str, Any]:
    """One TwitchDownloader comment (v5-era object, as TD still writes it)."""
    msg = real.message
    emoticons = []
    units = 0
    fragments = []
    for text, emote_id, _ in real.fragments:
        fragments.append(
            {
                "text": text,
                "emoticon": None
                if emote_id is None
                else {"emoticon_id": emote_id, "emoticon_set_id": ""},
            }
        )
        if emote_id is not None:
            # TD ChatDownloader.cs: end = begin + fragment.text.Length (UTF-16) + 1.
            emoticons.append({"_id": emote_id, "begin": units, "end": units + len(text) + 1})
        units += len(text.encode("utf-16-le")) // 2
    notice: dict[str, str] = {}
    if msg.kind not in ("chat", "action"):
        notice[notice_key] = msg.kind
    return {
        "_id": msg.message_id,
        "created_at": _iso(created_at, 7),
        "updated_at": _iso(created_at, 7),
        "channel_id": NYMN_ROOM_ID,
        "content_type": "video",
        "content_id": video_id,
        "content_offset_seconds": offset,
        "commenter": {
            "display_name": msg.user_name,
            "_id": msg.user_id,
            "name": msg.user_login,
            "type": "user",
            "bio": None,
            "created_at": "0001-01-01T00:00:00",
            "updated_at": "0001-01-01T00:00:00",
            "logo": None,
        },
        "source": "chat",
        "state": "published",
        "message": {
            "body": msg.text,
            "bits_spent": msg.bits,
            "fragments": fragments,
            "is_action": msg.kind == "action",
            "user_badges": [{"_id": k, "version": v} for k, v in msg.badges.items()],
            "user_color": msg.extra.get("color"),
            "user_notice_params": notice,
            "emoticons": emoticons,
        },
    }


#: The highlight of issue 20: comments over 48.7 minutes of offsets, created_at within 5.5 s.
HIGHLIGHT_MADE_AT = datetime(2024, 1, 6, 20, 1, 3, 250000, tzinfo=UTC)
HIGHLIGHT_VIDEO_CREATED = datetime(2024, 1, 6, 20, 1, 0, tzinfo=UTC)
HIGHLIGHT_SPAN_S = 48.7 * 60


def highlight_export() -> tuple[dict[str, Any], list[RealLine], list[float]]:
    """A TwitchDownloader JSON of a *highlight* of #nymn, as Twitch really gives it.

    Returns (root object, the comments' real lines in file order, their offsets).  The real
    chat's 451 s are stretched over 48.7 minutes of ``content_offset_seconds``, real sub and
    resub notices are spread through it, and every ``created_at`` is the moment the highlight
    was made (within 5.5 s).  No ``streamer``: the Helix-style ``video`` names the channel.
    """
    chat = nymn_chat()
    notices = sub_notices()
    lines: list[RealLine] = []
    step = len(chat) // (len(notices) + 1)
    for i, real in enumerate(chat):
        lines.append(real)
        if i % step == step - 1 and notices:
            lines.append(notices.pop(0))
    first = chat[0].message.sent_at
    real_span = (chat[-1].message.sent_at - first).total_seconds()
    offsets: list[float] = []
    previous = 0.0
    for real in lines:
        if real.message.channel == "nymn":  # a notice (from another channel's lines) sits
            previous = (real.message.sent_at - first).total_seconds() * HIGHLIGHT_SPAN_S / real_span
        offsets.append(round(previous, 3))  # at the offset of the chat line before it
    comments = [
        td_comment(
            real,
            created_at=HIGHLIGHT_MADE_AT + timedelta(seconds=5.5 * i / (len(lines) - 1)),
            offset=offset,
            video_id="2030405060",
        )
        for i, (real, offset) in enumerate(zip(lines, offsets, strict=True))
    ]
    root = {
        "video": {
            "id": "2030405060",
            "stream_id": None,
            "user_id": NYMN_ROOM_ID,
            "user_login": "nymn",
            "user_name": "NymN",
            "title": "forsenParty EDM highlight",
            "description": "",
            "created_at": _iso(HIGHLIGHT_VIDEO_CREATED, 0),
            "published_at": _iso(HIGHLIGHT_VIDEO_CREATED, 0),
            "url": "https://www.twitch.tv/videos/2030405060",
            "viewable": "public",
            "view_count": 4821,
            "language": "en",
            "type": "highlight",
            "duration": "48m42s",
        },
        "comments": comments,
    }
    return root, lines, offsets


# --- Twitch GQL VideoComment nodes ----------------------------------------------------------


def gql_node(
    real: RealLine, *, created_at: datetime, offset: int, deleted: bool = False
) -> dict[str, Any]:
    """One GQL ``VideoComment`` node as twitch-archiver keeps it (``__typename`` included)."""
    msg = real.message
    commenter = None
    if not deleted:
        commenter = {
            "id": msg.user_id,
            "login": msg.user_login,
            "displayName": msg.user_name,
            "__typename": "User",
        }
    return {
        "id": msg.message_id,
        "commenter": commenter,
        "contentOffsetSeconds": offset,
        "createdAt": _iso(created_at),
        "message": {
            "fragments": [
                {
                    "emote": None
                    if emote_id is None
                    else {
                        "id": f"{emote_id};{at};{at + len(text) - 1}",
                        "emoteID": emote_id,
                        "from": at,
                        "__typename": "EmbeddedEmote",
                    },
                    "text": text,
                    "__typename": "VideoCommentMessageFragment",
                }
                for text, emote_id, at in real.fragments
            ],
            "userBadges": [
                {
                    "id": base64.b64encode(f"{k};{v};".encode()).decode(),
                    "setID": k,
                    "version": v,
                    "__typename": "Badge",
                }
                for k, v in msg.badges.items()
            ],
            "userColor": msg.extra.get("color"),
            "__typename": "VideoCommentMessage",
        },
        "__typename": "VideoComment",
    }


def gql_history(
    streams: int = 3, deleted_logins: frozenset[str] = frozenset()
) -> list[tuple[datetime, list[dict[str, Any]], list[RealLine]]]:
    """A multi-stream history of #nymn: the real chat cut into ``streams`` VODs, one day apart.

    Returns per stream (VOD start, GQL nodes, their real lines).  Comments of users in
    ``deleted_logins`` have ``commenter: null``, as Twitch returns them for deleted accounts.
    """
    chat = nymn_chat()
    size = -(-len(chat) // streams)
    out = []
    for k in range(streams):
        part = chat[k * size : (k + 1) * size]
        shift = timedelta(days=k)
        start = part[0].message.sent_at + shift - timedelta(minutes=30)
        nodes = []
        for real in part:
            sent = real.message.sent_at + shift
            nodes.append(
                gql_node(
                    real,
                    created_at=sent,
                    offset=int((sent - start).total_seconds()),
                    deleted=real.message.user_login in deleted_logins,
                )
            )
        out.append((start, nodes, part))
    return out
