"""VOD comment files as the real tools write them (issue 20 items 1 and 2).

TwitchDownloader JSON of a highlight (collapsed ``created_at``), the channel named by
``video.user_login``, notices under ``msg-id`` and ``msg_id``; Twitch GQL ``VideoComment`` lists
(twitch-archiver).  The chat in every file is real (tests/vod_exports.py says from where).
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.events import ChatEvent, ChatMessage, EmoteUse, Malformed
from collector.formats import MissingInputError, detect_format, read_events
from tests.vod_exports import (
    HIGHLIGHT_VIDEO_CREATED,
    NYMN_ROOM_ID,
    gql_history,
    highlight_export,
    sub_notices,
)


def _encode(obj: Any, *, gz: bool = False) -> bytes:
    """``obj`` as the exporting tool writes it (compact JSON), gzipped when ``gz``."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    return gzip.compress(data) if gz else data


def _read(path: bytes, **kwargs: Any) -> tuple[list[ChatMessage], list[ChatEvent], list[str]]:
    notes: list[str] = []
    events = list(read_events(path, "auto", on_clock=notes.append, **kwargs))
    return [e for e in events if isinstance(e, ChatMessage)], events, notes


# --- TwitchDownloader JSON: the highlight clock -------------------------------------------------


def test_highlight_comments_are_placed_at_video_created_at_plus_offset() -> None:
    root, lines, offsets = highlight_export()
    messages, events, notes = _read(_encode(root))

    assert len(messages) == len(events) == len(lines) == 804
    expected = [HIGHLIGHT_VIDEO_CREATED + timedelta(seconds=o) for o in offsets]
    assert [m.sent_at for m in messages] == expected
    # 48.7 minutes of chat, not 5.5 seconds: about 49 distinct minutes.
    assert messages[-1].sent_at - messages[0].sent_at == timedelta(seconds=2922)
    assert len({m.sent_at.replace(second=0, microsecond=0) for m in messages}) >= 48
    assert [m.message_id for m in messages] == [r.message.message_id for r in lines]
    # The file's own created_at is kept for whoever wants to check.
    assert messages[0].extra["created_at"] == "2024-01-06T20:01:03.250000Z"
    # One note, saying which clock and why.
    assert len(notes) == 1
    assert notes[0].startswith("clock: video.created_at + content_offset_seconds")
    assert "created_at span 5.5 s" in notes[0] and "48.7 min" in notes[0]
    assert "highlight" in notes[0]


def test_highlight_channel_and_platform_id_come_from_the_video() -> None:
    root, _, _ = highlight_export()
    assert "streamer" not in root  # the real file carries only a Helix-style video object
    for comment in root["comments"]:
        del comment["channel_id"]  # the room id must then come from video.user_id
    messages, _, _ = _read(_encode(root))
    assert {m.channel for m in messages} == {"nymn"}
    assert {m.channel_platform_id for m in messages} == {NYMN_ROOM_ID}


def test_highlight_notices_under_msg_id_with_a_dash_are_subs() -> None:
    root, lines, _ = highlight_export()
    messages, _, _ = _read(_encode(root))
    kinds = [m.kind for m in messages if m.kind not in ("chat",)]
    expected = [r.message.kind for r in lines if r.message.kind in ("sub", "resub")]
    assert len(expected) == len(sub_notices()) == 6
    assert sorted(kinds) == sorted(expected)
    # Newer TwitchDownloader files spell it msg_id: same result.
    for comment in root["comments"]:
        params = comment["message"]["user_notice_params"]
        if "msg-id" in params:
            params["msg_id"] = params.pop("msg-id")
    again, _, _ = _read(_encode(root))
    assert [m.kind for m in again] == [m.kind for m in messages]


def test_highlight_with_start_is_placed_at_start_plus_offset() -> None:
    root, _, offsets = highlight_export()
    start = datetime(2024, 1, 5, 18, 30, tzinfo=UTC)
    messages, _, notes = _read(_encode(root), start=start)
    assert [m.sent_at for m in messages] == [start + timedelta(seconds=o) for o in offsets]
    assert notes[0].startswith("clock: --start + content_offset_seconds")


def test_collapse_is_found_from_the_spreads_whatever_the_video_type() -> None:
    root, _, offsets = highlight_export()
    root["video"]["type"] = "archive"
    messages, _, notes = _read(_encode(root))
    assert messages[-1].sent_at == HIGHLIGHT_VIDEO_CREATED + timedelta(seconds=offsets[-1])
    assert "collapsed" in notes[0]


def test_a_highlight_whose_created_at_follow_the_offsets_keeps_them() -> None:
    root, _, offsets = highlight_export()
    real_start = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)
    for comment, offset in zip(root["comments"], offsets, strict=True):
        comment["created_at"] = (real_start + timedelta(seconds=offset)).isoformat()
    messages, _, notes = _read(_encode(root))
    assert [m.sent_at for m in messages] == [real_start + timedelta(seconds=o) for o in offsets]
    assert "created_at" not in messages[0].extra
    assert notes == [
        "clock: created_at, because it follows the offsets (the comments' created_at span "
        "48.7 min, their offsets 48.7 min, video.type highlight)"
    ]


