"""The clip worker: claim a job, cut it with FFmpeg, store it, record the result.

Jobs come from ``chat.clips`` (:mod:`clipper.jobs`).  While a job runs, a heartbeat keeps it
ours; a worker that dies stops heartbeating and its job is claimed again after
``stall_after_s``.  Failures are retried with exponential backoff and jitter
(:func:`chatpulse.core.backoff.retry_wait`) up to ``max_attempts``; a
clip whose end is not recorded yet goes back to the queue without using an attempt.  When
its stop event is set (the command sets it on SIGTERM/SIGINT) the worker claims nothing more,
gives the running cut ``shutdown_grace_s``, then stops FFmpeg cleanly and puts the job back
for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from psycopg import AsyncConnection

from chatpulse.core.backoff import retry_wait, wait_seconds
from chatpulse.core.db import connect
from chatpulse.core.errors import CutError, CutStopped, MediaError, MediaNotReady
from chatpulse.core.settings import Settings
from chatpulse.core.waiting import wait_or_stop
from clipper import jobs
from clipper.annotate import annotate_clip
from clipper.config import ClipperConfig, clipper_config
from clipper.ffmpeg import cut_segments, cut_vod, ffprobe_for, probe, write_thumbnail
from clipper.media import plan_from_segments
from clipper.metrics import ClipperMetrics
from clipper.segments import plan_vod
from clipper.storage import Storage, clip_key, open_storage

__all__ = ["ClipResult", "WorkerTotals", "new_worker_id", "run_worker"]

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """A worker's name in ``chat.clips.worker``: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerTotals:
    """What one worker did."""

    done: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    clip_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClipResult:
    """A stored clip."""

    location: str
    thumbnail: str | None
    duration_s: float
    media: str


