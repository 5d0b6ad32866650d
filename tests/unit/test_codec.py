"""Tests for collector.codec: spool payloads decode to exactly the events that were encoded.

Real data: tests/fixtures/chatterino-recentmessages-nymn (a real recent-messages response of
#nymn, MIT; see its PROVENANCE.md), parsed with collector.irc as the live source would.
"""

from __future__ import annotations

import dataclasses
import json
import marshal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import codec
from collector.codec import (
    FORMAT_VERSION,
    CodecError,
    decode_events,
    encode_events,
    pack_events,
    unpack_events,
)
from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
)
from collector.irc import parse_event, parse_recent_messages
from tests.paths import NYMN_RECENT

FIXTURE = NYMN_RECENT
RECEIVED_AT = datetime(2024, 1, 6, 16, 30, 0, 123456, tzinfo=UTC)


def _nymn_events() -> list[ChatEvent]:
    lines = parse_recent_messages(FIXTURE.read_bytes())
    return [parse_event(line, received_at=RECEIVED_AT, source="gapfill") for line in lines]


def test_real_recent_messages_round_trip_equal() -> None:
    events = _nymn_events()
    kinds = {type(e) for e in events}
    assert kinds == {ChatMessage, ModerationEvent}  # the fixture's 798 PRIVMSG + 2 CLEARCHAT
    assert len(events) == 800
    assert any(isinstance(e, ChatMessage) and len(e.emotes) > 1 for e in events)

    decoded = decode_events(encode_events(events))

    assert decoded == events
    first = decoded[0]
    assert isinstance(first, ChatMessage)
    assert first.received_at == RECEIVED_AT
    assert first.received_at.microsecond == 123456
    assert first.sent_at.tzinfo is UTC
    assert isinstance(first.emotes, tuple)
    assert all(type(e) is EmoteUse for e in first.emotes)


def test_encoding_is_compact_versioned_json() -> None:
    events = _nymn_events()[:10]
    data = encode_events(events)
    doc = json.loads(data)
    assert doc["v"] == FORMAT_VERSION
    assert [item[0] for item in doc["e"]] == ["m"] * 10
    assert b'{"v":2,"e":[["m",' in data


def test_every_dataclass_field_is_encoded() -> None:
    # A field added to collector.events must be added to the codec (and FORMAT_VERSION bumped),
    # or spooled events would silently lose it.
    pairs = [
        (ChatMessage, codec._MESSAGE_FIELDS),
        (ModerationEvent, codec._MODERATION_FIELDS),
        (ControlEvent, codec._CONTROL_FIELDS),
        (Malformed, codec._MALFORMED_FIELDS),
    ]
    for cls, names in pairs:
        assert sorted(names) == sorted(f.name for f in dataclasses.fields(cls)), cls


def test_every_event_type_round_trips_with_all_fields_set() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    events: list[ChatEvent] = [
        ChatMessage(
            platform="twitch",
            channel="nymn",
            message_id="abc",
            sent_at=datetime(2024, 1, 6, 16, 19, 44, 95001, tzinfo=UTC),
            text='say "hi"\nand \\ bye \u2028 🎉',
            user_id="1",
            user_login="a",
            user_name="Ä",
            kind="resub",
            badges={"subscriber": "18", "": ""},
            is_mod=True,
            is_subscriber=True,
            is_first=True,
            bits=100,
            reply_parent_id="p",
            channel_platform_id="62300805",
            emotes=(EmoteUse("1", "Kappa", "twitch", 2), EmoteUse("😀", "😀", "emoji")),
            received_at=datetime(2024, 1, 6, 22, 0, 0, 1, tzinfo=ist),
            source="replay",
            extra={"msg-param-months": "3", "color": "#FF0000"},
        ),
        ChatMessage(
            platform="youtube",
            channel="c",
            message_id="h:1",
            sent_at=datetime(2001, 2, 3, 4, 5, 6),  # naive stays naive
            text="",
        ),
        ModerationEvent(
            platform="twitch",
            channel="nymn",
            at=datetime(2024, 1, 6, 16, 22, 34, 585000, tzinfo=UTC),
            kind="timeout",
            event_key="k",
            target_user_id="423574282",
            target_login="e7om",
            target_message_id="m",
            duration_s=180,
            channel_platform_id="62300805",
            source="live",
        ),
        ModerationEvent(
            platform="twitch",
            channel="x",
            at=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            kind="clear",
            event_key="k2",
        ),
        ControlEvent(kind="notice", channel="nymn", params={"msg-id": "x"}, text="t"),
        ControlEvent(kind="ping"),
        Malformed(raw="@bad\r\nline \x00", reason="no command", source_name="twitch:nymn"),
    ]

    decoded = decode_events(encode_events(events))

    assert decoded == events
    for before, after in zip(events, decoded, strict=True):
        assert type(after) is type(before)
    naive = decoded[1]
    assert isinstance(naive, ChatMessage) and naive.sent_at.tzinfo is None
    with_offset = decoded[0]
    assert isinstance(with_offset, ChatMessage) and with_offset.received_at is not None
    assert with_offset.received_at.utcoffset() == timedelta(hours=5, minutes=30)


