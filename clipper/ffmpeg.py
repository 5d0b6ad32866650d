"""FFmpeg and ffprobe as asyncio subprocesses: cut, thumbnail, probe, stop cleanly.

Which FFmpeg: :func:`find_ffmpeg`, one rule for every command (demo, clipper, recorder, doctor):
the ``ffmpeg`` setting when it names an executable (a path, or a name on ``PATH``), else the
binary of the ``imageio-ffmpeg`` wheel (a base dependency), so that a machine without FFmpeg
needs nothing but Python.  :func:`require_ffmpeg` stops a command in one line when there is
none.  imageio-ffmpeg ships no ffprobe: without one, :func:`probe` and :func:`probe_segment`
read the same facts from FFmpeg itself (its input header and a stream-copy ``framecrc``).

A run can be stopped through an :class:`asyncio.Event`: FFmpeg first gets ``q`` on its stdin
(its own clean stop: the output is finalised), then SIGINT, then SIGKILL.  Stream copy cuts
start on the keyframe at or before the wanted start (the clip is at most one keyframe
interval longer); re-encoding is frame-accurate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatpulse.core.errors import ConfigError, CutError, CutStopped
from clipper.segments import CutPlan

if TYPE_CHECKING:
    from chatpulse.core.settings import Settings

__all__ = [
    "CUT_NICENESS",
    "MediaInfo",
    "cut_segments",
    "cut_vod",
    "ffprobe_for",
    "find_ffmpeg",
    "probe",
    "probe_segment",
    "require_ffmpeg",
    "run_ffmpeg",
    "stop_process",
    "write_thumbnail",
]

_ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-b:a", "160k"]
_STOP_WAIT_S = 5.0

#: added to the worker's niceness for FFmpeg and ffprobe: cuts are batch work and must not
#: take the CPU from the webhook, which Grafana waits on (on 2 cores two cuts slowed it 2x)
CUT_NICENESS = 10


def _lower_priority(pid: int, niceness: int) -> None:
    # Reniced right after the spawn rather than in a preexec_fn: that would force a fork
    # instead of posix_spawn and is unsafe with threads.  The child runs its first
    # milliseconds at our priority, which does not matter.  Only ever raised (an
    # unprivileged user cannot lower it back), never fatal: a cut at full priority still works.
    if niceness <= 0:
        return
    with contextlib.suppress(OSError):
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        os.setpriority(os.PRIO_PROCESS, pid, target)


#: The ``ffmpeg`` setting's default: a name looked up on PATH, with imageio-ffmpeg's as fallback.
DEFAULT_FFMPEG = "ffmpeg"


async def _spawn(
    args: list[str], stdin: int, stdout: int, niceness: int
) -> asyncio.subprocess.Process:
    """Start ``args`` (the executable first) with stderr piped, ``niceness`` below our
    priority.  Raises :class:`CutError` when it cannot be started."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=stdin, stdout=stdout, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise CutError(f"cannot run {args[0]}: {exc}") from exc
    _lower_priority(proc.pid, niceness)
    return proc


def find_ffmpeg(configured: str = DEFAULT_FFMPEG) -> str | None:
    """The FFmpeg executable to run, or ``None`` when there is none.

    ``configured`` (the ``ffmpeg`` setting) when it is an executable path or a name on PATH;
    otherwise, for the default name only, the binary of the ``imageio-ffmpeg`` wheel (a path
    set on purpose that does not exist is not replaced by another FFmpeg).
    """
    found = shutil.which(configured)
    if found is not None:
        return found
    if configured != DEFAULT_FFMPEG:
        return None
    try:
        import imageio_ffmpeg

        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        return None
    return exe if shutil.which(exe) is not None else None


def require_ffmpeg(settings: Settings) -> Settings:
    """``settings`` with ``ffmpeg`` resolved by :func:`find_ffmpeg` to the executable's path.

    Raises :class:`ConfigError` (one line, naming the setting) when no FFmpeg can be found.
    """
    exe = find_ffmpeg(settings.ffmpeg)
    if exe is None:
        raise ConfigError(
            f"ffmpeg (CHATPULSE_FFMPEG): no FFmpeg found ({settings.ffmpeg!r} is not an "
            "executable, and the imageio-ffmpeg wheel has none for this machine); install "
            "FFmpeg (e.g. apt-get install ffmpeg) or set CHATPULSE_FFMPEG to its path"
        )
    return settings.model_copy(update={"ffmpeg": exe})


def ffprobe_for(ffmpeg: str) -> str:
    """The ffprobe beside ``ffmpeg``, else ``ffprobe`` on PATH, else ``ffmpeg`` itself.

    :func:`probe` and :func:`probe_segment` take either: given FFmpeg, they read its output.
    """
    path = Path(ffmpeg)
    if path.name.startswith("ffmpeg") and path.parent != Path(""):
        beside = path.with_name(path.name.replace("ffmpeg", "ffprobe", 1))
        if shutil.which(str(beside)) is not None:
            return str(beside)
    found = shutil.which("ffprobe")
    if found is not None:
        return found
    return find_ffmpeg(ffmpeg) or ffmpeg


