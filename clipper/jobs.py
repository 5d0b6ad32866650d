"""The clip queue: ``chat.clips`` rows, written by the API and claimed by workers.

The database is the queue (STYLE.md 4).  :func:`claim_job` takes one due job with
``FOR UPDATE SKIP LOCKED`` so that workers never share one; a running job whose heartbeat is
older than ``stall_after_s`` is taken again (its worker died).  Every later write names the
worker that holds the job, so a worker that lost its job (it stalled and another took over)
cannot finish it a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

__all__ = [
    "AlertJob",
    "ClipRow",
    "claim_job",
    "enqueue_alert_clips",
    "enqueue_clip",
    "fail_job",
    "find_vod",
    "finish_job",
    "get_clip",
    "heartbeat",
    "latest_hype_moment",
    "list_clips",
    "queue_stats",
    "register_vod",
    "release_job",
]


@dataclass(slots=True)
class ClipRow:
    """One ``chat.clips`` row as the API and the worker see it."""

    id: int
    dedup_key: str
    channel: str | None
    channel_id: int | None
    requested_at: datetime
    trigger: str
    start_at: datetime
    end_at: datetime
    status: str
    attempts: int
    location: str | None
    thumbnail: str | None
    duration_s: float | None
    error: str | None
    finished_at: datetime | None
    not_before: datetime
    heartbeat_at: datetime | None
    worker: str | None
    hype_moment_id: int | None
    reencode: bool
    media: str | None
    request: dict[str, Any] | None


_COLS = (
    "id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status, "
    "attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at, "
    "worker, hype_moment_id, reencode, media, request"
)

_ENQUEUE = f"""
INSERT INTO chat.clips (dedup_key, channel, channel_id, trigger, start_at, end_at, not_before,
                        hype_moment_id, request, reencode)
VALUES (%(dedup_key)s, %(channel)s,
        (SELECT id FROM chat.channels WHERE name = %(channel)s ORDER BY id LIMIT 1),
        %(trigger)s, %(start_at)s, %(end_at)s, %(end_at)s, %(hype_moment_id)s, %(request)s,
        %(reencode)s)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING {_COLS}
"""  # noqa: S608 (a constant column list)

# One statement for a whole webhook delivery: the hype-moment lookup, the window, the insert and
# the existing rows of repeated alerts.  A delivery under a burst of alerts used to make four
# round trips per alert (BEGIN, lookup, insert, COMMIT); each waited its turn on the API's busy
# event loop.  ``peak_at`` is written as Python's ``isoformat`` with ``Z`` writes it (the
# worker and clients read it back with ``datetime.fromisoformat``).
_ENQUEUE_ALERTS = f"""
WITH a AS (
    SELECT * FROM unnest(%(keys)s::text[], %(channels)s::text[], %(starts)s::timestamptz[],
                         %(requests)s::jsonb[])
        WITH ORDINALITY AS a(dedup_key, channel, starts_at, request, ord)
), p AS (
    SELECT a.*, h.id AS hype_id, coalesce(h.peak_at, a.starts_at) AS peak
    FROM a LEFT JOIN LATERAL (
        SELECT h.id, h.peak_at
        FROM chat.hype_moments h JOIN chat.channels c ON c.id = h.channel_id
        WHERE c.name = a.channel AND h.peak_at <= a.starts_at
          AND h.peak_at >= a.starts_at - make_interval(secs => %(lookback)s)
        ORDER BY h.peak_at DESC, h.id DESC
        LIMIT 1) h ON true
), w AS (
    SELECT p.*, p.peak AT TIME ZONE 'UTC' AS peak_utc,
           p.peak - make_interval(secs => %(pre)s) AS start_at,
           p.peak + make_interval(secs => %(post)s) AS end_at
    FROM p
), ins AS (
    INSERT INTO chat.clips (dedup_key, channel, channel_id, trigger, start_at, end_at,
                            not_before, hype_moment_id, request, reencode)
    SELECT w.dedup_key, w.channel,
           (SELECT id FROM chat.channels WHERE name = w.channel ORDER BY id LIMIT 1),
           'alert', w.start_at, w.end_at, w.end_at, w.hype_id,
           w.request || jsonb_build_object(
               'peak_at',
               to_char(w.peak_utc, 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN extract(microseconds FROM w.peak_utc)::bigint %% 1000000 = 0
                       THEN '' ELSE to_char(w.peak_utc, '.US') END
               || 'Z'),
           %(reencode)s
    FROM w ORDER BY w.ord
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING {_COLS}
)
SELECT {_COLS}, true AS created FROM ins
UNION ALL
SELECT {_COLS}, false AS created FROM chat.clips
WHERE dedup_key = ANY(%(keys)s::text[]) AND dedup_key NOT IN (SELECT dedup_key FROM ins)
"""  # noqa: S608 (a constant column list)

# A stalled job (its worker stopped heartbeating) is claimed like a queued one; the error
# column keeps who lost it.
_CLAIM = f"""
UPDATE chat.clips
SET status = 'running', attempts = attempts + 1, heartbeat_at = now(), worker = %(worker)s,
    error = CASE WHEN status = 'running' THEN 'stalled on worker ' || coalesce(worker, '?')
                 ELSE error END
WHERE id = (
    SELECT id FROM chat.clips
    WHERE (status = 'queued' AND not_before <= now())
       OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => %(stall)s))
    ORDER BY not_before, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING {_COLS}
