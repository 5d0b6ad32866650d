"""Stream inference, pure: which runs of chat are broadcasts, and which stored stream each
new one continues.

A channel's messages form *islands*: runs with no silence longer than the gap.  Every island
is a stream, except that a *hint* (a replay's ``--start``, a TwitchDownloader JSON's
``video.created_at``, Helix) starts one: a hint at most one gap before an island's first
message makes the island start at the hint; a hint inside an island splits it there (the
part before ends at the last message before the hint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Hint", "Island", "Stream", "infer_streams", "match_streams", "merge_ranges"]


@dataclass(frozen=True, slots=True)
class Island:
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class Hint:
    """A known stream start; ``before`` is the channel's last message before ``at``."""

    at: datetime
    found_by: str
    title: str | None = None
    category: str | None = None
    before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Stream:
    started_at: datetime
    ended_at: datetime
    found_by: str = "activity"
    title: str | None = None
    category: str | None = None


def merge_ranges(
    ranges: Sequence[tuple[datetime, datetime]], gap: timedelta
) -> list[tuple[datetime, datetime]]:
    """Sorted, merged ranges; two ranges at most ``gap`` apart become one."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if out and lo - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def infer_streams(islands: Sequence[Island], hints: Sequence[Hint], gap: timedelta) -> list[Stream]:
    """The streams of ``islands`` (sorted, each separated by more than ``gap``) given
    ``hints`` (sorted by time); see the module docstring."""
    streams: list[Stream] = []
    for island in islands:
        start: Hint | None = None
        for hint in hints:
            if island.first - gap <= hint.at <= island.first:
                start = hint  # the latest hint before the island's first message
        current = (
            Stream(island.first, island.first)
            if start is None
            else Stream(start.at, island.first, start.found_by, start.title, start.category)
        )
        for hint in hints:
            if not island.first < hint.at <= island.last:
                continue
            if hint.before is not None and hint.before >= max(current.started_at, island.first):
                streams.append(
                    Stream(
                        current.started_at,
                        hint.before,
                        current.found_by,
                        current.title,
                        current.category,
                    )
                )
            # else no message between the last start and this hint: the later hint wins
            current = Stream(hint.at, hint.at, hint.found_by, hint.title, hint.category)
        streams.append(
            Stream(
                current.started_at, island.last, current.found_by, current.title, current.category
            )
        )
    return streams


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> timedelta | None:
    lo, hi = max(a0, b0), min(a1, b1)
    return hi - lo if lo <= hi else None


def match_streams(
    old: Sequence[tuple[int, datetime, datetime]], new: Sequence[Stream]
) -> list[int | None]:
    """For each new stream, the id of the stored stream it continues (the unused one it
    overlaps most, the earliest on a tie) or None; so a stream keeps its id when late rows
    move its edges."""
    used: set[int] = set()
    out: list[int | None] = []
    for stream in new:
        best: tuple[timedelta, int] | None = None
        for sid, s0, s1 in sorted(old, key=lambda o: o[1]):
            if sid in used:
                continue
            ov = _overlap(stream.started_at, stream.ended_at, s0, s1)
            if ov is not None and (best is None or ov > best[0]):
                best = (ov, sid)
        if best is not None:
            used.add(best[1])
        out.append(best[1] if best else None)
    return out