def _is_ffprobe(tool: str) -> bool:
    return Path(tool).name.startswith("ffprobe")


async def stop_process(proc: asyncio.subprocess.Process, *, quit_key: bool = True) -> None:
    """Stop an FFmpeg process cleanly: 'q' on stdin (or SIGINT), then SIGINT, then SIGKILL.

    'q' and SIGINT are FFmpeg's own quit: it flushes and writes the trailer (moov atom).
    """
    if proc.returncode is not None:
        return
    if quit_key and proc.stdin is not None:
        with contextlib.suppress(OSError, RuntimeError):
            proc.stdin.write(b"q")
            await proc.stdin.drain()
    else:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    for sig in (signal.SIGINT, signal.SIGKILL):
        try:
            await asyncio.wait_for(proc.wait(), _STOP_WAIT_S)
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
    await proc.wait()


async def run_ffmpeg(
    args: list[str],
    *,
    stop: asyncio.Event | None = None,
    timeout_s: float = 600.0,
    niceness: int = CUT_NICENESS,
) -> None:
    """Run ``args`` (the executable first) to completion, ``niceness`` below our priority.

    Raises :class:`CutStopped` when ``stop`` was set first (FFmpeg was stopped cleanly), and
    :class:`CutError` with the tail of stderr on a non-zero exit or after ``timeout_s``.
    """
    proc = await _spawn(args, asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL, niceness)
    assert proc.stderr is not None
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    waiter = asyncio.ensure_future(proc.wait())
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        pending = {waiter} | ({stopper} if stopper else set())
        done, _ = await asyncio.wait(
            pending, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            await stop_process(proc)
            if stopper is not None and stopper in done:
                raise CutStopped("FFmpeg stopped for shutdown")
            raise CutError(f"FFmpeg ran longer than {timeout_s:.0f} s")
    except asyncio.CancelledError:
        await stop_process(proc)
        raise
    finally:
        if stopper is not None:
            stopper.cancel()
    err = (await stderr_task).decode(errors="replace")
    if proc.returncode != 0:
        raise CutError(f"{Path(args[0]).name} exited {proc.returncode}: {err[-1500:].strip()}")


async def _run_capture(args: list[str], timeout_s: float = 60.0) -> tuple[int, bytes, bytes]:
    proc = await _spawn(args, asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE, CUT_NICENESS)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CutError(f"{args[0]} timed out") from None
    return proc.returncode or 0, out, err


async def _run_json(args: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    code, out, err = await _run_capture(args, timeout_s)
    if code != 0:
        raise CutError(f"ffprobe failed: {err.decode(errors='replace')[-500:].strip()}")
    data: dict[str, Any] = json.loads(out or b"{}")
    return data


_DURATION = re.compile(
    r"^\s*Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)(?:, start: (-?[\d.]+))?", re.M
)
_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio):", re.M)


async def _ffmpeg_header(ffmpeg: str, path: str) -> MediaInfo:
    """What ``ffmpeg -i path`` prints about its input (no output given: it exits 1 after it)."""
    _, _, raw = await _run_capture([ffmpeg, "-hide_banner", "-nostdin", "-i", path])
    err = raw.decode(errors="replace")
    m = _DURATION.search(err)
    if m is None or m.group(1) is None:
        tail = err.strip().splitlines()[-1:] or ["no output"]
        raise CutError(f"FFmpeg found no duration in {Path(path).name}: {tail[0]}")
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    kinds = set(_STREAM.findall(err))
    return MediaInfo(
        duration_s=duration,
        start_time=float(m.group(4) or 0.0),
        has_video="Video" in kinds,
        has_audio="Audio" in kinds,
    )


async def _ffmpeg_keyframes(ffmpeg: str, path: str) -> tuple[float, ...]:
    """The first video stream's keyframe times, from a stream copy into ``framecrc``."""
    args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-copyts", "-i", path]
    code, out, err = await _run_capture(
        [*args, "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    )
    if code != 0:
        raise CutError(f"FFmpeg failed: {err.decode(errors='replace')[-500:].strip()}")
    timebase = Fraction(1, 90000)
    keys = []
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("#tb 0:"):
            timebase = Fraction(line.split(":", 1)[1].strip())
            continue
        fields = [f.strip() for f in line.split(",")]
        if line.startswith("#") or len(fields) < 6 or fields[0] != "0":
            continue
        flags = next((f[2:] for f in fields[6:] if f.startswith("F=")), None)
        if flags is None or int(flags, 16) & 1:  # no F=: the key flag alone
            keys.append(float(int(fields[2]) * timebase))
    return tuple(sorted(keys))


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What ffprobe says about a file."""

    duration_s: float
    start_time: float
    has_video: bool
    has_audio: bool
    keyframes: tuple[float, ...] = ()


async def probe(ffprobe: str, path: str) -> MediaInfo:
    """Duration, start time and streams of ``path``; raises :class:`CutError`.

    ``ffprobe``: ffprobe, or FFmpeg where there is none (see :func:`ffprobe_for`).
    """
    if not _is_ffprobe(ffprobe):
        return await _ffmpeg_header(ffprobe, path)
    data = await _run_json(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "format=duration,start_time:stream=codec_type",
            "-of",
            "json",
            path,
        ]
    )
    fmt = data.get("format") or {}
    kinds = {s.get("codec_type") for s in data.get("streams") or []}
    try:
        duration = float(fmt.get("duration", "nan"))
    except ValueError:
        duration = float("nan")
    if duration != duration:  # NaN: no duration (a broken or empty file)
        raise CutError(f"ffprobe found no duration in {Path(path).name}")
    return MediaInfo(
        duration_s=duration,
        start_time=float(fmt.get("start_time") or 0.0),
        has_video="video" in kinds,
        has_audio="audio" in kinds,
    )


async def probe_segment(ffprobe: str, path: Path) -> MediaInfo:
    """Like :func:`probe`, plus the video keyframes' timestamps (for stream-copy cuts)."""
    if not _is_ffprobe(ffprobe):
        info = await _ffmpeg_header(ffprobe, str(path))
        keys = await _ffmpeg_keyframes(ffprobe, str(path)) if info.has_video else ()
        return MediaInfo(info.duration_s, info.start_time, bool(keys), True, keys)
    data = await _run_json(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
            "-show_frames",
            "-show_entries",
            "format=duration,start_time:frame=pts_time",
            "-of",
            "json",
            str(path),
        ]
    )
    fmt = data.get("format") or {}
    frames = [float(f["pts_time"]) for f in data.get("frames") or [] if "pts_time" in f]
    return MediaInfo(
        duration_s=float(fmt.get("duration") or 0.0),
        start_time=float(fmt.get("start_time") or 0.0),
        has_video=bool(frames),
        has_audio=True,
        keyframes=tuple(sorted(frames)),
    )


def _quote(path: Path) -> str:
    # ffconcat quoting: inside '…', a quote is written '\''.
    return "'" + str(path.resolve()).replace("'", "'\\''") + "'"


async def cut_segments(
    plan: CutPlan,
    out: Path,
    *,
    ffmpeg: str,
    reencode: bool,
    stop: asyncio.Event | None = None,
    timeout_s: float = 600.0,
) -> None:
    """Cut ``plan`` into the MP4 ``out`` (faststart) through the concat demuxer."""
    ffprobe = ffprobe_for(ffmpeg)
    first, last = plan.parts[0], plan.parts[-1]
    first_info = await probe_segment(ffprobe, first.path)
    last_info = first_info if last is first else await probe_segment(ffprobe, last.path)
    lines = ["ffconcat version 1.0"]
    seek_s = 0.0
    for part in plan.parts:
        lines.append(f"file {_quote(part.path)}")
        info = first_info if part is first else last_info
        if part is first and part.inpoint is not None:
            wanted = info.start_time + part.inpoint
            if reencode:
                # Decode from the segment's start and drop frames up to the exact start.
                seek_s = part.inpoint
            else:
                # Start on the keyframe at or before the wanted start: a copy cannot start
                # between keyframes without broken pictures ([MEDIA], concat demuxer).
                keys = [k for k in info.keyframes if k <= wanted + 1e-3]
                lines.append(f"inpoint {keys[-1] if keys else wanted:.6f}")
        if part is last and part.outpoint is not None:
            # Re-encoding ends on -t; the outpoint only spares reading further (with a margin).
            margin = 0.5 if reencode else 0.0
            lines.append(f"outpoint {info.start_time + part.outpoint + margin:.6f}")
    list_file = out.with_suffix(".ffconcat")
    list_file.write_text("\n".join(lines) + "\n")
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    args += ["-f", "concat", "-safe", "0", "-i", str(list_file)]
    if reencode:
        args += ["-ss", f"{seek_s:.6f}", "-t", f"{plan.duration_s:.6f}", *_ENCODE]
    else:
        args += ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(out)]
    try:
        await run_ffmpeg(args, stop=stop, timeout_s=timeout_s)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(list_file)


async def cut_vod(
    location: str,
    offset_s: float,
    length_s: float,
    out: Path,
    *,
    ffmpeg: str,
    reencode: bool,
    stop: asyncio.Event | None = None,
    timeout_s: float = 600.0,
) -> None:
    """Cut ``length_s`` seconds from ``offset_s`` of a VOD file or URL (HLS included)."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    args += ["-ss", f"{offset_s:.6f}", "-i", location, "-t", f"{length_s:.6f}"]
    args += _ENCODE if reencode else ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(out)]
    await run_ffmpeg(args, stop=stop, timeout_s=timeout_s)


async def write_thumbnail(ffmpeg: str, clip: Path, out: Path, at_s: float) -> None:
    """Write one JPEG frame of ``clip`` at ``at_s`` seconds."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
    args += ["-ss", f"{max(at_s, 0.0):.3f}", "-i", str(clip), "-frames:v", "1", "-q:v", "3"]
    args += ["-f", "image2", str(out)]
    await run_ffmpeg(args, timeout_s=60.0)
