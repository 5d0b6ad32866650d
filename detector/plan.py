"""The detector runner's decisions, without I/O: what to re-judge, on which counts, what to write.

:mod:`detector.runner` reads the rows these functions take and writes the rows they return;
everything here is plain data in, plain data out (no connection, no clock), so it can be tested
with literal values.  The rules (which rows are new, how far back a new row reaches, why a live
range starts ``late_window_s`` before the watermark) are described in :mod:`detector.runner`
and docs/architecture.md.

Time is counted in *hops*: absolute multiples of ``DetectorConfig.step_s`` since the epoch
(:func:`hop_of`, :func:`hop_start`).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from detector.model import BurstEvent, ChannelSeries, DetectorConfig, HypeEvent

__all__ = [
    "BucketCount",
    "ChannelState",
    "EmoteCount",
    "EventChanges",
    "EventKey",
    "EventValues",
    "JudgeRange",
    "Sample",
    "StateBounds",
    "StoredEvent",
    "as_real",
    "choose_samples",
    "event_changes",
    "hop_of",
    "hop_start",
    "merge_gap_hops",
    "plan_ranges",
    "series_for",
    "state_bounds",
    "trim",
    "widen_to_events",
]


class EventKey(NamedTuple):
    """A stored event's unique key: ``("b", emote, started_at)`` for a burst,
    ``("h", "", started_at)`` for a hype moment."""

    kind: str
    emote: str
    started_at: datetime


class StateBounds(NamedTuple):
    """A channel's new ``detector_state`` times."""

    processed_until: datetime | None
    first_message_at: datetime | None
    last_message_at: datetime | None


