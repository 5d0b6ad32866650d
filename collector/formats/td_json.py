"""Reader for TwitchDownloader's chat JSON, and the head of such a file (:class:`TdJsonHead`).

The comments are mapped as GQL comments are (:mod:`collector.formats.comments`): only the key
names and the ``message`` body (:func:`_td_body`) are TwitchDownloader's own.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.events import (
    ChatEvent,
    EmoteUse,
    Malformed,
)
from collector.formats.clock import _Comment, _VodClock
from collector.formats.comments import _TD_COMMENT_KEYS, _Body, _map_comment, _read_comments
from collector.formats.common import (
    _SNIFF_BYTES,
    FormatError,
    MissingInputError,
    _Bad,
    _norm_channel,
    _opt_str,
    _utc,
)
from collector.formats.jsonscan import _JsonReader
from collector.formats.stream import ChatLog, _log_name, _read_chunks
from collector.formats.td_txt import _LOGIN

# --- TwitchDownloader JSON ----------------------------------------------------------------------


def _read_td_json(
    chunks: Iterator[bytes],
    name: str,
    channel: str | None,
    platform: str,
    start: datetime | None = None,
    on_clock: Callable[[str], None] | None = None,
) -> Iterator[ChatEvent]:
    reader = _JsonReader(chunks)
    if reader.take() != "{":
        raise FormatError(f"{name}: not a TwitchDownloader chat JSON (no root object)")
    header: dict[str, Any] = {}
    while True:
        c = reader.peek()
        if c in ("}", ""):
            return
        if c == ",":
            reader.take()
            continue
        if c != '"':
            yield Malformed(reader.snippet(), "root object: expected a property name", name)
            return
        key_raw, _ = reader.scan_value(keep=True)
        try:
            key = json.loads(key_raw)
        except ValueError:
            yield Malformed(key_raw, "root object: bad property name", name)
            return
        if reader.take() != ":":
            yield Malformed(key_raw, f"root object: no ':' after {key_raw}", name)
            return
        if key == "comments":
            if reader.peek() != "[":
                raw, _ = reader.scan_value(keep=True)
                yield Malformed(raw[:200], "comments is not an array", name)
                continue
            reader.take()
            yield from _td_comments(reader, name, channel, platform, header, start, on_clock)
        elif key in ("FileInfo", "streamer", "video", "clipper"):
            raw, _ = reader.scan_value(keep=True)
            try:
                header[key] = json.loads(raw)
            except ValueError:
                yield Malformed(raw[:200], f"{key} is not valid JSON", name)
        else:
            # embeddedData holds base64 emote images: skipped without being kept.
            reader.scan_value(keep=False)


def _header_dict(header: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = header.get(key)
    return value if isinstance(value, dict) else {}


def _td_channel(streamer: Mapping[str, Any], video: Mapping[str, Any]) -> str | None:
    """The channel login a TD file names: ``streamer.login``/``streamer.name`` (current files),
    else ``video.user_login``/``video.user_name`` (files written from Twitch's older API).  A
    display name that is no login (localized) is skipped."""
    for value in (
        streamer.get("login"),
        streamer.get("name"),
        video.get("user_login"),
        video.get("user_name"),
    ):
        if isinstance(value, str) and _LOGIN.fullmatch(value.strip().lstrip("#")):
            return _norm_channel(value)
    return None


def _platform_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value) if value not in ("", 0) else None


def _td_comments(
    reader: _JsonReader,
    name: str,
    channel: str | None,
    platform: str,
    header: Mapping[str, Any],
    start: datetime | None,
    on_clock: Callable[[str], None] | None,
) -> Iterator[ChatEvent]:
    # TD writes FileInfo, streamer, clipper, video, then comments (ChatRoot.cs property order),
    # so the channel and the video's start are known before the first comment.
    streamer = _header_dict(header, "streamer")
    video = _header_dict(header, "video")
    chan = channel or _td_channel(streamer, video)
    if chan is None:
        raise MissingInputError(
            f"{name}: no streamer.name or video.user_login before the comments; pass --channel"
        )
    room_id = _platform_id(streamer.get("id")) or _platform_id(video.get("user_id"))
    anchor: datetime | None = None
    created = video.get("created_at")
    if isinstance(created, str):
        try:
            anchor = _utc(datetime.fromisoformat(created))
        except ValueError:
            anchor = None
    video_type = video.get("type")

    def to_comment(obj: Mapping[str, Any], raw: str) -> _Comment:
        channel_id = _opt_str(obj, "channel_id", allow_int=True) or room_id
        return _map_comment(
            obj,
            _TD_COMMENT_KEYS,
            _td_body,
            channel=chan,
            platform=platform,
            raw=raw,
            channel_platform_id=channel_id,
        )

    kind = video_type if isinstance(video_type, str) else None
    clock = _VodClock(anchor, "video.created_at", start, kind, on_clock)
    yield from _read_comments(reader, name, _TD_COMMENT_KEYS, to_comment, clock)


def _td_body(message: Mapping[str, Any]) -> _Body:
    """``body`` is the text; a notice (``user_notice_params``) names the kind; bits spent."""
    text = message.get("body")
    if not isinstance(text, str):
        raise _Bad("missing message.body")
    notice = message.get("user_notice_params")
    msg_id = None
    if isinstance(notice, dict):
        # "msg_id" in TwitchDownloader's files, "msg-id" in files from Twitch's older API.
        msg_id = notice.get("msg_id") or notice.get("msg-id")
    extra: dict[str, str] = {}
    kind = "chat"
    if isinstance(msg_id, str) and msg_id:
        extra["msg_id"] = msg_id
        # Highlighted / sub-mode-skip messages are ordinary chat with a flag (TW msg-id list).
        if msg_id not in _CHAT_MSG_IDS:
            kind = msg_id
    bits = message.get("bits_spent")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < 0:
        bits = 0
    return _Body(text, _td_emotes(message, text), kind, bits, extra)


@dataclass(frozen=True, slots=True)
class TdJsonHead:
    """What a TwitchDownloader JSON says about its video, read from the head of the file.

    ``created_at`` is ``video.created_at`` (UTC); ``start_s``/``end_s`` are ``video.start`` and
    ``video.end``, the trim of the download in seconds into the video; ``video_type`` is
    ``video.type`` when the file has one; ``is_clip`` is true when a ``clipper`` is present.
    """

    channel: str | None
    channel_id: str | None
    video_id: str | None
    video_type: str | None
    created_at: datetime | None
    start_s: float
    end_s: float | None
    is_clip: bool

    @property
    def offset_origin(self) -> datetime | None:
        """The clock time of ``content_offset_seconds`` 0, or None when the file cannot say.

        TwitchDownloader takes each comment's offset from Twitch as it is: seconds from the
        start of the video, whatever the trim (``video.start``) of the download (TD
        ChatDownloader.cs keeps ``contentOffsetSeconds``; ChatText.cs writes it as the
        relative stamp).  So offset 0 is ``video.created_at``.  A clip's ``created_at`` is
        when the clip was made and its offsets count from the start of the VOD: no origin.
        """
        if self.is_clip:
            return None
        return self.created_at


def td_json_head(log: ChatLog) -> TdJsonHead:
    """Read ``streamer``, ``clipper`` and ``video`` of a TwitchDownloader JSON (a path or the
    file's bytes, plain or gzip) without loading its comments: TD writes them before ``comments`` (ChatRoot.cs order), so
    only the head of the file is read; a file in another order is scanned, never held.

    Raises :class:`FormatError` when the file is not a JSON object, :class:`OSError` when it
    cannot be read.
    """
    chunks = _read_chunks(log, _SNIFF_BYTES, None)
    header: dict[str, Any] = {}
    try:
        reader = _JsonReader(chunks)
        if reader.take() != "{":
            raise FormatError(
                f"{_log_name(log)}: not a TwitchDownloader chat JSON (no root object)"
            )
        while "video" not in header:
            c = reader.peek()
            if c == ",":
                reader.take()
                continue
            if c != '"':
                break  # end of the object, or something TD never writes
            key_raw, _ = reader.scan_value(keep=True)
            if reader.take() != ":":
                break
            keep = key_raw in ('"streamer"', '"clipper"', '"video"')
            raw, _ = reader.scan_value(keep=keep)
            if keep:
                with contextlib.suppress(ValueError):
                    header[key_raw.strip('"')] = json.loads(raw)
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # closes the file now, not at garbage collection
    streamer = header.get("streamer")
    streamer = streamer if isinstance(streamer, dict) else {}
    video = header.get("video")
    video = video if isinstance(video, dict) else {}
    login = streamer.get("login") or streamer.get("name") or video.get("user_login")
    room = streamer.get("id") or video.get("user_id")
    created: datetime | None = None
    raw_created = video.get("created_at")
    if isinstance(raw_created, str):
        with contextlib.suppress(ValueError):
            created = datetime.fromisoformat(raw_created)
            created = created.replace(tzinfo=UTC) if created.utcoffset() is None else created
            created = created.astimezone(UTC)
    start = video.get("start")
    end = video.get("end")
    video_id = video.get("id")
    video_type = video.get("type")
    return TdJsonHead(
        channel=_norm_channel(login) if isinstance(login, str) and login.strip() else None,
        channel_id=str(room) if isinstance(room, int | str) and room not in ("", 0) else None,
        video_id=str(video_id) if isinstance(video_id, int | str) and video_id != "" else None,
        video_type=video_type if isinstance(video_type, str) and video_type else None,
        created_at=created,
        start_s=float(start) if isinstance(start, int | float) else 0.0,
        end_s=float(end) if isinstance(end, int | float) else None,
        is_clip=isinstance(header.get("clipper"), dict),
    )


_CHAT_MSG_IDS = frozenset({"highlighted-message", "skip-subs-mode-message"})


def _td_emotes(message: Mapping[str, Any], text: str) -> tuple[EmoteUse, ...]:
    counts: Counter[tuple[str, str]] = Counter()
    fragments = message.get("fragments")
    if isinstance(fragments, list) and fragments:
        # Fragments carry the emote's text itself, so no offsets are needed.
        for frag in fragments:
            if not isinstance(frag, dict):
                continue
            emoticon = frag.get("emoticon")
            frag_text = frag.get("text")
            if isinstance(emoticon, dict) and isinstance(frag_text, str) and frag_text:
                emote_id = emoticon.get("emoticon_id")
                if isinstance(emote_id, str | int) and str(emote_id):
                    counts[(str(emote_id), frag_text)] += 1
    else:
        # Fallback for files without fragments.  TD writes end = begin + UTF-16 length + 1
        # ([FORMATS], TD ChatDownloader.cs L213-221); we read begin as a UTF-16 offset too
        # (an inference) and clamp out-of-range values.
        units = text.encode("utf-16-le")
        for emote in message.get("emoticons") or ():
            if not isinstance(emote, dict):
                continue
            emote_id, begin, end = emote.get("_id"), emote.get("begin"), emote.get("end")
            if not (isinstance(emote_id, str) and isinstance(begin, int) and isinstance(end, int)):
                continue
            lo, hi = max(begin, 0) * 2, min(end - 1, len(units) // 2) * 2
            name = units[lo:hi].decode("utf-16-le", "ignore").strip()
            if emote_id and name:
                counts[(emote_id, name)] += 1
    return tuple(EmoteUse(i, n, "twitch", c) for (i, n), c in counts.items())
