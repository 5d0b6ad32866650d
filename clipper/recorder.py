"""``chatpulse record``: a rolling recording of a live stream, as wall-clock-named segments.

The input is pluggable (:func:`input_for`): a channel page or any URL Streamlink knows is piped
``streamlink --stdout URL best | ffmpeg -i pipe:0``; an HLS URL or a local file goes straight
into FFmpeg (a file is read at its native rate, ``-re``); ``lavfi:<graph>`` is an FFmpeg test
source (encoded, keyframe every second).  FFmpeg's segment muxer writes
``MEDIA_DIR/<channel>/%Y%m%dT%H%M%SZ.ts`` (``-strftime 1`` under ``TZ=UTC``: the name is the
moment the segment was opened, [MEDIA]).  Old segments are deleted by age, then by
total size.  When the stream ends the recorder retries with backoff (jittered,
:mod:`chatpulse.core.backoff`) until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chatpulse.core.backoff import retry_wait, wait_seconds
from chatpulse.core.waiting import wait_or_stop
from clipper.config import ClipperConfig
from clipper.ffmpeg import stop_process
from clipper.media import channel_dir, list_segments
from clipper.segments import plan_retention

__all__ = ["RecordInput", "input_for", "record_args", "run_recorder", "sweep_retention"]

# Between recording sessions (stream offline, network error): 1 s, 2 s, 4 s ... up to a minute.
_RESTART_WAIT = retry_wait(1.0, 60.0)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordInput:
    """How to feed FFmpeg: its input arguments, whether to encode, and an optional
    Streamlink command whose stdout is FFmpeg's stdin."""

    ffmpeg_input: list[str]
    encode: bool
    streamlink: list[str] | None = None


def _streamlink_exe() -> str:
    beside = Path(sys.executable).with_name("streamlink")
    return str(beside) if beside.exists() else (shutil.which("streamlink") or "streamlink")


def input_for(url: str | None, channel: str) -> RecordInput:
    """The input for ``url`` (None: the channel's Twitch page through Streamlink)."""
    if url is None:
        url = f"https://www.twitch.tv/{channel}"
    if url.startswith("lavfi:"):
        return RecordInput(["-re", "-f", "lavfi", "-i", url[len("lavfi:") :]], encode=True)
    if url.startswith("file://"):
        return RecordInput(["-re", "-i", url[len("file://") :]], encode=False)
    if "://" not in url:
        return RecordInput(["-re", "-i", url], encode=False)
    if url.split("?", 1)[0].endswith(".m3u8"):
        return RecordInput(["-i", url], encode=False)
    return RecordInput(
        ["-i", "pipe:0"],
        encode=False,
        streamlink=[_streamlink_exe(), "--stdout", "--loglevel", "warning", url, "best"],
    )


def record_args(ffmpeg: str, source: RecordInput, out_dir: Path, segment_s: float) -> list[str]:
    """FFmpeg's command line: the input, then the wall-clock segment muxer."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y", *source.ffmpeg_input]
    if source.encode:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"]
        args += ["-force_key_frames", "expr:gte(t,n_forced*1)", "-c:a", "aac"]
    else:
        args += ["-c", "copy"]
    args += ["-f", "segment", "-segment_time", f"{segment_s:g}", "-segment_format", "mpegts"]
    args += ["-reset_timestamps", "0", "-strftime", "1", str(out_dir / "%Y%m%dT%H%M%SZ.ts")]
    return args


def sweep_retention(directory: Path, now: datetime, max_age_s: float, max_bytes: int) -> int:
    """Delete old segments in ``directory``; returns how many were deleted."""
    entries = []
    for seg in list_segments(directory):
        with contextlib.suppress(FileNotFoundError):
            entries.append((seg.path, seg.start, seg.path.stat().st_size))
    doomed = plan_retention(entries, now, max_age_s, max_bytes)
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(doomed)


async def _stop_proc(proc: asyncio.subprocess.Process, quit_key: bool) -> None:
    await stop_process(proc, quit_key=quit_key)


async def _run_once(
    ffmpeg: str, source: RecordInput, out_dir: Path, segment_s: float, stop: asyncio.Event
) -> int | None:
    """One recording session; returns FFmpeg's exit code, or None when stopped."""
    env = {**os.environ, "TZ": "UTC"}
    args = record_args(ffmpeg, source, out_dir, segment_s)
    feeder: asyncio.subprocess.Process | None = None
    if source.streamlink is not None:
        read_fd, write_fd = os.pipe()
        try:
            feeder = await asyncio.create_subprocess_exec(
                *source.streamlink, stdout=write_fd, stdin=asyncio.subprocess.DEVNULL
            )
            proc = await asyncio.create_subprocess_exec(*args, stdin=read_fd, env=env)
        finally:
            os.close(read_fd)
            os.close(write_fd)
    else:
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE, env=env)
    waiter = asyncio.ensure_future(proc.wait())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopped = stop.is_set()
        await _stop_proc(proc, quit_key=feeder is None)
        return None if stopped else proc.returncode
    finally:
        stopper.cancel()
        if feeder is not None:
            with contextlib.suppress(ProcessLookupError):
                feeder.terminate()
            await feeder.wait()


async def _retention_loop(out_dir: Path, config: ClipperConfig, stop: asyncio.Event) -> None:
    interval = max(config.record_segment_s, 5.0)
    while not stop.is_set():
        deleted = await asyncio.to_thread(
            sweep_retention,
            out_dir,
            datetime.now(UTC),
            config.record_max_age_s,
            config.record_max_bytes,
        )
        if deleted:
            log.info("old segments deleted", extra={"dir": str(out_dir), "deleted": deleted})
        await wait_or_stop(stop, interval)


async def run_recorder(
    media_dir: Path,
    channel: str,
    url: str | None,
    *,
    ffmpeg: str,
    config: ClipperConfig,
    stop: asyncio.Event | None = None,
    max_restarts: int | None = None,
) -> int:
    """Record until ``stop`` is set; returns how many sessions ran.

    When the input ends (stream offline, network error) it starts again after a capped
    backoff; ``max_restarts`` bounds that (None: forever).
    """
    out_dir = channel_dir(media_dir, channel)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = input_for(url, channel)
    stop = stop or asyncio.Event()
    sweeper = asyncio.create_task(_retention_loop(out_dir, config, stop))
    sessions = 0
    try:
        while not stop.is_set():
            sessions += 1
            log.info("recording", extra={"channel": channel, "dir": str(out_dir)})
            code = await _run_once(ffmpeg, source, out_dir, config.record_segment_s, stop)
            if code is None:
                break
            log.warning("recording ended", extra={"channel": channel, "exit_code": code})
            if max_restarts is not None and sessions > max_restarts:
                break
            await wait_or_stop(stop, wait_seconds(_RESTART_WAIT, sessions))
    finally:
        stop.set()
        await sweeper
    return sessions
