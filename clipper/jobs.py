"""The clip queue: ``chat.clips`` rows, written by the API and claimed by workers.

The database is the queue (docs/architecture.md, "The clip queue").  :func:`claim_job` takes one due job with
``FOR UPDATE SKIP LOCKED`` so that workers never share one; a running job whose heartbeat is
older than ``stall_after_s`` is taken again (its worker died).  Every later write names the
worker that holds the job, so a worker that lost its job (it stalled and another took over)
cannot finish it a second time.

The statements are named queries in ``sql/queries/clipper.sql``; rows come back as the
dataclasses below (psycopg ``class_row``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from chatpulse.core.queries import load_queries

__all__ = [
    "AlertJob",
    "ClipRow",
    "HypeRef",
    "VodRow",
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
    "pending_jobs",
    "ping",
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


@dataclass(slots=True)
class _EnqueuedRow(ClipRow):
    """A ``chat.clips`` row from ``enqueue_alert_clips``: ``created`` when this call inserted it."""

    created: bool


@dataclass(frozen=True, slots=True)
class HypeRef:
    """A hype moment a clip is cut around: its ``chat.hype_moments`` id and peak time."""

    id: int
    peak_at: datetime


@dataclass(frozen=True, slots=True)
class VodRow:
    """A registered VOD (``chat.vods``): where it is, when it starts, how long (None: unknown)."""

    location: str
    start_at: datetime
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class _StatusCount:
    status: str
    clips: int


_Q = load_queries("clipper")


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
        await cur.execute(_Q["enqueue_clip"], params)
        row = await cur.fetchone()
        if row is not None:
            await conn.commit()
            return row, True
        await cur.execute(_Q["get_clip_by_key"], {"dedup_key": dedup_key})
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
    async with conn.cursor(row_factory=class_row(_EnqueuedRow)) as cur:
        await cur.execute(_Q["enqueue_alert_clips"], params)
        by_key = {r.dedup_key: r for r in await cur.fetchall()}
        missing = [a.dedup_key for a in alerts if a.dedup_key not in by_key]
        if missing:
            # Another delivery of the same alert committed after this statement's snapshot
            # was taken: ON CONFLICT skipped the row, and only a new statement sees it.
            await cur.execute(_Q["clips_by_keys"], {"keys": missing})
            by_key.update((r.dedup_key, r) for r in await cur.fetchall())
    if not conn.autocommit:
        await conn.commit()
    result: list[tuple[ClipRow, bool]] = []
    reported: set[str] = set()
    for a in alerts:
        r = by_key.get(a.dedup_key)
        if r is None:  # deleted between the two statements: vanishingly rare, say so
            raise LookupError(f"clip {a.dedup_key} vanished while queueing")
        fields = {k: getattr(r, k) for k in ClipRow.__dataclass_fields__}
        result.append((ClipRow(**fields), r.created and a.dedup_key not in reported))
        reported.add(a.dedup_key)
    return result


async def latest_hype_moment(
    conn: AsyncConnection[Any], channel: str, at: datetime, lookback_s: float
) -> HypeRef | None:
    """The channel's latest hype moment peaking at or before ``at`` (within ``lookback_s``)."""
    async with conn.cursor(row_factory=class_row(HypeRef)) as cur:
        await cur.execute(
            _Q["latest_hype_moment"], {"channel": channel, "at": at, "lookback": lookback_s}
        )
        return await cur.fetchone()


async def claim_job(
    conn: AsyncConnection[Any], worker: str, stall_after_s: float
) -> ClipRow | None:
    """Claim one due (or stalled) job for ``worker`` and commit; None when there is none."""
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(_Q["claim_job"], {"worker": worker, "stall": stall_after_s})
        row = await cur.fetchone()
    await conn.commit()
    return row


async def _update(conn: AsyncConnection[Any], name: str, params: dict[str, Any]) -> bool:
    cur = await conn.execute(_Q[name], params)
    await conn.commit()
    return cur.rowcount == 1


async def heartbeat(conn: AsyncConnection[Any], job_id: int, worker: str) -> bool:
    """Refresh the job's heartbeat; False when ``worker`` no longer holds it."""
    return await _update(conn, "heartbeat", {"id": job_id, "worker": worker})


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
        "finish_job",
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
        "fail_job",
        {"id": job_id, "worker": worker, "error": error[:2000], "final": final, "delay": delay_s},
    )


async def release_job(
    conn: AsyncConnection[Any], job_id: int, worker: str, reason: str, delay_s: float
) -> bool:
    """Put the job back without using an attempt (media not ready, shutdown)."""
    return await _update(
        conn, "release_job", {"id": job_id, "worker": worker, "error": reason, "delay": delay_s}
    )


async def get_clip(conn: AsyncConnection[Any], clip_id: int) -> ClipRow | None:
    """One clip by id, or None."""
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(_Q["get_clip"], {"id": clip_id})
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
    async with conn.cursor(row_factory=class_row(ClipRow)) as cur:
        await cur.execute(
            _Q["list_clips"],
            {"channel": channel, "status": status, "before": before_id, "limit": limit},
        )
        return await cur.fetchall()


async def queue_stats(conn: AsyncConnection[Any]) -> tuple[dict[str, int], int]:
    """(clips per status, jobs due now) for the metrics."""
    async with conn.cursor(row_factory=class_row(_StatusCount)) as cur:
        await cur.execute(_Q["clips_per_status"])
        by_status = {r.status: int(r.clips) for r in await cur.fetchall()}
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(_Q["jobs_due"])
        due = await cur.fetchone()
    return by_status, int(due or 0)


async def ping(conn: AsyncConnection[Any]) -> None:
    """Raise when the database does not answer."""
    await conn.execute(_Q["ping"])


async def pending_jobs(conn: AsyncConnection[Any]) -> int:
    """How many jobs are queued or running (due or not)."""
    async with conn.cursor(row_factory=scalar_row) as cur:
        await cur.execute(_Q["jobs_pending"])
        return int(await cur.fetchone() or 0)


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
    cur = await conn.execute(_Q["upsert_channel"], {"platform": platform, "name": channel})
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(
        _Q["upsert_vod"],
        {
            "channel_id": row[0],
            "location": location,
            "start_at": start_at,
            "duration_s": duration_s,
        },
    )
    vod = await cur.fetchone()
    await conn.commit()
    assert vod is not None
    return int(vod[0])


async def find_vod(
    conn: AsyncConnection[Any], channel: str, start: datetime, end: datetime
) -> VodRow | None:
    """The newest VOD of ``channel`` overlapping ``[start, end)``, or None."""
    async with conn.cursor(row_factory=class_row(VodRow)) as cur:
        await cur.execute(_Q["find_vod"], {"channel": channel, "start": start, "end": end})
        row = await cur.fetchone()
    await conn.commit()
    return row
