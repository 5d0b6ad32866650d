"""Wall-clock segments from FFmpeg's test sources, for tests, benchmarks and demos.

:func:`generate_segments` renders ``testsrc`` video and a ``sine`` tone, cuts them into
segments like the recorder does, and names each file for the wall-clock moment its media
starts (``start`` plus its offset in the rendered timeline), so a past broadcast can be
simulated in a second.
"""

from __future__ import annotations

import csv
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from clipper.segments import format_segment_name

__all__ = ["generate_segments"]


def generate_segments(
    out_dir: Path,
    start: datetime,
    duration_s: float,
    *,
    segment_s: float = 2.0,
    keyint_s: float = 1.0,
    fps: int = 25,
    size: str = "160x120",
    ffmpeg: str = "ffmpeg",
) -> list[Path]:
    """Write segments covering ``[start, start + duration_s)`` into ``out_dir``; return them.

    Raises :class:`subprocess.CalledProcessError` when FFmpeg fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".gen"
    work.mkdir(exist_ok=True)
    gop = max(1, round(keyint_s * fps))
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate={fps}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            f"{duration_s:.3f}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-f",
            "segment",
            "-segment_time",
            f"{segment_s:g}",
            "-segment_format",
            "mpegts",
            "-segment_list",
            str(work / "list.csv"),
            "-segment_list_type",
            "csv",
            str(work / "seg%05d.ts"),
        ],
        check=True,
    )
    paths = []
    with (work / "list.csv").open() as fp:
        for name, seg_start, _end in csv.reader(fp):
            target = out_dir / format_segment_name(start + timedelta(seconds=float(seg_start)))
            (work / name).replace(target)
            paths.append(target)
    (work / "list.csv").unlink()
    work.rmdir()
    return paths
