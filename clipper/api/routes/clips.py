"""``/clips``: manual clips and clip status."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from chatpulse.core.errors import WebhookError
from clipper import jobs
from clipper.api.deps import Conn, State, require_token
from clipper.api.models import ClipIn, ClipList, ClipOut, ErrorOut
from clipper.segments import clip_window
from clipper.service import queue_manual_clip

__all__ = ["router"]

router = APIRouter(
    prefix="/clips",
    tags=["clips"],
    dependencies=[Depends(require_token)],
    responses={401: {"model": ErrorOut, "description": "missing or bad bearer token"}},
)


@router.post(
    "",
    response_model=ClipOut,
    status_code=201,
    responses={200: {"model": ClipOut, "description": "the same request was already queued"}},
)
async def create_clip(body: ClipIn, state: State, response: Response) -> ClipOut:
    """Queue a clip of ``channel`` around ``at`` (pre- and post-roll) or from ``start`` to
    ``end``.  The same request twice returns the first clip (200)."""
    started = time.perf_counter()
    if body.at is not None:
        pre = state.config.pre_roll_s if body.pre_roll_s is None else body.pre_roll_s
        post = state.config.post_roll_s if body.post_roll_s is None else body.post_roll_s
        if pre + post <= 0:
            raise WebhookError(422, "pre_roll_s + post_roll_s must be positive")
        window = clip_window(body.at, pre, post)
        start, end, peak = window.start, window.end, body.at
    else:
        assert body.start is not None and body.end is not None
        start, end, peak = body.start, body.end, None
    if end - start > timedelta(hours=6):
        raise WebhookError(422, "a clip is at most 6 hours long")
    assert state.pool is not None
    row, created = await queue_manual_clip(
        state.pool, channel=body.channel, start=start, end=end, peak=peak, reencode=body.reencode
    )
    if not created:
        response.status_code = 200
    state.metrics.webhook_seconds.labels("clips").observe(time.perf_counter() - started)
    return ClipOut.of(row)


@router.get("", response_model=ClipList)
async def list_clips(
    conn: Conn,
    channel: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(pattern="^(queued|running|done|failed)$")] = None,
    before: Annotated[int | None, Query(ge=1, description="page: ids below this")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ClipList:
    """Clips, newest first."""
    rows = await jobs.list_clips(
        conn, channel=channel, status=status, before_id=before, limit=limit
    )
    return ClipList(
        clips=[ClipOut.of(r) for r in rows],
        next_before=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{clip_id}", response_model=ClipOut, responses={404: {"model": ErrorOut}})
async def get_clip(clip_id: int, conn: Conn) -> ClipOut:
    """One clip's status and, when done, its location, duration and thumbnail."""
    row = await jobs.get_clip(conn, clip_id)
    if row is None:
        raise WebhookError(404, f"no clip {clip_id}")
    return ClipOut.of(row)
