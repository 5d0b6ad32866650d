"""The batch writer: events in, rows in the database exactly once, or in the spool.

One writer task per collector drains a bounded queue, batches by size and time, and writes
each batch in one transaction: ``COPY`` into temporary staging tables, then
``INSERT … ON CONFLICT DO NOTHING`` into ``chat.messages``, ``chat.emote_uses`` and
``chat.moderation_events`` (the unique keys make replays, gap fill and redundant collectors
harmless; duplicates are counted, not errors).  Gap bookkeeping travels as control events in
the same stream, so it is ordered with the messages and survives outages too.

While the database is unreachable, batches go to the on-disk spool (fsynced before they count
as written) and are replayed in order when it returns; while anything is spooled, new batches
queue behind it.  A batch the database rejects for its content (not for being down) is split
until the offending events are isolated; those go to the dead-letter file, the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import Counter as _Count
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg_pool import PoolTimeout

from chatpulse.core.errors import DatabaseError
from collector.codec import decode_events, encode_events
from collector.deadletter import DeadLetters
from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.forgotten import load_forgotten
from collector.metrics import CollectorMetrics
from collector.spool import Spool, SpoolFullError

__all__ = [
    "GAP_CLOSE",
    "GAP_FILLED",
    "GAP_OPEN",
    "BatchResult",
    "ChannelRegistry",
    "DatabaseUnavailable",
    "Writer",
    "write_events",
]

log = logging.getLogger(__name__)

GAP_OPEN: Final = "gap_open"
GAP_CLOSE: Final = "gap_close"
GAP_FILLED: Final = "gap_filled"
_GAP_KINDS = (GAP_OPEN, GAP_CLOSE, GAP_FILLED)


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached (or is read-only): spool and retry, the data is fine."""


# SQLSTATE classes that mean "not now" rather than "not this data": connection exceptions,
# operator intervention (shutdown, cannot connect now), insufficient resources, read-only.
_UNAVAILABLE_STATES = ("08", "57", "53", "25006", "40001", "40P01")


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(
        exc,
        (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            PoolTimeout,
            TimeoutError,
            OSError,
            DatabaseUnavailable,
        ),
    ):
        return True
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        return exc.sqlstate.startswith(_UNAVAILABLE_STATES)
    return False


@dataclass(slots=True)
class BatchResult:
    """What one batch did; counts are by (channel login, source)."""

    messages: int = 0
    inserted: _Count[tuple[str, str]] = field(default_factory=_Count)
    staged: _Count[tuple[str, str]] = field(default_factory=_Count)
    moderation_inserted: _Count[str] = field(default_factory=_Count)
    emote_uses_inserted: int = 0
    #: Emote uses (sum of counts) added to messages that were already stored.
    emote_uses_backfilled: int = 0
    gaps_recovered: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    #: messages dropped because their user was forgotten (``chatpulse forget``)
    forgotten: int = 0
    min_sent_at: datetime | None = None
    max_sent_at: datetime | None = None

    @property
    def written(self) -> int:
        return sum(self.inserted.values())

    @property
    def duplicates(self) -> int:
        return self.messages - self.written

    def merge(self, other: BatchResult) -> None:
        self.messages += other.messages
        self.inserted.update(other.inserted)
        self.staged.update(other.staged)
        self.moderation_inserted.update(other.moderation_inserted)
        self.emote_uses_inserted += other.emote_uses_inserted
        self.emote_uses_backfilled += other.emote_uses_backfilled
        self.gaps_recovered.update(other.gaps_recovered)
        self.dead_lettered += other.dead_lettered
        self.forgotten += other.forgotten
        for at in (other.min_sent_at, other.max_sent_at):
            if at is not None:
                self.min_sent_at = at if self.min_sent_at is None else min(self.min_sent_at, at)
                self.max_sent_at = at if self.max_sent_at is None else max(self.max_sent_at, at)


