"""One batch in one transaction, each message stored once.

:func:`write_events` writes messages, emote uses, moderation events and gap bookkeeping of a
batch; the unique keys make replays, gap fill and redundant collectors harmless (duplicates
are counted, not errors).  Messages known to be new are ``COPY``'d straight into the tables
(the schema's own speed); a batch that holds a key twice, or meets a concurrent writer, goes
through staging tables and ``INSERT … ON CONFLICT DO NOTHING`` (docs/architecture.md,
"Exactly once into the database").  The statements are named queries in
``sql/queries/collector.sql``.
"""

from __future__ import annotations

import heapq
import json
import operator
from collections import Counter as _Count
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg.rows import class_row

from chatpulse.core.queries import load_queries
from collector.events import ChatEvent, ChatMessage, ControlEvent, ModerationEvent
from collector.forgotten import load_forgotten
from collector.writer.channels import ChannelRegistry
from collector.writer.rows import MessageRows, clean, encode_rows, format_messages

__all__ = [
    "GAP_CLOSE",
    "GAP_FILLED",
    "GAP_KINDS",
    "GAP_OPEN",
    "BatchResult",
    "write_events",
]

_Q = load_queries("collector")  # sql/queries/collector.sql
#: Bytes of COPY text sent per write (a batch of 5,000 messages is about 2 MB).
_COPY_BLOCK = 1 << 20

GAP_OPEN: Final = "gap_open"
GAP_CLOSE: Final = "gap_close"
GAP_FILLED: Final = "gap_filled"
GAP_KINDS: Final = (GAP_OPEN, GAP_CLOSE, GAP_FILLED)


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


@dataclass(frozen=True, slots=True)
class _InsertedRow:
    channel_id: int
    source: str
    inserted: int


@dataclass(frozen=True, slots=True)
class _BackfillRow:
    rows_added: int
    uses_backfilled: int


async def _ensure_staging(conn: psycopg.AsyncConnection[Any]) -> None:
    # The temp tables are created inside the batch's transaction, so a rollback drops them:
    # the connection is marked as having them only after a commit (write_events).
    if not getattr(conn, "_chatpulse_staging", False):
        await conn.execute(_Q["create_staging_messages"])
        await conn.execute(_Q["create_staging_emotes"])


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
    gaps = [e for e in events if isinstance(e, ControlEvent) and e.kind in GAP_KINDS]
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
    conn._chatpulse_staging = True  # type: ignore[attr-defined]  # committed with the batch
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
    rows = format_messages(messages, ids, received_default)
    result.staged.update([(m.channel, m.source) for m in messages])
    sent = [m.sent_at for m in messages]
    low, high = min(sent), max(sent)
    if result.min_sent_at is None or low < result.min_sent_at:
        result.min_sent_at = low
    if result.max_sent_at is None or high > result.max_sent_at:
        result.max_sent_at = high
    if not await _copy_new(conn, messages, rows, result):
        await _insert_staged(conn, rows, names, result)


@dataclass(frozen=True, slots=True)
class _Overlap:
    overlaps: bool


@dataclass(frozen=True, slots=True)
class _MessageKey:
    channel_id: int
    message_id: str
    sent_at: datetime


async def _copy_text(cur: psycopg.AsyncCursor[Any], statement: str, lines: list[str]) -> None:
    """``COPY … FROM STDIN`` of rows already in COPY text format (:mod:`collector.writer.rows`),
    sent in blocks of about a megabyte."""
    async with cur.copy(statement) as copy:
        block: list[str] = []
        size = 0
        for line in lines:
            block.append(line)
            size += len(line)
            if size >= _COPY_BLOCK:
                await copy.write(encode_rows("".join(block)))
                block, size = [], 0
        if block:
            await copy.write(encode_rows("".join(block)))


