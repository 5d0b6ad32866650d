"""``POST /webhooks/grafana``: Grafana's alerting webhook."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from chatpulse.core.errors import WebhookError
from clipper.api.deps import State, read_body
from clipper.api.models import ClipOut, ErrorOut, IgnoredAlert, WebhookOut
from clipper.service import queue_alert_clips
from clipper.webhook import parse_payload, verify_request

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "body is not JSON"),
        (401, "missing or bad token or signature, stale timestamp"),
        (413, "body too large"),
        (422, "not a Grafana alert notification"),
    )
}


@router.post(
    "/webhooks/grafana",
    status_code=202,
    response_model=WebhookOut,
    responses=_ERRORS,
    summary="Grafana alerting webhook: one clip per firing alert",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "Grafana's webhook notification (status, alerts[] with "
                        "labels.channel, startsAt, fingerprint). Authenticated by "
                        "'Authorization: Bearer' and/or the HMAC signature header.",
                    }
                }
            },
        }
    },
)
async def grafana_webhook(request: Request, state: State) -> WebhookOut:
    """Verify (bearer token and/or HMAC over the raw body), then queue the firing alerts'
    clips; ``resolved`` alerts and alerts without a ``channel`` label are ignored."""
    started = time.perf_counter()
    status = 202
    try:
        body = await read_body(request, state.config.webhook_max_body_bytes)
        settings = state.settings
        verify_request(
            request.headers,
            body,
            token=settings.webhook_token.get_secret_value() if settings.webhook_token else None,
            hmac_secret=(
                settings.webhook_hmac_secret.get_secret_value()
                if settings.webhook_hmac_secret
                else None
            ),
            auth_disabled=settings.webhook_auth_disabled,
            config=state.config,
            now=time.time(),
        )
        payload = parse_payload(body)
        assert state.pool is not None
        result = await queue_alert_clips(state.pool, state.config, payload)
    except WebhookError as exc:
        status = exc.status
        raise
    finally:
        state.metrics.webhook_requests.labels(str(status)).inc()
        state.metrics.webhook_seconds.labels("webhook").observe(time.perf_counter() - started)
    return WebhookOut(
        queued=[ClipOut.of(r) for r in result.queued],
        duplicates=[r.id for r in result.duplicates],
        ignored=[IgnoredAlert(**i) for i in result.ignored],
    )
