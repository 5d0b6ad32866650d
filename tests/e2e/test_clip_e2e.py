"""From real chat to a clip file through the CLI: replay → hype moment → Grafana-shaped,
signed webhook → ``chatpulse clipper serve`` + ``chatpulse clipper worker`` → an MP4 of the
right window; plus ``clipper add-vod`` and ``record`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from clipper.testsource import generate_segments
from clipper.webhook import sign_body
from tests.e2e.cli import chatpulse_exe, run_cli
from tests.helpers import free_port, write_irc_log

SECRET = "e2e-secret"
TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
    return subprocess.Popen(
        [*chatpulse_exe(), *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out + err


def test_alert_for_a_replayed_hype_moment_cuts_the_right_window(
    db_url: str, tmp_path: Path
) -> None:
    log_file = write_irc_log(tmp_path / "nymn.log")
    env = {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "data"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
        "CHATPULSE_MEDIA_DIR": str(tmp_path / "media"),
        "CHATPULSE_CLIP_STORAGE": str(tmp_path / "clips"),
        "CHATPULSE_WEBHOOK_HMAC_SECRET": SECRET,
        "CHATPULSE_WEBHOOK_TOKEN": TOKEN,
        "CHATPULSE_METRICS_PORT": "0",
    }
    assert run_cli("replay", str(log_file), env=env).returncode == 0
    # The detector is another component: stand in for it with the burst's densest 10 s.
    with psycopg.connect(db_url) as conn:
        cid, peak, n = conn.execute(
            "SELECT channel_id, to_timestamp(floor(extract(epoch FROM sent_at) / 10) * 10 + 5), "
            "count(*) FROM chat.messages GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min) VALUES (%s, %s, %s, %s, 4.2, %s, 20)",
            (cid, peak - timedelta(seconds=30), peak, peak + timedelta(seconds=30), n * 6),
        )
    assert (
        datetime(2024, 1, 6, 16, 19, tzinfo=UTC) < peak < datetime(2024, 1, 6, 16, 28, tzinfo=UTC)
    )
    generate_segments(
        tmp_path / "media" / "nymn", peak - timedelta(seconds=40), 70, segment_s=2, keyint_s=1
    )
    port = free_port()
    api = spawn("clipper", "serve", "--port", str(port), env=env)
    worker = spawn("clipper", "worker", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.1)
        starts = (peak + timedelta(seconds=45)).isoformat().replace("+00:00", "Z")
        body = json.dumps(
            {
                "receiver": "chatpulse-clipper",
                "status": "firing",
                "orgId": 1,
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {
                            "alertname": "ChatHype",
                            "grafana_folder": "chatpulse",
                            "channel": "nymn",
                        },
                        "annotations": {"summary": "Hype in nymn"},
                        "startsAt": starts,
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://grafana:3000/alerting/grafana/hype/view",
                        "fingerprint": "5a9f0c1e7b3d2a44",
                        "silenceURL": "",
                        "dashboardURL": "",
                        "panelURL": "",
                        "values": {"A": 4.2},
                        "valueString": "[ var='A' value=4.2 ]",
                    }
                ],
                "groupLabels": {},
                "commonLabels": {"alertname": "ChatHype"},
                "commonAnnotations": {},
                "externalURL": "http://grafana:3000/",
                "version": "1",
                "groupKey": "{}:{}",
                "truncatedAlerts": 0,
                "title": "[FIRING:1] ChatHype",
                "state": "alerting",
                "message": "",
            }
        ).encode()
        ts = int(time.time())
        r = httpx.post(
            f"{base}/webhooks/grafana",
            content=body,
            headers={
                "Content-Type": "application/json",
                **AUTH,
                "X-Grafana-Alerting-Signature": sign_body(SECRET, body, ts),
                "X-Grafana-Alerting-Timestamp": str(ts),
            },
        )
        assert r.status_code == 202, r.text
        clip_id = r.json()["queued"][0]["id"]
        while True:
            clip = httpx.get(f"{base}/clips/{clip_id}", headers=AUTH).json()
            if clip["status"] in ("done", "failed"):
                break
            assert worker.poll() is None and time.monotonic() < deadline + 60, clip
            time.sleep(0.2)
    finally:
        worker_rc, worker_log = stop(worker)
        api_rc, api_log = stop(api)
    assert clip["status"] == "done", (clip, worker_log)
    assert worker_rc == 0, worker_log
    assert "clip worker stopped: 1 done" in worker_log
    assert api_rc == 0, api_log
    assert clip["start_at"] == (peak - timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    assert clip["end_at"] == (peak + timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
    assert clip["hype_moment_id"] is not None
    assert 30.0 - 0.05 <= clip["duration_s"] <= 31.05
    location = Path(clip["location"])
    assert location.parent == tmp_path / "clips" / "nymn" and location.suffix == ".mp4"
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            str(location),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(float(probe.stdout) - clip["duration_s"]) < 0.01


def test_add_vod_and_record_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    segs = generate_segments(tmp_path / "gen", datetime(2024, 1, 6, 16, 0, tzinfo=UTC), 4)
    vod = tmp_path / "vod.ts"
    vod.write_bytes(b"".join(p.read_bytes() for p in segs))
    env = {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "data"),
        "CHATPULSE_MEDIA_DIR": str(tmp_path / "media"),
    }
    r = run_cli(
        "clipper",
        "add-vod",
        str(vod),
        "--channel",
        "NymN",
        "--start",
        "2024-01-06T16:00:00Z",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT c.name, v.location, v.start_at, v.duration_s FROM chat.vods v "
            "JOIN chat.channels c ON c.id = v.channel_id"
        ).fetchone()
    assert row is not None and row[:3] == ("nymn", str(vod), datetime(2024, 1, 6, 16, tzinfo=UTC))
    assert row[3] is not None and abs(row[3] - 4.0) < 0.2
    bad = run_cli("clipper", "add-vod", str(vod), "--channel", "nymn", "--start", "16:00", env=env)
    assert bad.returncode == 2 and "--start" in bad.stderr

    rec = spawn(
        "record",
        "--channel",
        "teststream",
        "--url",
        "lavfi:testsrc=size=160x120:rate=25[out0];sine[out1]",
        env=env,
    )
    time.sleep(3.5)
    rec.send_signal(signal.SIGINT)
    out, err = rec.communicate(timeout=20)
    assert rec.returncode == 0, err
    assert "stopped after 1 session" in out
    assert list((tmp_path / "media" / "teststream").glob("2*Z.ts"))
