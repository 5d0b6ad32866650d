"""Tests for the pure core of collector.sources.websocket: FieldMapping and map_frame.

Real data: tests/fixtures/xenova-chat-downloader-examples/tests_head (raw YouTube innertube
live-chat actions saved by chat-downloader's tests, MIT): ``youtube_actions.json`` holds one
action of each kind, and ``other_youtube_actions.json`` a whole ``get_live_chat`` response whose
``actions`` array is a batch of nine text messages.  A relay that forwards these as WebSocket
frames is exactly what the generic source is for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.events import ChatEvent, ChatMessage, Malformed, deterministic_message_id
from collector.sources.websocket import FieldMapping, map_frame
from tests.paths import XENOVA

YT_DIR = XENOVA / "tests_head"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# One YouTube text message: where its fields live inside the renderer.
YT_FIELDS: dict[str, Any] = {
    "platform": "youtube",
    "id": "id",
    "time": "timestampUsec",
    "time_format": "epoch_us",
    "user_id": "authorExternalChannelId",
    "user_name": "authorName.simpleText",
    # YouTube splits a message into runs (text and emoji); the text runs are joined.
    "text": "message.runs.*.text",
}
RENDERER = "addChatItemAction.item.liveChatTextMessageRenderer"


def _us(ts: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts)


def _map(
    frame: str | bytes | Any, default_channel: str | None = "somechan", **mapping: Any
) -> list[ChatEvent]:
    """Map ``frame`` (JSON-encoded first unless text or bytes) with a mapping built from kwargs."""
    if not isinstance(frame, str | bytes):
        frame = json.dumps(frame)
    return map_frame(
        frame,
        FieldMapping.from_dict(mapping),
        default_channel=default_channel,
        received_at=RECEIVED,
    )


def _one(events: list[ChatEvent]) -> ChatMessage:
    assert len(events) == 1, events
    assert isinstance(events[0], ChatMessage), events[0]
    return events[0]


def _bad(events: list[ChatEvent]) -> Malformed:
    assert len(events) == 1, events
    assert isinstance(events[0], Malformed), events[0]
    return events[0]


# -- real YouTube frames ------------------------------------------------------------------------


def _youtube_single_frame_mapping() -> dict[str, Any]:
    fields = {
        k: (f"{RENDERER}.{v}" if k not in ("platform", "time_format") else v)
        for k, v in YT_FIELDS.items()
    }
    return {**fields, "filter_path": RENDERER}


def test_youtube_text_action_frame_becomes_one_message_with_platform_fields() -> None:
    actions = json.loads((YT_DIR / "youtube_actions.json").read_text(encoding="utf-8"))
    msg = _one(
        _map(json.dumps(actions[0]), default_channel="SpaceX", **_youtube_single_frame_mapping())
    )
    assert msg.platform == "youtube"
    assert msg.channel == "spacex"
    assert msg.message_id == (
        "CjoKGkNJLTRuSUMyMHUwQ0ZRMktnZ29kdEZjTjZREhxDTXZ0NEtxMDB1MENGUVhwYUFvZHFnUUxVdy0x"
    )
    assert msg.sent_at == _us(1608118971079695)
    assert msg.text == "Consistency Level ASL ❤️"
    assert msg.user_id == "UCoVFvNv-7cuHNC9v_XKEXhA"
    assert msg.user_name == "Naruto Uzumaki"
    assert msg.user_login is None
    assert msg.kind == "chat"
    assert msg.source == "live"
    assert msg.received_at == RECEIVED


def test_youtube_non_text_actions_are_ignored_by_the_presence_filter() -> None:
    actions = json.loads((YT_DIR / "youtube_actions.json").read_text(encoding="utf-8"))
    mapping = _youtube_single_frame_mapping()
    results = [_map(json.dumps(action), **mapping) for action in actions]
    # Only the first action is a liveChatTextMessageRenderer; memberships, stickers, deletions,
    # banners, polls ... are other chat machinery, neither messages nor malformed.
    assert [len(r) for r in results] == [1] + [0] * (len(actions) - 1)


def test_youtube_get_live_chat_batch_yields_every_text_message_in_order() -> None:
    frame = (YT_DIR / "other_youtube_actions.json").read_text(encoding="utf-8")
    events = _map(
        frame,
        items=f"contents.liveChatRenderer.actions.*.{RENDERER}",
        **YT_FIELDS,
    )
    assert all(isinstance(e, ChatMessage) for e in events)
    msgs = [e for e in events if isinstance(e, ChatMessage)]
    # The placeholder and the "Welcome to live chat!" engagement item are other renderers.
    assert [m.text for m in msgs] == [
        "PSIPHI",
        "CYPHI",
        "PSICY",
        "SIPDICYPHI",
        "PSICYSIPHI",
        "SIIN",
        "RONKNOWN",
        "BONDWIDTH BINDWIDTH",
        "PSIBAND",
    ]
    assert [m.user_name for m in msgs][:3] == ["PSI", "CY", "CY"]
    assert msgs[0].sent_at == _us(1589578920873249)
    assert msgs[-1].user_name == "Ψ"
    assert [m.sent_at for m in msgs] == sorted(m.sent_at for m in msgs)
    assert len({m.message_id for m in msgs}) == 9


# -- paths --------------------------------------------------------------------------------------


def test_nested_paths_and_list_indices_reach_deep_fields() -> None:
    frame = {
        "data": {
            "author": {"id": 42, "login": "Alice", "display": "Alice ✨"},
            "parts": [{"text": "first"}, {"text": "hello world"}],
            "meta": {"ids": ["m-1", "m-2"], "room": "#BigRoom"},
        }
    }
    msg = _one(
        _map(
            frame,
            default_channel=None,
            id="data.meta.ids.-1",
            user_id="data.author.id",
            user_login="data.author.login",
            user_name="data.author.display",
            text="data.parts.1.text",
            channel="data.meta.room",
        )
    )
    assert msg.message_id == "m-2"
    assert msg.user_id == "42"
    assert msg.user_login == "Alice"
    assert msg.user_name == "Alice ✨"
    assert msg.text == "hello world"
    assert msg.channel == "bigroom"


def test_wildcard_text_with_only_non_text_runs_is_empty_not_malformed() -> None:
    frame = {"message": {"runs": [{"emoji": {"emojiId": "🔥"}}]}, "t": 1_700_000_000}
    msg = _one(_map(frame, text="message.runs.*.text", time="t"))
    assert msg.text == ""


def test_kind_bits_badges_and_reply_parent_are_mapped() -> None:
    frame = {
        "k": "cheer",
        "b": "100",
        "badges": {"moderator": "1", "subscriber": 12},
        "re": "parent-7",
        "msg": "Cheer100 nice",
    }
    msg = _one(_map(frame, text="msg", kind="k", bits="b", badges="badges", reply_parent_id="re"))
    assert msg.kind == "cheer"
    assert msg.bits == 100
    assert msg.badges == {"moderator": "1", "subscriber": "12"}
    assert msg.reply_parent_id == "parent-7"


def test_badges_given_as_a_list_of_names_become_flags() -> None:
    msg = _one(_map({"x": "hi", "b": ["owner", "verified"]}, text="x", badges="b"))
    assert msg.badges == {"owner": "1", "verified": "1"}


@pytest.mark.parametrize(
    ("bits", "reason"),
    [(-1, "bits"), (1.5, "bits"), (2**31, "bits"), ("lots", "bits"), (True, "bits")],
)
def test_bad_bits_make_the_message_malformed(bits: Any, reason: str) -> None:
    bad = _bad(_map({"x": "hi", "b": bits}, text="x", bits="b"))
    assert bad.reason.startswith(reason + ":")


def test_json_null_counts_as_absent() -> None:
    msg = _one(_map({"x": "hi", "id": None, "u": None}, text="x", id="id", user_id="u"))
    assert msg.user_id is None
    assert msg.message_id.startswith("h:")


# -- time formats -------------------------------------------------------------------------------

T0 = datetime(2020, 12, 16, 11, 42, 51, 79695, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (1608118971, "epoch_s", T0.replace(microsecond=0)),
        (1608118971.5, "epoch_s", T0.replace(microsecond=500000)),
        ("1608118971", "epoch_s", T0.replace(microsecond=0)),
        (1608118971079, "epoch_ms", T0.replace(microsecond=79000)),
        ("1608118971079695", "epoch_us", T0),
        (1608118971079695, "epoch_us", T0),
        (1608118971, "auto", T0.replace(microsecond=0)),
        (1608118971079, "auto", T0.replace(microsecond=79000)),
        (1608118971079695, "auto", T0),
        ("1608118971079695", "auto", T0),
        (1608118971079695000, "auto", T0),
        ("2020-12-16T11:42:51.079695Z", "rfc3339", T0),
        ("2020-12-16t12:42:51.079695+01:00", "rfc3339", T0),
        ("2020-12-16T11:42:51.079695123Z", "rfc3339", T0),
        ("2020-12-16T11:42:51.079695Z", "auto", T0),
        ("2020-12-16T11:42:51.079695", "auto", T0),
    ],
)
def test_time_formats_give_utc_platform_time(value: Any, fmt: str, expected: datetime) -> None:
    msg = _one(_map({"x": "hi", "t": value}, text="x", time="t", time_format=fmt))
    assert msg.sent_at == expected
    assert msg.sent_at.tzinfo is not None
    assert msg.sent_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ("2020-12-16T11:42:51", "rfc3339"),  # RFC 3339 requires an offset
        (1608118971, "rfc3339"),
        ("yesterday", "epoch_ms"),
        ("yesterday", "auto"),
        (True, "auto"),
        ({"s": 1}, "epoch_s"),
        ("1e30", "epoch_s"),
        ("NaN", "epoch_s"),
    ],
)
def test_unusable_times_make_the_message_malformed(value: Any, fmt: str) -> None:
    bad = _bad(_map({"x": "hi", "t": value}, text="x", time="t", time_format=fmt))
    assert bad.reason.startswith("time:")
    assert bad.source_name == "websocket"


def test_missing_time_means_received_at() -> None:
    msg = _one(_map({"x": "hi"}, text="x", time="t"))
    assert msg.sent_at == RECEIVED


def test_offset_time_is_converted_to_utc() -> None:
    msg = _one(_map({"x": "hi", "t": "2024-01-01T09:00:00+09:00"}, text="x", time="t"))
    assert msg.sent_at == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert msg.sent_at.utcoffset() == timedelta(0)


# -- batches and filters ------------------------------------------------------------------------


def test_items_path_splits_a_batch_and_keeps_good_items_around_bad_ones() -> None:
    frame = {
        "type": "batch",
        "messages": [
            {"id": "a", "body": "one"},
            "not an object",
            {"id": "c"},
            {"id": "d", "body": "four"},
        ],
    }
    events = _map(frame, items="messages", id="id", text="body")
    assert [type(e).__name__ for e in events] == [
        "ChatMessage",
        "Malformed",
        "Malformed",
        "ChatMessage",
    ]
    first, not_object, no_text, last = events
    assert isinstance(first, ChatMessage) and first.message_id == "a"
    assert isinstance(last, ChatMessage) and last.text == "four"
    assert isinstance(not_object, Malformed) and not_object.reason == "item is not a JSON object"
    assert not_object.raw == '"not an object"'
    # A batch item's dead letter is the item itself, not the whole frame.
    assert isinstance(no_text, Malformed) and json.loads(no_text.raw) == {"id": "c"}
    assert no_text.reason == "text: nothing at 'body'"


def test_frame_without_the_items_path_carries_no_messages() -> None:
    assert _map({"type": "heartbeat"}, items="messages", text="body") == []


def test_items_path_that_is_not_an_array_is_malformed() -> None:
    bad = _bad(_map({"messages": {"body": "x"}}, items="messages", text="body"))
    assert bad.reason == "items: 'messages' is not an array"


def test_top_level_array_frame_is_a_batch() -> None:
    events = _map([{"body": "a"}, {"body": "b"}], text="body")
    assert [e.text for e in events if isinstance(e, ChatMessage)] == ["a", "b"]


def test_filter_keeps_only_frames_whose_path_equals_the_value() -> None:
    mapping: dict[str, Any] = {"text": "data.text", "filter_path": "type", "filter_value": "chat"}
    assert _one(_map({"type": "chat", "data": {"text": "hi"}}, **mapping)).text == "hi"
    assert _map({"type": "presence", "data": {"text": "joined"}}, **mapping) == []
    assert _map({"data": {"text": "no type"}}, **mapping) == []


def test_filter_uses_json_equality_so_true_is_not_one() -> None:
    mapping: dict[str, Any] = {"text": "x", "filter_path": "chat", "filter_value": 1}
    assert _map({"chat": True, "x": "hi"}, **mapping) == []
    assert len(_map({"chat": 1, "x": "hi"}, **mapping)) == 1


def test_filter_applies_to_each_item_of_a_batch() -> None:
    frame = {"events": [{"t": "chat", "m": "a"}, {"t": "join"}, {"t": "chat", "m": "b"}]}
    events = _map(frame, items="events", text="m", filter_path="t", filter_value="chat")
    assert [e.text for e in events if isinstance(e, ChatMessage)] == ["a", "b"]
    assert len(events) == 2


# -- malformed frames ---------------------------------------------------------------------------


def test_missing_text_is_malformed_with_the_frame_as_raw() -> None:
    frame = '{"type": "chat", "data": {}}'
    bad = _bad(_map(frame, text="data.text"))
    assert bad.raw == frame
    assert bad.reason == "text: nothing at 'data.text'"


def test_non_string_text_is_malformed() -> None:
    bad = _bad(_map({"x": {"nested": 1}}, text="x"))
    assert bad.reason.startswith("text: expected a string")


def test_not_json_is_malformed_and_never_raises() -> None:
    bad = _bad(_map("PING :tmi.twitch.tv", text="x"))
    assert bad.raw == "PING :tmi.twitch.tv"
    assert bad.reason.startswith("frame is not JSON")


def test_deeply_nested_json_is_malformed_not_a_recursion_crash() -> None:
    frame = "[" * 200_000 + "]" * 200_000
    bad = _bad(_map(frame, text="x"))
    assert bad.reason.startswith("frame is not JSON")


def test_binary_frames_are_decoded_as_utf8() -> None:
    assert _one(_map('{"x": "héllo"}'.encode(), text="x")).text == "héllo"
    bad = _bad(_map(b'{"x": "\xff"}', text="x"))
    assert bad.reason.startswith("frame is not UTF-8")


def test_json_scalar_frames_such_as_heartbeats_are_ignored() -> None:
    assert _map("42", text="x") == []
    assert _map('"ping"', text="x") == []


def test_no_channel_anywhere_is_malformed() -> None:
    bad = _bad(_map({"x": "hi"}, default_channel=None, text="x"))
    assert bad.reason.startswith("channel:")


def test_channel_in_frame_wins_over_default_and_is_lower_cased() -> None:
    assert _one(_map({"x": "hi", "c": "#LoudRoom"}, text="x", channel="c")).channel == "loudroom"
    assert _one(_map({"x": "hi"}, default_channel="Default", text="x")).channel == "default"


def test_wrong_type_for_user_id_is_malformed_naming_the_field() -> None:
    bad = _bad(_map({"x": "hi", "u": ["a"]}, text="x", user_id="u"))
    assert bad.reason.startswith("user_id:")


# -- deterministic ids --------------------------------------------------------------------------


def test_missing_id_gets_a_deterministic_id_stable_across_receipts() -> None:
    frame = json.dumps({"who": "alice", "x": "gg", "t": "2024-01-01T00:00:00Z"})
    mapping = FieldMapping(text="x", user_login="who", time="t", platform="kick")
    first = _one(map_frame(frame, mapping, default_channel="Room", received_at=RECEIVED))
    later = RECEIVED + timedelta(hours=1)
    again = _one(map_frame(frame, mapping, default_channel="room", received_at=later))
    assert first.message_id == again.message_id
    assert first.message_id == deterministic_message_id(
        "kick", "room", datetime(2024, 1, 1, tzinfo=UTC), "alice", "gg"
    )
    other = json.dumps({"who": "alice", "x": "gg!", "t": "2024-01-01T00:00:00Z"})
    changed = _one(map_frame(other, mapping, default_channel="room", received_at=RECEIVED))
    assert changed.message_id != first.message_id


def test_deterministic_id_prefers_user_id_over_login() -> None:
    frame = {"uid": "123", "who": "alice", "x": "gg", "t": 1_700_000_000}
    msg = _one(_map(frame, text="x", user_id="uid", user_login="who", time="t"))
    assert msg.message_id == deterministic_message_id(
        "generic", "somechan", datetime.fromtimestamp(1_700_000_000, UTC), "123", "gg"
    )


# -- FieldMapping validation -------------------------------------------------------------------


def test_from_json_builds_the_same_mapping_as_the_constructor() -> None:
    text = json.dumps({**YT_FIELDS, "items": "actions.*.x", "filter_path": "type"})
    assert FieldMapping.from_json(text) == FieldMapping(
        **YT_FIELDS, items="actions.*.x", filter_path="type"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"text": "x", "author": "a"}, "unknown key 'author'"),
        ({"id": "x"}, "missing required key 'text'"),
        ({"text": "x", "time_format": "epoch_ns"}, "'time_format'"),
        ({"text": "x", "id": "a.*.b"}, "'id': '*' is allowed only"),
        ({"text": "a..b"}, "'text': empty segment"),
        ({"text": ""}, "'text': expected a dotted path"),
        ({"text": "x", "user_id": 5}, "'user_id': expected a string, got int"),
        ({"text": "x", "filter_value": "chat"}, "'filter_value': needs 'filter_path'"),
        ({"text": "x", "filter_path": "t", "filter_value": [1]}, "'filter_value'"),
        ({"text": "x", "platform": " "}, "'platform'"),
    ],
)
def test_invalid_mappings_raise_value_error_naming_the_key(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="mapping") as info:
        FieldMapping.from_dict(data)
    assert message in str(info.value)


def test_from_json_rejects_non_json_and_non_objects() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        FieldMapping.from_json("{text: x}")
    with pytest.raises(ValueError, match="expected an object"):
        FieldMapping.from_json('["text"]')


# -- reconnect waits ----------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped_at_max() -> None:
    from collector.sources.base import ReconnectPolicy
    from collector.sources.base import reconnect_wait as _backoff_s

    policy = ReconnectPolicy(initial_s=1.0, max_s=4.0)
    first = [_backoff_s(policy, 0) for _ in range(200)]
    late = [_backoff_s(policy, 30) for _ in range(200)]
    assert all(0 <= w <= 1.0 for w in first)
    assert all(0 <= w <= 4.0 for w in late)
    assert max(late) > 1.0  # the window did widen (P(all 200 <= 1) = 0.25**200)
    assert _backoff_s(ReconnectPolicy(initial_s=0, max_s=0), 5) == 0
