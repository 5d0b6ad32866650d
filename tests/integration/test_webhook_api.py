"""The clipper API over a real socket, on the real database: webhooks, manual clips, health."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from chatpulse.core.settings import Settings, load_settings
from clipper.api import create_app
from clipper.api.server import serve_in_thread
from clipper.config import clipper_config
from clipper.webhook import sign_body

SECRET = "hmac-secret"
TOKEN = "bearer-token"
SIG = "X-Grafana-Alerting-Signature"
TS = "X-Grafana-Alerting-Timestamp"


def make_settings(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "webhook_hmac_secret": SECRET,
            "webhook_token": TOKEN,
            **extra,
        }
    )


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[str]:
    settings = make_settings(db_url, tmp_path)
    config = replace(clipper_config(settings), webhook_max_body_bytes=64 * 1024)
    with serve_in_thread(create_app(settings, db_url, config=config)) as base:
        yield base


def alert(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "ChatHype", "grafana_folder": "chatpulse", "channel": "nymn"},
        "annotations": {"summary": "Hype in nymn"},
        "startsAt": "2024-01-06T16:25:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana:3000/alerting/grafana/hype/view",
        "fingerprint": "a1b2c3d4e5f60718",
        "silenceURL": "http://grafana:3000/alerting/silence/new",
        "dashboardURL": "",
        "panelURL": "",
        "values": {"A": 42.0, "C": 1.0},
        "valueString": "[ var='A' labels={channel=nymn} value=42 ]",
    }
    base.update(over)
    return base


def notification(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps(
        {
            "receiver": "chatpulse-clipper",
            "status": status,
            "orgId": 1,
            "alerts": list(alerts),
            "groupLabels": {"alertname": "ChatHype"},
            "commonLabels": {"alertname": "ChatHype"},
            "commonAnnotations": {},
            "externalURL": "http://grafana:3000/",
            "version": "1",
            "groupKey": '{}/{}:{alertname="ChatHype"}',
            "truncatedAlerts": 0,
            "title": "[FIRING:1] ChatHype",
            "state": "alerting",
            "message": "**Firing**",
        }
    ).encode()


def signed(body: bytes, *, ts: int | None = None, token: str = TOKEN) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        SIG: sign_body(SECRET, body, ts),
        TS: str(ts),
    }


def post(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/webhooks/grafana", content=body, headers=headers, timeout=10)


def clips(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT dedup_key, channel, trigger, status, start_at, end_at, hype_moment_id "
            "FROM chat.clips ORDER BY id"
        ).fetchall()


def test_signed_webhook_queues_one_clip_around_start_without_hype_moment(
    api: str, db_url: str
) -> None:
    body = notification(alert())
    r = post(api, body, signed(body))
    assert r.status_code == 202, r.text
    out = r.json()
    assert len(out["queued"]) == 1 and out["duplicates"] == [] and out["ignored"] == []
    [row] = clips(db_url)
    assert row[:4] == ("alert:a1b2c3d4e5f60718:2024-01-06T16:25:00Z", "nymn", "alert", "queued")
    assert row[4] == datetime(2024, 1, 6, 16, 24, 40, tzinfo=UTC)  # startsAt - 20 s
    assert row[5] == datetime(2024, 1, 6, 16, 25, 10, tzinfo=UTC)  # startsAt + 10 s


def test_clip_is_cut_around_the_latest_hype_moment_before_the_alert(api: str, db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('nymn') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        for peak in ("16:21:00", "16:23:30", "16:26:00"):  # the last is after startsAt
            conn.execute(
                "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
                "messages_per_min, baseline_per_min) VALUES (%s, %s, %s, %s, 5, 100, 10)",
                (cid, f"2024-01-06T{peak}Z", f"2024-01-06T{peak}Z", f"2024-01-06T{peak}Z"),
            )
    body = notification(alert())
    assert post(api, body, signed(body)).status_code == 202
    [row] = clips(db_url)
    assert row[4] == datetime(2024, 1, 6, 16, 23, 10, tzinfo=UTC)
    assert row[5] == datetime(2024, 1, 6, 16, 23, 40, tzinfo=UTC)
    assert row[6] is not None


def test_duplicate_deliveries_of_one_alert_make_one_clip(api: str, db_url: str) -> None:
    body = notification(alert())
    first = post(api, body, signed(body)).json()
    # Grafana repeats the group later (new timestamp, same alert) and retries failed sends
    again = notification(alert(), alert(fingerprint="0123456789abcdef"))
    second = post(api, again, signed(again, ts=int(time.time()) - 5)).json()
    assert second["duplicates"] == [first["queued"][0]["id"]]
    assert len(second["queued"]) == 1
    assert len(clips(db_url)) == 2


def test_resolved_makes_nothing(api: str, db_url: str) -> None:
    body = notification(alert(status="resolved", endsAt="2024-01-06T16:30:00Z"), status="resolved")
    r = post(api, body, signed(body))
    assert r.status_code == 202
    assert r.json()["ignored"] == [{"fingerprint": "a1b2c3d4e5f60718", "reason": "resolved"}]
    assert clips(db_url) == []


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.update({SIG: "0" * 64}), "bad signature"),
        (lambda h: h.pop(SIG), "missing signature header"),
        (lambda h: h.update({"Authorization": "Bearer wrong"}), "bad bearer token"),
        (lambda h: h.pop("Authorization"), "missing Authorization header"),
    ],
)
def test_bad_or_missing_credentials_are_401(
    api: str, db_url: str, mutate: Any, reason: str
) -> None:
    body = notification(alert())
    headers = signed(body)
    mutate(headers)
    r = post(api, body, headers)
    assert r.status_code == 401
    assert r.json()["detail"].startswith(reason)
    assert clips(db_url) == []


def test_stale_timestamp_is_401_even_with_a_valid_signature(api: str, db_url: str) -> None:
    body = notification(alert())
    r = post(api, body, signed(body, ts=int(time.time()) - 3600))
    assert r.status_code == 401 and r.json()["detail"].startswith("stale")
    assert clips(db_url) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'"a string"', 422),
        (b'{"status": "firing", "alerts": [{"status": "firing"}]}', 422),
        (notification(alert(labels={"channel": "../../etc"})), 422),
        (b"x" * (70 * 1024), 413),
    ],
)
def test_malformed_payloads_are_4xx_with_a_reason(
    api: str, db_url: str, body: bytes, status: int
) -> None:
    r = post(api, body, signed(body))
    assert r.status_code == status
    assert r.json()["detail"]
    assert clips(db_url) == []


def test_auth_may_be_switched_off_explicitly(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        db_url, tmp_path, webhook_hmac_secret=None, webhook_token=None, webhook_auth_disabled=True
    )
    with serve_in_thread(create_app(settings, db_url)) as base:
        body = notification(alert())
        assert post(base, body, {}).status_code == 202


def test_without_any_auth_configured_webhooks_are_refused(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, webhook_hmac_secret=None, webhook_token=None)
    with serve_in_thread(create_app(settings, db_url)) as base:
        body = notification(alert())
        assert post(base, body, {}).status_code == 401


def test_manual_clip_list_and_get(api: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    req = {"channel": "nymn", "at": "2024-01-06T16:25:00Z", "pre_roll_s": 5, "post_roll_s": 5}
    r = httpx.post(f"{api}/clips", json=req, headers=auth)
    assert r.status_code == 201, r.text
    clip = r.json()
    assert (clip["start_at"], clip["end_at"]) == ("2024-01-06T16:24:55Z", "2024-01-06T16:25:05Z")
    again = httpx.post(f"{api}/clips", json=req, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == clip["id"]
    ranged = httpx.post(
        f"{api}/clips",
        json={
            "channel": "nymn",
            "start": "2024-01-06T16:00:00Z",
            "end": "2024-01-06T16:01:00Z",
            "reencode": True,
        },
        headers=auth,
    )
    assert ranged.status_code == 201 and ranged.json()["reencode"] is True
    listed = httpx.get(f"{api}/clips", params={"channel": "nymn", "limit": 1}, headers=auth).json()
    assert [c["id"] for c in listed["clips"]] == [ranged.json()["id"]]
    assert listed["next_before"] == ranged.json()["id"]
    got = httpx.get(f"{api}/clips/{clip['id']}", headers=auth)
    assert got.status_code == 200 and got.json()["status"] == "queued"
    assert httpx.get(f"{api}/clips/999999", headers=auth).status_code == 404
    assert httpx.get(f"{api}/clips").status_code == 401


@pytest.mark.parametrize(
    "req",
    [
        {"channel": "nymn"},
        {"channel": "NYMN/..", "at": "2024-01-06T16:25:00Z"},
        {"channel": "nymn", "start": "2024-01-06T16:25:00Z", "end": "2024-01-06T16:20:00Z"},
        {"channel": "nymn", "at": "2024-01-06T16:25:00"},
        {"channel": "nymn", "at": "2024-01-06T16:25:00Z", "path": "/etc/passwd"},
    ],
)
def test_bad_manual_requests_are_422(api: str, req: dict[str, Any]) -> None:
    r = httpx.post(f"{api}/clips", json=req, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422, r.text


def test_health_metrics_and_openapi(api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok", "database": "ok"}
    body = notification(alert())
    post(api, body, signed(body))
    metrics = httpx.get(f"{api}/metrics").text
    assert 'chatpulse_clips{status="queued"} 1.0' in metrics
    assert "chatpulse_clip_queue_depth" in metrics
    assert 'chatpulse_clip_webhook_seconds_count{route="webhook"} 1.0' in metrics
    assert 'chatpulse_clip_webhook_requests_total{status="202"} 1.0' in metrics
    spec = httpx.get(f"{api}/openapi.json").json()
    assert {"/webhooks/grafana", "/clips", "/clips/{clip_id}", "/healthz"} <= set(spec["paths"])
    assert httpx.get(f"{api}/docs").status_code == 200


def test_webhook_answers_before_the_cut(api: str, db_url: str) -> None:
    # The webhook only records the job: each of 30 alerts is answered while its clip is still
    # queued (no worker runs here), so Grafana never waits for FFmpeg.  How fast it answers is
    # a figure of bench/clip.py (webhook p99), not a timed test.
    for i in range(30):
        body = notification(alert(fingerprint=f"{i:016x}"))
        response = post(api, body, signed(body))
        assert response.status_code == 202
        clip_id = response.json()["queued"][0]["id"]
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT status FROM chat.clips WHERE id = %s", (clip_id,)).fetchone()
        assert row == ("queued",)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "peak",
    [
        datetime(2024, 1, 6, 16, 23, 30, tzinfo=UTC),
        datetime(2024, 1, 6, 16, 23, 30, 120500, tzinfo=UTC),
    ],
)
def test_request_record_keeps_the_peak_in_isoformat(api: str, db_url: str, peak: datetime) -> None:
    # The worker places the thumbnail at request.peak_at; the database writes it, in
    # Python's format, with and without microseconds.
    with psycopg.connect(db_url) as conn:
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('nymn') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        hype = conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min) VALUES (%s, %s, %s, %s, 5, 100, 10) RETURNING id",
            (cid, peak, peak, peak),
        ).fetchone()[0]  # type: ignore[index]
    no_hype = alert(fingerprint="0123456789abcdef", labels={"channel": "other"})
    body = notification(alert(), no_hype)
    out = post(api, body, signed(body)).json()
    assert [c["hype_moment_id"] for c in out["queued"]] == [hype, None]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT channel, channel_id, request FROM chat.clips ORDER BY id"
        ).fetchall()
    assert [r[:2] for r in rows] == [("nymn", cid), ("other", None)]
    assert rows[0][2]["peak_at"] == _iso(peak)
    assert datetime.fromisoformat(rows[0][2]["peak_at"]) == peak
    assert rows[1][2]["peak_at"] == "2024-01-06T16:25:00Z"  # startsAt: no hype moment
    assert rows[0][2]["fingerprint"] == "a1b2c3d4e5f60718"
    assert rows[0][2]["receiver"] == "chatpulse-clipper"


def test_one_delivery_with_a_repeated_and_a_known_alert(api: str, db_url: str) -> None:
    first = notification(alert())
    known = post(api, first, signed(first)).json()["queued"][0]["id"]
    new = alert(fingerprint="0123456789abcdef")
    body = notification(new, alert(), new, alert(status="resolved"))
    out = post(api, body, signed(body)).json()
    assert len(out["queued"]) == 1
    assert out["duplicates"] == [known, out["queued"][0]["id"]]
    assert [i["reason"] for i in out["ignored"]] == ["resolved"]
    assert len(clips(db_url)) == 2


def test_simultaneous_deliveries_lose_nothing_and_cut_each_alert_once(
    api: str, db_url: str
) -> None:
    # 20 different alerts at once, then 20 copies of one new alert at once (Grafana retries
    # racing each other): every answer is 202 and names the one clip of its alert.
    bodies = [notification(alert(fingerprint=f"{i:016x}")) for i in range(20)]
    same = notification(alert(fingerprint="f" * 16))

    def send(body: bytes) -> dict[str, Any]:
        r = post(api, body, signed(body))
        assert r.status_code == 202, r.text
        result: dict[str, Any] = r.json()
        return result

    with ThreadPoolExecutor(20) as pool:
        distinct = list(pool.map(send, bodies))
        repeats = list(pool.map(send, [same] * 20))
    assert len({o["queued"][0]["id"] for o in distinct}) == 20
    ids = {c["id"] for o in repeats for c in o["queued"]} | {
        d for o in repeats for d in o["duplicates"]
    }
    assert len(ids) == 1
    assert sum(len(o["queued"]) for o in repeats) == 1
    assert len(clips(db_url)) == 21


def test_pool_keeps_its_connections_open_for_bursts(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path)
    config = replace(clipper_config(settings), api_pool_size=6)
    app = create_app(settings, db_url, config=config)
    with serve_in_thread(app), psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'chatpulse-clipper'"
        ).fetchone()
    assert row is not None and row[0] == 6


def _captured_without_timestamp(body: bytes) -> dict[str, str]:
    """A request signed over the body alone, as someone on the path could have captured it."""
    return {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {TOKEN}",
        SIG: sign_body(SECRET, body),
    }


def test_a_signature_without_timestamp_is_refused_by_default(api: str, db_url: str) -> None:
    body = notification(alert())
    r = post(api, body, _captured_without_timestamp(body))
    assert r.status_code == 401
    assert r.json()["detail"] == f"missing timestamp header {TS}"
    assert clips(db_url) == []


def test_a_signature_without_timestamp_passes_only_when_allowed(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path, webhook_allow_signature_without_timestamp=True)
    with serve_in_thread(create_app(settings, db_url)) as base:
        body = notification(alert())
        assert post(base, body, _captured_without_timestamp(body)).status_code == 202
    assert len(clips(db_url)) == 1