def test_collapsed_file_without_any_start_asks_for_start() -> None:
    root, _, _ = highlight_export()
    del root["video"]["created_at"]
    path = _encode(root)
    with pytest.raises(MissingInputError, match="--start"):
        list(read_events(path, "auto"))


def test_streamer_display_name_or_video_user_login_names_the_channel() -> None:
    root, _, _ = highlight_export()
    root["streamer"] = {"name": "NymN", "id": int(NYMN_ROOM_ID)}
    messages, _, _ = _read(_encode(root))
    assert {m.channel for m in messages} == {"nymn"}
    # A localized display name is no login: fall back to video.user_login.
    root["streamer"] = {"name": "님엔", "id": int(NYMN_ROOM_ID)}
    messages, _, _ = _read(_encode(root))
    assert {m.channel for m in messages} == {"nymn"}
    del root["streamer"], root["video"]["user_login"], root["video"]["user_name"]
    with pytest.raises(MissingInputError, match="--channel"):
        _read(_encode(root))


# --- Twitch GQL comments --------------------------------------------------------------------


def test_gql_comments_are_detected_plain_and_gzipped_and_need_a_channel() -> None:
    _, nodes, _ = gql_history()[0]
    plain = _encode(nodes)
    gz = _encode(nodes, gz=True)
    assert detect_format(plain) == detect_format(gz) == "twitch-gql"
    # A first node longer than the sniff window is still told from chat-downloader.
    big = copy.deepcopy(nodes)
    big[0]["message"]["fragments"][0]["text"] = "x" * 70_000
    assert detect_format(_encode(big)) == "twitch-gql"
    with pytest.raises(MissingInputError, match="--channel"):
        read_events(plain, "auto")
    with pytest.raises(MissingInputError, match="--channel"):
        read_events(gz, "twitch-gql")


def test_gql_nodes_map_to_messages() -> None:
    history = gql_history(deleted_logins=frozenset({"purple_geco"}))
    _, nodes, lines = history[0]
    messages, events, notes = _read(_encode(nodes, gz=True), channel="#NymN")
    assert len(messages) == len(events) == len(nodes) == len(lines)
    for msg, node, real in zip(messages, nodes, lines, strict=True):
        assert msg.channel == "nymn" and msg.platform == "twitch" and msg.source == "replay"
        assert msg.message_id == node["id"] == real.message.message_id
        assert msg.sent_at == datetime.fromisoformat(node["createdAt"])
        assert msg.text == real.message.text
        assert msg.badges == real.message.badges
        assert (msg.is_mod, msg.is_subscriber) == (
            real.message.is_mod,
            "subscriber" in real.message.badges or "founder" in real.message.badges,
        )
        assert msg.emotes == real.message.emotes
        if node["commenter"] is None:
            assert (msg.user_id, msg.user_login, msg.user_name) == (None, None, None)
        else:
            assert (msg.user_id, msg.user_login, msg.user_name) == (
                real.message.user_id,
                real.message.user_login,
                real.message.user_name,
            )
    assert sum(node["commenter"] is None for node in nodes) >= 1
    assert any(m.is_mod for m in messages) and any(m.is_subscriber for m in messages)
    forsen_party = [e for m in messages for e in m.emotes if e.emote_name == "forsenParty"]
    assert forsen_party and forsen_party[0] == EmoteUse(
        "emotesv2_ee52e9d2f1344320bad5e93dd2a6e570", "forsenParty", "twitch", 13
    )
    assert notes and notes[0].startswith("clock: createdAt, because it follows the offsets")


def test_gql_nanosecond_times_and_bad_nodes() -> None:
    _, nodes, _ = gql_history()[0]
    nodes = copy.deepcopy(nodes[:3])
    nodes[0]["createdAt"] = "2024-01-06T16:19:44.095123456Z"
    nodes[1]["createdAt"] = "not a time"
    nodes.append({"id": "x"})
    messages, events, _ = _read(_encode(nodes), channel="nymn")
    assert messages[0].sent_at == datetime(2024, 1, 6, 16, 19, 44, 95123, tzinfo=UTC)
    bad = [e for e in events if isinstance(e, Malformed)]
    assert [b.reason.split(":")[0] for b in bad] == ["comments item 2", "comments item 4"]
    assert len(messages) == 2


def test_gql_with_collapsed_created_at_needs_start() -> None:
    _, nodes, _ = gql_history()[0]
    nodes = copy.deepcopy(nodes)
    for node in nodes:
        node["createdAt"] = "2024-01-09T10:00:00.000Z"
    path = _encode(nodes)
    with pytest.raises(MissingInputError, match="--start"):
        list(read_events(path, "auto", channel="nymn"))
    start = datetime(2024, 1, 6, 15, 50, tzinfo=UTC)
    messages, _, notes = _read(path, channel="nymn", start=start)
    assert [m.sent_at for m in messages] == [
        start + timedelta(seconds=n["contentOffsetSeconds"]) for n in nodes
    ]
    assert notes[0].startswith("clock: --start + contentOffsetSeconds")
