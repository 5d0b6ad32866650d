"""The detector's I/O: read per-hop counts, write ``emote_bursts`` and ``hype_moments``.

:meth:`Detector.detect_pass` brings every channel up to date once; :func:`run_detector` repeats
it (live) or until nothing new is left (``--until-idle``).  Both use one rule for which windows
are final (those ending ``grace_s`` before the database clock) and read raw ``chat.messages``
and ``chat.emote_uses`` (so the result never depends on when an aggregate was last refreshed).

**Which rows are new.**  Each channel's ``detector_state.seen_snapshot`` is the snapshot of its
last search; a row whose inserting transaction (``ingest_xid``) is not visible in it is new, so
every committed row is found exactly once, whatever its ``sent_at`` and however late its
transaction commits.  New rows near the live edge extend the live range (re-judged from
``late_window_s`` before the watermark); older ones (a replay of last week's VOD chat, gap fill)
re-judge the windows whose verdict they can change: from the row to one baseline context after
it, widened to whole events.  Live and history therefore give the same events.

**Cost.**  A pass runs a fixed handful of set-based statements for all channels (state, new
rows, locks, events near each range, per-hop counts, emote counts, writes), keeps each channel's
recent counts in memory so a live pass reads only the last seconds, skips channels with nothing
new, and writes only events whose values changed.  Events are upserted on their unique keys; an
event that new data dissolved or merged into another is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from chatpulse.core.queries import load_queries
from chatpulse.core.waiting import wait_or_stop
from detector.model import BurstEvent, ChannelSeries, DetectorConfig, HypeEvent, detect

__all__ = ["DetectOptions", "DetectSummary", "Detector", "run_detector"]

log = logging.getLogger(__name__)

_LOCK_NS = 0x6465_7465  # advisory-lock namespace ("dete"): one pass per channel at a time
_IDLE_REFRESH_S = 10.0  # an idle channel's seen_snapshot moves on this often (bounds the scan)
_Q = load_queries("detector")  # sql/queries/detector.sql
_XID_MAX = "18446744073709551615"  # no channel to search by snapshot: an empty xid range
_Key = tuple[str, str, datetime]  # ("b", emote, started_at) or ("h", "", started_at)


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """How the loop runs (the thresholds are in :class:`DetectorConfig`)."""

    poll_interval_s: float = 2.0
    grace_s: float = 2.0
    late_window_s: float = 60.0
    sample_messages: int = 5
    top_emotes: int = 5


@dataclass(slots=True)
class DetectSummary:
    """What a pass or a run did."""

    passes: int = 0
    channels: int = 0
    new_messages: int = 0
    bursts_written: int = 0
    hypes_written: int = 0
    deleted: int = 0


@dataclass(slots=True)
class _Cache:
    series: ChannelSeries
    snapshot: str  # the seen_snapshot this process wrote with it; another one means stale


@dataclass(slots=True)
class _Channel:
    """A channel's detector_state row plus what this pass's search for new rows found."""

    id: int
    processed: datetime | None
    first_at: datetime | None
    last_at: datetime | None
    snapshot: str | None
    snap_xmin: int | None
    updated_at: datetime | None
    fresh: list[tuple[datetime, datetime]] = field(default_factory=list)
    fresh_count: int = 0


@dataclass(frozen=True, slots=True)
class _StateRow:
    """One row of ``read_state``: a channel and its detector_state (NULLs before a pass)."""

    id: int
    processed_until: datetime | None
    first_message_at: datetime | None
    last_message_at: datetime | None
    seen_snapshot: str | None
    snap_xmin: str | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class _FreshRow:
    """One row of ``find_new_rows``: the clock and snapshot, and one bucket of new rows (all
    NULL on the one row that stands for no new rows)."""

    db_now: datetime
    snapshot: str
    channel_id: int | None
    n: int | None
    lo: datetime | None
    hi: datetime | None


@dataclass(slots=True)
class _Range:
    """Windows ``[start, limit)`` to re-judge (``limit`` None: up to ``end``, the live edge)."""

    channel: _Channel
    start: int
    limit: int | None
    end: int
    closed: int
    refresh_from: int  # hype details (sentiment, samples) are recomputed for hypes ending after
    existing: dict[_Key, tuple[int, int, tuple[Any, ...]]] = field(default_factory=dict)
    fetched_from: int = 0  # existing events ending after this hop are in `existing`
    series: ChannelSeries | None = None


def _hop(ts: datetime, step: int) -> int:
    return int(ts.timestamp() // step)


def _at(hop: int, step: int) -> datetime:
    return datetime.fromtimestamp(hop * step, UTC)


def _f4(x: float) -> float:
    """``round(x, 3)`` as a ``real`` column stores it: equal to the column read as float8."""
    return float(struct.unpack("f", struct.pack("f", round(x, 3)))[0])


def _trim(series: ChannelSeries, lo: int) -> ChannelSeries:
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


class Detector:
    """Keeps per-channel series in memory between passes so a live pass reads only new rows.

    Not thread-safe; one per process.  ``now`` (tests) replaces the database clock.  Several
    detectors may share a database: a channel is judged by one of them at a time (an advisory
    lock), and a detector's memory of a channel is dropped when another one judged it.
    """

    def __init__(
        self,
        config: DetectorConfig,
        options: DetectOptions | None = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.options = options or DetectOptions()
        self._now = now
        self._cache: dict[int, _Cache] = {}

    async def detect_pass(self, conn: psycopg.AsyncConnection[Any]) -> DetectSummary:
        """Bring every channel up to the newest final window, in one transaction.

        Returns what was done; raises psycopg errors (the transaction is then rolled back and
        the next pass does the work again).
        """
        summary = DetectSummary(passes=1)
        await conn.commit()
        async with conn.transaction():
            channels = await self._read_state(conn)
            db_now, snapshot = await self._find_new_rows(conn, channels)
            now = self._now() if self._now is not None else db_now
            closed_now = _hop(now - timedelta(seconds=self.options.grace_s), self.config.step_s)
            ranges = self._plan(channels, closed_now)
            wanted = {r.channel.id for r in ranges}
            locked = await self._lock(conn, sorted(wanted)) if wanted else set()
            ranges = [r for r in ranges if r.channel.id in locked]
            await self._load_existing(conn, ranges)
            await self._load_series(conn, ranges)
            for r in ranges:
                await self._judge(conn, r, summary)
            done = {r.channel.id for r in ranges}
            summary.channels = len(done)
            updates = []
            for ch in channels:
                if ch.id in done or (ch.fresh and ch.id not in wanted):
                    summary.new_messages += ch.fresh_count
                    updates.append(ch)
                elif (
                    ch.id not in wanted
                    and ch.snapshot is not None
                    and ch.updated_at is not None
                    and (db_now - ch.updated_at).total_seconds() >= _IDLE_REFRESH_S
                ):
                    updates.append(ch)  # idle: only its snapshot moves on
            live = {r.channel.id: r for r in ranges if r.limit is None}
            await self._write_state(conn, updates, live, snapshot)
        return summary

    # -- reading ----------------------------------------------------------------------------

    async def _read_state(self, conn: psycopg.AsyncConnection[Any]) -> list[_Channel]:
        cur = conn.cursor(row_factory=class_row(_StateRow))
        await cur.execute(_Q["read_state"])
        return [
            _Channel(
                r.id,
                r.processed_until,
                r.first_message_at,
                r.last_message_at,
                r.seen_snapshot,
                int(r.snap_xmin) if r.snap_xmin else None,
                r.updated_at,
            )
            for r in await cur.fetchall()
        ]

    async def _find_new_rows(
        self, conn: psycopg.AsyncConnection[Any], channels: list[_Channel]
    ) -> tuple[datetime, str]:
        """Fill each channel's ``fresh`` (per baseline-window bucket: first and last sent_at of
        its new rows); return the database clock and the snapshot the search ran in."""
        known = [c for c in channels if c.snapshot is not None]
        unknown = [c.id for c in channels if c.snapshot is None]
        xmin = min((c.snap_xmin for c in known if c.snap_xmin is not None), default=None)
        # One statement, so pg_current_snapshot() is the snapshot the search saw (READ
        # COMMITTED takes one per statement): the next pass starts exactly where this one ended.
        cur = conn.cursor(row_factory=class_row(_FreshRow))
        await cur.execute(
            _Q["find_new_rows"],
            {
                "b": self.config.baseline_window_s,
                "ids": [c.id for c in known],
                "snaps": [c.snapshot for c in known],
                "xmin": str(xmin) if xmin is not None else _XID_MAX,
                "new": unknown,
            },
        )
        rows = await cur.fetchall()
        by_id = {c.id: c for c in channels}
        for row in rows:
            if row.channel_id is not None and row.channel_id in by_id:
                assert row.lo is not None and row.hi is not None and row.n is not None
                by_id[row.channel_id].fresh.append((row.lo, row.hi))
                by_id[row.channel_id].fresh_count += int(row.n)
        return rows[0].db_now, rows[0].snapshot

    def _plan(self, channels: list[_Channel], closed_now: int) -> list[_Range]:
        """The ranges to re-judge: per channel one live range and, for new rows far behind
        the live edge, bounded ranges of their own."""
        cfg, opt, step = self.config, self.options, self.config.step_s
        reach = cfg.context_hops + cfg.span_hops + 1  # windows a new row can change
        tail = cfg.span_hops + 1 + cfg.hops(max(cfg.emote_merge_gap_s, cfg.hype_merge_gap_s))
        out: list[_Range] = []
        for ch in channels:
            lows = [lo for lo, _ in ch.fresh]
            highs = [hi for _, hi in ch.fresh]
            last = max([*highs, *([ch.last_at] if ch.last_at else [])], default=None)
            if last is None:
                continue  # no messages at all
            # Past the last message plus a merge gap every window is empty and final: stopping
            # there keeps a replay of old chat from walking every hop up to today.
            closed = min(closed_now, _hop(last, step) + tail)
            if ch.snapshot is None or ch.processed is None:
                start = _hop(min(lows), step) if lows else closed
                if start < closed:
                    out.append(_Range(ch, start, None, closed, closed, start))
                continue
            processed = _hop(ch.processed, step)
            # Every window holding a message judged: only new rows can change anything.
            live_needed = processed < min(closed, _hop(last, step) + cfg.span_hops)
            if not ch.fresh and not live_needed:
                continue
            live_start = processed - cfg.hops(opt.late_window_s)
            refresh = live_start
            spans = sorted((_hop(lo, step), _hop(hi, step) + reach) for lo, hi in ch.fresh)
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
                    out.append(_Range(ch, a, b, min(b + reach, closed), closed, a))
            if live_needed and live_start < closed:
                out.append(_Range(ch, live_start, None, closed, closed, refresh))
        return out

    async def _lock(self, conn: psycopg.AsyncConnection[Any], ids: list[int]) -> set[int]:
        cur = await conn.execute(
            _Q["try_lock_channels"],
            (ids, _LOCK_NS),
        )
        return {r[0] for r in await cur.fetchall()}

    async def _load_existing(
        self, conn: psycopg.AsyncConnection[Any], ranges: list[_Range]
    ) -> None:
        """Load the events near each range and move its start back to the start of any event
        under way there or within a merge gap of it, so that merging gives the same event
        (and key) as a history run.  Loads again, further back, in the rare case it must."""
        cfg = self.config
        gap = cfg.hops(max(cfg.emote_merge_gap_s, cfg.hype_merge_gap_s)) + cfg.span_hops + 1
        todo = list(ranges)
        while todo:
            for r in todo:
                r.fetched_from = r.start - gap
            await self._fetch_events(conn, todo)
            again = []
            for r in todo:
                moved = True
                while moved:
                    moved = False
                    for start_hop, end_hop, _ in r.existing.values():
                        if start_hop < r.start and end_hop + gap > r.start:
                            r.start, moved = start_hop, True
                if r.start - gap < r.fetched_from:
                    again.append(r)
            todo = again

    async def _fetch_events(self, conn: psycopg.AsyncConnection[Any], ranges: list[_Range]) -> None:
        step = self.config.step_s
        params = {
            "k": list(range(len(ranges))),
            "c": [r.channel.id for r in ranges],
            "lo": [_at(r.fetched_from, step) for r in ranges],
            "hi": [_at(r.end, step) for r in ranges],
        }
        cur = await conn.execute(
            _Q["stored_events"],
            params,
        )
        for r in ranges:
            r.existing = {}
        for k, kind, name, started, ended, *values in await cur.fetchall():
            values = values[:7] if kind == "b" else values[:1] + values[2:5]
            ranges[k].existing[(kind, name, started)] = (
                _hop(started, step),
                _hop(ended, step),
                (ended, *values),
            )

    async def _load_series(self, conn: psycopg.AsyncConnection[Any], ranges: list[_Range]) -> None:
        """Set each range's series over ``[start - context, end)`` in two statements for all;
        a live range whose channel is in memory reads only from its start."""
        if not ranges:
            return
        step, ctx = self.config.step_s, self.config.context_hops
        froms = []
        for r in ranges:
            cached = self._cached(r)
            froms.append(r.start if cached is not None else r.start - ctx)
        params = {
            "k": list(range(len(ranges))),
            "c": [r.channel.id for r in ranges],
            "lo": [_at(f, step) for f in froms],
            "hi": [_at(r.end, step) for r in ranges],
            "s": step,
        }
        cur = await conn.execute(
            _Q["message_buckets"],
            params,
        )
        counts = await cur.fetchall()
        cur = await conn.execute(
            _Q["emote_buckets"],
            params,
        )
        emotes = await cur.fetchall()
        lo_of = [r.start - ctx for r in ranges]
        msgs = [[0] * (r.end - lo) for r, lo in zip(ranges, lo_of, strict=True)]
        chat = [[0] * (r.end - lo) for r, lo in zip(ranges, lo_of, strict=True)]
        em: list[dict[str, dict[int, int]]] = [{} for _ in ranges]
        eu: list[dict[str, dict[int, int]]] = [{} for _ in ranges]
        for k, hop, n, users in counts:
            msgs[k][hop - lo_of[k]] = int(n)
            chat[k][hop - lo_of[k]] = int(users)
        for k, hop, name, n, uses in emotes:
            em[k].setdefault(name, {})[int(hop)] = int(n)
            eu[k].setdefault(name, {})[int(hop)] = int(uses)
        for k, r in enumerate(ranges):
            lo, cached = lo_of[k], self._cached(r)
            if cached is not None:
                # Hops before the range's start are as this process read them last pass: no
                # new row lies there (the range starts at or before every new row).
                old = cached.series
                msgs[k][: r.start - lo] = old.messages[lo - old.start : r.start - old.start]
                chat[k][: r.start - lo] = old.chatters[lo - old.start : r.start - old.start]
                for name, sparse in old.emote_messages.items():
                    kept = {h: c for h, c in sparse.items() if lo <= h < r.start}
                    if kept:
                        em[k].setdefault(name, {}).update(kept)
                        uses = old.emote_uses.get(name, {})
                        eu[k].setdefault(name, {}).update(
                            {h: uses.get(h, c) for h, c in kept.items()}
                        )
            r.series = ChannelSeries(lo, msgs[k], chat[k], em[k], eu[k])

    def _cached(self, r: _Range) -> _Cache | None:
        """The channel's counts from the last pass, if they cover the context of a live range."""
        if r.limit is not None:
            return None
        cached = self._cache.get(r.channel.id)
        lo = r.start - self.config.context_hops
        if (
            cached is None
            or cached.snapshot != r.channel.snapshot
            or cached.series.start > lo
            or cached.series.end < r.start
        ):
            return None
        return cached

    # -- judging and writing ----------------------------------------------------------------

    async def _judge(
        self, conn: psycopg.AsyncConnection[Any], r: _Range, summary: DetectSummary
    ) -> None:
        """Detect over the range and write what differs from the stored events."""
        cfg = self.config
        while True:
            assert r.series is not None
            found = detect(r.series, cfg, r.start)
            bursts = [b for b in found.bursts if r.limit is None or b.start_hop < r.limit]
            hypes = [h for h in found.hypes if r.limit is None or h.start_hop < r.limit]
            if r.limit is None or r.end >= r.closed:
                break
            if not any(b.open for b in bursts) and not any(h.open for h in hypes):
                break
            # A bounded range whose event runs past its end: read further (rare).
            r.end = min(r.end + cfg.context_hops, r.closed)
            await self._load_existing(conn, [r])
            await self._load_series(conn, [r])
        await self._write(conn, r, bursts, hypes, summary)

    async def _write(
        self,
        conn: psycopg.AsyncConnection[Any],
        r: _Range,
        bursts: list[BurstEvent],
        hypes: list[HypeEvent],
        summary: DetectSummary,
    ) -> None:
        step, cid = self.config.step_s, r.channel.id
        per_min = 60.0 / (step * self.config.span_hops)
        new: dict[_Key, tuple[int, int, tuple[Any, ...]]] = {}
        for b in bursts:
            new[("b", b.emote, _at(b.start_hop, step))] = (
                b.start_hop,
                b.end_hop,
                (
                    _at(b.end_hop, step),
                    _at(b.peak_hop, step),
                    b.peak_uses,
                    _f4(b.baseline_uses),
                    _f4(b.score),
                    b.total_uses,
                    b.peak_messages,
                    _f4(b.baseline_messages),
                ),
            )
        hype_of: dict[_Key, HypeEvent] = {}
        for h in hypes:
            key: _Key = ("h", "", _at(h.start_hop, step))
            hype_of[key] = h
            new[key] = (
                h.start_hop,
                h.end_hop,
                (
                    _at(h.end_hop, step),
                    _at(h.peak_hop, step),
                    _f4(h.score),
                    _f4(h.peak_messages * per_min),
                    _f4(h.baseline_messages * per_min),
                ),
            )

        def replaced(key: _Key, start_hop: int) -> bool:
            if start_hop < r.start:
                return False
            if r.limit is None or start_hop < r.limit:
                return True
            # Past the range only an event that a changed one now swallows goes.
            return any(
                k[0] == key[0] and k[1] == key[1] and s <= start_hop < e
                for k, (s, e, _) in new.items()
            )

        gone = [k for k, (s, _, _) in r.existing.items() if k not in new and replaced(k, s)]
        changed_b = [
            k for k, v in new.items() if k[0] == "b" and r.existing.get(k, (0, 0, None))[2] != v[2]
        ]
        if changed_b:
            rows = [(k, new[k][2]) for k in changed_b]
            cur = await conn.execute(
                _Q["upsert_bursts"],
                {
                    "c": cid,
                    "name": [k[1] for k, _ in rows],
                    "st": [k[2] for k, _ in rows],
                    **{
                        col: [v[i] for _, v in rows]
                        for i, col in enumerate(("en", "pk", "pu", "bl", "sc", "tu", "pm", "bm"))
                    },
                },
            )
            summary.bursts_written += cur.rowcount
        for key, h in hype_of.items():
            if r.existing.get(key, (0, 0, None))[2] != new[key][2] or h.end_hop > r.refresh_from:
                await self._write_hype(conn, cid, h, summary)
        gone_b = [k for k in gone if k[0] == "b"]
        gone_h = [k for k in gone if k[0] == "h"]
        if gone_b:
            cur = await conn.execute(
                _Q["delete_bursts"],
                ([k[1] for k in gone_b], [k[2] for k in gone_b], cid),
            )
            summary.deleted += cur.rowcount
        if gone_h:
            cur = await conn.execute(
                _Q["delete_moments"],
                (cid, [k[2] for k in gone_h]),
            )
            summary.deleted += cur.rowcount

    async def _write_state(
        self,
        conn: psycopg.AsyncConnection[Any],
        channels: list[_Channel],
        live: dict[int, _Range],
        snapshot: str,
    ) -> None:
        """Record the search snapshot (and, where judged, the new watermark) for ``channels``;
        remember the live ranges' counts for the next pass."""
        if not channels:
            return
        step = self.config.step_s
        keep = self.config.context_hops + self.config.hops(self.options.late_window_s) + 120
        rows = []
        for ch in channels:
            lows = [lo for lo, _ in ch.fresh]
            highs = [hi for _, hi in ch.fresh]
            first = min([*lows, *([ch.first_at] if ch.first_at else [])], default=None)
            last = max([*highs, *([ch.last_at] if ch.last_at else [])], default=None)
            r = live.get(ch.id)
            processed = _at(r.end, step) if r is not None else ch.processed
            if processed is None:
                # New rows but nothing judgeable yet (all in the future): judge from the first.
                processed = first
            rows.append((ch.id, processed, first, last))
            if r is not None and r.series is not None:
                self._cache[ch.id] = _Cache(_trim(r.series, r.end - keep), snapshot)
            elif ch.fresh:
                self._cache.pop(ch.id, None)
            elif ch.id in self._cache:
                self._cache[ch.id].snapshot = snapshot  # idle: its counts are still right
        await conn.execute(
            _Q["save_state"],
            (
                snapshot,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
            ),
        )

    async def _write_hype(
        self,
        conn: psycopg.AsyncConnection[Any],
        channel_id: int,
        h: HypeEvent,
        summary: DetectSummary,
    ) -> None:
        step, opt = self.config.step_s, self.options
        per_min = 60.0 / (step * self.config.span_hops)
        lo, hi = _at(h.start_hop, step), _at(h.end_hop, step)
        args = {"c": channel_id, "lo": lo, "hi": hi}
        cur = await conn.execute(
            _Q["count_chatters"],
            args,
        )
        row = await cur.fetchone()
        chatters = int(row[0]) if row else 0
        cur = await conn.execute(
            _Q["top_emotes"],
            {**args, "n": opt.top_emotes},
        )
        top = [r[0] for r in await cur.fetchall()]
        # The model that scored most of the window: averaging two models' scales would mix them.
        cur = await conn.execute(
            _Q["avg_sentiment"],
            args,
        )
        row = await cur.fetchone()
        sentiment = float(row[0]) if row and row[0] is not None else None
        samples = await self._samples(conn, args)
        cur = await conn.execute(
            _Q["upsert_moment"],
            (
                channel_id,
                lo,
                _at(h.peak_hop, step),
                hi,
                round(h.score, 3),
                round(h.peak_messages * per_min, 3),
                round(h.baseline_messages * per_min, 3),
                chatters,
                top,
                sentiment,
                Jsonb(samples),
            ),
        )
        summary.hypes_written += cur.rowcount

    async def _samples(
        self, conn: psycopg.AsyncConnection[Any], args: dict[str, Any]
    ) -> list[dict[str, str]]:
        """The window's most repeated texts (what chat was saying), one real message each."""
        cur = await conn.execute(
            _Q["sample_messages"],
            args,
        )
        rows = await cur.fetchall()
        counts = Counter(" ".join(str(t).lower().split()) for _, t, _ in rows)
        seen: set[str] = set()
        chosen: list[tuple[int, datetime, str, str]] = []
        for login, text, at in rows:
            key = " ".join(str(text).lower().split())
            if key in seen or not login:
                continue
            seen.add(key)
            chosen.append((-counts[key], at, login, text))
        chosen.sort(key=lambda c: (c[0], c[1]))
        return [
            {"user": login, "text": text, "at": at.isoformat()}
            for _, at, login, text in chosen[: self.options.sample_messages]
        ]


