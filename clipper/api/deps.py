"""Dependencies of the route handlers: the app's state, a pooled connection, auth, the body."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from chatpulse.core.errors import WebhookError
from chatpulse.core.settings import Settings
from clipper.config import ClipperConfig
from clipper.metrics import ClipperMetrics

__all__ = ["AppState", "Conn", "State", "read_body", "require_token"]


@dataclass
class AppState:
    """What every handler may use; one per app, made at start-up."""

    settings: Settings
    config: ClipperConfig
    metrics: ClipperMetrics
    pool: AsyncConnectionPool | None = None


# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its
# thread pool, a thread hop per request that cost the webhook milliseconds under a burst.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.clipper
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_conn(state: State) -> AsyncIterator[AsyncConnection[Any]]:
    assert state.pool is not None, "the pool opens in the app's lifespan"
    async with state.pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[Any], Depends(get_conn)]


async def require_token(request: Request, state: State) -> None:
    """The clip API wants ``Authorization: Bearer <webhook token>`` unless auth is off."""
    settings = state.settings
    if settings.webhook_auth_disabled:
        return
    if settings.webhook_token is None:
        raise WebhookError(401, "the clip API needs CHATPULSE_WEBHOOK_TOKEN on the server")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    expected = settings.webhook_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise WebhookError(401, "missing or bad bearer token")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise WebhookError(413, f"body larger than {limit} bytes")
        except ValueError:
            raise WebhookError(400, "bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
