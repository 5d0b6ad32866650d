"""Match third-party emotes again in messages already stored (``chatpulse emotes rematch``).

A replay of a file that carries no room id (a TwitchDownloader TXT export) stored its
messages before the channel's 7TV/BTTV/FFZ sets were known, so they count only emoji.  Once
the channel's platform id is known (``--channel-id``, the stored ``chat.channels.platform_id``,
Helix or IVR), :func:`rematch_channel` loads its sets, matches every stored message of the
range again and, in one transaction per chunk of messages:

* inserts the ``chat.emote_uses`` rows that are missing (the unique key, and "a name the message
  already counts is not counted again", make a second run add nothing);
* sets ``chat.messages.emote_count`` to the sum of the message's stored uses wherever it
  differs, so the message column and the per-emote table tell one truth.

The changed time range is then refreshed in every aggregate: on plain PostgreSQL the
statement-level triggers logged it (``0013`` logs UPDATEs of ``chat.messages``) and
``chat.refresh_aggregates()`` recomputes it; on TimescaleDB ``refresh_continuous_aggregate``
runs for the range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from psycopg.rows import class_row

from chatpulse.core.aggregates import refresh_range
from chatpulse.core.db import connect
from chatpulse.core.errors import ConfigError
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings
from collector.emotes import EmoteProviders, EmoteSet
from collector.events import EmoteUse
from collector.wiring import emote_providers, room_resolver, stored_channel

__all__ = ["RematchResult", "rematch_channel"]

log = logging.getLogger(__name__)

_Q = load_queries("collector")  # sql/queries/collector.sql


@dataclass(frozen=True, slots=True)
class _StoredMessage:
    """A stored message of the chunk, with the emote uses it already counts."""

    sent_at: datetime
    message_id: str
    text: str
    user_id: str | None
    names: list[str]
    ids: list[str]
    providers: list[str]
    counts: list[int]


@dataclass(frozen=True, slots=True)
class _Added:
    rows_added: int
    uses_added: int


@dataclass(frozen=True, slots=True)
class _Fixed:
    sent_at: datetime


@dataclass(slots=True)
class RematchResult:
    """What one rematch did."""

    channel: str
    platform_id: str | None = None
    emotes_known: int = 0  # names in the set matched against (channel and global)
    messages: int = 0  # messages read
    uses_added: int = 0  # emote uses added (sum of counts)
    rows_added: int = 0  # chat.emote_uses rows added
    counts_fixed: int = 0  # messages whose emote_count was corrected
    changed_from: datetime | None = None
    changed_to: datetime | None = None
    warnings: list[str] = field(default_factory=list)

    def _touch(self, at: datetime) -> None:
        if self.changed_from is None or at < self.changed_from:
            self.changed_from = at
        if self.changed_to is None or at > self.changed_to:
            self.changed_to = at


def _new_uses(
    eset: EmoteSet,
    text: str,
    names: list[str],
    ids: list[str],
    providers: list[str],
    counts: list[int],
) -> list[EmoteUse]:
    """The uses ``eset`` finds in ``text`` that the stored ones do not count yet."""
    native = tuple(
        EmoteUse(i, n, "twitch", c)
        for n, i, p, c in zip(names, ids, providers, counts, strict=True)
        if p == "twitch"
    )
    stored_names = set(names)
    stored_keys = set(zip(providers, ids, strict=True))
    return [
        use
        for use in eset.match(text, native)
        if use.emote_name not in stored_names and (use.provider, use.emote_id) not in stored_keys
    ]


async def rematch_channel(
    settings: Settings,
    conninfo: str,
    channel: str,
    *,
    platform: str = "twitch",
    start: datetime | None = None,
    end: datetime | None = None,
    channel_id: str | None = None,
    emotes: EmoteProviders | None = None,
    chunk: int = 5000,
) -> RematchResult:
    """Match emotes again in ``channel``'s messages of ``[start, end)``; see the module doc.

    ``emotes`` replaces the providers the settings name.  Raises :class:`ConfigError` when the
    channel is not in the database.  Never raises for provider trouble: ``warnings`` says which
    sets could not be loaded (one line).
    """
    name = channel.lstrip("#").lower()
    result = RematchResult(name)
    async with (
        httpx.AsyncClient(headers={"User-Agent": "chatpulse"}, follow_redirects=True) as http,
        await connect(conninfo, autocommit=True) as conn,
    ):
        row = await stored_channel(conn, platform, name)
        if row is None:
            raise ConfigError(f"--channel: no {platform} channel named {name!r} in this database")
        db_id = row.id
        providers = (
            emotes
            if emotes is not None
            else emote_providers(settings, http, failure_log_level=logging.DEBUG)
        )
        resolve = room_resolver(
            settings,
            conninfo,
            http,
            channel=name,
            channel_id=channel_id,
            lookup=providers is not None,
        )
        pid = await resolve(platform, name)
        result.platform_id = pid
        if pid and not row.platform_id:
            await conn.execute(_Q["set_channel_platform_id"], {"platform_id": pid, "id": db_id})
        eset = await _load_set(providers, pid, result)
        result.emotes_known = len(eset)
        await _rematch_rows(conn, db_id, eset, start, end, chunk, result)
        if result.changed_from is not None:
            await refresh_range(conn, result.changed_from, result.changed_to)
    log.info(
        "emotes rematched",
        extra={
            "channel": name,
            "messages": result.messages,
            "uses_added": result.uses_added,
            "counts_fixed": result.counts_fixed,
        },
    )
    return result


async def _load_set(
    providers: EmoteProviders | None, pid: str | None, result: RematchResult
) -> EmoteSet:
    if providers is None:
        result.warnings.append(
            f"channel emotes of #{result.channel} not loaded: emote_providers is empty "
            "(only emoji are matched)"
        )
        return EmoteSet()
    if pid is None:
        await providers.refresh_global()
        result.warnings.append(
            f"channel emotes of #{result.channel} not loaded: its platform id is unknown "
            "(pass --channel-id, or set twitch_client_id and twitch_oauth_token for Helix)"
        )
        return providers.current("")
    eset = await providers.refresh(pid)
    failed = providers.failures(pid)
    if failed:
        result.warnings.append(f"channel emotes of #{result.channel} not loaded: {failed}")
    return eset


async def _rematch_rows(
    conn: Any,
    db_id: int,
    eset: EmoteSet,
    start: datetime | None,
    end: datetime | None,
    chunk: int,
    result: RematchResult,
) -> None:
    params: dict[str, Any] = {
        "c": db_id,
        "lo": start if start is not None else "-infinity",
        "hi": end if end is not None else "infinity",
        "after_t": "-infinity",
        "after_id": "",
        "n": chunk,
    }
    await conn.execute(_Q["rematch_create_staging"])
    while True:
        async with conn.cursor(row_factory=class_row(_StoredMessage)) as cur:
            await cur.execute(_Q["rematch_chunk"], params)
            rows = await cur.fetchall()
        if not rows:
            return
        result.messages += len(rows)
        new_rows: list[tuple[Any, ...]] = []
        for m in rows:
            for use in _new_uses(eset, m.text, m.names, m.ids, m.providers, m.counts):
                new_rows.append(
                    (
                        m.sent_at,
                        db_id,
                        m.message_id,
                        use.emote_id,
                        use.emote_name,
                        use.provider,
                        use.count,
                        m.user_id,
                    )
                )
        first, last = rows[0].sent_at, rows[-1].sent_at
        async with conn.transaction():
            if new_rows:
                async with conn.cursor(row_factory=class_row(_Added)) as wcur:
                    async with wcur.copy(_Q["rematch_copy_staging"]) as copy:
                        for new in new_rows:
                            await copy.write_row(new)
                    await wcur.execute(_Q["rematch_insert_uses"])
                    added = await wcur.fetchone()
                if added is not None and added.rows_added:
                    result.rows_added += int(added.rows_added)
                    result.uses_added += int(added.uses_added)
                    result._touch(first)
                    result._touch(last)
            async with conn.cursor(row_factory=class_row(_Fixed)) as fcur:
                await fcur.execute(_Q["rematch_reconcile"], {"c": db_id, "a": first, "b": last})
                fixed = await fcur.fetchall()
            result.counts_fixed += len(fixed)
            for f in fixed:
                result._touch(f.sent_at)
        params["after_t"], params["after_id"] = rows[-1].sent_at, rows[-1].message_id
        if len(rows) < chunk:
            return
