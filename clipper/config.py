"""The clipper's tunables, read from the settings object in one place.

The dataclass defaults serve code and tests that build a config without settings; a running
service takes every value from :class:`chatpulse.core.settings.Settings`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings

__all__ = ["ClipperConfig", "clipper_config"]

log = logging.getLogger(__name__)

DEFAULT_HMAC_HEADER = "X-Grafana-Alerting-Signature"
DEFAULT_TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp"


@dataclass(frozen=True, slots=True)
class ClipperConfig:
    """Every clipper tunable with its value (see :func:`clipper_config`)."""

    pre_roll_s: float = 20.0
    post_roll_s: float = 10.0
    #: the hype moment must have peaked at most this long before the alert started
    hype_lookback_s: float = 3600.0
    webhook_max_body_bytes: int = 1 << 20
    webhook_hmac_header: str = DEFAULT_HMAC_HEADER
    webhook_timestamp_header: str = DEFAULT_TIMESTAMP_HEADER
    #: a signed timestamp further than this from our clock is rejected (replays)
    webhook_max_skew_s: float = 300.0
    #: accept a signature made without the timestamp header (replayable: off by default)
    webhook_allow_signature_without_timestamp: bool = False
    #: the cut: stream copy (False) or re-encode for frame accuracy (True)
    reencode: bool = False
    #: database connections the API keeps open: alerts arrive in bursts, and 20 alerts
    #: committed on 4 connections took twice as long as on 10 (more commits share a flush)
    api_pool_size: int = 10
    worker_poll_s: float = 0.5
    heartbeat_s: float = 5.0
    #: a running job whose heartbeat is older than this belongs to a dead worker
    stall_after_s: float = 30.0
    max_attempts: int = 5
    retry_base_s: float = 5.0
    retry_max_s: float = 300.0
    #: the newest segment counts as finished once unmodified this long (recorder stopped)
    segment_settle_s: float = 5.0
    #: how long past its end a clip waits for media before it fails
    media_wait_s: float = 600.0
    #: on shutdown, wait this long for the running cut before stopping FFmpeg
    shutdown_grace_s: float = 10.0
    ffmpeg_timeout_s: float = 600.0
    record_segment_s: float = 2.0
    record_max_age_s: float = 6 * 3600.0
    record_max_bytes: int = 20 << 30


def _allow_untimestamped(settings: Settings) -> bool:
    """The new setting, or the deprecated ``webhook_require_timestamp`` when that is set."""
    allow = settings.webhook_allow_signature_without_timestamp
    old = settings.webhook_require_timestamp
    if old is None:
        return allow
    if old and allow:
        raise ConfigError(
            "webhook_require_timestamp (CHATPULSE_WEBHOOK_REQUIRE_TIMESTAMP) contradicts "
            "webhook_allow_signature_without_timestamp "
            "(CHATPULSE_WEBHOOK_ALLOW_SIGNATURE_WITHOUT_TIMESTAMP); drop the deprecated one"
        )
    log.warning(
        "webhook_require_timestamp is deprecated: timestamps are required by default; set "
        "webhook_allow_signature_without_timestamp=true to accept signatures without one",
        extra={"webhook_require_timestamp": old},
    )
    return allow or not old


def clipper_config(settings: Settings) -> ClipperConfig:
    """Return the clipper's tunables from ``settings``."""
    return ClipperConfig(
        pre_roll_s=settings.clip_pre_roll_s,
        post_roll_s=settings.clip_post_roll_s,
        hype_lookback_s=settings.clip_hype_lookback_s,
        webhook_max_body_bytes=settings.webhook_max_body_bytes,
        webhook_hmac_header=settings.webhook_hmac_header,
        webhook_timestamp_header=settings.webhook_timestamp_header,
        webhook_max_skew_s=settings.webhook_max_skew_s,
        webhook_allow_signature_without_timestamp=_allow_untimestamped(settings),
        reencode=settings.clip_reencode,
        api_pool_size=settings.clipper_db_pool_size,
        worker_poll_s=settings.clip_worker_poll_s,
        heartbeat_s=settings.clip_heartbeat_s,
        stall_after_s=settings.clip_stall_after_s,
        max_attempts=settings.clip_max_attempts,
        retry_base_s=settings.clip_retry_base_s,
        retry_max_s=settings.clip_retry_max_s,
        segment_settle_s=settings.clip_segment_settle_s,
        media_wait_s=settings.clip_media_wait_s,
        shutdown_grace_s=settings.clip_shutdown_grace_s,
        ffmpeg_timeout_s=settings.clip_ffmpeg_timeout_s,
        record_segment_s=settings.record_segment_s,
        record_max_age_s=settings.record_max_age_s,
        record_max_bytes=settings.record_max_bytes,
    )
