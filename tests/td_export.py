"""Write TwitchDownloader chat exports exactly as TwitchDownloaderCLI ``chatdownload`` does,
from real chat (the #nymn recent-messages fixture), for replay tests.

TXT lines follow TwitchDownloaderCore/Chat/ChatText.cs (lay295/TwitchDownloader): one
``StreamWriter.WriteLine`` per comment, UTF-8 without a byte-order mark, ``\\n`` on Linux
(``\\r\\n`` on Windows):

- ``Relative`` (the CLI's default): ``[{TimeSpan.FromSeconds(content_offset_seconds):h\\:mm\\:ss}]``,
  hours not zero-padded, fractions cut off; from 24 h on the hours keep counting (``[25:01:02]``).
- ``Utc``: ``[{created_at:yyyy-MM-dd HH:mm:ss} UTC]``; ``UtcFull`` adds ``.fff``.
- ``None``: ``{display_name}: {body}``.

The JSON is ChatRoot in its property order (FileInfo, streamer, video, comments), as ChatJson.cs
writes it; ``content_offset_seconds`` is the offset into the VOD (ChatDownloader.cs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector import irc
from collector.events import ChatMessage
from tests.paths import NYMN_RECENT, nymn_irc_lines

NYMN_FILE = NYMN_RECENT  # the chat every export here is made from


@dataclass(frozen=True)
class Comment:
    id: str
    offset: float  # seconds into the VOD
    created_at: datetime
    user_id: str
    login: str
    display_name: str
    body: str


def nymn_vod(vod_start: datetime, copies: tuple[float, ...] = (0.0,)) -> list[Comment]:
    """The real #nymn chat as a VOD that started at ``vod_start``; each entry of ``copies``
    (hours) places one more copy of the 798 messages that much later in the same VOD."""
    lines = nymn_irc_lines()
    messages = [
        e
        for e in (irc.parse_event(line, source="replay") for line in lines)
        if isinstance(e, ChatMessage)
    ]
    out: list[Comment] = []
    for k, hours in enumerate(copies):
        shift = timedelta(hours=hours)
        for m in messages:
            created = m.sent_at + shift
            out.append(
                Comment(
                    id=f"{m.message_id[:-4]}{k:04d}",
                    offset=(created - vod_start).total_seconds(),
                    created_at=created,
                    user_id=m.user_id or "",
                    login=m.user_login or "",
                    display_name=(m.user_name or m.user_login or "").strip(),
                    body=m.text,
                )
            )
    out.sort(key=lambda c: c.offset)
    return out


def relative_stamp(offset: float) -> str:
    total = int(offset)  # TimeSpan custom formats cut fractions off
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def txt_line(c: Comment, fmt: str) -> str:
    if fmt == "Relative":
        return f"[{relative_stamp(c.offset)}] {c.display_name}: {c.body}"
    if fmt == "Utc":
        return f"[{c.created_at:%Y-%m-%d %H:%M:%S} UTC] {c.display_name}: {c.body}"
    if fmt == "UtcFull":
        stamp = f"{c.created_at:%Y-%m-%d %H:%M:%S}.{c.created_at.microsecond // 1000:03d}"
        return f"[{stamp} UTC] {c.display_name}: {c.body}"
    assert fmt == "None"
    return f"{c.display_name}: {c.body}"


def txt_bytes(comments: list[Comment], fmt: str, newline: str = "\n") -> bytes:
    """A TwitchDownloader TXT export of ``comments`` with ``--timestamp-format fmt``."""
    return "".join(txt_line(c, fmt) + newline for c in comments).encode("utf-8")


def write_txt(path: Path, comments: list[Comment], fmt: str, newline: str = "\n") -> Path:
    """:func:`txt_bytes` written to ``path``; returns ``path``."""
    path.write_bytes(txt_bytes(comments, fmt, newline))
    return path


def _z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_json(path: Path, comments: list[Comment], **options: Any) -> Path:
    """:func:`json_bytes` (``options`` are its keywords) written to ``path``; returns ``path``."""
    path.write_bytes(json_bytes(comments, **options))
    return path


def json_bytes(
    comments: list[Comment],
    *,
    vod_start: datetime,
    channel: str = "nymn",
    channel_id: int = 62300805,
    trim: tuple[float, float] | None = None,
) -> bytes:
    """A TwitchDownloader JSON export of ``comments`` (those inside ``trim``, seconds into the
    VOD), as TwitchDownloaderCLI writes it."""
    length = max((c.offset for c in comments), default=0.0) + 60
    start, end = trim if trim else (0.0, length)
    root = {
        "FileInfo": {
            "Version": {"Major": 1, "Minor": 4, "Patch": 0},
            "CreatedAt": "2024-01-07T10:00:00.0000000+01:00",
            "UpdatedAt": "0001-01-01T00:00:00",
        },
        "streamer": {"name": "NymN", "login": channel, "id": channel_id},
        "video": {
            "title": "nymn VOD",
            "description": None,
            "id": "2026912334",
            "created_at": _z(vod_start),
            "start": start,
            "end": end,
            "length": length,
            "viewCount": 1234,
            "game": "Just Chatting",
            "chapters": [],
        },
        "comments": [
            {
                "_id": c.id,
                "created_at": _z(c.created_at),
                "channel_id": str(channel_id),
                "content_type": "video",
                "content_id": "2026912334",
                "content_offset_seconds": c.offset,
                "commenter": {
                    "display_name": c.display_name,
                    "_id": c.user_id,
                    "name": c.login,
                    "bio": None,
                    "created_at": "0001-01-01T00:00:00",
                    "updated_at": "0001-01-01T00:00:00",
                    "logo": None,
                },
                "message": {
                    "body": c.body,
                    "bits_spent": 0,
                    "fragments": [{"text": c.body, "emoticon": None}],
                    "user_badges": [],
                    "user_color": None,
                    "user_notice_params": {"msg_id": None},
                    "emoticons": [],
                },
            }
            for c in comments
            if start <= c.offset <= end
        ],
        "embeddedData": None,
    }
    return json.dumps(root, ensure_ascii=False).encode("utf-8")
