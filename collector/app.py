"""The collector application: sources → enrichment → bounded queue → writer.

:func:`run_collector` runs live sources through a :class:`~collector.pipeline.Pipeline`
into the :class:`~collector.writer.Writer` until a signal.  The other parts live beside it,
one job each: the pipeline and its gap fill (:mod:`collector.pipeline`,
:mod:`collector.gapfill`), replay of files (:mod:`collector.replay`, parsing in
:mod:`collector.parse_worker`), and the assembly of spool, dead letters, writer and emote
providers (:mod:`collector.wiring`).  The names other packages use are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from chatpulse.core.settings import Settings
from collector.metrics import CollectorMetrics
from collector.pipeline import Pipeline
from collector.replay import FileReport, ReplayFile, ReplaySummary, plan_replay, replay_files
from collector.sources.base import ChatSource
from collector.wiring import (
    RoomResolver,
    dead_letter_path,
    emote_providers,
    open_spool,
    open_writer,
    room_resolver,
)
from collector.writer import BatchResult

__all__ = [
    "FileReport",
    "Pipeline",
    "ReplayFile",
    "ReplaySummary",
    "RoomResolver",
    "dead_letter_path",
    "open_spool",
    "plan_replay",
    "replay_files",
    "room_resolver",
    "run_collector",
]

log = logging.getLogger(__name__)


async def _prepare(prepare: Callable[[], Awaitable[object]], ready: asyncio.Event) -> None:
    await prepare()
    ready.set()


async def run_collector(
    settings: Settings,
    conninfo: str,
    sources: Sequence[ChatSource],
    *,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    prepare: Callable[[], Awaitable[object]] | None = None,
) -> BatchResult:
    """Run live sources until ``stop`` is set; returns the write totals.

    On stop the sources close, the queue is flushed to the database or the spool, then it
    returns.  A fatal source error (rejected credentials) stops everything and is raised.

    ``prepare`` (the schema check, which waits for the database) runs beside collection:
    until it returns, everything collected goes to the spool; if it raises, the collector
    stops and raises that.  Each channel's first join records the time the collector was not
    running as a ``collector_restart`` gap, which gap fill then covers.
    """
    started = datetime.now(UTC)
    registry = registry or CollectorRegistry()
    metrics = CollectorMetrics(registry)
    stop = stop or asyncio.Event()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=settings.queue_size)
    ready = asyncio.Event() if prepare is not None else None
    with open_writer(settings, conninfo, queue, metrics, "collect", ready) as writer:
        async with httpx.AsyncClient(headers={"User-Agent": "chatpulse"}) as http:
            pipeline = Pipeline(
                queue,
                metrics,
                source_name=sources[0].name if sources else "live",
                emotes=emote_providers(settings, http),
                recent_messages_url=settings.recent_messages_url,
                http=http,
                platform=settings.platform,
                restart_gaps_before=started,
            )
            writer_task = asyncio.create_task(writer.run(), name="writer")
            source_tasks = [
                asyncio.create_task(s.run(pipeline, stop), name=f"source-{s.name}") for s in sources
            ]
            prepare_task = (
                asyncio.create_task(_prepare(prepare, ready), name="schema")
                if prepare is not None and ready is not None
                else None
            )
            log.info(
                "collector running",
                extra={"channels": settings.channels, "sources": [s.name for s in sources]},
            )
            stopper = asyncio.create_task(stop.wait())
            watched = {stopper, writer_task, *source_tasks}
            if prepare_task is not None:
                watched.add(prepare_task)
            while True:
                done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                if (
                    prepare_task is not None
                    and done == {prepare_task}
                    and not prepare_task.exception()
                ):
                    watched.discard(prepare_task)  # schema ready: collection goes on
                    continue
                break
            stop.set()
            failure: BaseException | None = None
            if prepare_task is not None:
                if not prepare_task.done():
                    prepare_task.cancel()
                await asyncio.wait([prepare_task])
                if not prepare_task.cancelled() and prepare_task.exception() is not None:
                    failure = prepare_task.exception()
            for task in source_tasks:
                try:
                    await asyncio.wait_for(task, timeout=10)
                except Exception as exc:
                    failure = failure or exc
            await pipeline.wait_tasks()
            if not writer_task.done():
                await writer.stop()
                await writer_task
            elif writer_task.exception() is not None:
                failure = failure or writer_task.exception()
            stopper.cancel()
    log.info(
        "collector stopped",
        extra={
            "written": writer.totals.written,
            "duplicates": writer.totals.duplicates,
            "spooled_batches": writer.spooled_batches,
        },
    )
    if failure is not None:
        raise failure
    return writer.totals