def _ranges(times: list[datetime], most: int = 4) -> list[tuple[datetime, datetime]]:
    """The time ranges ``times`` cover: sorted, cut at their ``most - 1`` widest gaps."""
    times.sort()
    gaps = list(map(operator.sub, times[1:], times[:-1]))
    widest = heapq.nlargest(most - 1, range(len(gaps)), key=gaps.__getitem__)
    cuts = sorted(i for i in widest if gaps[i])
    ranges = []
    start = 0
    for cut in cuts:
        ranges.append((times[start], times[cut]))
        start = cut + 1
    ranges.append((times[start], times[-1]))
    return ranges


async def _copy_new(
    conn: psycopg.AsyncConnection[Any],
    messages: Sequence[ChatMessage],
    rows: MessageRows,
    result: BatchResult,
) -> bool:
    """Write the batch at the schema's own speed: look up which of its messages are stored
    already, ``COPY`` the others straight into ``chat.messages`` and ``chat.emote_uses``.

    Returns False, having written nothing, when the batch holds a key twice or when a
    concurrent writer stored one of its messages after the look-up (the unique key refuses
    the ``COPY``; a savepoint undoes it): the caller then takes the staging path, whose
    ``ON CONFLICT DO NOTHING`` settles both.  Either way every message is stored once
    (docs/architecture.md, "Exactly once into the database").
    """
    keys = rows.keys  # the unique key: channel_id, message_id, sent_at
    if len(set(keys)) != len(keys):
        return False
    # A stored message with one of the batch's keys was sent at its time: when a channel holds
    # nothing sent within the time ranges the batch covers, none of the batch's messages can be
    # stored, and only the messages in ranges that hold something are looked up one by one
    # (a few index probes per channel for the common case: chat appended in time order, or a
    # replay's spans of one file, parsed side by side, whose messages meet in one batch).
    times: dict[int, list[datetime]] = {}
    for channel_id, _, sent_at in keys:
        times.setdefault(channel_id, []).append(sent_at)
    overlapping: dict[int, list[tuple[datetime, datetime]]] = {}
    async with conn.cursor(row_factory=class_row(_Overlap)) as cur:
        for channel_id, channel_times in times.items():
            for first, last in _ranges(channel_times):
                await cur.execute(
                    _Q["channel_overlaps"],
                    {"channel_id": channel_id, "since": first, "until": last},
                )
                row = await cur.fetchone()
                if row is not None and row.overlaps:
                    overlapping.setdefault(channel_id, []).append((first, last))
    maybe = [
        k for k in keys if k[0] in overlapping and any(a <= k[2] <= b for a, b in overlapping[k[0]])
    ]
    stored: set[tuple[int, str, datetime]] = set()
    if maybe:
        async with conn.cursor(row_factory=class_row(_MessageKey)) as cur:
            await cur.execute(
                _Q["stored_messages"],
                {
                    "channel_ids": [k[0] for k in maybe],
                    "message_ids": [k[1] for k in maybe],
                    "sent_ats": [k[2] for k in maybe],
                },
            )
            stored = {(k.channel_id, k.message_id, k.sent_at) for k in await cur.fetchall()}
    # In key order (sent_at first, as the staging path inserts): two writers copying
    # overlapping keys wait for each other in the same order instead of deadlocking.
    # (The keys are unique, so this order is total: the same whichever way it is computed.)
    order = sorted(range(len(keys)), key=[(k[2], k[0], k[1]) for k in keys].__getitem__)
    fresh = [i for i in order if keys[i] not in stored] if stored else order
    new_uses = [rows.uses[i] for i in fresh if rows.uses[i]]
    try:
        async with conn.transaction(), conn.cursor() as cur:  # a savepoint
            if fresh:
                await _copy_text(cur, _Q["copy_messages"], [rows.messages[i] for i in fresh])
            if new_uses:
                await _copy_text(cur, _Q["copy_emote_uses"], new_uses)
    except psycopg.errors.UniqueViolation:
        return False
    result.inserted.update([(messages[i].channel, messages[i].source) for i in fresh])
    result.emote_uses_inserted += sum(len(messages[i].emotes) for i in fresh)
    if stored:
        old_uses = [rows.uses[i] for i, key in enumerate(keys) if key in stored and rows.uses[i]]
        if old_uses:
            await _backfill_uses(conn, old_uses, result)
    return True


