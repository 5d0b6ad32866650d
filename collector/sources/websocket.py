"""A generic JSON WebSocket chat source: any relay that sends chat as JSON frames.

For platforms without IRC (YouTube relays, Kick bridges, in-house chat) the user describes where
each field lives in a frame with a :class:`FieldMapping` (dotted paths such as
``"data.author.id"`` or ``"items.0.text"``).  :func:`map_frame` is the pure core: one frame in,
:mod:`collector.events` out, no I/O and no clock.  :class:`JsonWebSocketSource` only moves
frames from the socket to :func:`map_frame` and on to the listener, and owns the reconnect loop.

Path syntax (one rule for every path in a mapping):

* segments are separated by ``.``; on an object a segment is a key, on an array it is an index
  (``0``, ``-1``);
* ``*`` on an array visits every element: the path then yields the list of every match (elements
  where the rest of the path is absent are skipped).  Allowed only in ``text`` (the matches are
  strings, joined with no separator: YouTube splits a message into ``message.runs.*.text``) and
  ``items`` (the matches are the messages of a batch).
* A JSON ``null`` counts as absent.  Keys that contain a ``.`` cannot be addressed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidProxy,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)

from chatpulse.core.errors import ConfigError
from chatpulse.core.mapping import FieldMapping, TimeFormat
from chatpulse.core.waiting import wait_or_stop
from collector.events import ChatEvent, ChatMessage, Malformed, deterministic_message_id
from collector.sources.base import ChatSource, ReconnectPolicy, SourceListener, reconnect_wait

__all__ = ["FieldMapping", "JsonWebSocketSource", "TimeFormat", "map_frame"]

_log = logging.getLogger(__name__)


#: Name recorded in ``Malformed.source_name`` (dead letters say which source rejected them).
_SOURCE_NAME = "websocket"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds per unit.  Nanoseconds (auto only) divide; the rest multiply.
_UNIT_US: dict[str, Decimal] = {
    "epoch_s": Decimal(1_000_000),
    "epoch_ms": Decimal(1_000),
    "epoch_us": Decimal(1),
    "epoch_ns": Decimal("0.001"),
}
_EPOCH_LIMIT = Decimal(10) ** 20
# ``chat.messages.bits`` is a PostgreSQL integer; a larger value would fail the whole batch.
_BITS_MAX = 2**31 - 1
# Magnitude bounds of ``auto``: 1e11 s is the year 5138 and 1e11 ms is 1973, so every epoch time
# of the last fifty years falls in exactly one band.
_AUTO_BANDS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(10) ** 11, "epoch_s"),
    (Decimal(10) ** 14, "epoch_ms"),
    (Decimal(10) ** 17, "epoch_us"),
)


# -- the pure core ----------------------------------------------------------------------------


class _Missing:
    """Marker for "no value at this path" (distinct from every JSON value)."""


_MISSING = _Missing()


class _BadField(Exception):
    """A field value that cannot be used; its message becomes ``Malformed.reason``."""


def _index(segment: str) -> int | None:
    try:
        return int(segment)
    except ValueError:
        return None


def _resolve(node: Any, path: str) -> Any:
    """Return the value at ``path``, ``_MISSING``, or (with ``*``) the list of matches.

    A wildcard path is ``_MISSING`` only when no array was found where ``*`` stands, so an
    existing but empty array (or one whose elements all lack the rest) yields ``[]``.
    """
    nodes: list[Any] = [node]
    fanned = False
    for seg in path.split("."):
        found: list[Any] = []
        if seg == "*":
            arrays = [n for n in nodes if isinstance(n, list)]
            if not arrays:
                return _MISSING
            fanned = True
            for arr in arrays:
                found.extend(arr)
        else:
            for n in nodes:
                if isinstance(n, dict):
                    if seg in n:
                        found.append(n[seg])
                elif isinstance(n, list):
                    i = _index(seg)
                    if i is not None and -len(n) <= i < len(n):
                        found.append(n[i])
        nodes = [n for n in found if n is not None]
        if not nodes and not fanned:
            return _MISSING
    if fanned:
        return nodes
    return nodes[0]


def _get(obj: Any, path: str | None) -> Any:
    return _MISSING if path is None else _resolve(obj, path)


def _json_equal(a: Any, b: Any) -> bool:
    # Python says True == 1; JSON does not, and a filter on {"type": 1} must not match true.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _scalar_str(value: Any, key: str) -> str | None:
    """An id-like field: a string or an integer, as a string; absent or empty gives None."""
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadField(f"{key}: expected a string or integer, got {_describe(value)}")
    out = str(value)
    return out or None


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, path: str) -> str:
    if value is _MISSING:
        raise _BadField(f"text: nothing at {path!r}")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    raise _BadField(f"text: expected a string, got {_describe(value)}")


def _epoch(value: Decimal, unit: str) -> datetime:
    # Bound first: Decimal arithmetic on "1e999999" would overflow or build a huge integer.
    if abs(value) >= _EPOCH_LIMIT:
        raise _BadField(f"time: {value} ({unit}) is out of range")
    micros = int((value * _UNIT_US[unit]).to_integral_value())
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise _BadField(f"time: {value} ({unit}) is out of range") from None


def _number(value: Any) -> Decimal | None:
    """A JSON number or a numeric string as an exact Decimal (keeps microseconds); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _rfc3339(value: str, *, naive_is_utc: bool) -> datetime:
    try:
        # fromisoformat wants upper-case T and Z; RFC 3339 §5.6 allows lower case.
        parsed = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        raise _BadField(f"time: not an RFC 3339 timestamp: {_describe(value)}") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise _BadField(f"time: RFC 3339 timestamp without offset: {_describe(value)}")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _time(value: Any, fmt: TimeFormat) -> datetime:
    if fmt == "rfc3339":
        if not isinstance(value, str):
            raise _BadField(f"time: expected an RFC 3339 string, got {_describe(value)}")
        return _rfc3339(value, naive_is_utc=False)
    number = _number(value)
    if fmt != "auto":
        if number is None:
            raise _BadField(f"time: expected a number ({fmt}), got {_describe(value)}")
        return _epoch(number, fmt)
    if number is None:
        if isinstance(value, str):
            return _rfc3339(value, naive_is_utc=True)
        raise _BadField(f"time: expected a number or timestamp string, got {_describe(value)}")
    unit = next((u for bound, u in _AUTO_BANDS if abs(number) < bound), "epoch_ns")
    return _epoch(number, unit)