class _Worker:
    def __init__(
        self,
        settings: Settings,
        conn: AsyncConnection[Any],
        hb_conn: AsyncConnection[Any],
        config: ClipperConfig,
        metrics: ClipperMetrics,
        storage: Storage,
        worker_id: str,
        shutdown: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.conn = conn
        self.hb_conn = hb_conn
        self.config = config
        self.metrics = metrics
        self.storage = storage
        self.id = worker_id
        self.shutdown = shutdown
        self.ffprobe = ffprobe_for(settings.ffmpeg)
        self.totals = WorkerTotals()
        self.retry = retry_wait(config.retry_base_s, config.retry_max_s)

    async def _heartbeat(self, job_id: int, lost: asyncio.Event, stop_cut: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                held = await jobs.heartbeat(self.hb_conn, job_id, self.id)
            except Exception as exc:  # a database blip: the next beat may work
                log.warning("heartbeat failed", extra={"clip_id": job_id, "error": str(exc)})
                continue
            if not held:
                log.warning("job taken over by another worker", extra={"clip_id": job_id})
                lost.set()
                stop_cut.set()
                return

    async def _grace(self, stop_cut: asyncio.Event) -> None:
        await self.shutdown.wait()
        await asyncio.sleep(self.config.shutdown_grace_s)
        stop_cut.set()

    async def _cut(self, job: jobs.ClipRow, stop_cut: asyncio.Event) -> ClipResult:
        channel = job.channel or ""
        tmp = Path(tempfile.mkdtemp(prefix="chatpulse-clip-"))
        try:
            out = tmp / "clip.mp4"
            media = "segments"
            try:
                plan = await plan_from_segments(
                    self.settings.media_path,
                    channel,
                    job.start_at,
                    job.end_at,
                    ffprobe=self.ffprobe,
                    settle_s=self.config.segment_settle_s,
                    now=time.time(),
                )
            except MediaError:
                vod = await jobs.find_vod(self.conn, channel, job.start_at, job.end_at)
                if vod is None:
                    raise
                offset, length = plan_vod(vod.start_at, vod.duration_s, job.start_at, job.end_at)
                media, real_start = "vod", vod.start_at + timedelta(seconds=offset)
                await cut_vod(
                    vod.location,
                    offset,
                    length,
                    out,
                    ffmpeg=self.settings.ffmpeg,
                    reencode=job.reencode,
                    stop=stop_cut,
                    timeout_s=self.config.ffmpeg_timeout_s,
                )
            else:
                real_start = plan.start
                await cut_segments(
                    plan,
                    out,
                    ffmpeg=self.settings.ffmpeg,
                    reencode=job.reencode,
                    stop=stop_cut,
                    timeout_s=self.config.ffmpeg_timeout_s,
                )
            info = await probe(self.ffprobe, str(out))
            if info.duration_s <= 0 or not (info.has_video or info.has_audio):
                raise CutError(f"the cut is empty (duration {info.duration_s:.3f} s)")
            thumb_loc: str | None = None
            if info.has_video:
                peak = (job.request or {}).get("peak_at")
                at = (
                    (datetime.fromisoformat(peak) - real_start).total_seconds()
                    if isinstance(peak, str)
                    else info.duration_s / 2
                )
                thumb = tmp / "thumb.jpg"
                await write_thumbnail(
                    self.settings.ffmpeg, out, thumb, min(max(at, 0.0), info.duration_s * 0.95)
                )
                thumb_loc = await self.storage.put(
                    thumb, clip_key(job.id, job.channel, job.start_at, ".jpg"), "image/jpeg"
                )
            location = await self.storage.put(
                out, clip_key(job.id, job.channel, job.start_at, ".mp4"), "video/mp4"
            )
            return ClipResult(location, thumb_loc, info.duration_s, media)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def process(self, job: jobs.ClipRow) -> str:
        """Run one claimed job to an outcome: done, retry, failed, waiting, released, lost."""
        log_extra: dict[str, Any] = {"clip_id": job.id, "channel": job.channel}
        if job.attempts > self.config.max_attempts:
            await jobs.fail_job(self.conn, job.id, self.id, "too many attempts", final=True)
            return "failed"
        lost, stop_cut = asyncio.Event(), asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(job.id, lost, stop_cut))
        grace = asyncio.create_task(self._grace(stop_cut))
        started = time.monotonic()
        try:
            result = await self._cut(job, stop_cut)
        except MediaNotReady as exc:
            late = datetime.now(UTC) - job.end_at > timedelta(seconds=self.config.media_wait_s)
            if late:
                await jobs.fail_job(self.conn, job.id, self.id, str(exc), final=True)
                return "failed"
            await jobs.release_job(
                self.conn, job.id, self.id, str(exc), min(1.0, self.config.worker_poll_s)
            )
            return "waiting"
        except CutStopped:
            if lost.is_set():
                return "lost"
            await jobs.release_job(self.conn, job.id, self.id, "worker shut down", 0.0)
            return "released"
        except MediaError as exc:
            await jobs.fail_job(self.conn, job.id, self.id, str(exc), final=True)
            log.warning("clip failed: no media", extra={**log_extra, "error": str(exc)})
            return "failed"
        except Exception as exc:  # CutError, StorageError, anything unforeseen: retry
            final = job.attempts >= self.config.max_attempts
            delay = wait_seconds(self.retry, job.attempts)
            await jobs.fail_job(
                self.conn,
                job.id,
                self.id,
                f"{type(exc).__name__}: {exc}",
                final=final,
                delay_s=delay,
            )
            log.warning(
                "clip attempt failed",
                extra={**log_extra, "error": str(exc), "final": final, "retry_in_s": delay},
            )
            return "failed" if final else "retry"
        finally:
            beat.cancel()
            grace.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            with contextlib.suppress(asyncio.CancelledError):
                await grace
        if lost.is_set() or not await jobs.finish_job(
            self.conn,
            job.id,
            self.id,
            location=result.location,
            thumbnail=result.thumbnail,
            duration_s=result.duration_s,
            media=result.media,
        ):
            return "lost"
        elapsed = time.monotonic() - started
        self.metrics.cut_seconds.labels(result.media).observe(elapsed)
        log.info(
            "clip done",
            extra={
                **log_extra,
                "location": result.location,
                "duration_s": round(result.duration_s, 3),
                "cut_s": round(elapsed, 3),
            },
        )
        token = self.settings.grafana_token
        await annotate_clip(
            self.settings.grafana_url,
            token.get_secret_value() if token else None,
            clip_id=job.id,
            channel=job.channel,
            start=job.start_at,
            end=job.end_at,
            location=result.location,
        )
        return "done"

    async def pending(self) -> int:
        pending = await jobs.pending_jobs(self.conn)
        await self.conn.commit()
        return pending

    async def run(self, until_idle: bool) -> WorkerTotals:
        while not self.shutdown.is_set():
            job = await jobs.claim_job(self.conn, self.id, self.config.stall_after_s)
            if job is None:
                if until_idle and await self.pending() == 0:
                    break
                await wait_or_stop(self.shutdown, self.config.worker_poll_s)
                continue
            outcome = await self.process(job)
            self.metrics.jobs.labels(outcome).inc()
            if outcome == "done":
                self.totals.done += 1
                self.totals.clip_ids.append(job.id)
            elif outcome == "retry":
                self.totals.retried += 1
            elif outcome == "failed":
                self.totals.failed += 1
            elif outcome == "released":
                self.totals.released += 1
        return self.totals


async def run_worker(
    settings: Settings,
    conninfo: str,
    *,
    config: ClipperConfig | None = None,
    registry: CollectorRegistry | None = None,
    stop: asyncio.Event | None = None,
    until_idle: bool = False,
    worker_id: str | None = None,
    storage: Storage | None = None,
) -> WorkerTotals:
    """Work jobs until ``stop`` is set (or, ``until_idle``, until no job is
    queued or running).  Returns what this worker did.  Raises DatabaseError when the
    database cannot be reached at start."""
    config = config or clipper_config(settings)
    metrics = ClipperMetrics(registry or CollectorRegistry())
    shutdown = stop or asyncio.Event()
    storage = storage or open_storage(settings.clip_target, settings.s3_endpoint_url)
    conn = await connect(conninfo)
    # Autocommit: each beat is one statement.  In a transaction, a beat cancelled between its
    # UPDATE and its COMMIT (the job ends, process() cancels it) left the connection idle in
    # transaction holding the job's row lock, and finish_job then waited for it for ever.
    hb_conn = await connect(conninfo, autocommit=True)
    wid = worker_id or new_worker_id()
    log.info("clip worker started", extra={"worker": wid})
    try:
        worker = _Worker(settings, conn, hb_conn, config, metrics, storage, wid, shutdown)
        return await worker.run(until_idle)
    finally:
        await conn.close()
        await hb_conn.close()
        log.info("clip worker stopped", extra={"worker": wid})