async def _insert_staged(
    conn: psycopg.AsyncConnection[Any],
    rows: MessageRows,
    names: dict[int, str],
    result: BatchResult,
) -> None:
    """Write the batch through the staging tables: ``COPY`` there, then
    ``INSERT … ON CONFLICT DO NOTHING`` (a key twice in the batch, a concurrent writer)."""
    async with conn.cursor() as cur:
        await _copy_text(cur, _Q["copy_staging_messages"], rows.messages)
    async with conn.cursor(row_factory=class_row(_InsertedRow)) as icur:
        await icur.execute(_Q["insert_messages"])
        inserted_here = 0
        for inserted in await icur.fetchall():
            result.inserted[(names[inserted.channel_id], inserted.source)] += inserted.inserted
            inserted_here += inserted.inserted
    emote_rows = [u for u in rows.uses if u]
    if not emote_rows:
        return
    if inserted_here == len(rows.messages):  # every message is new: its uses are too
        async with conn.cursor() as cur:
            await _copy_text(cur, _Q["copy_staging_emotes"], emote_rows)
            await cur.execute(_Q["insert_emote_uses"])
            result.emote_uses_inserted += max(cur.rowcount, 0)
        return
    await _backfill_uses(conn, emote_rows, result)


async def _backfill_uses(
    conn: psycopg.AsyncConnection[Any], emote_rows: list[str], result: BatchResult
) -> None:
    """Add the uses of messages stored before that they do not count yet (see
    backfill_emote_uses in sql/queries/collector.sql); ``emote_rows`` are COPY text rows."""
    async with conn.cursor() as cur:
        await _copy_text(cur, _Q["copy_staging_emotes"], emote_rows)
    async with conn.cursor(row_factory=class_row(_BackfillRow)) as bcur:
        await bcur.execute(_Q["backfill_emote_uses"])
        added = await bcur.fetchone()
        if added is not None:
            result.emote_uses_inserted += int(added.rows_added)
            result.emote_uses_backfilled += int(added.uses_backfilled)


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
                _Q["insert_moderation_event"],
                {
                    "at": e.at,
                    "channel_id": ids[(e.platform, e.channel)],
                    "kind": e.kind,
                    "target_user_id": e.target_user_id,
                    "target_login": e.target_login,
                    "target_message_id": e.target_message_id,
                    "duration_s": e.duration_s,
                    "event_key": e.event_key,
                    "received_at": received_default,
                    "source": e.source,
                    "extra": clean(json.dumps(e.extra, ensure_ascii=False)) if e.extra else None,
                },
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
            _Q["open_restart_gap"],
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
            _Q["open_gap"],
            {
                "channel": ids[(p.get("platform", "twitch"), gap.channel or "")],
                "at": p["at"],
                "reason": p.get("reason", ""),
                "collector": collector_id or None,
                "key": p["key"],
            },
        )
    elif gap.kind == GAP_CLOSE:
        await conn.execute(_Q["close_gap"], {"at": p["at"], "key": p["key"]})
    else:  # GAP_FILLED: what this fill brought back that we did not have
        channel = gap.channel or ""
        recovered = fill_counts.get(channel, 0) + delta.get(channel, 0)
        delta[channel] = delta.get(channel, 0) - recovered
        if p.get("key"):  # no key: the fill at start-up, which closes no gap
            await conn.execute(_Q["fill_gap"], {"recovered": recovered, "key": p["key"]})
        if gap.channel:
            result.gaps_recovered[gap.channel] = recovered
