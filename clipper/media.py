"""Where a clip's media is: recorder segments on disk, else a registered VOD.

Segments live in ``MEDIA_DIR/<channel>/`` and are found by name (:mod:`clipper.segments`); the
newest one counts as finished once it has not changed for ``settle_s`` seconds (the recorder
stopped), and is then probed for its duration.  Directory names come from validated channel
logins, never raw from a request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chatpulse.core.errors import MediaError
from clipper.ffmpeg import probe
from clipper.segments import CutPlan, Segment, parse_segment_name, plan_cut
from clipper.webhook import CHANNEL_RE

__all__ = ["VodSource", "channel_dir", "list_segments", "plan_from_segments"]


def channel_dir(media_dir: Path, channel: str) -> Path:
    """``media_dir/<channel>``; raises :class:`MediaError` for a name that is not a login."""
    if not CHANNEL_RE.match(channel):
        raise MediaError(f"invalid channel name {channel!r}")
    return media_dir / channel


def list_segments(directory: Path) -> list[Segment]:
    """Every segment file in ``directory``, oldest first (durations unknown)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    segs = []
    for entry in entries:
        start = parse_segment_name(entry.name)
        if start is not None and entry.is_file():
            segs.append(Segment(Path(entry.path), start))
    segs.sort(key=lambda s: s.start)
    return segs


async def plan_from_segments(
    media_dir: Path,
    channel: str,
    start: datetime,
    end: datetime,
    *,
    ffprobe: str,
    settle_s: float,
    now: float,
) -> CutPlan:
    """The cut plan of ``[start, end)`` from the channel's segments.

    Raises :class:`~chatpulse.core.errors.MediaNotReady` while the recording has not passed ``end``
    and :class:`MediaError` when no segment overlaps the window.
    """
    segs = list_segments(channel_dir(media_dir, channel))
    if segs and segs[-1].start < end:
        newest = segs[-1]
        try:
            idle = now - newest.path.stat().st_mtime
        except FileNotFoundError:  # removed by retention meanwhile
            idle = 0.0
            segs.pop()
        if segs and segs[-1] is newest and idle >= settle_s:
            info = await probe(ffprobe, str(newest.path))
            segs[-1] = Segment(newest.path, newest.start, info.duration_s)
    return plan_cut(segs, start, end)


@dataclass(frozen=True, slots=True)
class VodSource:
    """A registered VOD: a file path or URL and its UTC start."""

    location: str
    start: datetime
    duration_s: float | None
