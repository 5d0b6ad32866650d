"""Handlers of ``chatpulse collect`` and ``chatpulse replay``."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from chatpulse.app.commands.database import migrate, migrate_when_reachable
from chatpulse.app.signals import stop_on_signals
from chatpulse.app.times import parse_zoned_time
from chatpulse.core.db import database
from chatpulse.core.errors import ConfigError
from chatpulse.core.metrics import serve_metrics
from chatpulse.core.settings import Settings
from collector.app import FileReport, plan_replay, replay_files, run_collector
from collector.sources.base import ChatSource
from collector.writer import BatchResult

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


async def _idle_until_stopped() -> None:
    with stop_on_signals() as stop:
        # Said once the signals are handled: a stop right after the line exits 0.
        log.warning(
            "no channel to collect (CHATPULSE_CHANNELS is empty): the collector stays idle; "
            "set CHATPULSE_CHANNELS (e.g. in .env) and restart it"
        )
        await stop.wait()


async def _collect(
    settings: Settings,
    url: str,
    sources: list[ChatSource],
    *,
    registry: CollectorRegistry,
    prepare: Callable[[], Awaitable[object]],
) -> BatchResult:
    with stop_on_signals() as stop:
        return await run_collector(
            settings, url, sources, registry=registry, stop=stop, prepare=prepare
        )


def cmd_collect(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse collect``: live collection until SIGTERM/Ctrl-C (then flush and exit 0)."""
    if getattr(args, "sink", "database") == "nats":
        from chatpulse.app.commands.bus import cmd_collect_bus

        return cmd_collect_bus(settings, args)
    if args.source == "twitch" and not settings.channels and args.idle_without_channels:
        asyncio.run(_idle_until_stopped())
        return 0
    sources = build_sources(settings, args.source)
    registry = CollectorRegistry()
    serve_metrics(settings, registry)
    with database(settings) as url:
        # The schema check waits for the database in the background: collection starts at
        # once and spools until the database is there (a restart during an outage loses
        # nothing).
        totals = asyncio.run(
            _collect(
                settings,
                url,
                sources,
                registry=registry,
                prepare=functools.partial(migrate_when_reachable, settings, url),
            )
        )
    print(f"collector stopped: {totals.written} messages written, {totals.duplicates} duplicates")
    return 0


class _Progress:
    """Replay progress as a log line per file every few seconds and once when it is read
    through, not on every callback (they come twice a second)."""

    def __init__(self, every_s: float = 5.0) -> None:
        self._every = every_s
        self._last: dict[str, float] = {}
        self._done: set[str] = set()

    def __call__(self, file: str, done: int, total: int, events: int) -> None:
        now = time.monotonic()
        finished = done >= total
        if finished and file in self._done:
            return
        if not finished and now - self._last.setdefault(file, now) < self._every:
            return
        self._last[file] = now
        if finished:
            self._done.add(file)
        pct = 100.0 * done / total if total else 100.0
        log.info(
            "replay progress",
            extra={"file": file, "percent": round(pct, 1), "events": events, "bytes": done},
        )


def _file_line(report: FileReport, dead_letters: Path | None) -> str:
    """One line per file: what it held, and where its malformed lines went (if any)."""
    how = f"{report.fmt}; {report.note}" if report.note else report.fmt
    line = (
        f"{report.path} ({how}): {report.messages} messages, {report.moderation} moderation events"
    )
    if report.in_anchor:
        line += f", {report.in_anchor} lines already in the JSON of the same VOD"
    if not report.malformed:
        return line + ", nothing malformed"
    reasons = ", ".join(f"{n} {reason}" for reason, n in report.reasons.most_common())
    return f"{line}, {report.malformed} malformed ({reasons}) kept in {dead_letters}"


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse replay FILE …``: load chat logs exactly once and print what happened.

    Exit 0 when every file loaded (some lines may be malformed: counted per file); 1 when a
    file loaded nothing because every line of it was malformed; 2 when a file cannot be
    replayed at all (checked for every file before anything is loaded).
    """
    files = [Path(f) for f in args.files]
    raw_start = getattr(args, "replay_start", None)
    start = None if raw_start is None else parse_zoned_time(raw_start, "--start")
    fmt = args.replay_format
    # Every file is checked before the database is even started.
    plan_replay(files, fmt=fmt, channel=args.replay_channel, start=start)
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        summary = asyncio.run(
            replay_files(
                settings,
                url,
                files,
                fmt=fmt,
                channel=args.replay_channel,
                platform=args.replay_platform,
                start=start,
                progress=_Progress(),
                channel_id=args.replay_channel_id,
            )
        )
    for report in summary.per_file:
        print(_file_line(report, summary.dead_letters))
    print(
        f"replayed {len(files)} file(s): {summary.messages} messages "
        f"({summary.inserted} new, {summary.duplicates} already stored), "
        f"{summary.moderation} moderation events, {summary.malformed} malformed; "
        f"{summary.seconds:.1f} s, {summary.rate:,.0f} messages/s"
    )
    if summary.rejected:
        print(
            f"chatpulse: replay: {summary.rejected} event(s) rejected by the database "
            f"(kept in {summary.dead_letters})",
            file=sys.stderr,
        )
    _print_emote_lines(summary.emote_uses_backfilled, summary.emote_warnings)
    for note in summary.clocks:
        print(note)
    sys.stdout.flush()
    failed = [r for r in summary.per_file if r.nothing_loaded]
    for report in failed:
        print(
            f"chatpulse: replay: {report.path}: nothing loaded: all {report.malformed} lines "
            f"were malformed (kept in {summary.dead_letters})",
            file=sys.stderr,
        )
    stored_nothing = summary.rejected and not (summary.inserted or summary.duplicates)
    return 1 if failed or stored_nothing else 0


def _print_emote_lines(backfilled: int, warnings: list[str]) -> None:
    if backfilled:
        print(f"emotes: {backfilled} emote uses added to messages already stored")
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