"""  # noqa: S608 (a constant column list)

_HEARTBEAT = """
UPDATE chat.clips SET heartbeat_at = now()
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running'
"""

_FINISH = """
UPDATE chat.clips
SET status = 'done', location = %(location)s, thumbnail = %(thumbnail)s,
    duration_s = %(duration_s)s, media = %(media)s, error = NULL, finished_at = now(),
    heartbeat_at = now()
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running'
"""

_FAIL = """
UPDATE chat.clips
SET status = CASE WHEN %(final)s THEN 'failed' ELSE 'queued' END,
    error = %(error)s,
    not_before = now() + make_interval(secs => %(delay)s),
    finished_at = CASE WHEN %(final)s THEN now() END,
    heartbeat_at = NULL
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running'
"""

# Not the job's fault (media not recorded yet, worker shutting down): no attempt is used.
_RELEASE = """
UPDATE chat.clips
SET status = 'queued', attempts = greatest(attempts - 1, 0), error = %(error)s,
    not_before = now() + make_interval(secs => %(delay)s), heartbeat_at = NULL
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running'
"""

_HYPE = """
SELECT h.id, h.peak_at
FROM chat.hype_moments h JOIN chat.channels c ON c.id = h.channel_id
WHERE c.name = %(channel)s AND h.peak_at <= %(at)s
  AND h.peak_at >= %(at)s - make_interval(secs => %(lookback)s)
ORDER BY h.peak_at DESC, h.id DESC
LIMIT 1
"""

_VOD = """
SELECT v.location, v.start_at, v.duration_s
FROM chat.vods v JOIN chat.channels c ON c.id = v.channel_id
WHERE c.name = %(channel)s AND v.start_at <= %(end)s
  AND (v.duration_s IS NULL OR v.start_at + make_interval(secs => v.duration_s) > %(start)s)