class ChannelRegistry:
    """Maps (platform, channel login) to ``chat.channels.id``, creating channels on first sight.

    Ids are cached only after the transaction that created them committed: :meth:`resolve`
    fills the caller's ``pending`` dict, which the caller passes to :meth:`commit` after its
    commit.  Each transaction has its own ``pending``, so a batch written on another connection
    never uses an id that a rolled-back transaction created.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._with_platform_id: set[int] = set()

    async def resolve(
        self,
        conn: psycopg.AsyncConnection[Any],
        wanted: dict[tuple[str, str], str | None],
        pending: dict[tuple[str, str], int],
    ) -> dict[tuple[str, str], int]:
        """Return ids for ``wanted`` ((platform, login) -> platform room id or None)."""
        out: dict[tuple[str, str], int] = {}
        missing: list[tuple[str, str, str | None]] = []
        for key, platform_id in wanted.items():
            known = self._ids.get(key) or pending.get(key)
            if known is None:
                missing.append((key[0], key[1], platform_id))
            else:
                out[key] = known
                if platform_id and known not in self._with_platform_id:
                    await conn.execute(
                        "UPDATE chat.channels SET platform_id = %s WHERE id = %s AND platform_id IS NULL",
                        (platform_id, known),
                    )
                    self._with_platform_id.add(known)
        if missing:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO chat.channels (platform, name, platform_id) VALUES (%s, %s, %s) "
                    "ON CONFLICT (platform, name) DO UPDATE SET platform_id = "
                    "coalesce(chat.channels.platform_id, EXCLUDED.platform_id) "
                    "WHERE chat.channels.platform_id IS NULL AND EXCLUDED.platform_id IS NOT NULL",
                    missing,
                )
                await cur.execute(
                    "SELECT platform, name, id, platform_id FROM chat.channels "
                    "WHERE (platform, name) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                    ([m[0] for m in missing], [m[1] for m in missing]),
                )
                for platform, name, id_, pid in await cur.fetchall():
                    out[(platform, name)] = id_
                    pending[(platform, name)] = id_
                    if pid:
                        self._with_platform_id.add(id_)
        return out

    def commit(self, pending: dict[tuple[str, str], int]) -> None:
        """Cache the ids a committed transaction resolved."""
        self._ids.update(pending)


_STAGING_SQL = """
CREATE TEMP TABLE IF NOT EXISTS staging_messages (
    sent_at timestamptz, channel_id integer, message_id text, user_id text, user_login text,
    user_name text, text text, kind text, badges jsonb, is_mod boolean, is_subscriber boolean,
    is_first boolean, bits integer, reply_parent_id text, emote_count integer, extra jsonb,
    received_at timestamptz, source text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_emotes (
    sent_at timestamptz, channel_id integer, message_id text, emote_id text, emote_name text,
    provider text, count integer, user_id text
) ON COMMIT DELETE ROWS;
"""
_MESSAGE_COLS = (
    "sent_at, channel_id, message_id, user_id, user_login, user_name, text, kind, badges, "
    "is_mod, is_subscriber, is_first, bits, reply_parent_id, emote_count, extra, received_at, source"
)
_EMOTE_COLS = "sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id"


@functools.lru_cache(maxsize=4096)
def _badges_json_cached(items: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(items))


def _badges_json(badges: dict[str, str]) -> str:
    # A channel has a few dozen badge combinations; serialise each once.
    return _badges_json_cached(tuple(badges.items())) if badges else "{}"


def _clean(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; one such character must not poison a batch.
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


async def _ensure_staging(conn: psycopg.AsyncConnection[Any]) -> None:
    if not getattr(conn, "_chatpulse_staging", False):
        await conn.execute(_STAGING_SQL)
        conn._chatpulse_staging = True  # type: ignore[attr-defined]


async def write_events(
    conn: psycopg.AsyncConnection[Any],
    events: Sequence[ChatEvent],
    channels: ChannelRegistry,
    *,
    collector_id: str = "",
    fill_counts: dict[str, int] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchResult:
    """Write one batch in one transaction; returns what was inserted.

    ``fill_counts`` (channel -> gap-fill rows inserted since that channel's last fill marker)
    carries across batches: a ``gap_filled`` marker stores the count as the gap's
    ``recovered`` and resets it.  It is updated only when the transaction commits.
    Raises :class:`psycopg.Error` as the database raised it (the caller decides whether that
    means "down" or "bad data").  ``Malformed`` events and control events other than gap
    bookkeeping are ignored here.
    """
    messages = [e for e in events if isinstance(e, ChatMessage)]
    moderation = [e for e in events if isinstance(e, ModerationEvent)]
    gaps = [e for e in events if isinstance(e, ControlEvent) and e.kind in _GAP_KINDS]
    result = BatchResult(messages=len(messages))
    if not (messages or moderation or gaps):
        return result
    wanted: dict[tuple[str, str], str | None] = {}
    for e in messages:
        key = (e.platform, e.channel)
        wanted[key] = wanted.get(key) or e.channel_platform_id
    for mod in moderation:
        key = (mod.platform, mod.channel)
        wanted[key] = wanted.get(key) or mod.channel_platform_id
    for g in gaps:
        wanted.setdefault((g.params.get("platform", "twitch"), g.channel or ""), None)
    received_default = now()
    pending: dict[tuple[str, str], int] = {}
    # Gap-fill rows inserted by this batch minus what its markers took, applied to the shared
    # ``fill_counts`` only after the commit, and additively, so that batches written at the
    # same time on other connections cannot lose each other's counts.
    delta: dict[str, int] = {}
    async with conn.transaction():
        if messages or moderation:  # `chatpulse forget`: never store a forgotten user again
            forgotten = await load_forgotten(conn)
            if forgotten:
                messages = [e for e in messages if not forgotten.drops(e)]
                moderation = [e for e in moderation if not forgotten.drops(e)]
                result.forgotten = result.messages - len(messages)
                result.messages = len(messages)
        await _ensure_staging(conn)
        ids = await channels.resolve(conn, wanted, pending)
        names = {v: k[1] for k, v in ids.items()}
        if messages:
            await _write_messages(conn, messages, ids, names, received_default, result)
        if moderation:
            await _write_moderation(conn, moderation, ids, received_default, result)
        for (channel, source), inserted in result.inserted.items():
            if source == "gapfill":
                delta[channel] = delta.get(channel, 0) + inserted
        for gap in gaps:
            await _write_gap(conn, gap, ids, collector_id, result, fill_counts or {}, delta)
    channels.commit(pending)
    if fill_counts is not None:
        for channel, change in delta.items():
            total = fill_counts.get(channel, 0) + change
            if total:
                fill_counts[channel] = total
            else:
                fill_counts.pop(channel, None)
    return result


async def _write_messages(
    conn: psycopg.AsyncConnection[Any],
    messages: Sequence[ChatMessage],
    ids: dict[tuple[str, str], int],
    names: dict[int, str],
    received_default: datetime,
    result: BatchResult,
) -> None:
    emote_rows: list[tuple[Any, ...]] = []
    async with conn.cursor() as cur:
        async with cur.copy(f"COPY staging_messages ({_MESSAGE_COLS}) FROM STDIN") as copy:
            for m in messages:
                channel_id = ids[(m.platform, m.channel)]
                result.staged[(m.channel, m.source)] += 1
                emote_count = 0
                for emote in m.emotes:
                    emote_count += emote.count
                    emote_rows.append(
                        (
                            m.sent_at,
                            channel_id,
                            m.message_id,
                            emote.emote_id,
                            _clean(emote.emote_name),
                            emote.provider,
                            emote.count,
                            m.user_id,
                        )
                    )
                await copy.write_row(
                    (
                        m.sent_at,
                        channel_id,
                        _clean(m.message_id),
                        _clean(m.user_id),
                        _clean(m.user_login),
                        _clean(m.user_name),
                        _clean(m.text),
                        m.kind,
                        _badges_json(m.badges),
                        m.is_mod,
                        m.is_subscriber,
                        m.is_first,
                        m.bits,
                        _clean(m.reply_parent_id),
                        emote_count,
                        _clean(json.dumps(m.extra, ensure_ascii=False)) if m.extra else None,
                        m.received_at or received_default,
                        m.source,
                    )
                )
                if result.min_sent_at is None or m.sent_at < result.min_sent_at:
                    result.min_sent_at = m.sent_at
                if result.max_sent_at is None or m.sent_at > result.max_sent_at:
                    result.max_sent_at = m.sent_at
        await cur.execute(
            f"WITH ins AS (INSERT INTO chat.messages ({_MESSAGE_COLS}) "
            f"SELECT {_MESSAGE_COLS} FROM staging_messages ORDER BY sent_at "
            "ON CONFLICT DO NOTHING RETURNING channel_id, source) "
            "SELECT channel_id, source, count(*) FROM ins GROUP BY 1, 2"
        )
        inserted_here = 0
        for channel_id, source, count in await cur.fetchall():
            result.inserted[(names[channel_id], source)] += count
            inserted_here += count
        if emote_rows:
            async with cur.copy(f"COPY staging_emotes ({_EMOTE_COLS}) FROM STDIN") as copy:
                for row in emote_rows:
                    await copy.write_row(row)
            if inserted_here == len(messages):  # every message is new: its uses are too
                await cur.execute(
                    f"INSERT INTO chat.emote_uses ({_EMOTE_COLS}) SELECT {_EMOTE_COLS} "
                    "FROM staging_emotes ON CONFLICT DO NOTHING"
                )
                result.emote_uses_inserted += max(cur.rowcount, 0)
            else:
                await cur.execute(_BACKFILL_EMOTES_SQL)
                added = await cur.fetchone()
                if added is not None:
                    result.emote_uses_inserted += int(added[0])
                    result.emote_uses_backfilled += int(added[1])


# Some messages of the batch were stored before (a replay again, gap fill, the spool): emotes
# found now that were not then (the channel's sets became known) are added to those messages,
# and their emote_count grows by as much, so it always equals their chat.emote_uses.  A name the
# message already counts (under another provider, when the sets changed) is not counted twice.
# Messages inserted by this very transaction already count their uses.
_BACKFILL_EMOTES_SQL = f"""
WITH ins AS (
    INSERT INTO chat.emote_uses ({_EMOTE_COLS})
    SELECT {_EMOTE_COLS} FROM staging_emotes s
    WHERE NOT EXISTS (
        SELECT 1 FROM chat.emote_uses u
        WHERE u.channel_id = s.channel_id AND u.message_id = s.message_id
          AND u.sent_at = s.sent_at AND u.emote_name = s.emote_name)
    ON CONFLICT DO NOTHING
    RETURNING channel_id, message_id, sent_at, count
), per AS (
    SELECT channel_id, message_id, sent_at, sum(count) AS n FROM ins GROUP BY 1, 2, 3
), upd AS (
    UPDATE chat.messages m SET emote_count = m.emote_count + per.n
    FROM per
    WHERE m.channel_id = per.channel_id AND m.message_id = per.message_id
      AND m.sent_at = per.sent_at AND m.ingest_xid <> pg_current_xact_id()
    RETURNING per.n
)
SELECT (SELECT count(*) FROM ins), (SELECT coalesce(sum(n), 0) FROM upd)
"""


async def _write_moderation(
    conn: psycopg.AsyncConnection[Any],
    events: Sequence[ModerationEvent],
    ids: dict[tuple[str, str], int],
    received_default: datetime,
    result: BatchResult,
) -> None:
    async with conn.cursor() as cur:
        for e in events:
            await cur.execute(
                "INSERT INTO chat.moderation_events (at, channel_id, kind, target_user_id, "
                "target_login, target_message_id, duration_s, event_key, received_at, source, "
                "extra) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    e.at,
                    ids[(e.platform, e.channel)],
                    e.kind,
                    e.target_user_id,
                    e.target_login,
                    e.target_message_id,
                    e.duration_s,
                    e.event_key,
                    received_default,
                    e.source,
                    _clean(json.dumps(e.extra, ensure_ascii=False)) if e.extra else None,
                ),
            )
            if cur.rowcount > 0:
                result.moderation_inserted[e.channel] += 1


async def _write_gap(
    conn: psycopg.AsyncConnection[Any],
    gap: ControlEvent,
    ids: dict[tuple[str, str], int],
    collector_id: str,
    result: BatchResult,
    fill_counts: dict[str, int],
    delta: dict[str, int],
) -> None:
    p = gap.params
    if gap.kind == GAP_OPEN and p.get("since") == "last_message":
        # A collector restart: the gap starts at the channel's newest message written before
        # this run started (``before``).  The spool of the previous run is written before this
        # marker, so its messages count.  No such message: the channel is new, no gap.
        channel_id = ids[(p.get("platform", "twitch"), gap.channel or "")]
        await conn.execute(
            "INSERT INTO chat.gaps (channel_id, started_at, reason, collector, gap_key) "
            "SELECT %(channel)s, max(sent_at), %(reason)s, %(collector)s, %(key)s "
            "FROM chat.messages WHERE channel_id = %(channel)s AND source <> 'replay' "
            "AND received_at < %(before)s HAVING max(sent_at) IS NOT NULL "
            "ON CONFLICT (gap_key) DO NOTHING",
            {
                "channel": channel_id,
                "reason": p.get("reason", ""),
                "collector": collector_id or None,
                "key": p["key"],
                "before": p["before"],
            },
        )
    elif gap.kind == GAP_OPEN:
        await conn.execute(
            "INSERT INTO chat.gaps (channel_id, started_at, reason, collector, gap_key) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (gap_key) DO NOTHING",
            (
                ids[(p.get("platform", "twitch"), gap.channel or "")],
                p["at"],
                p.get("reason", ""),
                collector_id or None,
                p["key"],
            ),
        )
    elif gap.kind == GAP_CLOSE:
        await conn.execute(
            "UPDATE chat.gaps SET ended_at = %s WHERE gap_key = %s AND ended_at IS NULL",
            (p["at"], p["key"]),
        )
    else:  # GAP_FILLED: what this fill brought back that we did not have
        channel = gap.channel or ""
        recovered = fill_counts.get(channel, 0) + delta.get(channel, 0)
        delta[channel] = delta.get(channel, 0) - recovered
        if p.get("key"):  # no key: the fill at start-up, which closes no gap
            await conn.execute(
                "UPDATE chat.gaps SET filled_at = now(), recovered = %s WHERE gap_key = %s",
                (recovered, p["key"]),
            )
        if gap.channel:
            result.gaps_recovered[gap.channel] = recovered


def _event_raw(event: ChatEvent) -> str:
    return encode_events([event]).decode("utf-8", "replace")


class Writer:
    """Consume events from ``queue`` and write them; see the module docstring.

    ``conninfo`` is used for one dedicated connection, reopened after failures.  Put
    :data:`Writer.STOP` on the queue (or call :meth:`stop`) to flush and finish: every event
    before it ends up in the database or the spool.
    """

    STOP: Final = object()

    def __init__(
        self,
        conninfo: str,
        queue: asyncio.Queue[Any],
        *,
        spool: Spool,
        dead_letters: DeadLetters,
        metrics: CollectorMetrics,
        batch_size: int = 2000,
        flush_interval_s: float = 0.5,
        retry_s: float = 1.0,
        collector_id: str = "",
        on_written: Callable[[BatchResult], None] | None = None,
        lanes: int = 2,
        ready: asyncio.Event | None = None,
    ) -> None:
        self._conninfo = conninfo
        # Set once the schema is known to be there (the collector checks it in the background
        # while it already collects): until then every batch goes to the spool.
        self._ready = ready
        self._queue = queue
        self._spool = spool
        self._dead = dead_letters
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_s = flush_interval_s
        self._retry_s = retry_s
        self._collector_id = collector_id
        self._on_written = on_written
        # Two connections ("lanes"): while PostgreSQL inserts one batch, the next is copied in
        # on the other, so Python and the database work at the same time.  Batches that carry
        # gap bookkeeping, and spool replay, wait for both lanes and go one at a time.
        self._conns: list[psycopg.AsyncConnection[Any] | None] = [None] * lanes
        self._inflight: list[asyncio.Task[None] | None] = [None] * lanes
        self._channels = ChannelRegistry()
        self._fill_counts: dict[str, int] = {}
        self._drain_lock = asyncio.Lock()
        self._last_drain_try = 0.0
        self.db_up: bool | None = None  # unknown until the first attempt
        self.totals = BatchResult()
        self.spooled_batches = 0
        metrics.spool_limit.set(spool.max_bytes)
        metrics.watch_spool(
            lambda: float(spool.size_bytes),
            lambda: at.timestamp() if (at := spool.oldest_appended_at) is not None else None,
        )

    @property
    def spool_pending(self) -> int:
        """Batches still waiting in the spool (the database was down and is not back yet)."""
        return self._spool.pending_records

    async def stop(self) -> None:
        """Ask the writer to flush what is queued and return from :meth:`run`."""
        await self._queue.put(self.STOP)

    async def write_now(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        """Write ``events`` now on ``lane``'s connection, never to the spool (the bus writer:
        the stream holds what is not written yet).  Malformed events go to the dead letters,
        rows the database rejects are isolated as usual; raises :class:`DatabaseUnavailable`
        when nothing could be committed."""
        for e in events:
            if isinstance(e, Malformed):
                self._dead.write(e)
        return await self._write([e for e in events if not isinstance(e, Malformed)], lane)

    # -- connection ----------------------------------------------------------------------------
    async def _connection(self, lane: int = 0) -> psycopg.AsyncConnection[Any]:
        if self._ready is not None and not self._ready.is_set():
            raise DatabaseUnavailable("the schema is not checked yet (waiting for the database)")
        conn = self._conns[lane]
        if conn is None or conn.closed:
            try:
                conn = self._conns[lane] = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    connect_timeout=5,
                    application_name="chatpulse-collector",
                    # A silently cut network must surface as an error, not hang the writer.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    tcp_user_timeout=10_000,
                )
            except psycopg.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
        return conn

    async def _drop_connection(self, lane: int | None = None) -> None:
        for i in range(len(self._conns)) if lane is None else (lane,):
            conn, self._conns[i] = self._conns[i], None
            if conn is not None:
                with contextlib.suppress(Exception):  # already broken; closing is best effort
                    await conn.close()

    def _set_db(self, up: bool) -> None:
        if up != self.db_up and not (self.db_up is None and up):
            log.warning(
                "database reachable again" if up else "database unreachable: spooling",
                extra={"spool_bytes": self._spool.size_bytes},
            )
        self.db_up = up
        self._metrics.db_up.set(1 if up else 0)

    # -- writing -------------------------------------------------------------------------------
    async def _write(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        """Write a batch, isolating rows the database rejects; raises DatabaseUnavailable.

        The batch is cut after each gap-fill marker, so a marker counts exactly the gap-fill
        rows that came before it in the stream.
        """
        cuts = [
            i + 1
            for i, e in enumerate(events)
            if isinstance(e, ControlEvent) and e.kind == GAP_FILLED
        ]
        if (cuts and cuts[-1] != len(events)) or len(cuts) > 1:
            result = BatchResult()
            start = 0
            for end in [*cuts, len(events)]:
                if end > start:
                    result.merge(await self._write_one(events[start:end], lane))
                start = end
            return result
        return await self._write_one(events, lane)

    async def _write_one(self, events: Sequence[ChatEvent], lane: int = 0) -> BatchResult:
        started = time.perf_counter()
        try:
            conn = await self._connection(lane)
            result = await asyncio.wait_for(
                write_events(
                    conn,
                    events,
                    self._channels,
                    collector_id=self._collector_id,
                    fill_counts=self._fill_counts,
                ),
                timeout=60,
            )
        except Exception as exc:
            if _is_unavailable(exc):
                await self._drop_connection(lane)
                self._set_db(False)
                raise DatabaseUnavailable(str(exc)) from exc
            if not isinstance(exc, psycopg.Error):
                raise
            return await self._isolate(events, exc, lane)
        self._set_db(True)
        self._metrics.write_latency.observe(time.perf_counter() - started)
        self._account(events, result)
        return result

    async def _isolate(
        self, events: Sequence[ChatEvent], exc: psycopg.Error, lane: int = 0
    ) -> BatchResult:
        if len(events) == 1:
            event = events[0]
            reason = f"rejected by the database: {exc.sqlstate} {str(exc).strip()[:300]}"
            log.error("event rejected by the database; dead-lettered", extra={"reason": reason})
            self._dead.write(Malformed(_event_raw(event), reason, "writer"))
            self._metrics.malformed.labels("writer").inc()
            return BatchResult(dead_lettered=1)
        half = len(events) // 2
        result = await self._write_one(events[:half], lane)
        result.merge(await self._write_one(events[half:], lane))
        return result

    def _account(self, events: Sequence[ChatEvent], result: BatchResult) -> None:
        m = self._metrics
        for (channel, source), staged in result.staged.items():
            inserted = result.inserted.get((channel, source), 0)
            m.written.labels(channel, source).inc(inserted)
            m.duplicates.labels(channel, source).inc(staged - inserted)  # once per batch
        for channel, count in result.moderation_inserted.items():
            m.moderation.labels(channel).inc(count)
        for channel, count in result.gaps_recovered.items():
            m.gap_recovered.labels(channel).inc(count)
        now = datetime.now(UTC)
        oldest = min(
            (
                e.received_at
                for e in events
                if isinstance(e, ChatMessage) and e.received_at and e.source == "live"
            ),
            default=None,
        )
        if oldest is not None:
            m.ingest_delay.observe(max(0.0, (now - oldest).total_seconds()))
        m.batches.labels("written").inc()
        self.totals.merge(result)
        if self._on_written is not None:
            self._on_written(result)

    async def _to_spool(self, events: Sequence[ChatEvent], stopping: bool, lane: int = 0) -> bool:
        """Append to the spool (fsynced).  When it is full, wait for the database (this is
        the backpressure that eventually slows the sources); returns False only if stopping
        with both the database and the spool unavailable."""
        payload = encode_events(events)
        while True:
            try:
                await asyncio.to_thread(self._spool.append, payload)
                self.spooled_batches += 1
                self._metrics.batches.labels("spooled").inc()
                return True
            except SpoolFullError:
                if await self._drain(lane):
                    try:
                        self._account(events, await self._write(events, lane))
                        return True
                    except DatabaseUnavailable:
                        pass
                if stopping:
                    log.error(
                        "spool full and database down at shutdown: events lost",
                        extra={"events": len(events)},
                    )
                    return False
                log.error("spool full; waiting for the database", extra={"events": len(events)})
                await asyncio.sleep(self._retry_s)

    async def _drain(self, lane: int = 0) -> bool:
        """Replay the spool into the database, oldest first; True when it is empty.

        Uses ``lane``'s connection (the caller's own); one drain runs at a time.
        """
        async with self._drain_lock:
            return await self._drain_locked(lane)

    async def _drain_locked(self, lane: int) -> bool:
        self._last_drain_try = time.monotonic()
        while True:
            head = await asyncio.to_thread(self._spool.peek)
            if head is None:
                return True
            record_id, payload = head
            try:
                events = decode_events(payload)
            except Exception as exc:  # a record we wrote but cannot read: keep it aside
                self._dead.write(
                    Malformed(
                        payload.decode("utf-8", "replace"),
                        f"unreadable spool record: {exc}",
                        "spool",
                    )
                )
                await asyncio.to_thread(self._spool.ack, record_id)
                continue
            try:
                await self._write(events, lane)
            except DatabaseUnavailable:
                return False
            await asyncio.to_thread(self._spool.ack, record_id)
            log.info(
                "spooled batch replayed",
                extra={"events": len(events), "spool_bytes": self._spool.size_bytes},
            )

    async def _commit(self, events: list[ChatEvent], stopping: bool = False) -> None:
        for e in events:
            if isinstance(e, Malformed):
                self._dead.write(e)
        events = [e for e in events if not isinstance(e, Malformed)]
        if not events:
            return
        ordered = stopping or any(
            isinstance(e, ControlEvent) and e.kind in _GAP_KINDS for e in events
        )
        if not ordered and not self._spool.pending_records and len(self._inflight) > 1:
            lane = await self._free_lane()
            self._inflight[lane] = asyncio.create_task(self._write_lane(events, lane))
            return
        # Gap bookkeeping counts what came before it, and spooled batches go first: wait for
        # the lanes, then write in order.
        await self._settle()
        if self._spool.pending_records and not await self._drain():
            await self._to_spool(events, stopping)
            return
        try:
            await self._write(events)
        except DatabaseUnavailable:
            await self._to_spool(events, stopping)

    async def _write_lane(self, events: list[ChatEvent], lane: int) -> None:
        try:
            await self._write(events, lane)
        except DatabaseUnavailable:
            # Order across lanes does not matter for rows (the unique key decides), and gap
            # markers never travel on a lane.
            await self._to_spool(events, False, lane)

    async def _free_lane(self) -> int:
        """A lane with no batch in flight, waiting for the oldest when all are busy."""
        for lane, task in enumerate(self._inflight):
            if task is None or task.done():
                if task is not None:
                    task.result()  # re-raise what a lane hit (programming errors only)
                return lane
        busy = [t for t in self._inflight if t is not None]
        await asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED)
        return await self._free_lane()

    async def _settle(self) -> None:
        """Wait until no batch is in flight on any lane."""
        for lane, task in enumerate(self._inflight):
            if task is not None:
                self._inflight[lane] = None
                await task

    async def run(self) -> None:
        """Run until :data:`STOP` is dequeued; flushes everything before returning."""
        loop = asyncio.get_running_loop()
        batch: list[ChatEvent] = []
        deadline = 0.0
        if self._spool.pending_records:
            log.info(
                "spool holds batches from an earlier run; replaying",
                extra={"records": self._spool.pending_records},
            )
            await self._drain()
        while True:
            self._metrics.queue_depth.set(self._queue.qsize())
            timeout = self._flush_s if not batch else max(0.0, deadline - loop.time())
            if not batch and self._spool.pending_records:
                timeout = min(timeout, self._retry_s)
            stopping = False
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                item = None
            while item is not None:
                if item is self.STOP:
                    stopping = True
                    break
                if not batch:
                    deadline = loop.time() + self._flush_s
                if isinstance(item, list):
                    batch.extend(item)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    item = None
            if batch and (stopping or len(batch) >= self._batch_size or loop.time() >= deadline):
                await self._commit(batch, stopping)
                batch = []
            elif (
                not batch
                and self._spool.pending_records
                and time.monotonic() - self._last_drain_try >= self._retry_s
            ):
                await self._settle()
                await self._drain()
            if stopping:
                await self._settle()
                if self._spool.pending_records:
                    await self._drain()
                await self._drop_connection()
                return