def hop_of(ts: datetime, step: int) -> int:
    """The hop that contains ``ts``."""
    return int(ts.timestamp() // step)


def hop_start(hop: int, step: int) -> datetime:
    """The time at which ``hop`` starts (UTC)."""
    return datetime.fromtimestamp(hop * step, UTC)


def as_real(x: float) -> float:
    """``round(x, 3)`` as a ``real`` column stores it: equal to the column read as float8."""
    return float(struct.unpack("f", struct.pack("f", round(x, 3)))[0])


@dataclass(slots=True)
class ChannelState:
    """A channel's ``detector_state`` plus what this pass's search for new rows found."""

    id: int
    processed: datetime | None
    first_at: datetime | None
    last_at: datetime | None
    snapshot: str | None
    snap_xmin: int | None
    updated_at: datetime | None
    fresh: list[tuple[datetime, datetime]] = field(default_factory=list)  # (first, last) new
    fresh_count: int = 0


@dataclass(frozen=True, slots=True)
class EventValues:
    """An event as stored: its place in hops and the column values a rewrite would change."""

    start_hop: int
    end_hop: int
    values: tuple[Any, ...]


@dataclass(slots=True)
class JudgeRange:
    """Windows ``[start, limit)`` to re-judge (``limit`` None: up to ``end``, the live edge)."""

    channel: ChannelState
    start: int
    limit: int | None
    end: int
    closed: int
    refresh_from: int  # hype details (sentiment, samples) are recomputed for hypes ending after
    existing: dict[EventKey, EventValues] = field(default_factory=dict)
    fetched_from: int = 0  # existing events ending after this hop are in `existing`
    series: ChannelSeries | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of ``stored_events``: a stored burst (``kind`` 'b') or hype moment ('h') near
    range ``k``; the columns of the other kind are NULL."""

    k: int
    kind: str
    emote_name: str
    started_at: datetime
    ended_at: datetime
    peak_at: datetime
    score: float
    peak_uses: int | None
    baseline: float | None
    total_uses: int | None
    peak_messages: int | None
    baseline_messages: float | None
    messages_per_min: float | None
    baseline_per_min: float | None

    @property
    def key(self) -> EventKey:
        return EventKey(self.kind, self.emote_name, self.started_at)

    def stored(self, step: int) -> EventValues:
        """The event in the form :func:`event_changes` compares (the order of its tuples)."""
        values: tuple[Any, ...]
        if self.kind == "b":
            values = (
                self.ended_at,
                self.peak_at,
                self.peak_uses,
                self.baseline,
                self.score,
                self.total_uses,
                self.peak_messages,
                self.baseline_messages,
            )
        else:
            values = (
                self.ended_at,
                self.peak_at,
                self.score,
                self.messages_per_min,
                self.baseline_per_min,
            )
        return EventValues(hop_of(self.started_at, step), hop_of(self.ended_at, step), values)


@dataclass(frozen=True, slots=True)
class BucketCount:
    """One row of ``message_buckets``: messages and chatters of range ``k`` in one hop."""

    k: int
    hop: int
    messages: int
    chatters: int


@dataclass(frozen=True, slots=True)
class EmoteCount:
    """One row of ``emote_buckets``: messages using an emote, and its uses, in one hop."""

    k: int
    hop: int
    emote_name: str
    messages: int
    uses: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One row of ``sample_messages``."""

    user_login: str | None
    text: str
    sent_at: datetime


def merge_gap_hops(config: DetectorConfig) -> int:
    """Hops after an event within which a new window still merges into it."""
    return config.hops(max(config.emote_merge_gap_s, config.hype_merge_gap_s))


def plan_ranges(
    channels: Iterable[ChannelState],
    closed_now: int,
    config: DetectorConfig,
    late_window_s: float,
) -> list[JudgeRange]:
    """The ranges to re-judge: per channel one live range and, for new rows far behind the
    live edge, bounded ranges of their own.  ``closed_now`` is the first hop not yet final."""
    cfg, step = config, config.step_s
    reach = cfg.context_hops + cfg.span_hops + 1  # windows a new row can change
    tail = cfg.span_hops + 1 + merge_gap_hops(cfg)
    out: list[JudgeRange] = []
    for ch in channels:
        lows = [lo for lo, _ in ch.fresh]
        highs = [hi for _, hi in ch.fresh]
        last = max([*highs, *([ch.last_at] if ch.last_at else [])], default=None)
        if last is None:
            continue  # no messages at all
        # Past the last message plus a merge gap every window is empty and final: stopping
        # there keeps a replay of old chat from walking every hop up to today.
        closed = min(closed_now, hop_of(last, step) + tail)
        if ch.snapshot is None or ch.processed is None:
            start = hop_of(min(lows), step) if lows else closed
            if start < closed:
                out.append(JudgeRange(ch, start, None, closed, closed, start))
            continue
        processed = hop_of(ch.processed, step)
        # Every window holding a message judged: only new rows can change anything.
        live_needed = processed < min(closed, hop_of(last, step) + cfg.span_hops)
        if not ch.fresh and not live_needed:
            continue
        live_start = processed - cfg.hops(late_window_s)
        refresh = live_start
        spans = sorted((hop_of(lo, step), hop_of(hi, step) + reach) for lo, hi in ch.fresh)
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            if b >= live_start:
                live_start, refresh, live_needed = min(live_start, a), min(refresh, a), True
            else:
                out.append(JudgeRange(ch, a, b, min(b + reach, closed), closed, a))
        if live_needed and live_start < closed:
            out.append(JudgeRange(ch, live_start, None, closed, closed, refresh))
    return out


def widen_to_events(r: JudgeRange, gap: int) -> bool:
    """Move ``r.start`` back to the start of any stored event under way there or within
    ``gap`` hops of it (so that merging gives the same event, and key, as a history run).
    True when events older than those loaded may matter, i.e. they must be loaded again."""
    moved = True
    while moved:
        moved = False
        for event in r.existing.values():
            if event.start_hop < r.start and event.end_hop + gap > r.start:
                r.start, moved = event.start_hop, True
    return r.start - gap < r.fetched_from


def series_for(
    ranges: Sequence[JudgeRange],
    context_hops: int,
    counts: Iterable[BucketCount],
    emotes: Iterable[EmoteCount],
    cached: Sequence[ChannelSeries | None],
) -> list[ChannelSeries]:
    """Each range's series over ``[start - context, end)`` from the counts read for it; where
    ``cached[k]`` is a series, the hops before the range's start come from it instead (no new
    row lies there: the range starts at or before every new row)."""
    lo_of = [r.start - context_hops for r in ranges]
    msgs = [[0] * (r.end - lo) for r, lo in zip(ranges, lo_of, strict=True)]
    chat = [[0] * (r.end - lo) for r, lo in zip(ranges, lo_of, strict=True)]
    em: list[dict[str, dict[int, int]]] = [{} for _ in ranges]
    eu: list[dict[str, dict[int, int]]] = [{} for _ in ranges]
    for c in counts:
        msgs[c.k][c.hop - lo_of[c.k]] = int(c.messages)
        chat[c.k][c.hop - lo_of[c.k]] = int(c.chatters)
    for e in emotes:
        em[e.k].setdefault(e.emote_name, {})[int(e.hop)] = int(e.messages)
        eu[e.k].setdefault(e.emote_name, {})[int(e.hop)] = int(e.uses)
    out = []
    for k, r in enumerate(ranges):
        lo, old = lo_of[k], cached[k]
        if old is not None:
            msgs[k][: r.start - lo] = old.messages[lo - old.start : r.start - old.start]
            chat[k][: r.start - lo] = old.chatters[lo - old.start : r.start - old.start]
            for name, sparse in old.emote_messages.items():
                kept = {h: c for h, c in sparse.items() if lo <= h < r.start}
                if kept:
                    em[k].setdefault(name, {}).update(kept)
                    uses = old.emote_uses.get(name, {})
                    eu[k].setdefault(name, {}).update({h: uses.get(h, c) for h, c in kept.items()})
        out.append(ChannelSeries(lo, msgs[k], chat[k], em[k], eu[k]))
    return out


def trim(series: ChannelSeries, lo: int) -> ChannelSeries:
    """The series from hop ``lo`` on (all of it when it starts later)."""
    if lo <= series.start:
        return series
    cut = lo - series.start
    em = {n: {h: c for h, c in v.items() if h >= lo} for n, v in series.emote_messages.items()}
    eu = {n: {h: c for h, c in v.items() if h >= lo} for n, v in series.emote_uses.items()}
    return ChannelSeries(
        lo,
        series.messages[cut:],
        series.chatters[cut:],
        {n: v for n, v in em.items() if v},
        {n: v for n, v in eu.items() if v},
    )


@dataclass(slots=True)
class EventChanges:
    """What a judged range changes in the stored events."""

    #: Bursts to upsert: (key, values in the order of :meth:`StoredEvent.stored`).
    bursts: list[tuple[EventKey, tuple[Any, ...]]]
    #: Hype moments to (re)write with their details (chatters, emotes, sentiment, samples).
    hypes: list[HypeEvent]
    #: Stored events the range no longer finds (dissolved, or merged into another).
    gone_bursts: list[EventKey]
    gone_hypes: list[EventKey]


def event_changes(
    r: JudgeRange, bursts: Sequence[BurstEvent], hypes: Sequence[HypeEvent], config: DetectorConfig
) -> EventChanges:
    """Compare the events found over ``r`` with the stored ones in ``r.existing``."""
    step = config.step_s
    per_min = 60.0 / (step * config.span_hops)
    new: dict[EventKey, EventValues] = {}
    for b in bursts:
        new[EventKey("b", b.emote, hop_start(b.start_hop, step))] = EventValues(
            b.start_hop,
            b.end_hop,
            (
                hop_start(b.end_hop, step),
                hop_start(b.peak_hop, step),
                b.peak_uses,
                as_real(b.baseline_uses),
                as_real(b.score),
                b.total_uses,
                b.peak_messages,
                as_real(b.baseline_messages),
            ),
        )
    hype_of: dict[EventKey, HypeEvent] = {}
    for h in hypes:
        key = EventKey("h", "", hop_start(h.start_hop, step))
        hype_of[key] = h
        new[key] = EventValues(
            h.start_hop,
            h.end_hop,
            (
                hop_start(h.end_hop, step),
                hop_start(h.peak_hop, step),
                as_real(h.score),
                as_real(h.peak_messages * per_min),
                as_real(h.baseline_messages * per_min),
            ),
        )

    def replaced(key: EventKey, start_hop: int) -> bool:
        if start_hop < r.start:
            return False
        if r.limit is None or start_hop < r.limit:
            return True
        # Past the range only an event that a changed one now swallows goes.
        return any(
            k.kind == key.kind and k.emote == key.emote and e.start_hop <= start_hop < e.end_hop
            for k, e in new.items()
        )

    def differs(key: EventKey) -> bool:
        stored = r.existing.get(key)
        return stored is None or stored.values != new[key].values

    gone = [k for k, e in r.existing.items() if k not in new and replaced(k, e.start_hop)]
    return EventChanges(
        bursts=[(k, v.values) for k, v in new.items() if k.kind == "b" and differs(k)],
        hypes=[h for k, h in hype_of.items() if differs(k) or h.end_hop > r.refresh_from],
        gone_bursts=[k for k in gone if k.kind == "b"],
        gone_hypes=[k for k in gone if k.kind == "h"],
    )


def state_bounds(ch: ChannelState, live: JudgeRange | None, step: int) -> StateBounds:
    """The channel's new ``(processed_until, first_message_at, last_message_at)``."""
    lows = [lo for lo, _ in ch.fresh]
    highs = [hi for _, hi in ch.fresh]
    first = min([*lows, *([ch.first_at] if ch.first_at else [])], default=None)
    last = max([*highs, *([ch.last_at] if ch.last_at else [])], default=None)
    processed = hop_start(live.end, step) if live is not None else ch.processed
    if processed is None:
        # New rows but nothing judgeable yet (all in the future): judge from the first.
        processed = first
    return StateBounds(processed, first, last)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def choose_samples(rows: Sequence[Sample], n: int) -> list[dict[str, str]]:
    """The window's most repeated texts (what chat was saying), one real message each: the
    first ``n`` distinct texts by how often they were written, then by when, with an author."""
    counts = Counter(_normal(str(r.text)) for r in rows)
    seen: set[str] = set()
    chosen: list[tuple[int, datetime, str, str]] = []
    for r in rows:
        key = _normal(str(r.text))
        if key in seen or not r.user_login:
            continue
        seen.add(key)
        chosen.append((-counts[key], r.sent_at, r.user_login, r.text))
    chosen.sort(key=lambda c: (c[0], c[1]))
    return [
        {"user": login, "text": text, "at": at.isoformat()} for _, at, login, text in chosen[:n]
    ]