def test_empty_batch_round_trips() -> None:
    assert decode_events(encode_events([])) == []


def test_encode_rejects_non_events() -> None:
    with pytest.raises(TypeError, match="not a chat event"):
        encode_events(["PRIVMSG #x :hi"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"v":3,"e":[]}', "format version 3"),
        (b'{"v":true,"e":[]}', "format version True"),
        (b'{"e":[]}', "format version None"),
        (b'{"v":1}', "no event list"),
        (b'{"v":1,"e":[["q",1]]}', "malformed event"),
        (b'{"v":1,"e":[[]]}', "malformed event"),
        (b'{"v":1,"e":[["m","twitch"]]}', "malformed event"),
        (b'{"v":1,"e":[["x","raw","reason"]]}', "malformed event"),
        (b'{"v":1,"e":[["d","p","c",1.5,"ban","k",null,null,null,null,null,"live"]]}', "malformed"),
        (b'{"v":1,"e":[{"t":"m"}]}', "malformed event"),
    ],
)
def test_decode_rejects_what_it_did_not_write(data: bytes, why: str) -> None:
    with pytest.raises(CodecError, match=why):
        decode_events(data)


# Text from the whole of Unicode, lone surrogates included (a JSON source can decode
# "\ud800" into one), plus the characters JSON must escape.
_odd_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from(['"', "\\", "\n", "\r", "\x00", "\u2028", "\ufeff", "/"]),
    )
)
# Real UTC offsets are whole minutes (sub-minute ones exist only in 19th-century zone data).
_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timedelta(minutes=m)
)
_datetimes = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.builds(timezone, _offsets)),
    st.datetimes(),
)
_str_dict = st.dictionaries(_odd_text, _odd_text, max_size=4)
_opt_text = st.none() | _odd_text

_messages = st.builds(
    ChatMessage,
    platform=_odd_text,
    channel=_odd_text,
    message_id=_odd_text,
    sent_at=_datetimes,
    text=_odd_text,
    user_id=_opt_text,
    user_login=_opt_text,
    user_name=_opt_text,
    kind=_odd_text,
    badges=_str_dict,
    is_mod=st.booleans(),
    is_subscriber=st.booleans(),
    is_first=st.booleans(),
    bits=st.integers(min_value=-(2**63), max_value=2**63),
    reply_parent_id=_opt_text,
    channel_platform_id=_opt_text,
    emotes=st.lists(
        st.builds(
            EmoteUse,
            _odd_text,
            _odd_text,
            st.sampled_from(["twitch", "bttv", "ffz", "7tv", "emoji"]),
            st.integers(min_value=0, max_value=10**6),
        ),
        max_size=3,
    ).map(tuple),
    received_at=st.none() | _datetimes,
    source=st.sampled_from(["live", "gapfill", "replay"]),
    extra=_str_dict,
)
_moderations = st.builds(
    ModerationEvent,
    platform=_odd_text,
    channel=_odd_text,
    at=_datetimes,
    kind=st.sampled_from(["ban", "timeout", "delete", "clear"]),
    event_key=_odd_text,
    target_user_id=_opt_text,
    target_login=_opt_text,
    target_message_id=_opt_text,
    duration_s=st.none() | st.integers(min_value=0, max_value=2**31),
    channel_platform_id=_opt_text,
    source=st.sampled_from(["live", "gapfill", "replay"]),
)
_others = st.one_of(
    st.builds(ControlEvent, kind=_odd_text, channel=_opt_text, params=_str_dict, text=_odd_text),
    st.builds(Malformed, raw=_odd_text, reason=_odd_text, source_name=_odd_text),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_messages, _moderations, _others), max_size=5))