def _bits(value: Any) -> int:
    if value is _MISSING:
        return 0
    number = _number(value)
    if number is None or not 0 <= number <= _BITS_MAX or number != number.to_integral_value():
        raise _BadField(f"bits: expected a non-negative integer, got {_describe(value)}")
    return int(number)


def _badges(value: Any) -> dict[str, str]:
    if value is _MISSING:
        return {}
    if isinstance(value, dict) and all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value.values()
    ):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return dict.fromkeys(value, "1")
    raise _BadField(
        f"badges: expected an object of strings or a list of names, got {_describe(value)}"
    )


def _channel(value: Any, default: str | None) -> str:
    name = _scalar_str(value, "channel")
    if name is not None:
        name = name.strip().lstrip("#").lower()
    if not name:
        name = (default or "").strip().lstrip("#").lower()
    if not name:
        raise _BadField("channel: none in the frame and no default channel configured")
    return name


def _map_item(
    item: dict[str, Any], mapping: FieldMapping, default_channel: str | None, received_at: datetime
) -> ChatMessage:
    text = _text(_resolve(item, mapping.text), mapping.text)
    channel = _channel(_get(item, mapping.channel), default_channel)
    raw_time = _get(item, mapping.time)
    sent_at = received_at if raw_time is _MISSING else _time(raw_time, mapping.time_format)
    user_id = _scalar_str(_get(item, mapping.user_id), "user_id")
    user_login = _scalar_str(_get(item, mapping.user_login), "user_login")
    user_name = _scalar_str(_get(item, mapping.user_name), "user_name")
    message_id = _scalar_str(_get(item, mapping.id), "id") or deterministic_message_id(
        mapping.platform, channel, sent_at, user_id or user_login or user_name, text
    )
    return ChatMessage(
        platform=mapping.platform,
        channel=channel,
        message_id=message_id,
        sent_at=sent_at,
        text=text,
        user_id=user_id,
        user_login=user_login,
        user_name=user_name,
        kind=_scalar_str(_get(item, mapping.kind), "kind") or "chat",
        badges=_badges(_get(item, mapping.badges)),
        bits=_bits(_get(item, mapping.bits)),
        reply_parent_id=_scalar_str(_get(item, mapping.reply_parent_id), "reply_parent_id"),
        received_at=received_at,
        source="live",
    )


