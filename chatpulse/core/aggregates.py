"""Keep the aggregate relations current on either backend.

On TimescaleDB the continuous aggregates' policies refresh the last 7 days by themselves; a
command that loaded older rows (a replay of last month) calls :func:`refresh_range` for the
range it touched.  On plain PostgreSQL :func:`refresh_pending` recomputes every bucket that the
invalidation log says changed; the scorer loop calls it periodically.

Chatters are counted by ``chat.chatter_key(user_id, user_login, user_name)`` (sql/0012): the user
id when the source gave one, else the login in lower case, else the display name in lower case.
Emote uses are the sum of ``chat.messages.emote_count``; a command that changes stored rows
(an emote rematch that adds ``chat.emote_uses`` rows and updates ``emote_count``) calls
:func:`refresh_range` for the time range it changed once its transaction has committed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import tenacity
from psycopg.rows import scalar_row

from chatpulse.core.contract import SUBSCRIPTION_KINDS
from chatpulse.core.queries import load_queries

__all__ = [
    "CONTINUOUS_AGGREGATES",
    "SUBSCRIPTION_KINDS",
    "backend_of",
    "refresh_pending",
    "refresh_range",
]

log = logging.getLogger(__name__)

_Q = load_queries("core")  # sql/queries/core.sql

#: In refresh order: a hierarchical aggregate comes after the one it reads.
CONTINUOUS_AGGREGATES = (
    "chatters_1m",
    "chatters_1h",
    "chatters_6h",
    "chatters_1d",
    "activity_1m",
    "activity_1h",
    "sentiment_1m",
    "emotes_10s",
    "emotes_1m",
)


_HOUR = timedelta(hours=1)
_REFRESH_WIDTH = {"chatters_6h": timedelta(hours=6), "chatters_1d": timedelta(days=1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # hours, 6-hour blocks and days align with it


def _floor(moment: datetime, width: timedelta) -> datetime:
    return moment - (moment - _EPOCH) % width


async def backend_of(conn: psycopg.AsyncConnection[Any]) -> str:
    """Return the backend the schema was created for: ``timescaledb`` or ``postgres``."""
    cur = conn.cursor(row_factory=scalar_row)
    await cur.execute(_Q["schema_backend"])
    backend = await cur.fetchone()
    return str(backend) if backend is not None else "postgres"


async def refresh_pending(conn: psycopg.AsyncConnection[Any]) -> int:
    """Plain PostgreSQL: recompute the buckets changed since the last call; returns pieces.

    On TimescaleDB this does nothing (the refresh policies do it) and returns 0.  The
    connection must not be inside a transaction on TimescaleDB.
    """
    if await backend_of(conn) == "timescaledb":
        return 0
    cur = conn.cursor(row_factory=scalar_row)
    await cur.execute(_Q["refresh_aggregates"])
    pieces = await cur.fetchone()
    if not conn.autocommit:
        await conn.commit()
    return int(pieces or 0)


async def refresh_range(
    conn: psycopg.AsyncConnection[Any], start: datetime | None, end: datetime | None
) -> None:
    """Bring every aggregate up to date for ``[start, end)`` (``None`` = unbounded).

    TimescaleDB: ``refresh_continuous_aggregate`` cannot run inside a transaction block, so
    ``conn`` must be in autocommit mode.  Plain PostgreSQL: the invalidation log already knows
    the range; this is :func:`refresh_pending`.
    """
    if await backend_of(conn) != "timescaledb":
        await refresh_pending(conn)
        return
    if not conn.autocommit:
        raise ValueError("refresh_range needs an autocommit connection on TimescaleDB")
    for view in CONTINUOUS_AGGREGATES:
        # A refresh only recomputes buckets wholly inside its window: widen it to this view's
        # bucket (whole hours, or the 6-hour/day blocks of the coarser chatter aggregates).
        width = _REFRESH_WIDTH.get(view, _HOUR)
        lo = None if start is None else _floor(start, width)
        hi = None if end is None else _floor(end, width) + width
        # A refresh policy's job may be refreshing the same aggregate right now; TimescaleDB
        # then refuses ("due to a concurrent refresh") instead of waiting.  Wait and retry.
        async for attempt in tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(psycopg.errors.LockNotAvailable),
            wait=tenacity.wait_random_exponential(multiplier=0.2, max=5),
            stop=tenacity.stop_after_delay(120),
            reraise=True,
        ):
            with attempt:
                await conn.execute(
                    _Q["refresh_continuous_aggregate"], {"view": f"chat.{view}", "lo": lo, "hi": hi}
                )
    log.info("aggregates refreshed", extra={"start": start, "end": end})
