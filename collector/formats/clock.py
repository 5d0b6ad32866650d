"""The clock of VOD comment files: placing comments in time from offsets and creation times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from collector.events import (
    ChatEvent,
    ChatMessage,
    Malformed,
    deterministic_message_id,
)
from collector.formats.common import MissingInputError
from collector.formats.writer import _rfc3339_out

# --- the clock of VOD comment files -------------------------------------------------------------


class _Comment(NamedTuple):
    """One comment of a VOD chat file, placed by its own ``created_at`` so far."""

    message: ChatMessage
    offset: float | None  # seconds into the video
    raw: str
    derived_id: bool  # the file gave no id: message_id came from deterministic_message_id


class _VodClock(NamedTuple):
    """What a VOD file offers to place its comments by, beside their own times.

    ``anchor`` is the video's start as the file says it (``video.created_at``; None when it says
    nothing), ``anchor_name`` how messages name it; ``start`` is ``--start`` (wins over
    ``anchor``); ``video_type`` is ``video.type`` when the file has one; ``on_clock(note)`` gets
    one sentence, at the end, saying which clock placed the comments.
    """

    anchor: datetime | None
    anchor_name: str
    start: datetime | None
    video_type: str | None
    on_clock: Callable[[str], None] | None


# A file is decided once its offsets span this much, or after this many comments, or at its end.
_CLOCK_DECIDE_SPAN_S = 600.0
_CLOCK_LOOKAHEAD = 10_000
# Below this offset span a collapse is too small to tell (unless the video says highlight).
_CLOCK_MIN_SPAN_S = 10.0


class _Span:
    __slots__ = ("hi", "lo")

    def __init__(self) -> None:
        self.lo = float("inf")
        self.hi = float("-inf")

    def add(self, value: float) -> None:
        if value < self.lo:
            self.lo = value
        if value > self.hi:
            self.hi = value

    @property
    def width(self) -> float:
        return self.hi - self.lo if self.hi >= self.lo else 0.0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _clocked(
    comments: Iterator[_Comment | Malformed],
    *,
    name: str,
    created_key: str,
    offset_key: str,
    clock: _VodClock,
) -> Iterator[ChatEvent]:
    """Yield the comments' messages, each placed on the right clock.

    A VOD comment carries two times: ``created_at`` (when it was sent) and its offset into the
    video.  They agree (``created_at - offset`` is the video's start) except where Twitch gives
    every comment of a *highlight* the moment the highlight was made: thousands of comments
    over 48 minutes of offsets with ``created_at`` all within seconds.  Every file is checked:
    when the ``created_at`` span is under half the offsets' span (and the offsets span at least
    10 s, or ``video_type`` is ``highlight``), comments are placed at ``start`` (``--start``) or
    else ``anchor`` (``video.created_at``) plus their offset, the file's own ``created_at``
    kept in ``extra``; with neither, :class:`MissingInputError` asks for ``--start``.  The
    decision is taken on a bounded look-ahead (offsets spanning 10 minutes, 10,000 comments,
    or the file's end), so memory stays flat; ``on_clock`` gets the whole file's figures.
    """
    anchor, anchor_name, start, video_type, on_clock = clock
    created = _Span()
    offsets = _Span()
    held: list[_Comment | Malformed] | None = []
    base: datetime | None = None  # set when the offsets place the comments
    for item in comments:
        if isinstance(item, _Comment) and item.offset is not None:
            created.add(item.message.sent_at.timestamp())
            offsets.add(item.offset)
        if held is not None:
            held.append(item)
            if offsets.width >= _CLOCK_DECIDE_SPAN_S or len(held) >= _CLOCK_LOOKAHEAD:
                base = _clock_base(created, offsets, anchor, start, video_type, name, created_key)
                for h in held:
                    yield _placed(h, base, name, offset_key, created_key)
                held = None
            continue
        yield _placed(item, base, name, offset_key, created_key)
    if held is not None:
        base = _clock_base(created, offsets, anchor, start, video_type, name, created_key)
        for h in held:
            yield _placed(h, base, name, offset_key, created_key)
    if on_clock is not None:
        on_clock(
            _clock_note(
                base, created, offsets, start, anchor_name, video_type, created_key, offset_key
            )
        )


def _collapsed(created: _Span, offsets: _Span, video_type: str | None) -> bool:
    if offsets.width <= 0:
        return False
    evidence = offsets.width >= _CLOCK_MIN_SPAN_S or video_type == "highlight"
    return evidence and created.width < 0.5 * offsets.width


def _clock_base(
    created: _Span,
    offsets: _Span,
    anchor: datetime | None,
    start: datetime | None,
    video_type: str | None,
    name: str,
    created_key: str,
) -> datetime | None:
    if not _collapsed(created, offsets, video_type):
        return None
    base = start or anchor
    if base is None:
        raise MissingInputError(
            f"{name}: the comments' {created_key} span {_duration(created.width)} while their "
            f"offsets span {_duration(offsets.width)}, so {created_key} is not when they were "
            "sent, and the file names no start; pass --start (the video's start, ISO 8601)"
        )
    return base.astimezone(UTC)


def _placed(
    item: _Comment | Malformed, base: datetime | None, name: str, offset_key: str, created_key: str
) -> ChatEvent:
    if isinstance(item, Malformed):
        return item
    msg = item.message
    if base is None:
        return msg
    if item.offset is None:
        return Malformed(
            item.raw, f"no {offset_key}: this file's comments are placed by their offsets", name
        )
    sent_at = base + timedelta(seconds=item.offset)
    message_id = msg.message_id
    if item.derived_id:
        message_id = deterministic_message_id(
            msg.platform,
            msg.channel,
            sent_at,
            msg.user_id or msg.user_login or msg.user_name,
            msg.text,
        )
    extra = dict(msg.extra)
    extra[created_key] = _rfc3339_out(msg.sent_at)
    return replace(msg, sent_at=sent_at, message_id=message_id, extra=extra)


def _clock_note(
    base: datetime | None,
    created: _Span,
    offsets: _Span,
    start: datetime | None,
    anchor_name: str,
    video_type: str | None,
    created_key: str,
    offset_key: str,
) -> str:
    spans = (
        f"the comments' {created_key} span {_duration(created.width)}, their offsets "
        f"{_duration(offsets.width)}"
    )
    typed = f", video.type {video_type}" if video_type else ""
    if base is None:
        if offsets.width <= 0:
            return f"clock: {created_key} (no offsets to check it against)"
        note = f"clock: {created_key}, because it follows the offsets ({spans}{typed})"
        return note + ("; --start not needed, not used" if start is not None else "")
    origin = "--start" if start is not None else anchor_name
    return (
        f"clock: {origin} + {offset_key}, because {created_key} collapsed ({spans}{typed}); "
        f"each comment's own {created_key} is kept in extra"
    )
