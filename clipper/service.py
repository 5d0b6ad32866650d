"""What the API does with a request, apart from HTTP: window a clip and queue it.

Handlers in :mod:`clipper.api.routes` stay thin and call these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from clipper.config import ClipperConfig
from clipper.jobs import AlertJob, ClipRow, enqueue_alert_clips, enqueue_clip
from clipper.webhook import GrafanaWebhook, firing_clip_requests

__all__ = ["QueuedAlerts", "manual_dedup_key", "queue_alert_clips", "queue_manual_clip"]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class QueuedAlerts:
    """The outcome of one webhook delivery."""

    queued: list[ClipRow] = field(default_factory=list)
    duplicates: list[ClipRow] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)


async def queue_alert_clips(
    pool: AsyncConnectionPool, config: ClipperConfig, payload: GrafanaWebhook
) -> QueuedAlerts:
    """Queue one clip per firing alert with a ``channel`` label (idempotent per alert).

    The clip is cut around the channel's latest hype moment that peaked at or before the
    alert's ``startsAt`` (within ``hype_lookback_s``), else around ``startsAt``.
    Raises :class:`~chatpulse.core.errors.WebhookError` 422 for an invalid channel label.
    """
    requests, ignored = firing_clip_requests(payload)
    result = QueuedAlerts(ignored=ignored)
    if not requests:
        return result
    alerts = [
        AlertJob(
            dedup_key=req.dedup_key,
            channel=req.channel,
            starts_at=req.starts_at,
            request={
                "alertname": req.alert.labels.get("alertname"),
                "fingerprint": req.alert.fingerprint,
                "starts_at": _iso(req.alert.startsAt),
                "labels": req.alert.labels,
                "generator_url": req.alert.generatorURL,
                "receiver": payload.receiver,
            },
        )
        for req in requests
    ]
    async with pool.connection() as conn, _autocommit(conn):
        rows = await enqueue_alert_clips(
            conn,
            alerts,
            pre_roll_s=config.pre_roll_s,
            post_roll_s=config.post_roll_s,
            lookback_s=config.hype_lookback_s,
            reencode=config.reencode,
        )
    for row, created in rows:
        (result.queued if created else result.duplicates).append(row)
    return result


@asynccontextmanager
async def _autocommit(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    # One statement needs no BEGIN and COMMIT: two round trips fewer per delivery.  The pool's
    # connections are shared, so the mode is put back before the connection returns.
    if conn.autocommit:
        yield
        return
    await conn.set_autocommit(True)
    try:
        yield
    finally:
        if not conn.closed:
            await conn.set_autocommit(False)


def manual_dedup_key(channel: str, start: datetime, end: datetime, reencode: bool) -> str:
    """The same manual request twice is one clip."""
    mode = "reencode" if reencode else "copy"
    return f"manual:{channel}:{_iso(start)}:{_iso(end)}:{mode}"


async def queue_manual_clip(
    pool: AsyncConnectionPool,
    *,
    channel: str,
    start: datetime,
    end: datetime,
    peak: datetime | None,
    reencode: bool,
    extra: dict[str, Any] | None = None,
) -> tuple[ClipRow, bool]:
    """Queue a manual clip of ``[start, end)``; returns (row, created)."""
    async with pool.connection() as conn:
        return await enqueue_clip(
            conn,
            dedup_key=manual_dedup_key(channel, start, end, reencode),
            channel=channel,
            trigger="manual",
            start_at=start,
            end_at=end,
            request={**(extra or {}), **({"peak_at": _iso(peak)} if peak else {})},
            reencode=reencode,
        )
