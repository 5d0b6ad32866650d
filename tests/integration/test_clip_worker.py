"""The clip worker on the real database with the real FFmpeg: claim, cut, retry, wait,
recover a dead worker's job, shut down cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatpulse.core.db import connect
from chatpulse.core.settings import Settings, load_settings
from clipper.config import ClipperConfig, clipper_config
from clipper.jobs import enqueue_clip
from clipper.testsource import generate_segments
from clipper.worker import run_worker
from tests.helpers import wait_until

T0 = datetime(2024, 1, 6, 16, 20, 0, tzinfo=UTC)
FAST = {
    "worker_poll_s": 0.05,
    "heartbeat_s": 0.3,
    "stall_after_s": 1.5,
    "retry_base_s": 0.05,
    "segment_settle_s": 0.0,
    "shutdown_grace_s": 0.3,
}


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def make_settings(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "media_dir": tmp_path / "media",
            "clip_storage": str(tmp_path / "clips"),
            **extra,
        }
    )


def config(settings: Settings, **over: Any) -> ClipperConfig:
    return replace(clipper_config(settings), **{**FAST, **over})


def enqueue(
    db_url: str, start: float, end: float, *, reencode: bool = False, key: str = "k"
) -> int:
    async def go() -> int:
        conn = await connect(db_url)
        try:
            row, _ = await enqueue_clip(
                conn,
                dedup_key=key,
                channel="nymn",
                trigger="manual",
                start_at=at(start),
                end_at=at(end),
                reencode=reencode,
                request={"peak_at": at((start + end) / 2).isoformat()},
            )
            return row.id
        finally:
            await conn.close()

    return asyncio.run(go())


def clip(db_url: str, clip_id: int) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        cur = conn.execute("SELECT * FROM chat.clips WHERE id = %s", (clip_id,))
        names = [d.name for d in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def work(settings: Settings, db_url: str, cfg: ClipperConfig, **kw: Any) -> Any:
    return asyncio.run(run_worker(settings, db_url, config=cfg, until_idle=True, **kw))


def test_worker_cuts_a_queued_clip_and_records_the_result(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    generate_segments(settings.media_path / "nymn", T0, 14)
    clip_id = enqueue(db_url, 2.5, 10.5)
    totals = work(settings, db_url, config(settings))
    assert totals.done == 1
    row = clip(db_url, clip_id)
    assert row["status"] == "done" and row["attempts"] == 1 and row["media"] == "segments"
    assert 8.0 <= row["duration_s"] <= 9.05
    location = Path(row["location"])
    assert location == tmp_path / "clips" / "nymn" / f"20240106T162002Z-clip{clip_id}.mp4"
    assert location.stat().st_size > 1000
    assert Path(row["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"
    assert row["finished_at"] is not None and row["error"] is None


def test_failures_are_retried_with_backoff_then_fail(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, ffmpeg=str(tmp_path / "no-such-ffmpeg"))
    generate_segments(settings.media_path / "nymn", T0, 6)
    clip_id = enqueue(db_url, 1, 4)
    started = time.monotonic()
    totals = work(settings, db_url, config(settings, max_attempts=3, retry_base_s=0.2))
    assert (totals.retried, totals.failed, totals.done) == (2, 1, 0)
    assert time.monotonic() - started >= 0.2 + 0.4  # backoff 0.2 s, then 0.4 s
    row = clip(db_url, clip_id)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert "cannot run" in row["error"]


def test_no_media_fails_at_once(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    clip_id = enqueue(db_url, 1, 4)
    work(settings, db_url, config(settings))
    row = clip(db_url, clip_id)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "no media" in row["error"]


def test_a_clip_waits_while_its_end_is_being_recorded(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    segs = generate_segments(settings.media_path / "nymn", T0, 8)
    clip_id = enqueue(db_url, 3, 12)  # ends after the newest segment began
    # the newest segment counts as still open; our 2024 clock is long past, so wait forever
    cfg = config(settings, segment_settle_s=3600, media_wait_s=1e9)

    async def some_time() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(settings, db_url, config=cfg, stop=stop))
        await asyncio.sleep(1.0)
        stop.set()
        return await task

    totals = asyncio.run(some_time())
    assert totals.done == 0
    row = clip(db_url, clip_id)
    assert row["status"] == "queued" and row["attempts"] == 0
    assert "not reached" in row["error"]
    # The recorder stops: the newest segment settles, the clip is cut up to the recording's end.
    old = time.time() - 7200
    os.utime(segs[-1], (old, old))
    work(settings, db_url, cfg)
    row = clip(db_url, clip_id)
    assert row["status"] == "done" and row["attempts"] == 1
    assert 4.5 <= row["duration_s"] <= 6.1


_WORKER = """
import asyncio, json, sys
from dataclasses import replace
from chatpulse.core.logs import configure_logging
from chatpulse.core.settings import load_settings
from clipper.config import ClipperConfig
from clipper.worker import run_worker
from chatpulse.app.signals import stop_on_signals
opts = json.loads(sys.argv[1])
configure_logging("info", "json")
settings = load_settings(overrides=opts["settings"])
config = ClipperConfig(**opts["config"])
async def main():
    with stop_on_signals() as stop:
        await run_worker(settings, opts["url"], config=config, worker_id=opts["id"], stop=stop)
