"""What collectors, writers and ``chatpulse channels`` agree on: names, keys, the connection."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

from chatpulse.core.errors import ChatpulseError
from chatpulse.core.settings import Settings
from collector.events import ChatEvent, ChatMessage, ControlEvent, ModerationEvent

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

__all__ = [
    "Bus",
    "BusUnavailable",
    "channels_bucket",
    "connect",
    "consumer_name",
    "leases_bucket",
    "msg_id",
    "subject_for",
]

log = logging.getLogger(__name__)

#: Every event subject starts with this token; the stream holds ``chat.>``.
SUBJECT_PREFIX = "chat"
#: How long the stream keeps events (acked or not): the bus is replayable for a week.
STREAM_MAX_AGE_S = 7 * 24 * 3600
#: Window in which the server drops a second publish with the same ``Nats-Msg-Id``.
DUPLICATE_WINDOW_S = 120
#: Unacked messages the consumer hands out at once (over all writers).
MAX_ACK_PENDING = 50_000
#: A writer that holds a message this long without acking (or saying "in progress") loses it:
#: the server redelivers it to another writer.
ACK_WAIT_S = 30.0

_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_-]")


class BusUnavailable(ChatpulseError):
    """The NATS server cannot be reached or has no JetStream."""


def _token(value: str) -> str:
    # A subject token cannot hold '.', '*', '>' or spaces; Twitch logins never do.
    return _TOKEN_BAD.sub("_", value) or "_"


def subject_for(platform: str, channel: str) -> str:
    """``chat.<platform>.<channel>`` (characters a subject token cannot hold become ``_``)."""
    return f"{SUBJECT_PREFIX}.{_token(platform)}.{_token(channel)}"


def msg_id(event: ChatEvent) -> str | None:
    """The de-duplication id of ``event``: its unique key in the database (None: has none)."""
    if isinstance(event, ChatMessage):
        return f"m:{event.platform}:{event.channel}:{event.message_id}"
    if isinstance(event, ModerationEvent):
        return f"d:{event.platform}:{event.channel}:{event.event_key}"
    if isinstance(event, ControlEvent) and event.params.get("key"):
        return f"g:{event.kind}:{event.params['key']}"
    return None


def consumer_name(settings: Settings) -> str:
    """The one durable pull consumer every writer shares."""
    return f"{settings.nats_stream}-writers"


def channels_bucket(settings: Settings) -> str:
    return f"{settings.nats_stream}_channels"


def leases_bucket(settings: Settings) -> str:
    return f"{settings.nats_stream}_leases"


def _nats() -> Any:
    try:
        import nats
    except ModuleNotFoundError:
        raise ChatpulseError(
            "the bus needs the NATS client: pip install 'chatpulse[bus]' (nats-py)"
        ) from None
    return nats


class Bus:
    """One connection to NATS with the stream, the consumer and the buckets made sure of."""

    def __init__(self, settings: Settings, nc: Client, js: JetStreamContext) -> None:
        self.settings = settings
        self.nc = nc
        self.js = js
        self.channels: KeyValue | None = None
        self.leases: KeyValue | None = None

    async def close(self) -> None:
        # Everything that matters was acknowledged before (publishes, acks are flushed): no
        # drain, which waits for pull subscriptions to time out.
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            await self.nc.close()

    async def ensure_stream(self) -> None:
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=self.settings.nats_stream,
            subjects=[f"{SUBJECT_PREFIX}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=STREAM_MAX_AGE_S,
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            await self.js.stream_info(self.settings.nats_stream)
        except NotFoundError:
            await self.js.add_stream(config)

    async def ensure_consumer(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        name = consumer_name(self.settings)
        try:
            await self.js.consumer_info(self.settings.nats_stream, name)
        except NotFoundError:
            await self.js.add_consumer(
                self.settings.nats_stream,
                ConsumerConfig(
                    durable_name=name,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_wait=ACK_WAIT_S,
                    max_ack_pending=MAX_ACK_PENDING,
                    filter_subject=f"{SUBJECT_PREFIX}.>",
                ),
            )

    async def ensure_buckets(self) -> None:
        from nats.js.api import KeyValueConfig
        from nats.js.errors import BucketNotFoundError

        async def bucket(name: str, history: int) -> KeyValue:
            try:
                return await self.js.key_value(name)
            except BucketNotFoundError:
                return await self.js.create_key_value(KeyValueConfig(bucket=name, history=history))

        self.channels = await bucket(channels_bucket(self.settings), 1)
        # Leases expire by their holder not renewing them (judged by each reader's own clock,
        # see bus.leases), not by the bucket's age limit: an expired lease must stay readable
        # so that whoever takes it over knows whose it was and since when.
        self.leases = await bucket(leases_bucket(self.settings), 1)


async def connect(settings: Settings, *, name: str, connect_timeout_s: float = 5.0) -> Bus:
    """Connect to ``settings.nats_url``; reconnects forever afterwards.

    Raises :class:`BusUnavailable` naming the URL when the first connection fails.
    """
    nats = _nats()
    servers = [u.strip() for u in settings.nats_url.split(",") if u.strip()]

    async def _error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    try:
        nc = await nats.connect(
            servers=servers,
            name=name,
            connect_timeout=connect_timeout_s,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_error,
        )
    except Exception as exc:
        raise BusUnavailable(
            f"cannot reach NATS at {settings.nats_url} (CHATPULSE_NATS_URL): {exc!r}"
        ) from None
    return Bus(settings, nc, nc.jetstream())