def _is_message(item: Any, mapping: FieldMapping) -> bool:
    if mapping.filter_path is None:
        return True
    value = _resolve(item, mapping.filter_path)
    if mapping.filter_value is None:
        return value is not _MISSING
    return value is not _MISSING and _json_equal(value, mapping.filter_value)


def map_frame(
    frame: str | bytes,
    mapping: FieldMapping,
    *,
    default_channel: str | None,
    received_at: datetime,
) -> list[ChatEvent]:
    """Turn one WebSocket frame into chat events, in frame order.  Never raises.

    Returns one :class:`ChatMessage` (``source="live"``, ``received_at`` set) per message in the
    frame, and a :class:`Malformed` (with the offending frame or batch item as ``raw`` and a
    reason naming the field) for each message that cannot be mapped; the other messages of a
    batch are kept.  A frame that is not UTF-8 or not JSON is one ``Malformed``.  Frames and
    items that carry no chat (the filter does not match, the ``items`` path is absent, a JSON
    scalar such as a heartbeat) give nothing.  ``received_at`` must be timezone-aware; it is
    also the message time when the mapping has no ``time``.
    """
    if isinstance(frame, bytes):
        try:
            text = frame.decode("utf-8")
        except UnicodeDecodeError as exc:
            return [_malformed(frame.decode("utf-8", "replace"), f"frame is not UTF-8: {exc}")]
    else:
        text = frame
    try:
        root = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return [_malformed(text, f"frame is not JSON: {exc}")]

    batch: list[Any]
    if mapping.items is not None:
        found = _resolve(root, mapping.items)
        if found is _MISSING:
            return []
        if not isinstance(found, list):
            return [_malformed(text, f"items: {mapping.items!r} is not an array")]
        batch = found
    elif isinstance(root, list):
        batch = root
    elif isinstance(root, dict):
        batch = [root]
    else:
        return []

    # A dead letter holds what failed: the whole frame for a one-message frame, else the item.
    single = mapping.items is None and isinstance(root, dict)
    events: list[ChatEvent] = []
    for item in batch:
        if not isinstance(item, dict):
            raw = json.dumps(item, ensure_ascii=False)
            events.append(_malformed(raw, "item is not a JSON object"))
            continue
        if not _is_message(item, mapping):
            continue
        try:
            events.append(_map_item(item, mapping, default_channel, received_at))
        except _BadField as exc:
            raw = text if single else json.dumps(item, ensure_ascii=False)
            events.append(_malformed(raw, str(exc)))
    return events


def _malformed(raw: str, reason: str) -> Malformed:
    return Malformed(raw=raw, reason=reason, source_name=_SOURCE_NAME)


# -- the I/O layer --------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _fatal(exc: BaseException) -> str | None:
    """Why ``exc`` will not go away by retrying (a setting to fix), or None when it may."""
    # Not str(exc): both messages quote the URL, and relay URLs often carry a token.
    if isinstance(exc, InvalidURI):
        return f"not a valid WebSocket URI: {exc.msg}"
    if isinstance(exc, InvalidProxy):
        return f"invalid proxy: {exc.msg}"
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        # A 4xx says the request itself is wrong (credentials, path), so retrying cannot fix
        # it; except 408 Request Timeout, 429 Too Many Requests (RFC 9110 §15.5.9, RFC 6585
        # §4) and 425 Too Early (RFC 8470 §5.2), which invite a later retry.
        if 400 <= status < 500 and status not in (408, 425, 429):
            return f"the server rejected the WebSocket handshake with HTTP {status}"
    return None


def _close_reason(exc: ConnectionClosed) -> str:
    return f"connection closed: {exc}"


