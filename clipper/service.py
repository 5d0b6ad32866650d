"""What the API does with a request, apart from HTTP: window a clip and queue it.

Handlers in :mod:`clipper.api.routes` stay thin and call these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from clipper.config import ClipperConfig
from clipper.jobs import ClipRow, enqueue_clip, latest_hype_moment
from clipper.segments import clip_window
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
    Raises :class:`~clipper.errors.WebhookError` 422 for an invalid channel label.
    """
    requests, ignored = firing_clip_requests(payload)
    result = QueuedAlerts(ignored=ignored)
    async with pool.connection() as conn:
        for req in requests:
            hype = await latest_hype_moment(
                conn, req.channel, req.starts_at, config.hype_lookback_s
            )
            peak = hype[1] if hype else req.starts_at
            window = clip_window(peak, config.pre_roll_s, config.post_roll_s)
            alert = req.alert
            row, created = await enqueue_clip(
                conn,
                dedup_key=req.dedup_key,
                channel=req.channel,
                trigger="alert",
                start_at=window.start,
                end_at=window.end,
                hype_moment_id=hype[0] if hype else None,
                request={
                    "alertname": alert.labels.get("alertname"),
                    "fingerprint": alert.fingerprint,
                    "starts_at": _iso(alert.startsAt),
                    "labels": alert.labels,
                    "generator_url": alert.generatorURL,
                    "receiver": payload.receiver,
                    "peak_at": _iso(peak),
                },
                reencode=config.reencode,
            )
            (result.queued if created else result.duplicates).append(row)
    return result


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