async def run_detector(
    conninfo: str,
    config: DetectorConfig,
    options: DetectOptions | None = None,
    *,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
) -> DetectSummary:
    """Run passes every ``poll_interval_s`` until ``stop`` is set (live), or until a pass finds
    no new messages (``until_idle``).  Returns the totals.  Raises psycopg errors as they come.
    """
    from chatpulse.core.db import connect

    options = options or DetectOptions()
    detector = Detector(config, options)
    total = DetectSummary()
    conn = await connect(conninfo)
    try:
        while True:
            started = time.perf_counter()
            got = await detector.detect_pass(conn)
            await conn.commit()
            for name in ("passes", "channels", "new_messages", "bursts_written"):
                setattr(total, name, getattr(total, name) + getattr(got, name))
            total.hypes_written += got.hypes_written
            total.deleted += got.deleted
            if got.bursts_written or got.hypes_written or got.deleted:
                log.info(
                    "detector pass",
                    extra={
                        "channels": got.channels,
                        "bursts": got.bursts_written,
                        "hypes": got.hypes_written,
                        "deleted": got.deleted,
                        "seconds": round(time.perf_counter() - started, 3),
                    },
                )
            if until_idle and got.new_messages == 0:
                return total
            if stop is not None and stop.is_set():
                return total
            if until_idle:
                continue
            if stop is None:
                await asyncio.sleep(options.poll_interval_s)
            elif await wait_or_stop(stop, options.poll_interval_s):
                return total
    finally:
        await conn.close()
