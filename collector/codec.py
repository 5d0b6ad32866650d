"""Encode chat events to bytes and back, losslessly: the payload of a spool record.

The encoding is compact JSON (stdlib :mod:`json`, no spaces)::

    {"v":1,"e":[["m","twitch","nymn","33445373-...",1704557984095000,"text",...],["d",...]]}

``v`` is the format version: :func:`decode_events` refuses a version it does not know, so a
spool written by a newer collector is never misread by an older one.  Each event is one JSON
array: a one-letter type tag (``m`` ChatMessage, ``d`` ModerationEvent, ``c`` ControlEvent,
``x`` Malformed), then the fields in the fixed order of ``_MESSAGE_FIELDS`` and its siblings
below.  Arrays rather than objects with keys: encoding and decoding are about twice as fast
and records a quarter smaller, and the version field covers what keys would buy (evolution).

Datetimes in UTC (``tzinfo is datetime.UTC``, what the sources produce) are integer
microseconds since the epoch; any other datetime is an ISO 8601 string, so naive stays naive
and an offset is kept (a ``zoneinfo`` zone comes back as its fixed offset at that instant,
which compares equal).  Strings go out as UTF-8 with ``surrogatepass``: real chat text holds no
lone surrogates, but a JSON source can produce one from a ``"\\ud800"`` escape, and the spool
must not lose that event.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import json.scanner
import marshal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from chatpulse.core.errors import ChatpulseError
from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
    new_message,
)

__all__ = [
    "FORMAT_VERSION",
    "CodecError",
    "decode_events",
    "encode_events",
    "pack_events",
    "unpack_events",
]

#: The version written by :func:`encode_events`.  Bump it whenever the layout of an event
#: changes (a field added, removed or re-encoded) and keep decoding the old versions: spool files
#: outlive collector upgrades.  Version 2 added ``ModerationEvent.extra``; version 1 records
#: (without it) still decode, with an empty ``extra``.
FORMAT_VERSION = 2
_READABLE_VERSIONS = frozenset({1, 2})

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_decoder = json.JSONDecoder()
# The decoder's C scanner, called straight on a document that starts at its first character
# (all of ours): JSONDecoder.decode's Python wrapper around it (two whitespace matches and
# raw_decode) is about a fifth of the parse of a one-event bus message.  See _parse_json.
# (typeshed types _json.make_scanner's argument as the scanner class itself.)
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_decoder)  # type: ignore[arg-type]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class CodecError(ChatpulseError, ValueError):
    """Bytes that are not an encoding of events this version can read."""


def _enc_dt(value: datetime) -> int | str:
    # UTC datetimes (nearly all: see collector.events) as integer microseconds since the epoch:
    # exact, and about three times cheaper than isoformat() on this hot path.  Anything else
    # (naive, another offset, a zoneinfo zone) as ISO 8601, so it comes back as it went.
    if value.tzinfo is UTC:
        return (value - _EPOCH) // _MICROSECOND
    return value.isoformat()


def _dec_dt(value: int | str) -> datetime:
    if type(value) is int:
        return _EPOCH + _MICROSECOND * value
    if type(value) is str:
        return datetime.fromisoformat(value)
    raise TypeError(f"not a datetime encoding: {value!r}")


# Each event is a JSON array: the type tag, then the fields in the order of these tuples (the
# order is the codec's own, pinned here, not the dataclass's).  A new field goes at the end;
# tests/unit/test_codec.py fails until every dataclass field is listed.
_MESSAGE_FIELDS = (
    "platform", "channel", "message_id", "sent_at", "text", "user_id", "user_login",
    "user_name", "kind", "badges", "is_mod", "is_subscriber", "is_first", "bits",
    "reply_parent_id", "channel_platform_id", "emotes", "received_at", "source", "extra",
)  # fmt: skip
_MODERATION_FIELDS = (
    "platform", "channel", "at", "kind", "event_key", "target_user_id", "target_login",
    "target_message_id", "duration_s", "channel_platform_id", "source", "extra",
)  # fmt: skip
_CONTROL_FIELDS = ("kind", "channel", "params", "text")
_MALFORMED_FIELDS = ("raw", "reason", "source_name")


def _encode_message(m: ChatMessage) -> list[Any]:
    received = m.received_at
    return [
        "m",
        m.platform,
        m.channel,
        m.message_id,
        _enc_dt(m.sent_at),
        m.text,
        m.user_id,
        m.user_login,
        m.user_name,
        m.kind,
        m.badges,
        m.is_mod,
        m.is_subscriber,
        m.is_first,
        m.bits,
        m.reply_parent_id,
        m.channel_platform_id,
        [(e.emote_id, e.emote_name, e.provider, e.count) for e in m.emotes],
        None if received is None else _enc_dt(received),
        m.source,
        m.extra,
    ]


def _decode_message(a: list[Any]) -> ChatMessage:
    if len(a) != 21:
        raise ValueError(f"chat message with {len(a) - 1} fields")
    # new_message sets each slot directly: about half the cost of ChatMessage(...) (the
    # frozen dataclass's __init__), the same object (tests/unit/test_codec.py compares them).
    return new_message(
        a[1], a[2], a[3], _dec_dt(a[4]), a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
        a[13], a[14], a[15], a[16], tuple([EmoteUse(*e) for e in a[17]]) if a[17] else (),
        None if a[18] is None else _dec_dt(a[18]), a[19], a[20],
    )  # fmt: skip


def _encode_moderation(m: ModerationEvent) -> list[Any]:
    return [
        "d",
        m.platform,
        m.channel,
        _enc_dt(m.at),
        m.kind,
        m.event_key,
        m.target_user_id,
        m.target_login,
        m.target_message_id,
        m.duration_s,
        m.channel_platform_id,
        m.source,
        m.extra,
    ]


def _decode_moderation(a: list[Any]) -> ModerationEvent:
    # 12 items: a version 1 record (no extra); 13: version 2.
    if len(a) not in (12, 13):
        raise ValueError(f"moderation event with {len(a) - 1} fields")
    extra = a[12] if len(a) == 13 else {}
    if not isinstance(extra, dict):
        raise ValueError("moderation event extra is not an object")
    return ModerationEvent(
        a[1], a[2], _dec_dt(a[3]), a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], extra
    )


def _encode_other(ev: ControlEvent | Malformed) -> list[Any]:
    if isinstance(ev, ControlEvent):
        return ["c", ev.kind, ev.channel, ev.params, ev.text]
    return ["x", ev.raw, ev.reason, ev.source_name]


def _decode_control(a: list[Any]) -> ControlEvent:
    if len(a) != 5:
        raise ValueError(f"control event with {len(a) - 1} fields")
    return ControlEvent(a[1], a[2], a[3], a[4])


def _decode_malformed(a: list[Any]) -> Malformed:
    if len(a) != 4:
        raise ValueError(f"malformed event with {len(a) - 1} fields")
    return Malformed(a[1], a[2], a[3])


_DECODERS: dict[str, Callable[[list[Any]], ChatEvent]] = {
    "m": _decode_message,
    "d": _decode_moderation,
    "c": _decode_control,
    "x": _decode_malformed,
}


def _arrays(events: Sequence[ChatEvent]) -> list[list[Any]]:
    """Each event as its array (the layout the module docstring describes)."""
    out: list[list[Any]] = []
    append = out.append
    for ev in events:
        # Exact type checks first: ChatMessage is nearly every event, and this loop is the
        # spool's hot path while the database is down.
        if type(ev) is ChatMessage:
            append(_encode_message(ev))
        elif type(ev) is ModerationEvent:
            append(_encode_moderation(ev))
        elif isinstance(ev, ControlEvent | Malformed):
            append(_encode_other(ev))
        elif isinstance(ev, ChatMessage):
            append(_encode_message(ev))
        elif isinstance(ev, ModerationEvent):
            append(_encode_moderation(ev))
        else:
            raise TypeError(f"not a chat event: {type(ev).__name__}")
    return out


def encode_events(events: Sequence[ChatEvent]) -> bytes:
    """Return ``events`` as one self-describing byte string (format :data:`FORMAT_VERSION`).

    ``decode_events(encode_events(evs)) == list(evs)`` for every sequence of events whose
    string fields are any Python ``str`` (lone surrogates included) and whose datetimes are
    naive or have a fixed offset.  Raises :class:`TypeError` for an object that is not a
    :data:`~collector.events.ChatEvent`.
    """
    return _encoder.encode({"v": FORMAT_VERSION, "e": _arrays(events)}).encode(
        "utf-8", "surrogatepass"
    )


def pack_events(events: Sequence[ChatEvent]) -> bytes:
    """``events`` for another process running this same code (the replay's parse workers
    hand their batches to the replay so), never for storage or the bus: the same arrays as
    :func:`encode_events` in :mod:`marshal`'s format, which has no version of ours and may
    change with the Python version.  On #nymn messages 3.2 against 6 us a message to write,
    6.1 against 7.2 to read (building the events is most of it, the same either way).
    ``unpack_events(pack_events(evs)) == list(evs)`` as for
    :func:`encode_events`; raises :class:`TypeError` likewise."""
    arrays = _arrays(events)
    try:
        return marshal.dumps(arrays)
    except ValueError as exc:  # an object marshal cannot write, in a dict field
        raise TypeError(f"cannot pack events: {exc}") from None


def unpack_events(data: bytes) -> list[ChatEvent]:
    """The events of :func:`pack_events`, in their order.  Raises :class:`CodecError` for
    bytes it did not write (not a ``marshal`` list of event arrays)."""
    try:
        items = marshal.loads(data)
    except (EOFError, ValueError, TypeError) as exc:
        raise CodecError(f"packed events are not marshal data: {exc}") from None
    if not isinstance(items, list):
        raise CodecError("packed events are not a list")
    return _from_arrays(items)


def _parse_json(text: str) -> Any:
    """``_decoder.decode(text)``: the same document, or the same error."""
    try:
        doc, end = _scan(text, 0)
    except StopIteration:  # no value at 0 (leading whitespace, an empty text): decode says
        return _decoder.decode(text)
    if end != len(text):  # trailing whitespace, or extra data: decode accepts or raises
        return _decoder.decode(text)
    return doc


def decode_events(data: bytes) -> list[ChatEvent]:
    """Return the events encoded in ``data`` by :func:`encode_events`, in their order.

    Raises :class:`CodecError` when ``data`` is not UTF-8 JSON of that shape, names a format
    version this code does not know, or holds an unknown event type.  Field values are not
    type-checked one by one: spool records are CRC-checked, so the bytes are ours.
    """
    try:
        doc = _parse_json(data.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CodecError(f"event batch is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CodecError("event batch is not a JSON object")
    version = doc.get("v")
    if version not in _READABLE_VERSIONS or type(version) is not int:
        raise CodecError(
            f"event batch has format version {version!r}, this code reads "
            f"{', '.join(map(str, sorted(_READABLE_VERSIONS)))}"
        )
    items = doc.get("e")
    if not isinstance(items, list):
        raise CodecError("event batch has no event list")
    return _from_arrays(items)


def _from_arrays(items: list[Any]) -> list[ChatEvent]:
    try:
        return [_DECODERS[item[0]](item) for item in items]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        # KeyError: an unknown type tag; IndexError: an empty array.  Both mean "not ours".
        raise CodecError(f"event batch has a malformed event: {exc!r}") from None