ORDER BY v.start_at DESC
LIMIT 1
"""


async def enqueue_clip(
    conn: AsyncConnection[Any],
    *,
    dedup_key: str,
    channel: str,
    trigger: str,
    start_at: datetime,
    end_at: datetime,
    hype_moment_id: int | None = None,
    request: dict[str, Any] | None = None,
    reencode: bool = False,
) -> tuple[ClipRow, bool]:
    """Queue a clip unless one with ``dedup_key`` exists; returns (row, created).

    The job becomes due at ``end_at`` (its end must be recorded first).  Commits.
    """
    params = {
        "dedup_key": dedup_key,
        "channel": channel,
        "trigger": trigger,
        "start_at": start_at,
        "end_at": end_at,
        "hype_moment_id": hype_moment_id,
        "request": Jsonb(request) if request is not None else None,
        "reencode": reencode,
    }
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(_ENQUEUE, params)
        row = await cur.fetchone()
        if row is not None:
            await conn.commit()
            return row, True
        await cur.execute(
            f"SELECT {_COLS} FROM chat.clips WHERE dedup_key = %s",  # noqa: S608
            (dedup_key,),
        )
        existing = await cur.fetchone()
    await conn.commit()
    if existing is None:  # deleted between the two statements: vanishingly rare, say so
        raise LookupError(f"clip {dedup_key} vanished while queueing")
    return existing, False


@dataclass(frozen=True, slots=True)
class AlertJob:
    """One firing alert to queue: its clip key, channel, ``startsAt`` and request record."""

    dedup_key: str
    channel: str
    starts_at: datetime
    request: dict[str, Any]


async def enqueue_alert_clips(
    conn: AsyncConnection[Any],
    alerts: Sequence[AlertJob],
    *,
    pre_roll_s: float,
    post_roll_s: float,
    lookback_s: float,
    reencode: bool,
) -> list[tuple[ClipRow, bool]]:
    """Queue one clip per alert unless its ``dedup_key`` exists; (row, created) per alert.

    Each clip is cut around the channel's latest hype moment that peaked at or before the
    alert's ``starts_at`` (within ``lookback_s``), else around ``starts_at``, from
    ``pre_roll_s`` before to ``post_roll_s`` after; ``peak_at`` is added to its request record.
    It becomes due at its end.  An alert repeated within ``alerts`` is created once, later
    ones are duplicates.  One statement (all or nothing); commits unless ``conn`` is in
    autocommit mode, where the statement commits itself.  Raises ValueError when
    ``pre_roll_s + post_roll_s`` is not positive.
    """
    if pre_roll_s + post_roll_s <= 0:
        raise ValueError("pre-roll plus post-roll must be positive")
    if not alerts:
        return []
    params = {
        "keys": [a.dedup_key for a in alerts],
        "channels": [a.channel for a in alerts],
        "starts": [a.starts_at for a in alerts],
        "requests": [Jsonb(a.request) for a in alerts],
        "lookback": lookback_s,
        "pre": pre_roll_s,
        "post": post_roll_s,
        "reencode": reencode,
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ENQUEUE_ALERTS, params)
        rows = await cur.fetchall()
        by_key = {r["dedup_key"]: r for r in rows}
        missing = [a.dedup_key for a in alerts if a.dedup_key not in by_key]
        if missing:
            # Another delivery of the same alert committed after this statement's snapshot
            # was taken: ON CONFLICT skipped the row, and only a new statement sees it.
            await cur.execute(
                f"SELECT {_COLS}, false AS created FROM chat.clips "  # noqa: S608
                "WHERE dedup_key = ANY(%s::text[])",
                (missing,),
            )
            by_key.update((r["dedup_key"], r) for r in await cur.fetchall())
    if not conn.autocommit:
        await conn.commit()
    result: list[tuple[ClipRow, bool]] = []
    reported: set[str] = set()
    for a in alerts:
        r = by_key.get(a.dedup_key)
        if r is None:  # deleted between the two statements: vanishingly rare, say so
            raise LookupError(f"clip {a.dedup_key} vanished while queueing")
        fields = {k: v for k, v in r.items() if k != "created"}
        result.append((ClipRow(**fields), bool(r["created"]) and a.dedup_key not in reported))
        reported.add(a.dedup_key)
    return result


async def latest_hype_moment(
    conn: AsyncConnection[Any], channel: str, at: datetime, lookback_s: float
) -> tuple[int, datetime] | None:
    """The (id, peak_at) of the channel's latest hype moment peaking at or before ``at``."""
    cur = await conn.execute(_HYPE, {"channel": channel, "at": at, "lookback": lookback_s})
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else None


async def claim_job(
    conn: AsyncConnection[Any], worker: str, stall_after_s: float
) -> ClipRow | None:
    """Claim one due (or stalled) job for ``worker`` and commit; None when there is none."""
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(_CLAIM, {"worker": worker, "stall": stall_after_s})
        row = await cur.fetchone()
    await conn.commit()
    return row