def test_any_events_round_trip_equal(events: list[ChatEvent]) -> None:
    decoded = decode_events(encode_events(events))
    assert decoded == events
    assert [type(e) for e in decoded] == [type(e) for e in events]


@settings(max_examples=200, deadline=None)
@given(_odd_text)
def test_odd_text_survives_byte_for_byte(text: str) -> None:
    event = Malformed(raw=text, reason=text, source_name=text)
    (decoded,) = decode_events(encode_events([event]))
    assert isinstance(decoded, Malformed)
    assert decoded.raw == text
    assert len(decoded.raw) == len(text)


def test_version_1_spool_records_still_decode_with_an_empty_moderation_extra() -> None:
    # What a collector before format 2 spooled: a moderation event without ``extra``.
    data = (
        b'{"v":1,"e":[["d","twitch","nymn",1704557984095000,"delete","k",null,"u","m1",'
        b'null,null,"live"]]}'
    )
    (event,) = decode_events(data)
    assert isinstance(event, ModerationEvent)
    assert event.extra == {}
    assert event.target_message_id == "m1"


def test_moderation_extra_survives_the_round_trip() -> None:
    event = ModerationEvent(
        "twitch",
        "nymn",
        datetime(2024, 1, 6, 16, 19, 44, tzinfo=UTC),
        "delete",
        "k",
        target_message_id="m1",
        extra={"tmi-sent-ts": "-6795364578871"},
    )
    assert decode_events(encode_events([event])) == [event]


# -- pack_events / unpack_events: the replay's parse workers to the replay ----------------------


def test_real_recent_messages_pack_and_unpack_equal() -> None:
    events = _nymn_events()
    unpacked = unpack_events(pack_events(events))
    assert unpacked == events
    assert unpacked == decode_events(encode_events(events))
    first = unpacked[0]
    assert isinstance(first, ChatMessage)
    assert first.sent_at.tzinfo is UTC
    assert isinstance(first.emotes, tuple)
    assert all(type(e) is EmoteUse for e in first.emotes)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_messages, _moderations, _others), max_size=5))
def test_any_events_pack_and_unpack_equal(events: list[ChatEvent]) -> None:
    unpacked = unpack_events(pack_events(events))
    assert unpacked == events
    assert [type(e) for e in unpacked] == [type(e) for e in events]


@settings(max_examples=200, deadline=None)
@given(_odd_text)
def test_odd_text_survives_packing(text: str) -> None:
    (unpacked,) = unpack_events(pack_events([Malformed(raw=text, reason=text, source_name=text)]))
    assert isinstance(unpacked, Malformed)
    assert unpacked.raw == text


def test_pack_rejects_non_events_and_unpack_what_it_did_not_write() -> None:
    with pytest.raises(TypeError):
        pack_events(["not an event"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        pack_events([ControlEvent("x", params={"at": RECEIVED_AT})])  # type: ignore[dict-item]
    for data in (b"", b"garbage", marshal.dumps({"e": []}), marshal.dumps([["z", 1]])):
        with pytest.raises(CodecError):
            unpack_events(data)


def _parsed_as_json_decode(text: str) -> None:
    def outcome(parse: Callable[[str], object]) -> object:
        try:
            return parse(text)
        except ValueError as exc:
            return (type(exc), str(exc))

    assert outcome(codec._parse_json) == outcome(json.JSONDecoder().decode)


@pytest.mark.parametrize(
    "text",
    [
        '{"v":2,"e":[]}',
        ' {"v":2,"e":[]}',
        '{"v":2,"e":[]} \n',
        '{"v":2,"e":[]}x',
        '{"v":2,"e":[]}{"v":2}',
        "",
        "   ",
        '{"v":',
        "[1,2]",
        '"s"',
        "nul",
        "\ufeff{}",
    ],
)
def test_the_scanner_fast_path_parses_and_fails_as_json_decode(text: str) -> None:
    _parsed_as_json_decode(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]":, 0123456789.eE-+tnrufals\\\t\n', max_size=24))
def test_any_text_parses_or_fails_as_json_decode(text: str) -> None:
    _parsed_as_json_decode(text)
