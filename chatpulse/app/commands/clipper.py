"""Handlers of ``chatpulse clipper serve|worker|add-vod`` and ``chatpulse record``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chatpulse.app.commands.database import migrate
from chatpulse.app.signals import stop_on_signals
from chatpulse.app.times import parse_zoned_time
from chatpulse.core.db import connect, database
from chatpulse.core.errors import ConfigError, CutError
from chatpulse.core.settings import Settings
from clipper.config import clipper_config
from clipper.webhook import CHANNEL_RE

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from clipper.worker import WorkerTotals

__all__ = ["api_server_config", "cmd_add_vod", "cmd_record", "cmd_serve", "cmd_worker"]

log = logging.getLogger(__name__)


def _migrate(settings: Settings, url: str) -> None:
    asyncio.run(migrate(settings, url))


def _channel(value: str) -> str:
    channel = value.strip().lstrip("#").lower()
    if not CHANNEL_RE.match(channel):
        raise ConfigError(f"--channel: invalid channel name {value!r}")
    return channel


def check_webhook_auth(settings: Settings) -> None:
    """Refuse to serve without webhook authentication unless it is switched off explicitly."""
    if (
        settings.webhook_token is None
        and settings.webhook_hmac_secret is None
        and not settings.webhook_auth_disabled
    ):
        raise ConfigError(
            "webhook_token (CHATPULSE_WEBHOOK_TOKEN) or webhook_hmac_secret "
            "(CHATPULSE_WEBHOOK_HMAC_SECRET) must be set, or webhook_auth_disabled "
            "(CHATPULSE_WEBHOOK_AUTH_DISABLED=true) for local testing"
        )


def api_server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves the clip API (``clipper serve`` and ``up``): our logging, no access
    log."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.clipper_host,
        port=settings.clipper_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse clipper serve``: the API until SIGTERM/Ctrl-C."""
    import uvicorn

    from clipper.api import create_app

    check_webhook_auth(settings)
    with database(settings) as url:
        _migrate(settings, url)
        app = create_app(settings, url)
        config = api_server_config(app, settings)
        server = uvicorn.Server(config)
        # uvicorn handles SIGTERM/SIGINT itself, then re-raises the signal under the handler
        # that was there before it started: make that one a no-op so a stop exits 0.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: None)
        log.info(
            "clipper API listening",
            extra={"url": f"http://{settings.clipper_host}:{settings.clipper_port}"},
        )
        server.run()
    return 0


async def _work(
    settings: Settings, url: str, registry: CollectorRegistry, until_idle: bool
) -> WorkerTotals:
    from clipper.worker import run_worker

    with stop_on_signals() as stop:
        return await run_worker(settings, url, registry=registry, stop=stop, until_idle=until_idle)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse clipper worker``: cut clips until SIGTERM/Ctrl-C (then stop cleanly)."""
    from prometheus_client import CollectorRegistry

    from chatpulse.core.metrics import serve_metrics
    from clipper.ffmpeg import require_ffmpeg

    settings = require_ffmpeg(settings)
    registry = CollectorRegistry()
    serve_metrics(settings, registry, one_shot=bool(getattr(args, "until_idle", False)))
    with database(settings) as url:
        _migrate(settings, url)
        totals = asyncio.run(
            _work(settings, url, registry, bool(getattr(args, "until_idle", False)))
        )
    print(
        f"clip worker stopped: {totals.done} done, {totals.retried} retried, "
        f"{totals.failed} failed, {totals.released} released"
    )
    return 0


def cmd_add_vod(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse clipper add-vod LOCATION --channel C --start T``: register a VOD."""
    from clipper.ffmpeg import ffprobe_for, probe
    from clipper.jobs import register_vod

    channel = _channel(args.channel)
    start = parse_zoned_time(args.start, "--start").astimezone(UTC)
    location: str = args.location
    scheme = urlsplit(location).scheme
    if scheme in ("http", "https"):
        pass
    elif scheme in ("", "file"):
        path = Path(location[len("file://") :] if scheme == "file" else location)
        if not path.is_file():
            raise ConfigError(f"add-vod: no such file: {path}")
        location = str(path.resolve())
    else:
        raise ConfigError(f"add-vod: a file path or an http(s) URL, not {scheme}://")
    duration: float | None
    try:
        duration = asyncio.run(probe(ffprobe_for(settings.ffmpeg), location)).duration_s
    except CutError as exc:
        log.warning("VOD duration unknown", extra={"error": str(exc)})
        duration = None

    async def register(url: str) -> int:
        conn = await connect(url)
        try:
            return await register_vod(
                conn,
                channel=channel,
                platform=settings.platform,
                location=location,
                start_at=start,
                duration_s=duration,
            )
        finally:
            await conn.close()

    with database(settings) as url:
        _migrate(settings, url)
        vod_id = asyncio.run(register(url))
    shown = f"{duration:.1f} s" if duration is not None else "unknown length"
    print(f"VOD {vod_id} of {channel}: {location} from {start.isoformat()} ({shown})")
    return 0


def cmd_record(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse record --channel NAME [--url URL]``: record until SIGTERM/Ctrl-C."""
    from clipper.ffmpeg import require_ffmpeg
    from clipper.recorder import run_recorder

    settings = require_ffmpeg(settings)
    channel = _channel(args.channel)
    config = clipper_config(settings)

    async def record() -> int:
        with stop_on_signals() as stop:
            return await run_recorder(
                settings.media_path,
                channel,
                args.url,
                ffmpeg=settings.ffmpeg,
                config=config,
                stop=stop,
            )

    sessions = asyncio.run(record())
    print(f"recording of {channel} stopped after {sessions} session(s)")
    return 0
