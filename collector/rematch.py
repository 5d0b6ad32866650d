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

from chatpulse.core.aggregates import refresh_range
from chatpulse.core.db import connect
from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings
from collector.app import _emote_providers, room_resolver
from collector.emotes import EmoteProviders, EmoteSet
from collector.events import EmoteUse

__all__ = ["RematchResult", "rematch_channel"]

log = logging.getLogger(__name__)

_COLS = "sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id"

_CHUNK_SQL = """
SELECT m.sent_at, m.message_id, m.text, m.user_id,
       coalesce(u.names, '{}'), coalesce(u.ids, '{}'), coalesce(u.providers, '{}'),
       coalesce(u.counts, '{}')
FROM chat.messages m
LEFT JOIN LATERAL (
    SELECT array_agg(e.emote_name) AS names, array_agg(e.emote_id) AS ids,
           array_agg(e.provider) AS providers, array_agg(e.count) AS counts
    FROM chat.emote_uses e
    WHERE e.channel_id = m.channel_id AND e.message_id = m.message_id AND e.sent_at = m.sent_at
) u ON true
WHERE m.channel_id = %(c)s AND m.sent_at >= %(lo)s::timestamptz AND m.sent_at < %(hi)s::timestamptz
  AND m.sent_at >= %(after_t)s::timestamptz
  AND (m.sent_at, m.message_id) > (%(after_t)s::timestamptz, %(after_id)s::text)
ORDER BY m.sent_at, m.message_id
LIMIT %(n)s
"""

_STAGE_SQL = """
CREATE TEMP TABLE IF NOT EXISTS rematch_uses (
    sent_at timestamptz, channel_id integer, message_id text, emote_id text, emote_name text,
    provider text, count integer, user_id text
) ON COMMIT DELETE ROWS;
"""

_INSERT_SQL = """
WITH ins AS (
    INSERT INTO chat.emote_uses
        (sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id)
    SELECT sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id
    FROM rematch_uses s
    WHERE NOT EXISTS (
        SELECT 1 FROM chat.emote_uses u
        WHERE u.channel_id = s.channel_id AND u.message_id = s.message_id
          AND u.sent_at = s.sent_at AND u.emote_name = s.emote_name)
    ON CONFLICT DO NOTHING
    RETURNING count
)
SELECT count(*), coalesce(sum(count), 0) FROM ins
"""

# Every message of the chunk's time span whose emote_count is not the sum of its uses.
_RECONCILE_SQL = """
WITH t AS (
    SELECT m.message_id, m.sent_at, coalesce(sum(e.count), 0) AS total
    FROM chat.messages m
    LEFT JOIN chat.emote_uses e
           ON e.channel_id = m.channel_id AND e.message_id = m.message_id
          AND e.sent_at = m.sent_at
    WHERE m.channel_id = %(c)s AND m.sent_at >= %(a)s AND m.sent_at <= %(b)s
    GROUP BY m.message_id, m.sent_at, m.emote_count
    HAVING coalesce(sum(e.count), 0) <> m.emote_count
)
UPDATE chat.messages m SET emote_count = t.total
FROM t
WHERE m.channel_id = %(c)s AND m.message_id = t.message_id AND m.sent_at = t.sent_at
RETURNING m.sent_at
"""


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
        cur = await conn.execute(
            "SELECT id, platform_id FROM chat.channels WHERE platform = %s AND name = %s",
            (platform, name),
        )
        row = await cur.fetchone()
        if row is None:
            raise ConfigError(f"--channel: no {platform} channel named {name!r} in this database")
        db_id: int = row[0]
        providers = (
            emotes
            if emotes is not None
            else _emote_providers(settings, http, failure_log_level=logging.DEBUG)
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
        if pid and not row[1]:
            await conn.execute(
                "UPDATE chat.channels SET platform_id = %s WHERE id = %s AND platform_id IS NULL",
                (pid, db_id),
            )
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
    await conn.execute(_STAGE_SQL)
    while True:
        cur = await conn.execute(_CHUNK_SQL, params)
        rows = await cur.fetchall()
        if not rows:
            return
        result.messages += len(rows)
        new_rows: list[tuple[Any, ...]] = []
        for sent_at, message_id, text, user_id, names, ids, provs, counts in rows:
            for use in _new_uses(eset, text, names, ids, provs, counts):
                new_rows.append(
                    (
                        sent_at,
                        db_id,
                        message_id,
                        use.emote_id,
                        use.emote_name,
                        use.provider,
                        use.count,
                        user_id,
                    )
                )
        first, last = rows[0][0], rows[-1][0]
        async with conn.transaction(), conn.cursor() as wcur:
            if new_rows:
                async with wcur.copy(f"COPY rematch_uses ({_COLS}) FROM STDIN") as copy:
                    for new in new_rows:
                        await copy.write_row(new)
                await wcur.execute(_INSERT_SQL)
                added = await wcur.fetchone()
                if added is not None and added[0]:
                    result.rows_added += int(added[0])
                    result.uses_added += int(added[1])
                    result._touch(first)
                    result._touch(last)
            await wcur.execute(_RECONCILE_SQL, {"c": db_id, "a": first, "b": last})
            fixed = await wcur.fetchall()
            result.counts_fixed += len(fixed)
            for (at,) in fixed:
                result._touch(at)
        params["after_t"], params["after_id"] = rows[-1][0], rows[-1][1]
        if len(rows) < chunk:
            return
