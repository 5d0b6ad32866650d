"""``chatpulse collect --sink nats``: collect the channels this collector leases, publish them.

One Twitch IRC connection per leased channel (a channel joins and leaves without disturbing
the others).  A channel taken over from a collector whose lease expired records a ``takeover``
gap in ``chat.gaps``, from the dead collector's last renewal to the join, which gap fill
(``recent_messages_url``) then covers; a channel a collector handed over at a clean stop records
a ``handover`` gap from its stop.  The pipeline (emotes, counters, gap fill) is the
single-process collector's own :class:`collector.pipeline.Pipeline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from bus.common import connect
from bus.leases import Lease, LeaseTable
from bus.metrics import BusMetrics
from bus.publisher import BusPublisher
from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings
from collector.deadletter import DeadLetters
from collector.events import ControlEvent
from collector.metrics import CollectorMetrics
from collector.pipeline import OpenGap, Pipeline
from collector.wiring import dead_letter_path
from collector.writer import GAP_CLOSE, GAP_OPEN

__all__ = ["LeasedPipeline", "run_bus_collector"]

log = logging.getLogger(__name__)


class LeasedPipeline(Pipeline):
    """The collector pipeline, with a channel's first join after a takeover recorded as a gap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._takeovers: dict[str, tuple[datetime, str]] = {}

    def claimed(self, channel: str, previous: Lease | None) -> None:
        """``channel`` is ours from now on; ``previous``: the lease it was taken from."""
        # Its next connection is a first one again (gap fill runs; see Pipeline.on_connected).
        self._connected_once.discard(channel)
        if previous is None:
            return
        if not previous.released:
            self._takeovers[channel] = (
                datetime.fromtimestamp(previous.renewed_at, UTC),
                "takeover",
            )
        elif previous.stopped_at is not None:
            self._takeovers[channel] = (
                datetime.fromtimestamp(previous.stopped_at, UTC),
                "handover",
            )

    async def _restart_gap(self, channel: str, at: datetime) -> OpenGap | None:
        took = self._takeovers.pop(channel, None)
        if took is None:
            return None
        since, reason = took
        gap = OpenGap(uuid.uuid4().hex, min(since, at))
        params = {"key": gap.key, "platform": self._platform}
        log.warning(
            "channel taken over: gap recorded",
            extra={"channel": channel, "reason": reason, "since": since.isoformat()},
        )
        await self._queue.put(
            ControlEvent(
                GAP_OPEN,
                channel,
                {**params, "at": gap.started_at.isoformat(), "reason": reason},
            )
        )
        await self._queue.put(ControlEvent(GAP_CLOSE, channel, {**params, "at": at.isoformat()}))
        return gap


def _collector_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_bus_collector(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    collector_id: str | None = None,
) -> int:
    """Lease channels and publish them until ``stop`` is set (``chatpulse collect --sink nats``
    sets it on SIGTERM); returns the events published."""
    from collector.sources.twitch import TwitchIrcSource

    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    bus_metrics = BusMetrics(registry)
    stop = stop or asyncio.Event()
    me = collector_id or _collector_id()
    bus = await connect(settings, name=f"chatpulse-collect {me}")
    try:
        await bus.ensure_stream()
        await bus.ensure_buckets()
        assert bus.channels is not None and bus.leases is not None
        for channel in settings.channels:  # the configured channels join the shared list
            with contextlib.suppress(Exception):  # already listed
                await bus.channels.create(channel, b"{}")
        table = LeaseTable(bus.channels, bus.leases, me, settings.lease_ttl_s)
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=settings.queue_size)
        token = (
            settings.twitch_oauth_token.get_secret_value() if settings.twitch_oauth_token else None
        )
        if token and not settings.twitch_login:
            raise ConfigError("twitch_login (CHATPULSE_TWITCH_LOGIN): required with an OAuth token")
        with DeadLetters(dead_letter_path(settings, "collect")) as dead:
            publisher = BusPublisher(
                bus.js,
                queue,
                dead_letters=dead,
                metrics=bus_metrics,
                platform=settings.platform,
                batch_size=min(settings.batch_size, 1000),
            )
            async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
                pipeline = LeasedPipeline(
                    queue,
                    metrics,
                    source_name="twitch",
                    emotes=None if not settings.emote_providers else _emotes(settings, http),
                    recent_messages_url=settings.recent_messages_url,
                    http=http,
                    platform=settings.platform,
                    restart_gaps_before=None,
                )
                publish_task = asyncio.create_task(publisher.run(), name="publisher")
                running: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

                async def drop(channel: str) -> None:
                    entry = running.pop(channel, None)
                    if entry is not None:
                        entry[0].set()
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(entry[1], 10)

                interval = settings.lease_ttl_s / 3
                log.info("bus collector running", extra={"collector": me})
                while not stop.is_set():
                    try:
                        scan = await table.scan()
                    except Exception as exc:  # NATS away: keep collecting what we hold
                        log.warning("lease scan failed", extra={"error": repr(exc)})
                        bus_metrics.up.set(0)
                    else:
                        for channel in scan.dropped:
                            await drop(channel)
                        for channel, previous in scan.acquired.items():
                            pipeline.claimed(channel, previous)
                            if previous is not None and not previous.released:
                                bus_metrics.takeovers.labels(channel).inc()
                            source = TwitchIrcSource(
                                [channel],
                                url=settings.twitch_irc_url,
                                login=settings.twitch_login,
                                oauth_token=token,
                            )
                            ev = asyncio.Event()
                            running[channel] = (
                                ev,
                                asyncio.create_task(
                                    source.run(pipeline, ev), name=f"src-{channel}"
                                ),
                            )
                            log.info(
                                "channel leased",
                                extra={"channel": channel, "collector": me},
                            )
                        bus_metrics.leases_owned.labels(me).set(len(table.owned))
                        bus_metrics.channels.set(scan.channels)
                        bus_metrics.orphaned.set(scan.orphaned)
                    if publish_task.done():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)
                for channel in list(running):
                    await drop(channel)
                await pipeline.wait_tasks()
                if not publish_task.done():
                    await publisher.stop()
                    await publish_task
                else:
                    publish_task.result()
                with contextlib.suppress(Exception):
                    await table.release_all()
    finally:
        await bus.close()
    log.info("bus collector stopped", extra={"published": publisher.published})
    return publisher.published


def _emotes(settings: Settings, http: httpx.AsyncClient) -> Any:
    from collector.wiring import emote_providers

    return emote_providers(settings, http)