async def _update(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> bool:
    cur = await conn.execute(query, params)
    await conn.commit()
    return cur.rowcount == 1


async def heartbeat(conn: AsyncConnection[Any], job_id: int, worker: str) -> bool:
    """Refresh the job's heartbeat; False when ``worker`` no longer holds it."""
    return await _update(conn, _HEARTBEAT, {"id": job_id, "worker": worker})


async def finish_job(
    conn: AsyncConnection[Any],
    job_id: int,
    worker: str,
    *,
    location: str,
    thumbnail: str | None,
    duration_s: float,
    media: str,
) -> bool:
    """Mark the job done; False when ``worker`` lost it (another worker finishes it)."""
    return await _update(
        conn,
        _FINISH,
        {
            "id": job_id,
            "worker": worker,
            "location": location,
            "thumbnail": thumbnail,
            "duration_s": duration_s,
            "media": media,
        },
    )


async def fail_job(
    conn: AsyncConnection[Any],
    job_id: int,
    worker: str,
    error: str,
    *,
    final: bool,
    delay_s: float = 0.0,
) -> bool:
    """Record a failed attempt: queued again after ``delay_s``, or failed for good."""
    return await _update(
        conn,
        _FAIL,
        {"id": job_id, "worker": worker, "error": error[:2000], "final": final, "delay": delay_s},
    )


async def release_job(
    conn: AsyncConnection[Any], job_id: int, worker: str, reason: str, delay_s: float
) -> bool:
    """Put the job back without using an attempt (media not ready, shutdown)."""
    return await _update(
        conn, _RELEASE, {"id": job_id, "worker": worker, "error": reason, "delay": delay_s}
    )


async def get_clip(conn: AsyncConnection[Any], clip_id: int) -> ClipRow | None:
    """One clip by id, or None."""
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(f"SELECT {_COLS} FROM chat.clips WHERE id = %s", (clip_id,))  # noqa: S608
        return await cur.fetchone()


async def list_clips(
    conn: AsyncConnection[Any],
    *,
    channel: str | None = None,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[ClipRow]:
    """Clips, newest first, optionally of one channel and/or status; ``before_id`` pages."""
    query = f"""
    SELECT {_COLS} FROM chat.clips
    WHERE (%(channel)s::text IS NULL OR channel = %(channel)s)
      AND (%(status)s::text IS NULL OR status = %(status)s)
      AND (%(before)s::bigint IS NULL OR id < %(before)s)
    ORDER BY id DESC LIMIT %(limit)s
    """  # noqa: S608 (a constant column list)
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(
            query, {"channel": channel, "status": status, "before": before_id, "limit": limit}
        )
        return await cur.fetchall()


async def queue_stats(conn: AsyncConnection[Any]) -> tuple[dict[str, int], int]:
    """(clips per status, jobs due now) for the metrics."""
    cur = await conn.execute("SELECT status, count(*) FROM chat.clips GROUP BY status")
    by_status = {str(s): int(n) for s, n in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT count(*) FROM chat.clips WHERE status = 'queued' AND not_before <= now()"
    )
    row = await cur.fetchone()
    return by_status, int(row[0]) if row else 0


async def register_vod(
    conn: AsyncConnection[Any],
    *,
    channel: str,
    platform: str,
    location: str,
    start_at: datetime,
    duration_s: float | None,
) -> int:
    """Register (or update) a VOD of ``channel``, creating the channel row if needed."""
    cur = await conn.execute(
        "INSERT INTO chat.channels (platform, name) VALUES (%s, %s) "
        "ON CONFLICT (platform, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (platform, channel),
    )
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(
        "INSERT INTO chat.vods (channel_id, location, start_at, duration_s) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (channel_id, location) DO UPDATE "
        "SET start_at = EXCLUDED.start_at, duration_s = EXCLUDED.duration_s RETURNING id",
        (row[0], location, start_at, duration_s),
    )
    vod = await cur.fetchone()
    await conn.commit()
    assert vod is not None
    return int(vod[0])


async def find_vod(
    conn: AsyncConnection[Any], channel: str, start: datetime, end: datetime
) -> tuple[str, datetime, float | None] | None:
    """The newest VOD of ``channel`` overlapping ``[start, end)``: (location, start, duration)."""
    cur = await conn.execute(_VOD, {"channel": channel, "start": start, "end": end})
    row = await cur.fetchone()
    await conn.commit()
    return (str(row[0]), row[1], row[2]) if row else None
