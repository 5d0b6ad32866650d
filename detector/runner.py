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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from chatpulse.core.queries import load_queries
from chatpulse.core.waiting import wait_or_stop
from detector.model import BurstEvent, ChannelSeries, DetectorConfig, HypeEvent, detect
from detector.plan import (
    BucketCount,
    ChannelState,
    EmoteCount,
    JudgeRange,
    Sample,
    StoredEvent,
    choose_samples,
    event_changes,
    hop_of,
    hop_start,
    merge_gap_hops,
    plan_ranges,
    series_for,
    state_bounds,
    trim,
    widen_to_events,
)

__all__ = ["DetectOptions", "DetectSummary", "Detector", "run_detector"]

log = logging.getLogger(__name__)

_LOCK_NS = 0x6465_7465  # advisory-lock namespace ("dete"): one pass per channel at a time
_IDLE_REFRESH_S = 10.0  # an idle channel's seen_snapshot moves on this often (bounds the scan)
_Q = load_queries("detector")  # sql/queries/detector.sql
_XID_MAX = "18446744073709551615"  # no channel to search by snapshot: an empty xid range


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
            closed_now = hop_of(now - timedelta(seconds=self.options.grace_s), self.config.step_s)
            ranges = plan_ranges(channels, closed_now, self.config, self.options.late_window_s)
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

    async def _read_state(self, conn: psycopg.AsyncConnection[Any]) -> list[ChannelState]:
        cur = conn.cursor(row_factory=class_row(_StateRow))
        await cur.execute(_Q["read_state"])
        return [
            ChannelState(
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
        self, conn: psycopg.AsyncConnection[Any], channels: list[ChannelState]
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

    async def _lock(self, conn: psycopg.AsyncConnection[Any], ids: list[int]) -> set[int]:
        cur = conn.cursor(row_factory=scalar_row)
        await cur.execute(_Q["try_lock_channels"], {"ids": ids, "namespace": _LOCK_NS})
        return set(await cur.fetchall())

    async def _load_existing(
        self, conn: psycopg.AsyncConnection[Any], ranges: list[JudgeRange]
    ) -> None:
        """Load the events near each range and move its start back to the start of any event
        under way there or within a merge gap of it (:func:`detector.plan.widen_to_events`).
        Loads again, further back, in the rare case it must."""
        gap = merge_gap_hops(self.config) + self.config.span_hops + 1
        todo = list(ranges)
        while todo:
            for r in todo:
                r.fetched_from = r.start - gap
            await self._fetch_events(conn, todo)
            todo = [r for r in todo if widen_to_events(r, gap)]

    async def _fetch_events(
        self, conn: psycopg.AsyncConnection[Any], ranges: list[JudgeRange]
    ) -> None:
        step = self.config.step_s
        params = {
            "k": list(range(len(ranges))),
            "c": [r.channel.id for r in ranges],
            "lo": [hop_start(r.fetched_from, step) for r in ranges],
            "hi": [hop_start(r.end, step) for r in ranges],
        }
        cur = conn.cursor(row_factory=class_row(StoredEvent))
        await cur.execute(_Q["stored_events"], params)
        for r in ranges:
            r.existing = {}
        for event in await cur.fetchall():
            ranges[event.k].existing[event.key] = event.stored(step)

    async def _load_series(
        self, conn: psycopg.AsyncConnection[Any], ranges: list[JudgeRange]
    ) -> None:
        """Set each range's series over ``[start - context, end)`` in two statements for all;
        a live range whose channel is in memory reads only from its start."""
        if not ranges:
            return
        step, ctx = self.config.step_s, self.config.context_hops
        cached = [c.series if (c := self._cached(r)) is not None else None for r in ranges]
        froms = [
            r.start if c is not None else r.start - ctx for r, c in zip(ranges, cached, strict=True)
        ]
        params = {
            "k": list(range(len(ranges))),
            "c": [r.channel.id for r in ranges],
            "lo": [hop_start(f, step) for f in froms],
            "hi": [hop_start(r.end, step) for r in ranges],
            "s": step,
        }
        counts = conn.cursor(row_factory=class_row(BucketCount))
        await counts.execute(_Q["message_buckets"], params)
        emotes = conn.cursor(row_factory=class_row(EmoteCount))
        await emotes.execute(_Q["emote_buckets"], params)
        series = series_for(ranges, ctx, await counts.fetchall(), await emotes.fetchall(), cached)
        for r, s in zip(ranges, series, strict=True):
            r.series = s

    def _cached(self, r: JudgeRange) -> _Cache | None:
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
        self, conn: psycopg.AsyncConnection[Any], r: JudgeRange, summary: DetectSummary
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
        r: JudgeRange,
        bursts: list[BurstEvent],
        hypes: list[HypeEvent],
        summary: DetectSummary,
    ) -> None:
        cid = r.channel.id
        changes = event_changes(r, bursts, hypes, self.config)
        if changes.bursts:
            columns = ("en", "pk", "pu", "bl", "sc", "tu", "pm", "bm")  # StoredEvent.stored
            cur = await conn.execute(
                _Q["upsert_bursts"],
                {
                    "c": cid,
                    "name": [k.emote for k, _ in changes.bursts],
                    "st": [k.started_at for k, _ in changes.bursts],
                    **{col: [v[i] for _, v in changes.bursts] for i, col in enumerate(columns)},
                },
            )
            summary.bursts_written += cur.rowcount
        for h in changes.hypes:
            await self._write_hype(conn, cid, h, summary)
        if changes.gone_bursts:
            cur = await conn.execute(
                _Q["delete_bursts"],
                {
                    "name": [k.emote for k in changes.gone_bursts],
                    "st": [k.started_at for k in changes.gone_bursts],
                    "c": cid,
                },
            )
            summary.deleted += cur.rowcount
        if changes.gone_hypes:
            cur = await conn.execute(
                _Q["delete_moments"], {"c": cid, "st": [k.started_at for k in changes.gone_hypes]}
            )
            summary.deleted += cur.rowcount

    async def _write_state(
        self,
        conn: psycopg.AsyncConnection[Any],
        channels: list[ChannelState],
        live: dict[int, JudgeRange],
        snapshot: str,
    ) -> None:
        """Record the search snapshot (and, where judged, the new watermark) for ``channels``;
        remember the live ranges' counts for the next pass."""
        if not channels:
            return
        step = self.config.step_s
        keep = self.config.context_hops + self.config.hops(self.options.late_window_s) + 120
        bounds = []
        for ch in channels:
            r = live.get(ch.id)
            bounds.append(state_bounds(ch, r, step))
            if r is not None and r.series is not None:
                self._cache[ch.id] = _Cache(trim(r.series, r.end - keep), snapshot)
            elif ch.fresh:
                self._cache.pop(ch.id, None)
            elif ch.id in self._cache:
                self._cache[ch.id].snapshot = snapshot  # idle: its counts are still right
        await conn.execute(
            _Q["save_state"],
            {
                "snapshot": snapshot,
                "ids": [ch.id for ch in channels],
                "processed": [b.processed_until for b in bounds],
                "first": [b.first_message_at for b in bounds],
                "last": [b.last_message_at for b in bounds],
            },
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
        lo, hi = hop_start(h.start_hop, step), hop_start(h.end_hop, step)
        args = {"c": channel_id, "lo": lo, "hi": hi}
        cur = conn.cursor(row_factory=scalar_row)
        await cur.execute(_Q["count_chatters"], args)
        chatters = int(await cur.fetchone() or 0)
        await cur.execute(_Q["top_emotes"], {**args, "n": opt.top_emotes})
        top = await cur.fetchall()
        # The model that scored most of the window: averaging two models' scales would mix them.
        await cur.execute(_Q["avg_sentiment"], args)
        avg = await cur.fetchone()
        sentiment = float(avg) if avg is not None else None
        samples = conn.cursor(row_factory=class_row(Sample))
        await samples.execute(_Q["sample_messages"], args)
        chosen = choose_samples(await samples.fetchall(), opt.sample_messages)
        written = await conn.execute(
            _Q["upsert_moment"],
            {
                "c": channel_id,
                "lo": lo,
                "peak": hop_start(h.peak_hop, step),
                "hi": hi,
                "score": round(h.score, 3),
                "per_min": round(h.peak_messages * per_min, 3),
                "baseline_per_min": round(h.baseline_messages * per_min, 3),
                "chatters": chatters,
                "top_emotes": top,
                "sentiment": sentiment,
                "samples": Jsonb(chosen),
            },
        )
        summary.hypes_written += written.rowcount


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