class JsonWebSocketSource(ChatSource):
    """Live chat from a WebSocket that sends JSON, mapped by a :class:`FieldMapping`.

    After each connect it sends ``subscribe`` (when given) as a text frame, then calls
    ``listener.on_connected([channel])`` (``[]`` without a channel: the messages name theirs).
    Every frame goes through :func:`map_frame` and each event to ``listener.on_event``, in
    order.  A lost connection (closed, reset, or silent past the ping timeout) calls
    ``listener.on_disconnected`` with the reason, then reconnects after a
    :class:`ReconnectPolicy` backoff.  Setting ``stop`` closes the connection and returns within
    about a second, also while connecting or waiting; a stop is not reported as a disconnect.
    ``run`` raises :class:`~chatpulse.core.errors.ConfigError` when retrying cannot help (a bad URL,
    the handshake refused with a 4xx status such as 401/403).

    While ``listener.on_event`` blocks, frames are not read; past ``2 * ping_interval_s`` the
    keepalive may then count the connection as dead.  Frames over 1 MiB close the connection
    (websockets' ``max_size``).
    """

    name: str = "websocket"

    def __init__(
        self,
        url: str,
        mapping: FieldMapping,
        *,
        channel: str | None = None,
        subscribe: str | None = None,
        headers: Mapping[str, str] | None = None,
        policy: ReconnectPolicy = ReconnectPolicy(),  # noqa: B008 - frozen, so sharing is safe
        ping_interval_s: float = 20.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {parts.scheme}://{parts.hostname}")
        self._url = url
        # Logs name the host only: relay URLs often carry a token in the query.
        self._host = f"{parts.scheme}://{parts.hostname}"
        self._mapping = mapping
        self._channel = (channel or "").strip().lstrip("#").lower() or None
        self._subscribe = subscribe
        self._headers = dict(headers or {})
        self._policy = policy
        self._ping_interval_s = ping_interval_s if ping_interval_s > 0 else None

    async def run(self, listener: SourceListener, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set (see the class docstring for the contract)."""
        loop = asyncio.get_running_loop()
        channels = [self._channel] if self._channel else []
        attempt = 0  # reconnect attempts since the last healthy connection
        while True:
            try:
                ws = await self._open_or_stop(stop)
            except (OSError, TimeoutError, WebSocketException) as exc:
                why = _fatal(exc)
                if why is not None:
                    raise ConfigError(f"ws_url ({self._host}): {why}") from exc
                _log.warning("websocket %s: connect failed: %s", self._host, exc)
            else:
                if ws is None:
                    return
                up_at = loop.time()
                reason = await self._session(ws, listener, stop, channels)
                if stop.is_set():
                    return
                if loop.time() - up_at >= self._policy.healthy_after_s:
                    attempt = 0
                if reason is not None:
                    _log.warning("websocket %s: disconnected: %s", self._host, reason)
                    await listener.on_disconnected(channels, _now(), reason)
            if await wait_or_stop(stop, reconnect_wait(self._policy, attempt)):
                return
            attempt += 1

    def _connect(self) -> connect:
        return connect(
            self._url,
            additional_headers=self._headers or None,
            open_timeout=10.0,
            # websockets' keepalive: a ping every interval; no pong within the timeout closes
            # the connection with 1011, which is how a half-open TCP link is noticed.
            ping_interval=self._ping_interval_s,
            ping_timeout=self._ping_interval_s,
            # Bounds how long close() waits for the peer's close frame, hence how fast a stop
            # returns (websockets' default is 10 s).
            close_timeout=1.0,
        )

    async def _open_or_stop(self, stop: asyncio.Event) -> ClientConnection | None:
        """Connect, or return None as soon as ``stop`` is set; connect errors propagate."""

        async def _open() -> ClientConnection:
            return await self._connect()

        opening = asyncio.create_task(_open())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.wait({opening})
        if stop.is_set():
            if not opening.cancelled() and opening.exception() is None:
                await opening.result().close()
            return None
        return opening.result()

    async def _session(
        self,
        ws: ClientConnection,
        listener: SourceListener,
        stop: asyncio.Event,
        channels: Sequence[str],
    ) -> str | None:
        """Serve one connection until it ends; the reason it ended, or None if it never got
        as far as ``on_connected`` (then the caller reports nothing, as for a failed connect)."""

        async def _close_on_stop() -> None:
            await stop.wait()
            await ws.close()

        closer = asyncio.create_task(_close_on_stop())
        connected = False
        try:
            if self._subscribe is not None:
                await ws.send(self._subscribe)
            await listener.on_connected(channels, _now())
            connected = True
            while True:
                frame = await ws.recv()
                events = map_frame(
                    frame, self._mapping, default_channel=self._channel, received_at=_now()
                )
                for event in events:
                    await listener.on_event(event)
        except ConnectionClosed as exc:
            if not connected:
                _log.warning("websocket %s: closed before subscribing: %s", self._host, exc)
                return None
            return _close_reason(exc)
        finally:
            closer.cancel()
            await asyncio.wait({closer})  # never raises, so our own cancellation stays ours
            if not closer.cancelled():
                closer.exception()  # retrieved, so asyncio logs no "never retrieved"
            await ws.close()
