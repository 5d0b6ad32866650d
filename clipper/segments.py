"""Wall-clock media segments and the cut plan: the pure core (no I/O, no clock).

A segment is any file ``<start>.ts`` where ``<start>`` is its UTC wall-clock start as
``YYYYMMDDTHHMMSSZ`` or ``YYYYMMDDTHHMMSS.fffZ`` (docs/architecture.md, "Media for clips").
A segment lasts until the next one starts; the newest lasts its probed duration, or is still
being written (``duration=None``).  :func:`plan_cut` maps a wall-clock window onto those files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatpulse.core.errors import MediaError, MediaNotReady

__all__ = [
    "CutPlan",
    "PlannedPart",
    "Segment",
    "Window",
    "clip_window",
    "format_segment_name",
    "parse_segment_name",
    "plan_cut",
    "plan_retention",
    "plan_vod",
]

_NAME_RE = re.compile(r"^(\d{8}T\d{6})(?:\.(\d{3}))?Z\.ts$")


def parse_segment_name(name: str) -> datetime | None:
    """Return the UTC start a segment file name encodes, or None when it is not one."""
    m = _NAME_RE.match(name)
    if not m:
        return None
    try:
        start = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if m.group(2):
        start += timedelta(milliseconds=int(m.group(2)))
    return start


def format_segment_name(start: datetime) -> str:
    """The file name of a segment starting at ``start`` (milliseconds only when non-zero)."""
    start = start.astimezone(UTC)
    base = start.strftime("%Y%m%dT%H%M%S")
    ms = start.microsecond // 1000
    return f"{base}.{ms:03d}Z.ts" if ms else f"{base}Z.ts"


@dataclass(frozen=True, slots=True)
class Window:
    """A clip's wall-clock range; ``peak`` is the moment it was cut around."""

    start: datetime
    end: datetime
    peak: datetime


def clip_window(peak: datetime, pre_roll_s: float, post_roll_s: float) -> Window:
    """The window ``[peak - pre_roll, peak + post_roll]``; raises ValueError when empty."""
    if pre_roll_s + post_roll_s <= 0:
        raise ValueError("pre-roll plus post-roll must be positive")
    return Window(
        start=peak - timedelta(seconds=pre_roll_s),
        end=peak + timedelta(seconds=post_roll_s),
        peak=peak,
    )


@dataclass(frozen=True, slots=True)
class Segment:
    """One media file; ``duration`` None means it is still being written."""

    path: Path
    start: datetime
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class PlannedPart:
    """A segment to read, from ``inpoint`` to ``outpoint`` seconds into it (None: its edge)."""

    path: Path
    inpoint: float | None
    outpoint: float | None


@dataclass(frozen=True, slots=True)
class CutPlan:
    """The segments a clip is cut from, and the wall-clock range they give."""

    parts: tuple[PlannedPart, ...]
    start: datetime
    end: datetime

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def _end_of(segments: list[Segment], i: int) -> datetime | None:
    if i + 1 < len(segments):
        return segments[i + 1].start
    last = segments[i]
    return None if last.duration is None else last.start + timedelta(seconds=last.duration)


def plan_cut(segments: list[Segment], start: datetime, end: datetime) -> CutPlan:
    """Map ``[start, end)`` onto ``segments`` (any order).

    Raises :class:`MediaNotReady` while the newest segment is still being written and the
    window reaches into it (or past it); :class:`MediaError` when no segment overlaps the
    window.  A window reaching before the first segment, or past the end of a finished
    recording, is clamped to the media that exists.
    """
    segs = sorted(segments, key=lambda s: s.start)
    if not segs:
        raise MediaError("no media segments for this channel")
    last_end = _end_of(segs, len(segs) - 1)
    if last_end is None and end > segs[-1].start:
        raise MediaNotReady(f"recording has not reached {end.isoformat()} yet")
    parts: list[PlannedPart] = []
    real_start: datetime | None = None
    real_end: datetime | None = None
    for i, seg in enumerate(segs):
        if seg.start >= end:
            break
        seg_end = _end_of(segs, i)
        assert seg_end is not None  # only the newest can be open, and it was handled above
        if seg_end <= start:
            continue
        inpoint = (start - seg.start).total_seconds() if start > seg.start else None
        outpoint = (end - seg.start).total_seconds() if end < seg_end else None
        parts.append(PlannedPart(seg.path, inpoint, outpoint))
        if real_start is None:
            real_start = max(start, seg.start)
        real_end = min(end, seg_end)
    if not parts or real_start is None or real_end is None:
        raise MediaError(
            f"no media covers {start.isoformat()} .. {end.isoformat()} "
            f"(segments span {segs[0].start.isoformat()} .. "
            f"{last_end.isoformat() if last_end else 'now'})"
        )
    return CutPlan(tuple(parts), real_start, real_end)


def plan_vod(
    vod_start: datetime, vod_duration_s: float | None, start: datetime, end: datetime
) -> tuple[float, float]:
    """Return (offset into the VOD, length) in seconds for ``[start, end)``.

    Raises :class:`MediaError` when the VOD does not overlap the window; clamps otherwise.
    """
    offset = (start - vod_start).total_seconds()
    stop = (end - vod_start).total_seconds()
    if vod_duration_s is not None:
        stop = min(stop, vod_duration_s)
    offset = max(offset, 0.0)
    if stop <= offset:
        raise MediaError("the VOD does not cover the clip")
    return offset, stop - offset


def plan_retention(
    segments: list[tuple[Path, datetime, int]], now: datetime, max_age_s: float, max_bytes: int
) -> list[Path]:
    """Which segments (path, start, size) to delete: older than ``max_age_s``, then the
    oldest until the rest fit in ``max_bytes``.  The newest (being written) is always kept."""
    segs = sorted(segments, key=lambda s: s[1])
    if len(segs) <= 1:
        return []
    keep_last = segs[-1]
    candidates = segs[:-1]
    cutoff = now - timedelta(seconds=max_age_s)
    doomed = [p for p, start, _ in candidates if start < cutoff]
    rest = [s for s in candidates if s[1] >= cutoff]
    total = sum(size for _, _, size in rest) + keep_last[2]
    for path, _, size in rest:
        if total <= max_bytes:
            break
        doomed.append(path)
        total -= size
    return doomed
