"""``GET /ask``: the best moments for a question (``chatpulse ask`` over HTTP)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from chatpulse.core.errors import ConfigError, WebhookError
from clipper.api.deps import Conn, State, require_token
from clipper.api.models import ErrorOut

__all__ = ["router"]

router = APIRouter(
    tags=["ask"],
    dependencies=[Depends(require_token)],
    responses={401: {"model": ErrorOut, "description": "missing or bad bearer token"}},
)

_LOCK = asyncio.Lock()


async def _embedder(request: Request, state: State) -> Any:
    """The embedding model, loaded on the first question and kept for the app's life."""
    found = getattr(request.app.state, "embedder", None)
    if found is not None:
        return found
    async with _LOCK:
        found = getattr(request.app.state, "embedder", None)
        if found is None:
            from topics.embed import load_embedder

            try:
                found = await asyncio.to_thread(load_embedder, state.settings)
            except ConfigError as exc:
                raise WebhookError(503, str(exc)) from None
            request.app.state.embedder = found
    return found


@router.get(
    "/ask",
    responses={503: {"model": ErrorOut, "description": "no pgvector or no embedding model"}},
)
async def ask_moments(
    request: Request,
    state: State,
    conn: Conn,
    q: Annotated[str, Query(min_length=1, max_length=500, description="the question")],
    channel: Annotated[list[str] | None, Query(max_length=100)] = None,
    time_from: Annotated[datetime | None, Query(alias="from")] = None,
    time_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 5,
) -> list[dict[str, Any]]:
    """Moments (channel, start, end, score, messages, stream, clip request), best first."""
    from topics.store import NoVectorsError, ask, vectors_available

    for name, value in (("from", time_from), ("to", time_to)):
        if value is not None and value.tzinfo is None:
            raise WebhookError(422, f"{name}: give a time zone (e.g. Z)")
    if not await vectors_available(conn):
        from topics.store import NO_VECTORS

        raise WebhookError(503, NO_VECTORS)
    embedder = await _embedder(request, state)
    try:
        moments = await ask(
            conn,
            embedder,
            q,
            channels=channel,
            time_from=time_from,
            time_to=time_to,
            limit=limit,
        )
    except NoVectorsError as exc:
        raise WebhookError(503, str(exc)) from None
    return [m.as_dict() for m in moments]
