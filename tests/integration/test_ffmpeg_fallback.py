"""FFmpeg without FFmpeg on PATH: imageio-ffmpeg's binary, no ffprobe, one rule everywhere."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import imageio_ffmpeg
import pytest

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import load_settings
from clipper.ffmpeg import (
    ffprobe_for,
    find_ffmpeg,
    probe,
    probe_segment,
    require_ffmpeg,
)
from clipper.testsource import generate_segments
from tests.e2e.cli import run_cli

WHEEL_FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture
def no_ffmpeg_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH holds only an empty directory: no ffmpeg, no ffprobe."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    return str(empty)


def test_wheel_binary_is_used_when_path_has_none(no_ffmpeg_on_path: str) -> None:
    assert shutil.which("ffmpeg") is None
    exe = find_ffmpeg()
    assert exe is not None and Path(exe).samefile(WHEEL_FFMPEG)
    settings = require_ffmpeg(load_settings())
    assert Path(settings.ffmpeg).samefile(WHEEL_FFMPEG)
    assert ffprobe_for(settings.ffmpeg) == settings.ffmpeg  # no ffprobe: FFmpeg probes


def test_a_configured_path_that_does_not_exist_is_not_replaced(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "ffmpeg")
    assert find_ffmpeg(missing) is None
    with pytest.raises(ConfigError, match=r"CHATPULSE_FFMPEG") as err:
        require_ffmpeg(load_settings(overrides={"ffmpeg": missing}))
    assert "\n" not in str(err.value)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="compares with ffprobe")
def test_probe_through_ffmpeg_matches_ffprobe(tmp_path: Path) -> None:
    start = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)
    segment = generate_segments(tmp_path, start, 6.0, segment_s=6.0, ffmpeg=WHEEL_FFMPEG)[0]
    ffprobe = shutil.which("ffprobe")
    assert ffprobe is not None
    real = asyncio.run(probe_segment(ffprobe, segment))
    ours = asyncio.run(probe_segment(WHEEL_FFMPEG, segment))
    assert ours.keyframes == pytest.approx(real.keyframes, abs=1e-6) and len(ours.keyframes) >= 5
    assert ours.start_time == pytest.approx(real.start_time, abs=1e-6)
    assert ours.duration_s == pytest.approx(real.duration_s, abs=0.006)  # FFmpeg prints 1/100 s
    whole, whole_real = (
        asyncio.run(probe(WHEEL_FFMPEG, str(segment))),
        asyncio.run(probe(ffprobe, str(segment))),
    )
    assert (whole.has_video, whole.has_audio) == (whole_real.has_video, whole_real.has_audio)
    assert whole.duration_s == pytest.approx(whole_real.duration_s, abs=0.006)


def test_demo_without_any_ffmpeg_stops_in_one_line_before_work(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_cli(
        "demo",
        env={"CHATPULSE_DATA_DIR": str(data), "CHATPULSE_FFMPEG": str(tmp_path / "ffmpeg")},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "CHATPULSE_FFMPEG" in done.stderr and "[1/" not in done.stderr
    assert not (data / "postgres").exists()  # no work started


def test_demo_and_doctor_use_the_wheel_binary_without_path(
    db_url: str, tmp_path: Path, no_ffmpeg_on_path: str
) -> None:
    env = {
        "PATH": no_ffmpeg_on_path,
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
    }
    doctor = run_cli("doctor", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["ffmpeg"]["status"] == "ok", checks["ffmpeg"]
    assert "imageio_ffmpeg" in checks["ffmpeg"]["detail"]
    done = run_cli("demo", env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    clip = next(line for line in done.stdout.splitlines() if line.strip().startswith("clip "))
    mp4 = Path(clip.rsplit(": ", 1)[1])
    assert mp4.suffix == ".mp4" and mp4.stat().st_size > 10_000, clip
