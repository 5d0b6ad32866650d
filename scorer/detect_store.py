"""The detector's I/O: read per-hop counts, write ``emote_bursts`` and ``hype_moments``.

:func:`detect_pass` brings every channel up to date once; :func:`run_detector` repeats it (live)
or until nothing new is left (``--until-idle``).  Both use one rule for which windows are final
(those ending ``grace_s`` before the database clock), read raw ``chat.messages`` and
``chat.emote_uses`` (so the result never depends on when an aggregate was last refreshed), and
re-examine the last ``late_window_s`` each pass, so late rows (clock skew, batching, gap fill)
change the events as they would have in a history run.  Events are upserted on their unique
keys; an event still growing is updated in place; an event that late data dissolved is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scorer.detector import BurstEvent, ChannelSeries, DetectorConfig, HypeEvent, detect

__all__ = ["DetectOptions", "DetectSummary", "Detector", "run_detector"]

log = logging.getLogger(__name__)

_LOCK_NS = 0x6465_7465  # advisory-lock namespace ("dete"): one pass per channel at a time


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
    emotes_provider: dict[str, str] = field(default_factory=dict)


def _hop(ts: datetime, step: int) -> int:
    return int(ts.timestamp() // step)


def _at(hop: int, step: int) -> datetime:
    return datetime.fromtimestamp(hop * step, UTC)


class Detector:
    """Keeps per-channel series in memory between passes so a live pass reads only new rows.

    Not thread-safe; one per process.  ``now`` (tests) replaces the database clock.
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
        """Bring every channel up to the newest final window; commits per channel."""
        cfg, opt, step = self.config, self.options, self.config.step_s
        summary = DetectSummary(passes=1)
        if self._now is not None:
            now = self._now()
        else:
            cur = await conn.execute("SELECT now()")
            row = await cur.fetchone()
            assert row is not None
            now = row[0]
        await conn.commit()
        closed_now = _hop(now - timedelta(seconds=opt.grace_s), step)
        cur = await conn.execute(
            "SELECT c.id, s.processed_until, s.first_message_at, s.gaps_seen_at,"
            " (SELECT min(sent_at) FROM chat.messages m WHERE m.channel_id = c.id),"
            " (SELECT max(sent_at) FROM chat.messages m WHERE m.channel_id = c.id),"
            " (SELECT max(filled_at) FROM chat.gaps g WHERE g.channel_id = c.id)"
            " FROM chat.channels c LEFT JOIN chat.detector_state s ON s.channel_id = c.id"
            " ORDER BY c.id"
        )
        rows = await cur.fetchall()
        await conn.commit()
        tail = cfg.span_hops + 1 + cfg.hops(max(cfg.emote_merge_gap_s, cfg.hype_merge_gap_s))
        for channel_id, processed, first_seen, gaps_seen, first_now, last_now, gaps_max in rows:
            if first_now is None:
                continue
            # Past the last message plus a merge gap every window is empty and final: stopping
            # there keeps a replay of old chat from walking every hop up to today.
            closed = min(closed_now, _hop(last_now, step) + tail)
            if processed is None or first_seen is None or first_now < first_seen:
                start = _hop(first_now, step)  # new channel or older chat replayed: redo
                self._cache.pop(channel_id, None)
            else:
                start = _hop(processed, step) - cfg.hops(opt.late_window_s)
                if gaps_max is not None and (gaps_seen is None or gaps_max > gaps_seen):
                    cur = await conn.execute(
                        "SELECT min(started_at) FROM chat.gaps WHERE channel_id = %s"
                        " AND filled_at > coalesce(%s, '-infinity'::timestamptz)",
                        (channel_id, gaps_seen),
                    )
                    g = await cur.fetchone()
                    await conn.commit()  # so that the pass below is a transaction of its own
                    if g and g[0] is not None:
                        start = min(start, _hop(g[0], step) - cfg.span_hops)
            if start >= closed:
                continue
            async with conn.transaction():
                got = await self._detect_channel(
                    conn, channel_id, start, closed, processed, first_now, gaps_max, summary
                )
            summary.channels += got
        await conn.commit()
        return summary

    async def _detect_channel(
        self,
        conn: psycopg.AsyncConnection[Any],
        channel_id: int,
        start: int,
        closed: int,
        processed: datetime | None,
        first_now: datetime,
        gaps_max: datetime | None,
        summary: DetectSummary,
    ) -> int:
        cfg, step = self.config, self.config.step_s
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (_LOCK_NS, channel_id))
        locked = await cur.fetchone()
        if not locked or not locked[0]:
            return 0  # another detector is on this channel right now
        # An event under way at `start` is redone from its own start, so merging gives the
        # same event (and key) as a history run.
        since = _at(start, step)
        cur = await conn.execute(
            "SELECT min(started_at) FROM ("
            " SELECT started_at FROM chat.hype_moments WHERE channel_id = %(c)s"
            "   AND ended_at > %(t)s AND started_at < %(t)s"
            " UNION ALL SELECT started_at FROM chat.emote_bursts WHERE channel_id = %(c)s"
            "   AND ended_at > %(t)s AND started_at < %(t)s) e",
            {"c": channel_id, "t": since},
        )
        row = await cur.fetchone()
        if row and row[0] is not None:
            start = min(start, _hop(row[0], step))
        series = await self._load(conn, channel_id, start - cfg.context_hops, start, closed)
        processed_hop = _hop(processed, step) if processed is not None else start
        summary.new_messages += sum(series.messages[max(0, processed_hop - series.start) :])
        found = detect(series, cfg, start)
        await self._write(conn, channel_id, start, found.bursts, found.hypes, summary)
        await conn.execute(
            "INSERT INTO chat.detector_state"
            " (channel_id, processed_until, first_message_at, gaps_seen_at, updated_at)"
            " VALUES (%s, %s, %s, %s, now())"
            " ON CONFLICT (channel_id) DO UPDATE SET processed_until = excluded.processed_until,"
            " first_message_at = excluded.first_message_at,"
            " gaps_seen_at = excluded.gaps_seen_at, updated_at = now()",
            (channel_id, _at(closed, step), first_now, gaps_max),
        )
        return 1

    async def _load(
        self, conn: psycopg.AsyncConnection[Any], channel_id: int, lo: int, start: int, hi: int
    ) -> ChannelSeries:
        """The series over hops [lo, hi); rows before ``start`` come from the cache if held."""
        cached = self._cache.get(channel_id)
        fetch_from = lo
        if cached is not None and cached.series.start <= lo and cached.series.end >= start:
            fetch_from = start
        step = self.config.step_s
        n = hi - lo
        messages, chatters = [0] * n, [0] * n
        em: dict[str, dict[int, int]] = {}
        eu: dict[str, dict[int, int]] = {}
        if cached is not None and fetch_from == start:
            old = cached.series
            for j in range(lo, start):
                messages[j - lo] = old.messages[j - old.start]
                chatters[j - lo] = old.chatters[j - old.start]
            for name, sparse in old.emote_messages.items():
                kept = {h: c for h, c in sparse.items() if lo <= h < start}
                if kept:
                    em[name] = kept
                    eu[name] = {
                        h: c for h, c in old.emote_uses.get(name, {}).items() if lo <= h < start
                    }
        params = {"c": channel_id, "lo": _at(fetch_from, step), "hi": _at(hi, step), "s": step}
        cur = await conn.execute(
            "SELECT floor(extract(epoch FROM sent_at) / %(s)s)::bigint, count(*),"
            " count(DISTINCT user_id) FROM chat.messages"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s GROUP BY 1",
            params,
        )
        for hop, count, users in await cur.fetchall():
            messages[hop - lo] = int(count)
            chatters[hop - lo] = int(users)
        cur = await conn.execute(
            "SELECT floor(extract(epoch FROM sent_at) / %(s)s)::bigint, emote_name,"
            " count(DISTINCT message_id), sum(count) FROM chat.emote_uses"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s"
            " GROUP BY 1, 2",
            params,
        )
        for hop, name, msgs, uses in await cur.fetchall():
            em.setdefault(name, {})[int(hop)] = int(msgs)
            eu.setdefault(name, {})[int(hop)] = int(uses)
        series = ChannelSeries(lo, messages, chatters, em, eu)
        self._cache[channel_id] = _Cache(series)
        return series

    async def _write(
        self,
        conn: psycopg.AsyncConnection[Any],
        channel_id: int,
        start: int,
        bursts: list[BurstEvent],
        hypes: list[HypeEvent],
        summary: DetectSummary,
    ) -> None:
        step = self.config.step_s
        since = _at(start, step)
        for b in bursts:
            cur = await conn.execute(
                "INSERT INTO chat.emote_bursts AS e (channel_id, emote_name, provider, started_at,"
                " peak_at, ended_at, peak_uses, baseline, score, total_uses, peak_messages,"
                " baseline_messages)"
                " VALUES (%s, %s, (SELECT max(provider) FROM chat.emote_uses WHERE channel_id = %s"
                "   AND emote_name = %s AND sent_at >= %s AND sent_at < %s),"
                " %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (channel_id, emote_name, started_at) DO UPDATE SET"
                " provider = excluded.provider, peak_at = excluded.peak_at,"
                " ended_at = excluded.ended_at, peak_uses = excluded.peak_uses,"
                " baseline = excluded.baseline, score = excluded.score,"
                " total_uses = excluded.total_uses, peak_messages = excluded.peak_messages,"
                " baseline_messages = excluded.baseline_messages"
                " WHERE (e.peak_at, e.ended_at, e.peak_uses, e.total_uses, e.score)"
                "   IS DISTINCT FROM (excluded.peak_at, excluded.ended_at, excluded.peak_uses,"
                "   excluded.total_uses, excluded.score)",
                (
                    channel_id,
                    b.emote,
                    channel_id,
                    b.emote,
                    _at(b.start_hop, step),
                    _at(b.end_hop, step),
                    _at(b.start_hop, step),
                    _at(b.peak_hop, step),
                    _at(b.end_hop, step),
                    b.peak_uses,
                    round(b.baseline_uses, 3),
                    round(b.score, 3),
                    b.total_uses,
                    b.peak_messages,
                    round(b.baseline_messages, 3),
                ),
            )
            summary.bursts_written += cur.rowcount
        cur = await conn.execute(
            "DELETE FROM chat.emote_bursts WHERE channel_id = %s AND started_at >= %s"
            " AND (emote_name, started_at) NOT IN (SELECT * FROM unnest(%s::text[],"
            " %s::timestamptz[]))",
            (
                channel_id,
                since,
                [b.emote for b in bursts],
                [_at(b.start_hop, step) for b in bursts],
            ),
        )
        summary.deleted += cur.rowcount
        for h in hypes:
            await self._write_hype(conn, channel_id, h, summary)
        cur = await conn.execute(
            "DELETE FROM chat.hype_moments WHERE channel_id = %s AND started_at >= %s"
            " AND started_at <> ALL(%s::timestamptz[])",
            (channel_id, since, [_at(h.start_hop, step) for h in hypes]),
        )
        summary.deleted += cur.rowcount

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
            "SELECT count(DISTINCT user_id) FROM chat.messages"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s",
            args,
        )
        row = await cur.fetchone()
        chatters = int(row[0]) if row else 0
        cur = await conn.execute(
            "SELECT emote_name FROM chat.emote_uses"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s"
            " GROUP BY 1 ORDER BY sum(count) DESC, 1 LIMIT %(n)s",
            {**args, "n": opt.top_emotes},
        )
        top = [r[0] for r in await cur.fetchall()]
        # The model that scored most of the window: averaging two models' scales would mix them.
        cur = await conn.execute(
            "SELECT avg(sentiment) FROM chat.message_scores"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s"
            " GROUP BY model ORDER BY count(*) DESC, model LIMIT 1",
            args,
        )
        row = await cur.fetchone()
        sentiment = float(row[0]) if row and row[0] is not None else None
        samples = await self._samples(conn, args)
        cur = await conn.execute(
            "INSERT INTO chat.hype_moments AS h (channel_id, started_at, peak_at, ended_at, score,"
            " messages_per_min, baseline_per_min, chatters, top_emotes, avg_sentiment,"
            " sample_messages) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (channel_id, started_at) DO UPDATE SET peak_at = excluded.peak_at,"
            " ended_at = excluded.ended_at, score = excluded.score,"
            " messages_per_min = excluded.messages_per_min,"
            " baseline_per_min = excluded.baseline_per_min, chatters = excluded.chatters,"
            " top_emotes = excluded.top_emotes, avg_sentiment = excluded.avg_sentiment,"
            " sample_messages = excluded.sample_messages"
            " WHERE (h.peak_at, h.ended_at, h.score, h.chatters, h.top_emotes, h.avg_sentiment,"
            "   h.sample_messages) IS DISTINCT FROM (excluded.peak_at, excluded.ended_at,"
            "   excluded.score, excluded.chatters, excluded.top_emotes, excluded.avg_sentiment,"
            "   excluded.sample_messages)",
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
            "SELECT user_login, text, sent_at FROM chat.messages"
            " WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s"
            " AND kind IN ('chat', 'action') ORDER BY sent_at, message_id",
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
    from chatpulse.db import connect

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
            try:
                if stop is not None:
                    await asyncio.wait_for(stop.wait(), options.poll_interval_s)
                    return total
                await asyncio.sleep(options.poll_interval_s)
            except TimeoutError:
                pass
    finally:
        await conn.close()
