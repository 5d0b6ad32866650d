"""The FastAPI application: :func:`create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from chatpulse import __version__
from chatpulse.core.db import open_pool
from chatpulse.core.errors import WebhookError
from chatpulse.core.settings import Settings
from clipper.api.deps import AppState
from clipper.api.routes import ask, clips, health, webhooks
from clipper.config import ClipperConfig, clipper_config
from clipper.metrics import ClipperMetrics

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    conninfo: str,
    *,
    config: ClipperConfig | None = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The clipper API on database ``conninfo``; its pool opens and closes with the app.

    The pool keeps ``config.api_pool_size`` connections open (all opened at start-up).

    OpenAPI docs are served at ``/docs`` and ``/openapi.json``.
    """
    state = AppState(
        settings=settings,
        config=config or clipper_config(settings),
        metrics=ClipperMetrics(registry or CollectorRegistry()),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        size = state.config.api_pool_size
        state.pool = await open_pool(conninfo, size=size, name="clipper")
        try:
            # Keep every connection open: alerts come in bursts after quiet minutes, and a
            # pool that had shrunk to one connection made the burst wait for new ones.
            await state.pool.resize(min_size=size, max_size=size)
            await state.pool.wait(timeout=30)
            yield
        finally:
            await state.pool.close()
            state.pool = None

    app = FastAPI(
        title="chatpulse clipper",
        version=__version__,
        description="Grafana alert webhooks and manual requests become FFmpeg highlight clips.",
        lifespan=lifespan,
    )
    app.state.clipper = state

    @app.exception_handler(WebhookError)
    async def _refused(request: Request, exc: WebhookError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    app.include_router(webhooks.router)
    app.include_router(clips.router)
    app.include_router(health.router)
    app.include_router(ask.router)
    return app
