"""Cutting with the real FFmpeg from generated wall-clock segments, VODs, and S3 storage."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from clipper.ffmpeg import CUT_NICENESS, cut_segments, cut_vod, probe, run_ffmpeg, write_thumbnail
from clipper.media import plan_from_segments
from clipper.storage import S3Storage, clip_key, open_storage
from clipper.testsource import generate_segments

T0 = datetime(2024, 1, 6, 16, 20, 0, tzinfo=UTC)
FPS = 25
KEYINT_S = 1.0


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    generate_segments(root / "nymn", T0, 20, segment_s=2, keyint_s=KEYINT_S, fps=FPS)
    return root


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def cut(media: Path, out: Path, start: float, end: float, *, reencode: bool) -> float:
    async def go() -> float:
        plan = await plan_from_segments(
            media, "nymn", at(start), at(end), ffprobe="ffprobe", settle_s=0, now=time.time()
        )
        assert len(plan.parts) > 1  # the window crosses segment boundaries
        await cut_segments(plan, out, ffmpeg="ffmpeg", reencode=reencode)
        return (await probe("ffprobe", str(out))).duration_s

    return asyncio.run(go())


def gray_frame(args: list[str]) -> bytes:
    return subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            *args,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout


def distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_stream_copy_across_boundaries_is_within_one_keyframe_interval(
    media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "copy.mp4"
    duration = cut(media, out, 3.3, 11.7, reencode=False)
    assert 8.4 - 0.05 <= duration <= 8.4 + KEYINT_S + 0.05
    data = out.read_bytes()
    assert -1 < data.find(b"moov") < data.find(b"mdat")  # faststart: the index comes first


def test_reencode_is_frame_exact_and_starts_on_the_right_frame(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "exact.mp4"
    duration = cut(media, out, 3.3, 11.7, reencode=True)
    assert duration == pytest.approx(8.4, abs=1 / FPS)
    # The clip's first picture is the source's picture at 3.3 s, not its neighbours.
    seg = media / "nymn" / "20240106T162002.023Z.ts"
    first = gray_frame(["-i", str(out)])
    offsets = {}
    for delta in (-2, 0, 2):
        t = 3.3 - 2.023 + delta / FPS
        offsets[delta] = distance(first, gray_frame(["-i", str(seg), "-ss", f"{t:.3f}"]))
    assert offsets[0] < offsets[-2] and offsets[0] < offsets[2]


def test_ffmpeg_runs_below_the_workers_priority(tmp_path: Path) -> None:
    # The child reads its own niceness after a pause (the renice follows the spawn).
    out = tmp_path / "nice.txt"
    script = f"sleep 0.3; cut -d' ' -f19 /proc/self/stat > {out}"
    asyncio.run(run_ffmpeg(["/bin/sh", "-c", script]))
    ours = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert int(out.read_text()) == min(19, ours + CUT_NICENESS)
    asyncio.run(run_ffmpeg(["/bin/sh", "-c", script], niceness=0))
    assert int(out.read_text()) == ours


def test_thumbnail_is_a_jpeg(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.mp4"
    cut(media, out, 1.0, 5.0, reencode=False)
    thumb = tmp_path / "t.jpg"
    asyncio.run(write_thumbnail("ffmpeg", out, thumb, 2.0))
    assert thumb.read_bytes()[:3] == b"\xff\xd8\xff"


def test_vod_cut_maps_wall_clock_to_media_time(media: Path, tmp_path: Path) -> None:
    vod = tmp_path / "vod.ts"
    files = sorted((media / "nymn").glob("*.ts"))
    vod.write_bytes(b"".join(f.read_bytes() for f in files))  # MPEG-TS concatenates
    out = tmp_path / "v.mp4"
    asyncio.run(cut_vod(str(vod), 6.0, 4.0, out, ffmpeg="ffmpeg", reencode=True))
    assert asyncio.run(probe("ffprobe", str(out))).duration_s == pytest.approx(4.0, abs=0.05)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_upload_to_s3_compatible_store(s3: str, media: Path, tmp_path: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="clips")
    out = tmp_path / "c.mp4"
    cut(media, out, 1.0, 5.0, reencode=False)
    storage = open_storage("s3://clips/highlights", s3)
    assert isinstance(storage, S3Storage)
    key = clip_key(7, "nymn", at(1), ".mp4")
    location = asyncio.run(storage.put(out, key, "video/mp4"))
    assert location == "s3://clips/highlights/nymn/20240106T162001Z-clip7.mp4"
    obj = client.get_object(Bucket="clips", Key="highlights/nymn/20240106T162001Z-clip7.mp4")
    assert obj["ContentType"] == "video/mp4"
    assert obj["Body"].read() == out.read_bytes()
    client.close()


def test_storage_keys_never_use_raw_names() -> None:
    assert clip_key(3, "../../etc", at(0), ".mp4") == "_/20240106T162000Z-clip3.mp4"
