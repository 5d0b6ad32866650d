"""The recorder with an FFmpeg test source as its input: wall-clock segments, clean stop,
retention."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clipper.config import ClipperConfig
from clipper.media import list_segments
from clipper.recorder import input_for, run_recorder, sweep_retention

SOURCE = "lavfi:testsrc=size=160x120:rate=25[out0];sine=frequency=440[out1]"


def test_recorder_writes_wall_clock_segments_and_stops_cleanly(tmp_path: Path) -> None:
    config = replace(ClipperConfig(), record_segment_s=1.0)

    async def record() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_recorder(tmp_path, "teststream", SOURCE, ffmpeg="ffmpeg", config=config, stop=stop)
        )
        await asyncio.sleep(4.0)
        stop.set()
        return await task

    began = datetime.now(UTC)
    assert asyncio.run(record()) == 1
    ended = datetime.now(UTC)
    segs = list_segments(tmp_path / "teststream")
    assert len(segs) >= 2
    for seg in segs:
        assert began - timedelta(seconds=1) <= seg.start <= ended
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                str(seg.path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert float(probe.stdout) > 0.2
    starts = [s.start for s in segs]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_retention_deletes_old_segments_but_not_the_newest(tmp_path: Path) -> None:
    now = datetime(2024, 1, 6, 17, 0, tzinfo=UTC)
    for minutes in (90, 60, 30, 1):
        name = (now - timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ.ts")
        (tmp_path / name).write_bytes(b"x" * 100)
    (tmp_path / "notes.txt").write_text("not a segment")
    assert sweep_retention(tmp_path, now, max_age_s=45 * 60, max_bytes=10**9) == 2
    assert sweep_retention(tmp_path, now, max_age_s=1e9, max_bytes=150) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20240106T165900Z.ts", "notes.txt"]


def test_inputs_are_pluggable() -> None:
    assert input_for("lavfi:testsrc", "c").encode is True
    assert input_for("/tmp/x.ts", "c").ffmpeg_input == ["-re", "-i", "/tmp/x.ts"]
    assert input_for("https://cdn/x/index.m3u8", "c").streamlink is None
    twitch = input_for(None, "nymn")
    assert twitch.streamlink is not None and "https://www.twitch.tv/nymn" in twitch.streamlink
