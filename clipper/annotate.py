"""Grafana annotations for finished clips (grafana-client), when a Grafana URL and token are set.

An annotation failing never fails the clip: it is logged and forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

__all__ = ["annotate_clip"]

log = logging.getLogger(__name__)


def _post(url: str, token: str, at: datetime, end: datetime, text: str, tags: list[str]) -> None:
    from grafana_client.api import GrafanaApi

    api = GrafanaApi.from_url(url, credential=token)
    api.annotations.add_annotation(
        time_from=int(at.timestamp() * 1000),
        time_to=int(end.timestamp() * 1000),
        tags=tags,
        text=text,
    )


async def annotate_clip(
    grafana_url: str | None,
    grafana_token: str | None,
    *,
    clip_id: int,
    channel: str | None,
    start: datetime,
    end: datetime,
    location: str,
) -> bool:
    """Write an annotation spanning the clip with its link; False when skipped or failed."""
    if not grafana_url or not grafana_token:
        return False
    text = f'Clip {clip_id}: <a href="{location}">{location}</a>'
    tags = ["chatpulse", "clip", *([f"channel:{channel}"] if channel else [])]
    try:
        await asyncio.to_thread(_post, grafana_url, grafana_token, start, end, text, tags)
    except Exception as exc:  # grafana-client raises its own and niquests' errors
        log.warning("grafana annotation failed", extra={"clip_id": clip_id, "error": str(exc)})
        return False
    return True
