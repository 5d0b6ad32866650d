"""Grafana webhook authentication and payload rules, without I/O."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from chatpulse.core.errors import ConfigError, WebhookError
from chatpulse.core.settings import load_settings
from clipper.config import ClipperConfig, clipper_config
from clipper.webhook import (
    alert_dedup_key,
    firing_clip_requests,
    parse_payload,
    sign_body,
    verify_request,
)

CFG = ClipperConfig()
NOW = 1_704_558_000.0
BODY = b'{"status":"firing","alerts":[]}'
SIG = CFG.webhook_hmac_header
TS = CFG.webhook_timestamp_header


def verify(headers: dict[str, str], body: bytes = BODY, **kw: Any) -> None:
    args: dict[str, Any] = {
        "token": None,
        "hmac_secret": "s3cret",
        "auth_disabled": False,
        "config": CFG,
        "now": NOW,
    }
    args.update(kw)
    verify_request(headers, body, **args)


def reason(headers: dict[str, str], **kw: Any) -> str:
    with pytest.raises(WebhookError) as err:
        verify(headers, **kw)
    assert err.value.status == 401
    return err.value.reason


ALLOW_BARE = replace(CFG, webhook_allow_signature_without_timestamp=True)


def test_good_signature_with_timestamp_passes_and_without_only_when_allowed() -> None:
    ts = int(NOW) - 10
    verify({SIG: sign_body("s3cret", BODY, ts), TS: str(ts)})
    # header names are case-insensitive
    verify({SIG.lower(): sign_body("s3cret", BODY, ts).upper(), TS.lower(): str(ts)})
    verify({SIG: sign_body("s3cret", BODY)}, config=ALLOW_BARE)
    verify({SIG.lower(): sign_body("s3cret", BODY).upper()}, config=ALLOW_BARE)


def test_bad_missing_and_stale_signatures_are_refused() -> None:
    assert reason({SIG: sign_body("other", BODY)}, config=ALLOW_BARE) == "bad signature"
    assert reason({}).startswith("missing signature header")
    old = int(NOW) - 3600
    assert reason({SIG: sign_body("s3cret", BODY, old), TS: str(old)}).startswith("stale")
    future = int(NOW) + 3600
    assert reason({SIG: sign_body("s3cret", BODY, future), TS: str(future)}).startswith("stale")
    # a signature over the body alone does not pass once a timestamp is sent
    ts = int(NOW)
    assert reason({SIG: sign_body("s3cret", BODY), TS: str(ts)}) == "bad signature"
    assert reason({SIG: sign_body("s3cret", BODY), TS: "yesterday"}).startswith("timestamp")


def test_a_timestamp_is_required_by_default() -> None:
    """A signature over the body alone never expires: refused unless the setting allows it."""
    assert reason({SIG: sign_body("s3cret", BODY)}).startswith("missing timestamp")


def test_a_changed_body_fails_the_signature() -> None:
    sig = sign_body("s3cret", BODY)
    with pytest.raises(WebhookError):
        verify({SIG: sig}, body=BODY + b" ", config=ALLOW_BARE)


def test_bearer_token_alone_and_with_hmac() -> None:
    verify({"Authorization": "Bearer tok"}, token="tok", hmac_secret=None)
    assert (
        reason({"Authorization": "Bearer nope"}, token="tok", hmac_secret=None)
        == "bad bearer token"
    )
    assert (
        reason({"Authorization": "Basic tok"}, token="tok", hmac_secret=None) == "bad bearer token"
    )
    assert reason({}, token="tok", hmac_secret=None) == "missing Authorization header"
    # both configured: both required
    assert reason({"Authorization": "Bearer tok"}, token="tok").startswith("missing signature")


def test_no_auth_configured_refuses_unless_disabled() -> None:
    assert "not configured" in reason({}, hmac_secret=None)
    verify({}, hmac_secret=None, auth_disabled=True)


def alert(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "Hype", "grafana_folder": "chatpulse", "channel": "nymn"},
        "annotations": {"summary": "hype"},
        "startsAt": "2024-01-06T16:25:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana/alerting/grafana/x/view",
        "fingerprint": "a1b2c3d4e5f60718",
        "silenceURL": "http://grafana/silence",
        "values": {"A": 12.5, "C": 1},
        "valueString": "[ var='A' value=12.5 ]",
        "someNewField": {"x": 1},
    }
    base.update(over)
    return base


def payload(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps(
        {
            "receiver": "chatpulse-clipper",
            "status": status,
            "orgId": 1,
            "alerts": list(alerts),
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://grafana/",
            "version": "1",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "title": "[FIRING:1]",
            "state": "alerting",
            "message": "...",
        }
    ).encode()


def test_firing_alerts_with_a_channel_become_clip_requests() -> None:
    p = parse_payload(
        payload(
            alert(),
            alert(status="resolved", fingerprint="ffff000011112222"),
            alert(labels={"alertname": "DatasourceNoData"}, fingerprint="0000000000000001"),
        )
    )
    clips, ignored = firing_clip_requests(p)
    assert [(c.channel, c.dedup_key) for c in clips] == [
        ("nymn", "alert:a1b2c3d4e5f60718:2024-01-06T16:25:00Z")
    ]
    assert [i["reason"] for i in ignored] == ["resolved", "no channel label"]


def test_dedup_key_ignores_the_notification_and_follows_fingerprint_and_start() -> None:
    a = parse_payload(payload(alert())).alerts[0]
    b = parse_payload(payload(alert(startsAt="2024-01-06T17:25:00+01:00"))).alerts[0]
    c = parse_payload(payload(alert(startsAt="2024-01-06T16:26:00Z"))).alerts[0]
    assert alert_dedup_key(a) == alert_dedup_key(b) != alert_dedup_key(c)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 422),
        (b'{"status": "firing"}', 422),
        (b'{"status": "firing", "alerts": {}}', 422),
        (payload(alert(startsAt="yesterday")), 422),
        (payload(alert(fingerprint="../../etc")), 422),
        (payload(alert(status="pending")), 422),
    ],
)
def test_malformed_bodies_are_4xx_with_a_reason(body: bytes, status: int) -> None:
    with pytest.raises(WebhookError) as err:
        parse_payload(body)
    assert err.value.status == status and err.value.reason


def test_an_invalid_channel_label_is_refused() -> None:
    p = parse_payload(payload(alert(labels={"channel": "../etc"})))
    with pytest.raises(WebhookError) as err:
        firing_clip_requests(p)
    assert err.value.status == 422


def test_deprecated_require_timestamp_still_works_and_a_contradiction_is_refused() -> None:
    default = clipper_config(load_settings(overrides={}))
    assert default.webhook_allow_signature_without_timestamp is False
    old_false = clipper_config(load_settings(overrides={"webhook_require_timestamp": False}))
    assert old_false.webhook_allow_signature_without_timestamp is True
    old_true = clipper_config(load_settings(overrides={"webhook_require_timestamp": True}))
    assert old_true.webhook_allow_signature_without_timestamp is False
    both = load_settings(
        overrides={
            "webhook_require_timestamp": True,
            "webhook_allow_signature_without_timestamp": True,
        }
    )
    with pytest.raises(ConfigError, match="CHATPULSE_WEBHOOK_REQUIRE_TIMESTAMP"):
        clipper_config(both)
