"""Grafana's alerting webhook: authentication and payload, without I/O.

:func:`verify_request` checks the bearer token and/or the HMAC signature over the raw body
(before anything parses it), :func:`parse_payload` turns the body into typed alerts, and
:func:`firing_clip_requests` says which alerts become clips.  Facts from Grafana's webhook
notifier docs ([GRAFANA], docs/architecture.md "Sources"): the signature is lowercase hex
HMAC-SHA256 of the body, or of ``"<unix seconds>:" + body`` when Grafana sends a timestamp
header (required unless ``webhook_allow_signature_without_timestamp``: a signature without one
could be replayed forever); alerts are keyed on (fingerprint, startsAt), because every
notification carries the whole group again and again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatpulse.core.errors import WebhookError
from clipper.config import ClipperConfig

__all__ = [
    "CHANNEL_RE",
    "AlertClip",
    "GrafanaAlert",
    "GrafanaWebhook",
    "alert_dedup_key",
    "firing_clip_requests",
    "parse_payload",
    "sign_body",
    "verify_request",
]

#: the same rule as the settings' channel names; a channel names a media directory
CHANNEL_RE = re.compile(r"^[a-z0-9_][a-z0-9_.\-]{0,99}$")


def sign_body(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature Grafana sends for ``body`` (and ``timestamp`` when it sends one)."""
    message = body if timestamp is None else f"{timestamp}:".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_request(
    headers: Mapping[str, str],
    body: bytes,
    *,
    token: str | None,
    hmac_secret: str | None,
    auth_disabled: bool,
    config: ClipperConfig,
    now: float,
) -> None:
    """Accept the request or raise :class:`WebhookError` (401) with the reason.

    Every configured check must pass (a token and a secret both set: both are required).  With
    neither configured the request is refused unless ``auth_disabled``.  Comparisons are in
    constant time.  ``now`` is the current Unix time.
    """
    if auth_disabled:
        return
    if not token and not hmac_secret:
        raise WebhookError(401, "webhook authentication is not configured on the server")
    h = {k.lower(): v for k, v in headers.items()}
    if token:
        given = h.get("authorization")
        if not given:
            raise WebhookError(401, "missing Authorization header")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), token.encode()
        ):
            raise WebhookError(401, "bad bearer token")
    if hmac_secret:
        signature = h.get(config.webhook_hmac_header.lower())
        if not signature:
            raise WebhookError(401, f"missing signature header {config.webhook_hmac_header}")
        raw_ts = h.get(config.webhook_timestamp_header.lower())
        timestamp: int | None = None
        if raw_ts is not None:
            try:
                timestamp = int(raw_ts.strip())
            except ValueError:
                raise WebhookError(401, "timestamp header is not Unix seconds") from None
            if abs(now - timestamp) > config.webhook_max_skew_s:
                raise WebhookError(401, "stale timestamp: request too old or clock skew")
        elif not config.webhook_allow_signature_without_timestamp:
            # A signature over the body alone never expires: whoever captured one request
            # could send it again at any time.  Accepted only when the setting allows it.
            raise WebhookError(401, f"missing timestamp header {config.webhook_timestamp_header}")
        expected = sign_body(hmac_secret, body, timestamp)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise WebhookError(401, "bad signature")


class GrafanaAlert(BaseModel):
    """One alert of a notification; unknown fields are kept, not refused."""

    model_config = ConfigDict(extra="allow")

    status: str = Field(pattern=r"^(firing|resolved)$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    fingerprint: str = Field(pattern=r"^[0-9A-Za-z]{1,64}$")
    generatorURL: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    values: dict[str, float | None] | None = None


class GrafanaWebhook(BaseModel):
    """Grafana's notification (one per notification group)."""

    model_config = ConfigDict(extra="allow")

    status: str = Field(pattern=r"^(firing|resolved)$")
    alerts: list[GrafanaAlert] = Field(max_length=10_000)
    receiver: str | None = None
    groupKey: str | None = None
    version: str | None = None
    externalURL: str | None = None


def parse_payload(body: bytes) -> GrafanaWebhook:
    """Parse a verified body; raises :class:`WebhookError` 400 (not JSON) or 422 (shape)."""
    try:
        data: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebhookError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookError(422, "body must be a JSON object")
    try:
        return GrafanaWebhook.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
        raise WebhookError(422, f"not a Grafana alert notification: {problems}") from None


def alert_dedup_key(alert: GrafanaAlert) -> str:
    """The clip key of an alert: its fingerprint and start, so repeats never cut twice."""
    starts = alert.startsAt.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"alert:{alert.fingerprint}:{starts}"


@dataclass(frozen=True, slots=True)
class AlertClip:
    """What one firing alert asks for."""

    dedup_key: str
    channel: str
    starts_at: datetime
    alert: GrafanaAlert


def firing_clip_requests(
    payload: GrafanaWebhook,
) -> tuple[list[AlertClip], list[dict[str, str]]]:
    """Split the alerts into clip requests and ignored ones (fingerprint, reason).

    ``resolved`` alerts and alerts without a ``channel`` label (Grafana's DatasourceNoData and
    DatasourceError, other rules) are ignored.  A ``channel`` label that is not a valid login
    raises :class:`WebhookError` 422: that is a broken rule, not an alert to skip.
    """
    clips: list[AlertClip] = []
    ignored: list[dict[str, str]] = []
    for alert in payload.alerts:
        if alert.status != "firing":
            ignored.append({"fingerprint": alert.fingerprint, "reason": "resolved"})
            continue
        channel = alert.labels.get("channel")
        if channel is None:
            ignored.append({"fingerprint": alert.fingerprint, "reason": "no channel label"})
            continue
        channel = channel.strip().lstrip("#").lower()
        if not CHANNEL_RE.match(channel):
            raise WebhookError(422, f"alert {alert.fingerprint}: invalid channel label")
        clips.append(AlertClip(alert_dedup_key(alert), channel, alert.startsAt, alert))
    return clips, ignored
