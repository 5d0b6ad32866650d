"""Handlers of ``chatpulse collect`` and ``chatpulse replay``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from chatpulse.commands import migrate
from chatpulse.db import database
from chatpulse.errors import ConfigError
from chatpulse.metrics import serve_metrics
from chatpulse.settings import Settings
from collector.app import replay_files, run_collector
from collector.sources.base import ChatSource

__all__ = ["build_sources", "cmd_collect", "cmd_replay"]

log = logging.getLogger(__name__)


def build_sources(settings: Settings, kind: str) -> list[ChatSource]:
    """The live sources the settings ask for; raises ConfigError naming what is missing."""
    if kind == "twitch":
        if not settings.channels:
            raise ConfigError("channels (CHATPULSE_CHANNELS / --channel): no channel to collect")
        from collector.sources.twitch import TwitchIrcSource

        token = (
            settings.twitch_oauth_token.get_secret_value() if settings.twitch_oauth_token else None
        )
        if token and not settings.twitch_login:
            raise ConfigError("twitch_login (CHATPULSE_TWITCH_LOGIN): required with an OAuth token")
        return [
            TwitchIrcSource(
                settings.channels,
                url=settings.twitch_irc_url,
                login=settings.twitch_login,
                oauth_token=token,
            )
        ]
    from collector.sources.websocket import FieldMapping, JsonWebSocketSource

    if not settings.ws_url or not settings.ws_mapping:
        raise ConfigError(
            "ws_url and ws_mapping (CHATPULSE_WS_URL, CHATPULSE_WS_MAPPING): "
            "both are needed by --source websocket"
        )
    headers = {k: v.get_secret_value() for k, v in settings.ws_headers.items()}
    return [
        JsonWebSocketSource(
            settings.ws_url,
            FieldMapping.from_dict(settings.ws_mapping),
            channel=settings.ws_channel,
            subscribe=settings.ws_subscribe,
            headers=headers or None,
            ping_interval_s=settings.ws_ping_interval_s,
        )
    ]


def cmd_collect(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse collect``: live collection until SIGTERM/Ctrl-C (then flush and exit 0)."""
    sources = build_sources(settings, args.source)
    registry = CollectorRegistry()
    serve_metrics(settings, registry)
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        totals = asyncio.run(run_collector(settings, url, sources, registry=registry))
    print(f"collector stopped: {totals.written} messages written, {totals.duplicates} duplicates")
    return 0


def _progress(file: str, done: int, total: int, events: int) -> None:
    pct = 100.0 * done / total if total else 100.0
    log.info(
        "replay progress",
        extra={"file": file, "percent": round(pct, 1), "events": events, "bytes": done},
    )


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse replay FILE …``: load chat logs exactly once and print what happened."""
    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            raise ConfigError(f"replay: no such file: {path}")
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        summary = asyncio.run(
            replay_files(
                settings,
                url,
                files,
                fmt=args.replay_format,
                channel=args.replay_channel,
                platform=args.replay_platform,
                progress=_progress,
            )
        )
    print(
        f"replayed {len(files)} file(s): {summary.messages} messages "
        f"({summary.inserted} new, {summary.duplicates} already stored), "
        f"{summary.moderation} moderation events, {summary.malformed} malformed lines kept in "
        f"{settings.data_dir / 'dead-letters' / 'replay.jsonl'}; "
        f"{summary.seconds:.1f} s, {summary.rate:,.0f} messages/s"
    )
    for note in summary.clocks:
        print(note)
    sys.stdout.flush()
    return 0
