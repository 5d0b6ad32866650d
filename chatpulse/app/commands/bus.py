"""``chatpulse ingest``, ``chatpulse collect --sink nats`` and ``chatpulse channels``: the NATS
JetStream bus (bus/).  The bus extra (nats-py) is imported only when one of them runs."""

from __future__ import annotations

import argparse
import asyncio

from prometheus_client import CollectorRegistry

from chatpulse.app.commands.database import migrate_when_reachable
from chatpulse.app.signals import stop_on_signals
from chatpulse.core.db import database
from chatpulse.core.errors import ConfigError
from chatpulse.core.metrics import serve_metrics
from chatpulse.core.settings import Settings

__all__ = ["cmd_channels", "cmd_collect_bus", "cmd_ingest"]


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse ingest``: write the bus into the database until SIGTERM/Ctrl-C."""
    from bus.ingest import IngestTotals, run_ingest

    registry = CollectorRegistry()
    serve_metrics(settings, registry)

    async def run(url: str) -> IngestTotals:
        with stop_on_signals() as stop:
            return await run_ingest(
                settings,
                url,
                registry=registry,
                stop=stop,
                prepare=lambda: migrate_when_reachable(settings, url),
            )

    with database(settings) as url:
        totals = asyncio.run(run(url))
    written = totals.written.written if totals.written else 0
    dup = totals.written.duplicates if totals.written else 0
    print(
        f"writer stopped: {totals.acked} stream messages acknowledged, {written} messages "
        f"written, {dup} duplicates, {totals.redelivered} redelivered, {totals.poison} poison "
        "messages dead-lettered"
    )
    return 0


def cmd_collect_bus(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse collect --sink nats``: lease channels from the shared list and publish."""
    from bus.collect import run_bus_collector

    if args.source != "twitch":
        raise ConfigError("--sink nats: only --source twitch shares a channel list")
    registry = CollectorRegistry()
    serve_metrics(settings, registry)

    async def run() -> int:
        with stop_on_signals() as stop:
            return await run_bus_collector(settings, registry=registry, stop=stop)

    published = asyncio.run(run())
    print(f"collector stopped: {published} events published to {settings.nats_stream}")
    return 0


def cmd_channels(settings: Settings, args: argparse.Namespace) -> int:
    """Edit or print the shared channel list."""
    from bus.channels import edit_channels, normalize_channel

    action: str = args.channels_action
    names = [normalize_channel(n) for n in getattr(args, "names", None) or []]
    for line in asyncio.run(edit_channels(settings, action, names)):
        print(line)
    return 0