asyncio.run(main())
"""


def spawn_worker(
    settings: Settings, db_url: str, cfg: ClipperConfig, worker_id: str
) -> subprocess.Popen[bytes]:
    opts = {
        "settings": {
            "database_url": db_url,
            "data_dir": str(settings.data_dir),
            "media_dir": str(settings.media_path),
            "clip_storage": settings.clip_target,
            "ffmpeg": settings.ffmpeg,
        },
        "config": asdict(cfg),
        "url": db_url,
        "id": worker_id,
    }
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, json.dumps(opts)],
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def wrapper(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_killed_workers_job_is_finished_once_by_another(db_url: str, tmp_path: Path) -> None:
    slow = wrapper(tmp_path, "slow-ffmpeg", 'sleep 60; exec ffmpeg "$@"')
    settings = make_settings(db_url, tmp_path)
    generate_segments(settings.media_path / "nymn", T0, 10)
    clip_id = enqueue(db_url, 1, 8)
    doomed = spawn_worker(
        make_settings(db_url, tmp_path, ffmpeg=slow), db_url, config(settings), "doomed"
    )
    try:
        wait_until(lambda: clip(db_url, clip_id)["worker"] == "doomed")
        assert clip(db_url, clip_id)["status"] == "running"
        time.sleep(0.5)  # mid-job: FFmpeg (slowed) is running
        os.killpg(doomed.pid, signal.SIGKILL)
    finally:
        doomed.wait()
        assert doomed.stderr is not None
        doomed.stderr.close()
    totals = work(settings, db_url, config(settings), worker_id="rescuer")
    assert totals.done == 1
    row = clip(db_url, clip_id)
    assert (row["status"], row["worker"], row["attempts"]) == ("done", "rescuer", 2)
    assert list((tmp_path / "clips" / "nymn").glob("*.mp4")) == [Path(row["location"])]


def test_shutdown_stops_ffmpeg_cleanly_and_gives_the_job_back(db_url: str, tmp_path: Path) -> None:
    # -re: FFmpeg reads at the media's own rate, so a 30 s re-encode takes 30 s.
    realtime = wrapper(tmp_path, "rt-ffmpeg", 'exec ffmpeg -re "$@"')
    settings = make_settings(db_url, tmp_path, ffmpeg=realtime)
    generate_segments(settings.media_path / "nymn", T0, 34)
    clip_id = enqueue(db_url, 1, 31, reencode=True)
    proc = spawn_worker(settings, db_url, config(settings), "leaving")
    try:
        wait_until(lambda: clip(db_url, clip_id)["status"] == "running")
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 8
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
        proc.stderr.close()
    row = clip(db_url, clip_id)
    assert (row["status"], row["attempts"], row["error"]) == ("queued", 0, "worker shut down"), log
    # no FFmpeg left behind in the worker's session
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_without_segments_a_registered_vod_is_cut(db_url: str, tmp_path: Path) -> None:
    from clipper.jobs import register_vod

    settings = make_settings(db_url, tmp_path)
    segs = generate_segments(tmp_path / "gen", T0, 12)
    vod = tmp_path / "vod.ts"
    vod.write_bytes(b"".join(p.read_bytes() for p in segs))

    async def add() -> None:
        conn = await connect(db_url)
        try:
            await register_vod(
                conn,
                channel="nymn",
                platform="twitch",
                location=str(vod),
                start_at=T0,
                duration_s=12.0,
            )
        finally:
            await conn.close()

    asyncio.run(add())
    clip_id = enqueue(db_url, 4, 9, reencode=True)
    work(settings, db_url, config(settings))
    row = clip(db_url, clip_id)
    assert (row["status"], row["media"]) == ("done", "vod")
    assert row["duration_s"] == pytest.approx(5.0, abs=0.05)
