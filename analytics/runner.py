"""The analyze job: keep ``chat.streams``, ``chat.stream_chatters``, ``chat.stream_shape`` and
``chat.stream_emotes`` current, incrementally.

**Which rows are new.**  ``chat.analytics_state.seen_snapshot`` is the snapshot of the last
pass; a message (or stream hint) whose inserting transaction is not visible in it is new,
whatever its ``sent_at`` (late rows, gap fill, replays of old chat), so every committed row is
seen.  New rows become per-channel time ranges; each range is widened to the stored streams
within one gap of it (to a fixed point), the streams of that window are inferred again
(:func:`analytics.streams.infer_streams`), matched to the stored ones so ids survive, and only
they are recomputed, each from two reads of its messages at once (``fill_stream`` in the
channel's transaction, whose chatter rows wait in a temporary table; the duplicates, emote
counts and mood on a second connection, ``reader``); then, once per channel, the segments and
audience figures of the streams from the earliest one touched (``assign_segments`` reads the
history before it as one total per chatter and writes the waiting chatter rows once, with
their segments).  Each changed
channel is one transaction.  A pass with nothing new writes nothing; running it again changes
nothing.  After a pass that rewrote a large share of a channel's chatter rows (more than 10,000
and a fifth of them: a first pass, or a replay of old chat), ``chat.stream_chatters`` is
vacuumed, so the next pass reads the history from its index alone.

**Mood** follows the scorer, which runs behind: streams not fully scored that ended within a
day of their channel's latest stream are re-checked each pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from analytics.helix import HelixSource, record_helix_streams
from analytics.segments import SegmentRules
from analytics.signatures import Signature, count_words
from analytics.streams import Hint, Island, Stream, infer_streams, match_streams, merge_ranges
from chatpulse.core.hints import add_stream_hint
from chatpulse.core.queries import load_queries

_Q = load_queries("analytics")  # sql/queries/analytics.sql

__all__ = [
    "AnalyzeSummary",
    "add_stream_hint",
    "analyze_pass",
    "channel_signature",
    "run_analyze",
    "stream_signatures",
]

log = logging.getLogger(__name__)

# work_mem of the analyze transactions and of the second connection's reads: one stream's rows
# are hashed and sorted in memory (at the server's default 4 MB, the second connection's reads
# wrote 1.7 GB of temporary files in a first pass over the bench's 10 M messages; now 0.27 GB,
# from the month-wide sorts of the first pass's segments).
_WORK_MEM = "64MB"

_LOCK_KEY = int.from_bytes(hashlib.sha256(b"chatpulse.analyze").digest()[:8], "big", signed=True)


@dataclass(slots=True)
class AnalyzeSummary:
    """What one pass (or a run of passes) did."""

    windows: int = 0
    streams_recomputed: int = 0
    streams_created: int = 0
    streams_deleted: int = 0
    mood_refreshed: int = 0
    #: Chatter rows rewritten in channels where they were a large share of the channel's (the
    #: tables are analyzed then, and vacuumed after the pass); 0 for an ordinary update.
    chatter_rows_written: int = 0
    seconds: float = 0.0
    channels: set[int] = field(default_factory=set)

    def add(self, other: AnalyzeSummary) -> None:
        self.windows += other.windows
        self.streams_recomputed += other.streams_recomputed
        self.streams_created += other.streams_created
        self.streams_deleted += other.streams_deleted
        self.mood_refreshed += other.mood_refreshed
        self.chatter_rows_written += other.chatter_rows_written
        self.seconds += other.seconds
        self.channels |= other.channels

    @property
    def idle(self) -> bool:
        return self.windows == 0 and self.mood_refreshed == 0


Conn = psycopg.AsyncConnection[Any]


async def _rows(conn: Conn, name: str, params: dict[str, Any] | None = None) -> list[Any]:
    cur = await conn.execute(_Q[name], params or {})
    return await cur.fetchall() if cur.description else []


async def _window(
    conn: Conn, channel: int, lo: datetime, hi: datetime, gap: timedelta
) -> tuple[datetime, datetime, list[tuple[int, datetime, datetime]]]:
    """Widen [lo, hi] to the stored streams within one gap of it, to a fixed point."""
    old: dict[int, tuple[int, datetime, datetime]] = {}
    while True:
        near = await _rows(
            conn, "streams_near", {"channel": channel, "lo": lo, "hi": hi, "gap": gap}
        )
        grew = False
        for sid, s0, s1 in near:
            if sid not in old:
                old[sid] = (sid, s0, s1)
                grew = True
            if s0 < lo:
                lo = s0
            if s1 > hi:
                hi = s1
        if not grew:
            return lo, hi, sorted(old.values(), key=lambda o: o[1])


async def _fill(
    conn: Conn, reader: Conn | None, channel: int, sid: int, lo: datetime, hi: datetime
) -> None:
    """Refill one stream's rows and message figures: ``fill_stream`` in the transaction on
    ``conn`` while ``reader`` (a second connection, or ``conn`` after it when None) reads the
    stream's duplicates, emote counts and mood; ``finish_stream`` and ``set_mood`` put them
    together."""
    p = {"id": sid, "channel": channel, "lo": lo, "hi": hi}
    await conn.execute(_Q["clear_stream_rows"], p)

    async def read(c: Conn) -> tuple[list[Any], list[Any], list[Any]]:
        return (
            await _rows(c, "stream_duplicates", p),
            await _rows(c, "stream_emote_counts", p),
            await _rows(c, "stream_mood", p),
        )

    if reader is None:
        await conn.execute(_Q["fill_stream"], p)
        dups, emotes, mood = await read(conn)
    else:
        try:
            async with asyncio.TaskGroup() as tasks:  # one fails: the other is cancelled
                tasks.create_task(conn.execute(_Q["fill_stream"], p))
                reading = tasks.create_task(read(reader))
        except ExceptionGroup as failed:  # raised as itself: callers catch psycopg's errors
            raise failed.exceptions[0] from failed
        dups, emotes, mood = reading.result()
    await conn.execute(
        _Q["finish_stream"],
        {
            **p,
            "chatters": [r[0] for r in dups],
            "duplicates": [r[1] for r in dups],
            "emotes": [r[0] for r in emotes],
            "uses": [r[1] for r in emotes],
        },
    )
    await _set_mood(conn, p, mood)


async def _set_mood(conn: Conn, p: dict[str, Any], mood: list[Any]) -> None:
    """Write one stream's ``stream_mood`` rows: its tenths' and its own."""
    tenths = [(d, m) for d, _, m in mood if d is not None]
    total = [(n, m) for d, n, m in mood if d is None]
    scored, overall = total[0] if total else (0, None)
    await conn.execute(
        _Q["set_mood"],
        {
            **p,
            "deciles": [d for d, _ in tenths],
            "moods": [m for _, m in tenths],
            "scored": scored,
            "mood": overall,
        },
    )


async def _place_window(
    conn: Conn,
    reader: Conn | None,
    channel: int,
    lo: datetime,
    hi: datetime,
    gap: timedelta,
    summary: AnalyzeSummary,
) -> datetime:
    """Infer the streams of one changed window again, store them (ids kept) and refill them;
    the earliest time whose segments and audience figures must be recomputed."""
    lo, hi, old = await _window(conn, channel, lo, hi, gap)
    islands = [
        Island(a, b)
        for a, b in await _rows(
            conn, "islands", {"channel": channel, "lo": lo, "hi": hi, "gap": gap}
        )
    ]
    hints = [
        Hint(at, found_by, title, category, before)
        for at, found_by, title, category, before in await _rows(
            conn, "hints", {"channel": channel, "lo": lo, "hi": hi, "gap": gap}
        )
    ]
    new = infer_streams(islands, hints, gap)
    ids = match_streams(old, new)
    keep = {i for i in ids if i is not None}
    gone = [o[0] for o in old if o[0] not in keep]
    if gone:
        await conn.execute(_Q["delete_streams"], {"ids": gone})
    placed: list[tuple[int, Stream]] = []
    for sid, stream in zip(ids, new, strict=True):
        values = {
            "channel": channel,
            "started_at": stream.started_at,
            "ended_at": stream.ended_at,
            "found_by": stream.found_by,
            "title": stream.title,
            "category": stream.category,
            "messages": 0,
        }
        if sid is None:
            cur = await conn.execute(_Q["insert_stream"], values)
            row = await cur.fetchone()
            assert row is not None
            sid = int(row[0])
            summary.streams_created += 1
        else:
            values["id"] = sid
            del values["channel"], values["messages"]
            await conn.execute(_Q["update_stream"], values)
        placed.append((sid, stream))
    for sid, stream in placed:
        await _fill(conn, reader, channel, sid, stream.started_at, stream.ended_at)
    summary.streams_recomputed += len(placed)
    summary.streams_deleted += len(gone)
    summary.windows += 1
    return min([lo, *(s.started_at for _, s in placed)])


async def _analyze_channel(
    conn: Conn,
    reader: Conn | None,
    channel: int,
    ranges: list[tuple[datetime, datetime]],
    gap: timedelta,
    rules: SegmentRules,
    summary: AnalyzeSummary,
) -> None:
    """One channel's changed windows, then its segments and audience figures once, from the
    earliest stream a window touched (segments depend on each chatter's history, retention on
    the previous stream).  ``conn`` is in a transaction."""
    # Sorts and hashes over a month of chatter rows spill to disk at the default 4 MB.
    await conn.execute("SELECT set_config('work_mem', %s, true)", (_WORK_MEM,))
    # Compiling each statement (JIT) costs more than it saves on one stream's rows.
    await conn.execute("SELECT set_config('jit', 'off', true)")
    before = (await _rows(conn, "chatter_rows_estimate"))[0][0]
    await conn.execute(_Q["create_new_chatters"])
    await conn.execute(_Q["create_fill_chatters"])
    since: datetime | None = None
    for lo, hi in merge_ranges(ranges, gap):
        start = await _place_window(conn, reader, channel, lo, hi, gap, summary)
        since = start if since is None else min(since, start)
    if since is None:
        return
    params = {"channel": channel, "since": since}
    await conn.execute(_Q["analyze_new_chatters"])
    await conn.execute(_Q["assign_segments"], {**params, **rules.params()})
    cur = await conn.execute(_Q["count_chatter_rows_since"], params)
    row = await cur.fetchone()
    # The planner's figures are stale after a first pass filled these tables: without them it
    # joins a month of chatter rows by nested loops, and panels scan them all for one stream.
    if row is not None and row[0] > max(10_000, before // 5):
        await conn.execute(
            "ANALYZE chat.streams, chat.stream_chatters, chat.stream_shape, chat.stream_emotes,"
            " chat.channel_chatters"
        )
        summary.chatter_rows_written += row[0]
    await conn.execute(_Q["summarize_audience"], params)
    await conn.execute(_Q["clear_stream_segments"], params)
    await conn.execute(_Q["fill_stream_segments"], params)
    await conn.execute(_Q["refresh_channel_chatters"], params)
    await conn.execute(_Q["clear_channel_segments"], params)
    await conn.execute(_Q["fill_channel_segments"], params)
    summary.channels.add(channel)


async def _refresh_mood(conn: Conn, summary: AnalyzeSummary) -> None:
    for sid, channel, lo, hi, _, scored in await _rows(conn, "unscored_recent"):
        rows = await _rows(conn, "count_scored", {"channel": channel, "lo": lo, "hi": hi})
        if rows[0][0] != scored:
            p = {"id": sid, "channel": channel, "lo": lo, "hi": hi}
            await _set_mood(conn, p, await _rows(conn, "stream_mood", p))
            summary.mood_refreshed += 1


async def analyze_pass(
    conn: Conn, gap: timedelta, rules: SegmentRules | None = None, *, reader: Conn | None = None
) -> AnalyzeSummary:
    """Bring every channel's streams up to date once.  ``conn`` must be in autocommit mode;
    each changed channel is one transaction.  Two passes at once wait for each other.
    ``reader``, a second autocommit connection, reads each stream's duplicates, emote counts and
    mood while ``conn`` computes the rest: the same rows as without it (on the bench's last
    stream of 416,000 messages, 1.9-2.3 s instead of 3.8-3.9 s on two quiet cores)."""
    rules = rules or SegmentRules()
    summary = AnalyzeSummary()
    started = time.perf_counter()
    if reader is not None:  # its reads hash and sort a stream's rows, as conn's (below)
        await reader.execute("SELECT set_config('work_mem', %s, false)", (_WORK_MEM,))
        await reader.execute("SELECT set_config('jit', 'off', false)")
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        state = await _rows(conn, "state")
        # One statement each: the snapshot first, so a row committed in between is found now
        # and again next pass (recomputing is idempotent), never missed.
        snap = (await _rows(conn, "snapshot"))[0][0]
        if state:
            changed = await _rows(conn, "changed_since", {"snap": state[0][0], "gap": gap})
        else:
            # Everything: each channel's islands (a few index probes per stream), and hints.
            changed = [
                (channel, lo, hi)
                for (channel,) in await _rows(conn, "all_channels")
                for lo, hi in await _rows(
                    conn,
                    "islands",
                    {"channel": channel, "lo": "-infinity", "hi": "infinity", "gap": gap},
                )
            ]
            changed += await _rows(conn, "all_hints")
        by_channel: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        for channel, lo, hi in changed:
            by_channel[channel].append((lo, hi))
        for channel, ranges in sorted(by_channel.items()):
            async with conn.transaction():
                await _analyze_channel(conn, reader, channel, ranges, gap, rules, summary)
        await _refresh_mood(conn, summary)
        await conn.execute(_Q["save_state"], {"snap": snap})
        if summary.chatter_rows_written:
            # The next pass reads each current chatter's earlier rows from
            # stream_chatters_chatter_idx alone only where the visibility map says their pages
            # are all visible; rows just written are not until a vacuum (autovacuum comes
            # later): without it an update after a first pass visits a month of rows in the
            # table (1.5 s of 2.6 s on the bench's 1.5 M messages).  Outside the transaction.
            await conn.execute("VACUUM chat.stream_chatters")
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    summary.seconds = time.perf_counter() - started
    if not summary.idle:
        log.info(
            "analyzed",
            extra={
                "windows": summary.windows,
                "streams": summary.streams_recomputed,
                "seconds": round(summary.seconds, 3),
            },
        )
    return summary


async def run_analyze(
    conninfo: str,
    gap: timedelta,
    *,
    interval_s: float = 60.0,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
    rules: SegmentRules | None = None,
    cluster: bool = False,
    helix: HelixSource | None = None,
) -> AnalyzeSummary:
    """Passes until nothing is new (``until_idle``) or until ``stop`` is set.  With
    ``cluster`` (needs scikit-learn), the channels a pass changed are clustered again after it
    (:mod:`analytics.clusters`).  With ``helix``, stream titles and categories are asked of
    Helix before the first pass and then at most every ``helix.every_s`` (:mod:`analytics.helix`)."""
    from chatpulse.core.db import connect

    total = AnalyzeSummary()
    stop = stop or asyncio.Event()
    asked_at: float | None = None
    async with contextlib.AsyncExitStack() as stack:
        conn = await stack.enter_async_context(await connect(conninfo, autocommit=True))
        reader = await stack.enter_async_context(await connect(conninfo, autocommit=True))
        http = None
        if helix is not None:
            import httpx

            http = await stack.enter_async_context(httpx.AsyncClient())
        while not stop.is_set():
            if (
                helix is not None
                and http is not None
                and (asked_at is None or time.monotonic() - asked_at >= helix.every_s)
            ):
                asked_at = time.monotonic()
                await record_helix_streams(conn, http, helix)
            one = await analyze_pass(conn, gap, rules, reader=reader)
            total.add(one)
            if cluster and one.channels:
                from analytics.clusters import cluster_channels

                await cluster_channels(conn, one.channels)
            if until_idle and one.idle:
                break
            if not until_idle:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
    return total


# -- signatures --------------------------------------------------------------------------------


async def _signature(conn: Conn, name: str, where: str, params: dict[str, Any]) -> Signature:
    """A signature of the streams selected by ``where`` (a condition on ``s``)."""
    sig = Signature(name)
    cur = await conn.execute(
        "SELECT coalesce(sum(s.messages), 0), coalesce(sum(s.duration_s), 0) / 60.0,"  # noqa: S608
        " sum(s.avg_length * s.messages) / nullif(sum(s.messages), 0),"
        " sum(s.mood * s.scored) / nullif(sum(s.scored) FILTER (WHERE s.mood IS NOT NULL), 0),"
        " coalesce(sum(s.emote_uses), 0)::float / nullif(sum(s.messages), 0),"
        " coalesce(sum(s.new_chatters), 0)::float / nullif(sum(s.chatters), 0),"
        " coalesce(array_agg(s.id), '{}') FROM chat.streams s WHERE " + where,
        params,
    )
    row = await cur.fetchone()
    assert row is not None
    messages, minutes, avg_length, mood, emote_share, first_share, ids = row
    sig.messages = int(messages)
    sig.minutes = max(float(minutes), 1.0)
    sig.avg_length = float(avg_length or 0)
    sig.mood = None if mood is None else float(mood)
    sig.emote_share = float(emote_share or 0)
    sig.first_time_share = float(first_share or 0)
    cur = await conn.execute(
        "SELECT segment, count(*) FROM chat.stream_chatters WHERE stream_id = ANY(%s) GROUP BY 1",
        (ids,),
    )
    segs = dict(await cur.fetchall())
    n = sum(segs.values())
    sig.segments = {k: v / n for k, v in segs.items()} if n else {}
    cur = await conn.execute(
        "SELECT emote_name, sum(uses) FROM chat.stream_emotes WHERE stream_id = ANY(%s) GROUP BY 1",
        (ids,),
    )
    sig.emotes.update({k: int(v) for k, v in await cur.fetchall()})
    cur = await conn.execute(
        "SELECT DISTINCT chatter FROM chat.stream_chatters WHERE stream_id = ANY(%s)", (ids,)
    )
    sig.chatters = frozenset(r[0] for r in await cur.fetchall())
    # Words: the newest messages of the selected streams (at most 200,000).
    cur = await conn.execute(
        "SELECT m.text FROM chat.streams s JOIN chat.messages m ON m.channel_id = s.channel_id"
        " AND m.sent_at >= s.started_at AND m.sent_at <= s.ended_at"
        " WHERE s.id = ANY(%s) ORDER BY m.sent_at DESC LIMIT 200000",
        (ids,),
    )
    sig.words = count_words(r[0] for r in await cur.fetchall())
    return sig


async def channel_signature(conn: Conn, channel: str) -> Signature | None:
    """The signature of every stream of ``channel`` (a login), or None when it has none."""
    cur = await conn.execute(
        "SELECT count(*) FROM chat.streams s JOIN chat.channels c ON c.id = s.channel_id"
        " WHERE c.name = %s",
        (channel,),
    )
    row = await cur.fetchone()
    if not row or not row[0]:
        return None
    return await _signature(
        conn,
        channel,
        "s.channel_id = (SELECT id FROM chat.channels WHERE name = %(name)s LIMIT 1)",
        {"name": channel},
    )


async def stream_signatures(conn: Conn, ids: list[int]) -> dict[int, Signature]:
    """The signature of each stream in ``ids``."""
    return {sid: await _signature(conn, str(sid), "s.id = %(id)s", {"id": sid}) for sid in ids}
