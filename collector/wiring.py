"""The parts a collector or a replay is built from: spool, dead letters, writer, emote
providers, the room (platform id) resolver.

:mod:`collector.app` (live collection), :mod:`collector.replay` (files), :mod:`collector.rematch`
and the bus (``bus/``) assemble them; each function here returns one part, configured from
:class:`~chatpulse.core.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import class_row

from chatpulse.core.db import connect
from chatpulse.core.errors import ChatpulseError
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings
from collector.deadletter import DeadLetters
from collector.emotes import (
    EmoteProviders,
    EmoteUrls,
    default_fetch_json_factory,
    resolve_channel_id,
)
from collector.metrics import CollectorMetrics
from collector.spool import Spool, SpoolLockedError
from collector.writer import Writer

__all__ = [
    "ChannelRow",
    "RoomResolver",
    "collector_id",
    "dead_letter_path",
    "emote_providers",
    "open_spool",
    "open_writer",
    "room_resolver",
    "stored_channel",
]

log = logging.getLogger(__name__)

_Q = load_queries("collector")  # sql/queries/collector.sql

#: ``await resolver(platform, channel)``: the channel's platform id, or None when unknown.
RoomResolver = Callable[[str, str], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A stored channel: its ``chat.channels.id`` and platform (room) id, if known."""

    id: int
    platform_id: str | None


async def stored_channel(
    conn: psycopg.AsyncConnection[Any], platform: str, name: str
) -> ChannelRow | None:
    """The stored channel ``name`` of ``platform``, or None when the database has none."""
    async with conn.cursor(row_factory=class_row(ChannelRow)) as cur:
        await cur.execute(_Q["channel_by_name"], {"platform": platform, "name": name})
        return await cur.fetchone()


@contextlib.contextmanager
def open_spool(settings: Settings, role: str) -> Iterator[Spool]:
    """Open ``DATA_DIR/spool/<role>`` (the spool locks it: one process at a time)."""
    directory = settings.data_dir / "spool" / role
    try:
        spool = Spool(directory, max_bytes=settings.spool_max_bytes)
    except SpoolLockedError:
        raise ChatpulseError(
            f"another chatpulse process uses the spool {directory}; give this one its own "
            "CHATPULSE_DATA_DIR"
        ) from None
    try:
        yield spool
    finally:
        spool.close()


def dead_letter_path(settings: Settings, role: str) -> Path:
    """The dead-letter file of ``role`` (collect or replay)."""
    return settings.data_dir / "dead-letters" / f"{role}.jsonl"


def collector_id() -> str:
    """This process's name in ``chat.gaps.collector``: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def open_writer(
    settings: Settings,
    conninfo: str,
    queue: asyncio.Queue[Any],
    metrics: CollectorMetrics,
    role: str,
    ready: asyncio.Event | None = None,
) -> Iterator[Writer]:
    """A writer with its dead-letter file and spool (``role``: collect or replay)."""
    dead = DeadLetters(dead_letter_path(settings, role))
    with dead, open_spool(settings, role) as spool:
        yield Writer(
            conninfo,
            queue,
            spool=spool,
            dead_letters=dead,
            metrics=metrics,
            batch_size=settings.batch_size,
            flush_interval_s=settings.flush_interval_s,
            collector_id=collector_id(),
            lanes=settings.writer_lanes,
            ready=ready,
        )


def emote_providers(
    settings: Settings, http: httpx.AsyncClient, *, failure_log_level: int = logging.WARNING
) -> EmoteProviders | None:
    """The third-party emote providers the settings name (None: ``emote_providers`` is empty)."""
    if not settings.emote_providers:
        return None
    return EmoteProviders(
        default_fetch_json_factory(http),
        cache_dir=settings.data_dir / "emotes",
        providers=tuple(settings.emote_providers),
        urls=EmoteUrls(settings.bttv_api_url, settings.ffz_api_url, settings.seventv_api_url),
        failure_log_level=failure_log_level,
    )


def room_resolver(
    settings: Settings,
    conninfo: str,
    http: httpx.AsyncClient,
    *,
    channel: str | None = None,
    channel_id: str | None = None,
    lookup: bool = True,
) -> RoomResolver:
    """Find a channel's platform id when its events carry none.

    In order: ``channel_id`` (``--channel-id``; for ``channel``, or any channel when None), the
    id already stored in ``chat.channels.platform_id``, then for Twitch Helix (when
    ``twitch_client_id`` and ``twitch_oauth_token`` are set) and IVR by login (not without
    ``lookup``: nothing is asked over the network).
    """
    wanted = channel.lstrip("#").lower() if channel else None

    async def resolve(platform: str, name: str) -> str | None:
        if channel_id and (wanted is None or wanted == name):
            return channel_id
        try:
            async with await connect(conninfo, autocommit=True) as conn:
                row = await stored_channel(conn, platform, name)
            if row is not None and row.platform_id:
                return str(row.platform_id)
        except Exception as exc:  # database down: the providers may still know
            log.debug("stored channel id not readable", extra={"error": repr(exc)})
        if platform != "twitch" or not lookup:
            return None
        token = settings.twitch_oauth_token
        found = await resolve_channel_id(
            http,
            name,
            helix_url=settings.helix_api_url,
            client_id=settings.twitch_client_id,
            token=token.get_secret_value() if token else None,
            ivr_url=settings.ivr_api_url,
        )
        if found.channel_id is None:
            log.debug("channel id not found", extra={"channel": name, "errors": found.errors})
        else:
            log.info(
                "channel id found",
                extra={"channel": name, "channel_id": found.channel_id, "via": found.source},
            )
        return found.channel_id

    return resolve
