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

import functools
import json
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

__all__ = [
    "GAP_CLOSE",
    "GAP_FILLED",
    "GAP_KINDS",
    "GAP_OPEN",
    "BatchResult",
    "write_events",
]

_Q = load_queries("collector")  # sql/queries/collector.sql

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


@functools.lru_cache(maxsize=4096)
def _badges_json_cached(items: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(items))


def _badges_json(badges: dict[str, str]) -> str:
    # A channel has a few dozen badge combinations; serialise each once.
    return _badges_json_cached(tuple(badges.items())) if badges else "{}"


@functools.lru_cache(maxsize=4096)
def _extra_json_cached(items: tuple[tuple[str, str], ...]) -> str | None:
    return _clean(json.dumps(dict(items), ensure_ascii=False))


def _extra_json(extra: dict[str, str]) -> str | None:
    # Most lines' extra is a colour and a flag or two: a few thousand combinations at most.
    return _extra_json_cached(tuple(extra.items())) if extra else None


def _clean(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; one such character must not poison a batch.
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


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
    rows: list[tuple[Any, ...]] = []
    uses: list[list[tuple[Any, ...]]] = []  # each message's emote-use rows
    for m in messages:
        channel_id = ids[(m.platform, m.channel)]
        result.staged[(m.channel, m.source)] += 1
        emote_count = 0
        message_uses: list[tuple[Any, ...]] = []
        for emote in m.emotes:
            emote_count += emote.count
            message_uses.append(
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
        uses.append(message_uses)
        rows.append(
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
                _extra_json(m.extra),
                m.received_at or received_default,
                m.source,
            )
        )
        if result.min_sent_at is None or m.sent_at < result.min_sent_at:
            result.min_sent_at = m.sent_at
        if result.max_sent_at is None or m.sent_at > result.max_sent_at:
            result.max_sent_at = m.sent_at
    if not await _copy_new(conn, messages, rows, uses, result):
        await _insert_staged(conn, rows, uses, names, result)


@dataclass(frozen=True, slots=True)
class _Overlap:
    overlaps: bool


@dataclass(frozen=True, slots=True)
class _MessageKey:
    channel_id: int
    message_id: str
    sent_at: datetime


async def _copy_new(
    conn: psycopg.AsyncConnection[Any],
    messages: Sequence[ChatMessage],
    rows: list[tuple[Any, ...]],
    uses: list[list[tuple[Any, ...]]],
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
    keys = [(r[1], r[2], r[0]) for r in rows]  # the unique key: channel_id, message_id, sent_at
    if len(set(keys)) != len(keys):
        return False
    # Chat comes in time order: when a channel holds nothing sent at or after the batch's first
    # message, none of the batch's messages can be stored, and only the channels that do are
    # looked up message by message (one index probe per channel for the common case).
    since: dict[int, datetime] = {}
    for channel_id, _, sent_at in keys:
        first = since.get(channel_id)
        if first is None or sent_at < first:
            since[channel_id] = sent_at
    overlapping: set[int] = set()
    async with conn.cursor(row_factory=class_row(_Overlap)) as cur:
        for channel_id, first in since.items():
            await cur.execute(_Q["channel_overlaps"], {"channel_id": channel_id, "since": first})
            row = await cur.fetchone()
            if row is not None and row.overlaps:
                overlapping.add(channel_id)
    maybe = [k for k in keys if k[0] in overlapping]
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
    fresh = sorted(
        (i for i, key in enumerate(keys) if key not in stored),
        key=lambda i: (keys[i][2], keys[i][0], keys[i][1]),
    )
    new_uses = [use for i in fresh for use in uses[i]]
    try:
        async with conn.transaction(), conn.cursor() as cur:  # a savepoint
            if fresh:
                async with cur.copy(_Q["copy_messages"]) as copy:
                    for i in fresh:
                        await copy.write_row(rows[i])
            if new_uses:
                async with cur.copy(_Q["copy_emote_uses"]) as copy:
                    for use in new_uses:
                        await copy.write_row(use)
    except psycopg.errors.UniqueViolation:
        return False
    for i in fresh:
        result.inserted[(messages[i].channel, messages[i].source)] += 1
    result.emote_uses_inserted += len(new_uses)
    if stored:
        old_uses = [use for i, key in enumerate(keys) if key in stored for use in uses[i]]
        if old_uses:
            await _backfill_uses(conn, old_uses, result)
    return True


async def _insert_staged(
    conn: psycopg.AsyncConnection[Any],
    rows: list[tuple[Any, ...]],
    uses: list[list[tuple[Any, ...]]],
    names: dict[int, str],
    result: BatchResult,
) -> None:
    """Write the batch through the staging tables: ``COPY`` there, then
    ``INSERT … ON CONFLICT DO NOTHING`` (a key twice in the batch, a concurrent writer)."""
    async with conn.cursor() as cur, cur.copy(_Q["copy_staging_messages"]) as copy:
        for row in rows:
            await copy.write_row(row)
    async with conn.cursor(row_factory=class_row(_InsertedRow)) as icur:
        await icur.execute(_Q["insert_messages"])
        inserted_here = 0
        for inserted in await icur.fetchall():
            result.inserted[(names[inserted.channel_id], inserted.source)] += inserted.inserted
            inserted_here += inserted.inserted
    emote_rows = [use for message_uses in uses for use in message_uses]
    if not emote_rows:
        return
    if inserted_here == len(rows):  # every message is new: its uses are too
        async with conn.cursor() as cur:
            async with cur.copy(_Q["copy_staging_emotes"]) as copy:
                for emote_row in emote_rows:
                    await copy.write_row(emote_row)
            await cur.execute(_Q["insert_emote_uses"])
            result.emote_uses_inserted += max(cur.rowcount, 0)
        return
    await _backfill_uses(conn, emote_rows, result)


async def _backfill_uses(
    conn: psycopg.AsyncConnection[Any], emote_rows: list[tuple[Any, ...]], result: BatchResult
) -> None:
    """Add the uses of messages stored before that they do not count yet (see
    backfill_emote_uses in sql/queries/collector.sql)."""
    async with conn.cursor() as cur, cur.copy(_Q["copy_staging_emotes"]) as copy:
        for emote_row in emote_rows:
            await copy.write_row(emote_row)
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
                    "extra": _clean(json.dumps(e.extra, ensure_ascii=False)) if e.extra else None,
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
