"""Tests for collector.formats: detection, streaming readers, Malformed handling, write_jsonl.

Real data: tests/fixtures/xenova-chat-downloader-examples (chat_replay_downloader JSON exports
from YouTube and Twitch, MIT) and tests/fixtures/chatterino-recentmessages-nymn (800 raw IRC
lines, MIT).  No real TwitchDownloader export exists in any public repository we could read
(tests/fixtures/twitchdownloader-schema/PROVENANCE.md), so the TwitchDownloader files here are
built by hand from that folder's SCHEMA.md (TD v1.4.0 ChatRoot property names and order).

The readers take a path or a file's bytes: the synthetic files here are bytes, never written.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.events import (
    ChatEvent,
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
)
from collector.formats import (
    FORMATS,
    FormatError,
    detect_format,
    read_events,
    write_jsonl,
)
from tests.paths import NYMN, XENOVA, nymn_irc_lines

CD = XENOVA
CD_TWITCH = CD / "[Twitch] Get live chat replay.json"
CD_YOUTUBE = CD / "[YouTube] Get messages from live chat replay.json"
CD_SUPERCHAT = CD / "[YouTube] Get superchat messages from live chat replay.json"


def _us(ts: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts)


def _messages(events: list[ChatEvent]) -> list[ChatMessage]:
    return [e for e in events if isinstance(e, ChatMessage)]


def _malformed(events: list[ChatEvent]) -> list[Malformed]:
    return [e for e in events if isinstance(e, Malformed)]


# --- a TwitchDownloader export built from SCHEMA.md --------------------------------------------


def _td_comment(
    cid: str,
    created_at: str,
    offset: float,
    user: tuple[str, str, str],
    fragments: list[tuple[str, str | None]],
    *,
    badges: tuple[tuple[str, str], ...] = (),
    bits: int = 0,
    notice: str | None = None,
) -> dict[str, Any]:
    body = "".join(text for text, _ in fragments)
    emoticons = []
    pos = 0
    for text, emote_id in fragments:
        if emote_id is not None:
            # TD ChatDownloader.cs: end = begin + fragment.text.Length (UTF-16) + 1.
            emoticons.append({"_id": emote_id, "begin": pos, "end": pos + len(text) + 1})
        pos += len(text.encode("utf-16-le")) // 2
    message: dict[str, Any] = {
        "body": body,
        "bits_spent": bits,
        "fragments": [
            {"text": t, "emoticon": None if e is None else {"emoticon_id": e}} for t, e in fragments
        ],
        "user_badges": [{"_id": b, "version": v} for b, v in badges],
        "user_color": "#1E90FF",
        "emoticons": emoticons,
    }
    if notice is not None:
        message["user_notice_params"] = {"msg_id": notice}
    return {
        "_id": cid,
        "created_at": created_at,
        "channel_id": "22484632",
        "content_type": "video",
        "content_id": "2030000001",
        "content_offset_seconds": offset,
        "commenter": {
            "display_name": user[2],
            "_id": user[0],
            "name": user[1],
            "bio": None,
            "created_at": "0001-01-01T00:00:00",
            "updated_at": "0001-01-01T00:00:00",
            "logo": None,
        },
        "message": message,
    }


def _td_root(comments: list[dict[str, Any]], *, streamer: bool = True) -> dict[str, Any]:
    root: dict[str, Any] = {
        "FileInfo": {
            "Version": {"Major": 1, "Minor": 4, "Patch": 0},
            "CreatedAt": "2024-01-07T10:00:00Z",
            "UpdatedAt": "0001-01-01T00:00:00",
        },
    }
    if streamer:
        root["streamer"] = {"name": "Forsen", "login": "forsen", "id": 22484632}
    root["video"] = {
        "title": 'Stream [with] {brackets} and "quotes" \\ backslash',
        "description": None,
        "id": "2030000001",
        "created_at": "2024-01-06T16:00:00Z",
        "start": 0.0,
        "end": 120.0,
        "length": 7200.0,
        "viewCount": 1234,
        "game": "Just Chatting",
        "chapters": [],
    }
    root["comments"] = comments
    root["embeddedData"] = {
        "thirdParty": [
            {
                "id": "6f0b4",
                "imageScale": 2,
                "data": 'iVBORw0KGgo]}"=',
                "name": "forsenE",
                "url": "https://cdn.7tv.app/emote/6f0b4/2x.webp",
                "width": 56,
                "height": 56,
                "isZeroWidth": False,
            },
        ],
        "firstParty": [],
        "twitchBadges": [{"name": "subscriber", "versions": {"0": "iVBOR"}}],
        "twitchBits": [],
    }
    return root


TD_COMMENTS = [
    _td_comment(
        "b1d6c5a0-0001-4000-8000-000000000001",
        "2024-01-06T16:00:05.123Z",
        5.123,
        ("11111111", "pajlada", "pajlada"),
        [("Kappa", "25"), (" hello ", None), ("Kappa", "25")],
        badges=(("moderator", "1"), ("subscriber", "3012")),
    ),
    _td_comment(
        "b1d6c5a0-0002-4000-8000-000000000002",
        "2024-01-06T16:00:10.5000000Z",
        10.5,
        ("22222222", "cheerer", "Cheerer"),
        [("👉 ", None), ("<3", "483"), (" Cheer100 gg", None)],
        bits=100,
    ),
    _td_comment(
        "b1d6c5a0-0003-4000-8000-000000000003",
        "2024-01-06T16:01:00Z",
        60.0,
        ("33333333", "ninja_sub", "忍者"),
        [("Thanks for the 3 months!", None)],
        badges=(("subscriber", "3"),),
        notice="resub",
    ),
    _td_comment(
        "b1d6c5a0-0004-4000-8000-000000000004",
        "2024-01-06T16:01:30.250Z",
        90.25,
        ("44444444", "highlighter", "Highlighter"),
        [('look at me "quoted" \\ {[', None)],
        notice="highlighted-message",
    ),
]


def _td_bytes(root: dict[str, Any]) -> bytes:
    # TD writes compact JSON (System.Text.Json defaults); non-ASCII kept as \u escapes.
    return json.dumps(root, separators=(",", ":")).encode()


# --- detection ---------------------------------------------------------------------------------


def _irc_lines() -> list[str]:
    return nymn_irc_lines()


def test_detect_format_recognises_every_format() -> None:
    irc = ("\n".join(_irc_lines()[:5]) + "\n").encode()
    stamped = f"[2024-01-06 16:19:44] {_irc_lines()[0]}\n".encode()
    ping = b"PING :tmi.twitch.tv\n"
    txt = b"[0:00:30] LateLJ: Yoo\n[0:00:31] pajlada: hi\n"
    txt_utc = b"[2024-01-06 16:00:05 UTC] pajlada: Kappa\n"
    jsonl = b'{"channel":"a","sent_at":0,"text":"hi"}\n'
    td = _td_bytes(_td_root(TD_COMMENTS))
    td_gz = gzip.compress(td)

    assert detect_format(irc) == "irc"
    assert detect_format(stamped) == "irc"
    assert detect_format(ping) == "irc"
    assert detect_format(txt) == "twitchdownloader-txt"
    assert detect_format(txt_utc) == "twitchdownloader-txt"
    assert detect_format(jsonl) == "jsonl"
    assert detect_format(td) == "twitchdownloader"
    assert detect_format(td_gz) == "twitchdownloader"
    for sample in (CD_TWITCH, CD_YOUTUBE, CD_SUPERCHAT):
        assert detect_format(sample) == "chat-downloader"
    assert set(FORMATS) == {
        "irc",
        "twitchdownloader",
        "twitchdownloader-txt",
        "chat-downloader",
        "twitch-gql",
        "jsonl",
    }


def test_detect_format_finds_twitchdownloader_behind_a_large_video_header() -> None:
    root = _td_root(TD_COMMENTS)
    root["video"]["description"] = "x" * 30_000  # still inside the sniff window
    root["embeddedData"]["firstParty"] = [{"data": "A" * 200_000}]  # far beyond it
    assert detect_format(_td_bytes(root)) == "twitchdownloader"


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world\n", b'{"a": 1}\n', b"[1, 2, 3]", b"\x00\x01\x02binary"],
)
def test_detect_format_names_the_file_when_nothing_matches(content: bytes) -> None:
    with pytest.raises(FormatError, match=r"mystery\.bin"):
        detect_format(content, name="mystery.bin")
    with pytest.raises(FormatError, match=r"^<data>: "):
        detect_format(content)


def test_read_events_rejects_bad_arguments_before_reading() -> None:
    missing = Path("/nonexistent/chatpulse-test/nope.json")  # only read, never created
    with pytest.raises(FormatError, match="unknown chat log format"):
        read_events(missing, "csv")
    with pytest.raises(FormatError, match="--channel"):
        read_events(missing, "chat-downloader")
    with pytest.raises(FormatError, match="--channel"):
        read_events(missing, "twitchdownloader-txt")
    with pytest.raises(FormatError, match="timezone-aware"):
        read_events(missing, "twitchdownloader-txt", channel="a", start=datetime(2024, 1, 1))
    with pytest.raises(OSError):
        list(read_events(missing, "jsonl"))


# --- chat-downloader (real samples) --------------------------------------------------------------


def test_chat_downloader_twitch_sample_loads_every_message() -> None:
    items = json.loads(CD_TWITCH.read_text(encoding="utf-8"))
    events = list(read_events(CD_TWITCH, "chat-downloader", channel="#VPSwed", platform="twitch"))

    messages = _messages(events)
    assert len(messages) == len(items) == 19
    assert len(events) == len(items)
    for msg, item in zip(messages, items, strict=True):
        assert msg.text == item["message"]
        assert msg.user_name == item["author"]
        assert msg.user_login == item["author"].lower()
        assert msg.sent_at == _us(item["timestamp"])
        assert msg.platform == "twitch"
        assert msg.channel == "vpswed"
        assert msg.source == "replay"
        assert msg.message_id.startswith("h:")
    assert messages[0].sent_at == datetime(2019, 7, 7, 23, 12, 17, 129857, tzinfo=UTC)


def test_chat_downloader_without_platform_evidence_asks_for_platform() -> None:
    # The Twitch sample has no author ids and no message types: nothing says "Twitch".
    with pytest.raises(FormatError, match="--platform"):
        list(read_events(CD_TWITCH, "chat-downloader", channel="vpswed"))


def test_chat_downloader_youtube_sample_maps_messages_superchats_and_tickers() -> None:
    items = json.loads(CD_YOUTUBE.read_text(encoding="utf-8"))
    tickers = [i for i in items if "ticker_duration" in i]
    paid = [i for i in items if "amount" in i and "ticker_duration" not in i]
    plain = [i for i in items if "amount" not in i and "ticker_duration" not in i]

    events = list(read_events(CD_YOUTUBE, "auto", channel="Technoblade"))

    messages = _messages(events)
    assert len(events) == len(items) == 750
    assert not _malformed(events)
    assert len([e for e in events if isinstance(e, ControlEvent)]) == len(tickers) == 15
    assert len(messages) == len(paid) + len(plain) == 735
    assert [m.text for m in messages if m.kind == "superchat"] == [i["message"] or "" for i in paid]
    assert [m.text for m in messages if m.kind == "chat"] == [i["message"] for i in plain]
    assert all(m.platform == "youtube" and m.channel == "technoblade" for m in messages)
    assert all(m.user_id is not None and m.user_id.startswith("UC") for m in messages)
    assert all(m.user_login is None for m in messages)  # YouTube has no logins

    first = messages[0]
    assert first.sent_at == _us(plain[0]["timestamp"])
    assert first.user_id == plain[0]["author_id"]
    assert first.user_name == plain[0]["author"]

    nightbot = next(m for m in messages if m.user_name == "Nightbot")
    assert nightbot.badges == {"Verified": "1", "Moderator": "1"}
    assert nightbot.is_mod
    member = next(m for m in messages if m.user_name == "HailAutumn")
    assert member.is_subscriber and not member.is_mod

    taco = next(m for m in messages if m.user_name == "Taco Bell")
    assert taco.kind == "superchat" and taco.text == "" and taco.extra["amount"] == "$1.99"


def test_chat_downloader_superchat_sample_counts() -> None:
    items = json.loads(CD_SUPERCHAT.read_text(encoding="utf-8"))
    events = list(read_events(CD_SUPERCHAT, "chat-downloader", channel="c"))
    messages = _messages(events)
    assert len(messages) == sum("ticker_duration" not in i for i in items) == 68
    assert all(m.kind == "superchat" and "amount" in m.extra for m in messages)
    assert sum(isinstance(e, ControlEvent) for e in events) == 57


def test_replaying_a_file_twice_gives_the_same_ids() -> None:
    first = _messages(list(read_events(CD_YOUTUBE, "chat-downloader", channel="t")))
    second = _messages(list(read_events(CD_YOUTUBE, "chat-downloader", channel="t")))
    assert [m.message_id for m in first] == [m.message_id for m in second]
    assert first == second
    # Distinct messages get distinct ids; only true duplicates (same time, author, text) collide.
    items = json.loads(CD_YOUTUBE.read_text(encoding="utf-8"))
    distinct = {
        (i["timestamp"], i["author_id"], i["message"] or "")
        for i in items
        if "ticker_duration" not in i
    }
    assert len({m.message_id for m in first}) == len(distinct)


def test_chat_downloader_current_format_with_author_objects() -> None:
    # chat-downloader >= 0.1 items (CD docs/items.rst): author is an object, ids and types given.
    items = [
        {
            "message_id": "5b5ef3e6-3d44-4d1c-9a0e-9ce3a0a7fb6c",
            "message_type": "text_message",
            "message": "Kappa hi",
            "timestamp": 1704557984095000,
            "channel_id": "62300805",
            "is_first_message": True,
            "author": {
                "id": "253596827",
                "name": "purple_geco",
                "display_name": "Purple_Geco",
                "badges": [{"name": "subscriber", "version": 12, "title": "1-Year Subscriber"}],
            },
            "emotes": [{"id": "25", "name": "Kappa", "locations": "0-4"}],
        },
        {
            "message_id": "r1",
            "message_type": "resubscription",
            "message": "",
            "timestamp": 1704557985000000,
            "author": {"id": "1", "name": "x", "display_name": "X"},
        },
        {
            "message_type": "ban_user",
            "banned_user": "Spammer",
            "ban_duration": 600,
            "timestamp": 1704557986000000,
            "author": {},
        },
        {"message_type": "room_state", "timestamp": 1704557987000000},
    ]
    data = json.dumps(items, sort_keys=True).encode()

    events = list(read_events(data, "auto", channel="nymn"))

    msg, resub, ban, room = events
    assert isinstance(msg, ChatMessage)
    assert msg.platform == "twitch"  # numeric author ids
    assert msg.message_id == "5b5ef3e6-3d44-4d1c-9a0e-9ce3a0a7fb6c"
    assert (msg.user_id, msg.user_login) == ("253596827", "purple_geco")
    assert msg.user_name == "Purple_Geco"
    assert msg.badges == {"subscriber": "12"} and msg.is_subscriber and msg.is_first
    assert msg.emotes == (EmoteUse("25", "Kappa", "twitch", 1),)
    assert msg.channel_platform_id == "62300805"
    assert msg.sent_at == datetime(2024, 1, 6, 16, 19, 44, 95000, tzinfo=UTC)
    assert isinstance(resub, ChatMessage) and resub.kind == "resub"
    assert isinstance(ban, ModerationEvent)
    assert (ban.kind, ban.target_login, ban.duration_s) == ("timeout", "spammer", 600)
    assert isinstance(room, ControlEvent)


# --- Malformed items and the streaming parser --------------------------------------------------

_BROKEN_ARRAY = (
    '[{"author": "a", "message": "one", "timestamp": 1562541137129857},\n'
    ' {"author": "b", "message": oops, "timestamp": 1562541137129858},\n'
    ' "not an object",\n'
    ' {"author": "c", "message": "bad time", "timestamp": 1562541137},\n'
    ' {"author": "d", "timestamp": 1562541137129859},\n'
    ' {"author": "e", "message": "tricky ]}\\" \\\\", "timestamp": 1562541137129860},\n'
    ' {"author": "f", "message": "ünïcödé 👉 ok", "timestamp": 1562541137129861}\n'
    "]\n"
)


def test_malformed_items_are_reported_and_the_rest_still_load() -> None:
    events = list(
        read_events(
            _BROKEN_ARRAY.encode(),
            "chat-downloader",
            name="broken.json",
            channel="c",
            platform="twitch",
        )
    )

    assert [m.text for m in _messages(events)] == ["one", 'tricky ]}" \\', "ünïcödé 👉 ok"]
    bad = _malformed(events)
    assert [b.reason.split(":")[0] for b in bad] == ["item 2", "item 3", "item 4", "item 5"]
    assert "invalid JSON" in bad[0].reason and "oops" in bad[0].raw
    assert "not a JSON object" in bad[1].reason
    assert "microseconds" in bad[2].reason
    assert "missing message" in bad[3].reason
    assert all(b.source_name == "broken.json" for b in bad)


def test_a_file_cut_off_mid_item_keeps_the_complete_items() -> None:
    text = _BROKEN_ARRAY
    cut = text[: text.index('"ünïcödé') + 5].encode()
    events = list(read_events(cut, "chat-downloader", channel="c", platform="twitch"))
    assert [m.text for m in _messages(events)] == ["one", 'tricky ]}" \\']
    assert "cut off" in _malformed(events)[-1].reason


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 16, 64, 1 << 20])
def test_streaming_json_gives_the_same_events_at_every_buffer_boundary(chunk_size: int) -> None:
    # chunk_size=1 splits the file at every byte, so every token, escape and multi-byte UTF-8
    # character is cut at least once; the other sizes cut at varying phases.
    cd = _BROKEN_ARRAY.encode()
    td = _td_bytes(_td_root(TD_COMMENTS))
    td_unicode = json.dumps(_td_root(TD_COMMENTS), ensure_ascii=False, indent=2).encode()

    def read(data: bytes, fmt: str, size: int) -> list[ChatEvent]:
        return list(read_events(data, fmt, channel="c", platform="twitch", chunk_size=size))

    assert read(cd, "chat-downloader", chunk_size) == read(cd, "chat-downloader", 1 << 20)
    whole_td = read(td, "twitchdownloader", 1 << 20)
    assert len(whole_td) == len(TD_COMMENTS)
    assert read(td, "twitchdownloader", chunk_size) == whole_td
    assert read(td_unicode, "twitchdownloader", chunk_size) == whole_td


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 16, 64, 1 << 20])
def test_line_formats_give_the_same_events_at_every_buffer_boundary(chunk_size: int) -> None:
    # Lines are split per chunk: a line, a CRLF or a multi-byte character cut between two
    # chunks, blank and whitespace-only lines, and a last line without its newline.
    txt = (
        "\ufeff[2024-01-06 16:20:30 UTC] Foo: hello \u00fcber\r\n\r\n   \n"
        "[2024-01-06 16:20:31 UTC] Bar: KEKW\r\nnot a line\n"
        "[2024-01-06 16:20:32 UTC] B\u00e4z: last one"
    ).encode()

    def read(size: int) -> list[ChatEvent]:
        return list(
            read_events(
                txt, "twitchdownloader-txt", channel="c", platform="twitch", chunk_size=size
            )
        )

    events = read(chunk_size)
    assert [m.text for m in _messages(events)] == ["hello \u00fcber", "KEKW", "last one"]
    assert [e.reason.split(":")[0] for e in _malformed(events)] == ["line 5"]
    assert events == read(1 << 20)


def test_progress_callback_reports_bytes_read_up_to_the_file_size() -> None:
    calls: list[tuple[int, int]] = []
    size = CD_YOUTUBE.stat().st_size
    events = list(
        read_events(
            CD_YOUTUBE,
            "chat-downloader",
            channel="c",
            on_progress=lambda done, total: calls.append((done, total)),
            chunk_size=16_384,
        )
    )
    assert len(events) == 750
    assert len(calls) >= size // 16_384
    assert all(total == size for _, total in calls)
    done = [read for read, _ in calls]
    assert done == sorted(done) and done[-1] == size


# --- TwitchDownloader JSON ------------------------------------------------------------------------


def test_twitchdownloader_json_maps_comments() -> None:
    data = _td_bytes(_td_root(TD_COMMENTS))
    events = list(read_events(data, "auto"))

    messages = _messages(events)
    assert len(messages) == len(events) == len(json.loads(data)["comments"]) == 4
    kappa, cheer, resub, highlight = messages
    assert kappa.channel == "forsen" and kappa.platform == "twitch" and kappa.source == "replay"
    assert kappa.message_id == "b1d6c5a0-0001-4000-8000-000000000001"
    assert kappa.sent_at == datetime(2024, 1, 6, 16, 0, 5, 123000, tzinfo=UTC)
    assert (kappa.user_id, kappa.user_login, kappa.user_name) == ("11111111", "pajlada", "pajlada")
    assert kappa.text == "Kappa hello Kappa"
    assert kappa.emotes == (EmoteUse("25", "Kappa", "twitch", 2),)
    assert kappa.badges == {"moderator": "1", "subscriber": "3012"}
    assert kappa.is_mod and kappa.is_subscriber
    assert kappa.channel_platform_id == "22484632"
    assert kappa.extra["content_offset_seconds"] == "5.123"

    assert cheer.bits == 100 and cheer.text == "👉 <3 Cheer100 gg"
    assert cheer.emotes == (EmoteUse("483", "<3", "twitch", 1),)
    assert cheer.sent_at == datetime(2024, 1, 6, 16, 0, 10, 500000, tzinfo=UTC)
    assert resub.kind == "resub" and resub.user_name == "忍者" and resub.user_login == "ninja_sub"
    assert highlight.kind == "chat" and highlight.extra["msg_id"] == "highlighted-message"
    assert highlight.text == 'look at me "quoted" \\ {['


def test_twitchdownloader_emoticon_offsets_are_utf16_when_fragments_are_missing() -> None:
    comments = [dict(c, message=dict(c["message"], fragments=[])) for c in TD_COMMENTS[:2]]
    events = _messages(list(read_events(_td_bytes(_td_root(comments)), "auto")))
    assert events[0].emotes == (EmoteUse("25", "Kappa", "twitch", 2),)
    # "👉" is two UTF-16 units: "<3" starts at unit 3, code point 2.
    assert events[1].emotes == (EmoteUse("483", "<3", "twitch", 1),)


def test_twitchdownloader_gzip_and_channel_override() -> None:
    gz = gzip.compress(_td_bytes(_td_root(TD_COMMENTS)))
    from_gz = list(read_events(gz, "twitchdownloader", channel="#Other"))
    assert [m.channel for m in _messages(from_gz)] == ["other"] * 4
    assert [m.message_id for m in _messages(from_gz)] == [c["_id"] for c in TD_COMMENTS]


def test_twitchdownloader_without_streamer_needs_a_channel() -> None:
    data = _td_bytes(_td_root(TD_COMMENTS, streamer=False))
    with pytest.raises(FormatError, match="--channel"):
        list(read_events(data, "twitchdownloader"))
    assert len(list(read_events(data, "twitchdownloader", channel="forsen"))) == 4


def test_twitchdownloader_bad_comments_become_malformed() -> None:
    comments: list[Any] = [
        TD_COMMENTS[0],
        {"_id": "x", "created_at": "yesterday", "message": {"body": "hi"}},
        {"_id": "y", "created_at": "2024-01-06T16:00:00Z"},
        42,
        TD_COMMENTS[1],
    ]
    events = list(read_events(_td_bytes(_td_root(comments)), "twitchdownloader"))
    assert [m.message_id for m in _messages(events)] == [
        TD_COMMENTS[0]["_id"],
        TD_COMMENTS[1]["_id"],
    ]
    reasons = [b.reason for b in _malformed(events)]
    assert reasons == [
        "comments item 2: bad created_at 'yesterday'",
        "comments item 3: missing message",
        "comments item 4: not a JSON object",
    ]


def test_a_structurally_wrong_file_raises_format_error() -> None:
    with pytest.raises(FormatError, match="root object"):
        list(read_events(b"[]", "twitchdownloader"))
    with pytest.raises(FormatError, match="array"):
        list(read_events(b"{}", "chat-downloader", channel="c"))


# --- TwitchDownloader TXT ---------------------------------------------------------------------


def test_twitchdownloader_txt_relative_and_utc_stamps() -> None:
    data = (
        "\ufeff[0:00:30] LateLJ: Yoo\n"
        "[25:01:02] 忍者: こんにちは: hi\n"
        "[2024-01-06 16:00:05 UTC] pajlada: Kappa\n"
        "[2024-01-06 16:00:05.250 UTC] pajlada: Kappa\n"
        "\n"
        "this line is not chat\n"
        "[0:00:40] quiet:\n"
    ).encode()
    start = datetime(2024, 1, 6, 17, 0, tzinfo=UTC)
    events = list(read_events(data, "twitchdownloader-txt", channel="forsen", start=start))

    messages = _messages(events)
    assert [(m.user_name, m.text) for m in messages] == [
        ("LateLJ", "Yoo"),
        ("忍者", "こんにちは: hi"),
        ("pajlada", "Kappa"),
        ("pajlada", "Kappa"),
        ("quiet", ""),
    ]
    assert messages[0].sent_at == start + timedelta(seconds=30)
    assert messages[0].user_login == "latelj"
    assert messages[1].sent_at == start + timedelta(hours=25, minutes=1, seconds=2)
    assert messages[1].user_login is None
    assert messages[2].sent_at == datetime(2024, 1, 6, 16, 0, 5, tzinfo=UTC)
    assert messages[3].sent_at == datetime(2024, 1, 6, 16, 0, 5, 250000, tzinfo=UTC)
    assert messages[2].message_id != messages[3].message_id
    (bad,) = _malformed(events)
    assert bad.reason.startswith("line 6: not a TwitchDownloader text line")
    again = _messages(list(read_events(data, "auto", channel="forsen", start=start)))
    assert [m.message_id for m in again] == [m.message_id for m in messages]


def test_twitchdownloader_txt_relative_without_start_is_malformed() -> None:
    # A stray relative line in a UTC file is one malformed line; a relative file is refused
    # (tests/unit/test_formats_txt.py).
    data = (
        b"[2024-01-06 16:00:04 UTC] a: a\n[0:00:30] LateLJ: Yoo\n[2024-01-06 16:00:05 UTC] a: b\n"
    )
    events = list(read_events(data, "twitchdownloader-txt", channel="forsen"))
    assert isinstance(events[1], Malformed)
    assert "relative timestamp and no start time" in events[1].reason
    assert isinstance(events[0], ChatMessage) and isinstance(events[2], ChatMessage)


# --- jsonl ------------------------------------------------------------------------------------


def test_jsonl_lines_are_validated_one_by_one() -> None:
    lines = [
        '{"channel": "#Forsen", "id": "m1", "sent_at": "2024-01-06T16:00:05.5Z", '
        '"user_id": 7, "user_login": "a", "user_name": "A", "text": "hi", '
        '"badges": {"subscriber": 12}, "bits": 5, "reply_parent_id": "p1", "kind": "action"}',
        '{"channel": "forsen", "sent_at": 1704556805000, "user_login": "b", "text": "epoch"}',
        '{"channel": "forsen", "sent_at": "2024-01-06T16:00:05Z"}',
        '{"channel": "forsen", "sent_at": "soon", "text": "x"}',
        '{"channel": "forsen", "sent_at": "2024-01-06T16:00:05", "text": "naive"}',
        '{"sent_at": 0, "text": "no channel"}',
        '{"channel": "forsen", "sent_at": 0, "text": "x", "bits": -1}',
        "[1, 2]",
        "{not json",
        "",
        '{"channel": "forsen", "sent_at": 1.5, "text": "float time"}',
        '{"channel": "forsen", "sent_at": 0, "text": "last", "platform": "kick"}',
    ]
    events = list(read_events(("\n".join(lines) + "\n").encode(), "jsonl"))

    m1, epoch, last = _messages(events)
    assert m1 == ChatMessage(
        platform="generic",
        channel="forsen",
        message_id="m1",
        sent_at=datetime(2024, 1, 6, 16, 0, 5, 500000, tzinfo=UTC),
        text="hi",
        user_id="7",
        user_login="a",
        user_name="A",
        kind="action",
        badges={"subscriber": "12"},
        bits=5,
        reply_parent_id="p1",
        source="replay",
    )
    assert epoch.sent_at == datetime(2024, 1, 6, 16, 0, 5, tzinfo=UTC)
    assert epoch.message_id.startswith("h:")
    assert last.platform == "kick"
    assert [b.reason for b in _malformed(events)] == [
        "line 3: missing text",
        "line 4: sent_at is not an RFC 3339 time: 'soon'",
        "line 5: sent_at has no UTC offset: '2024-01-06T16:00:05'",
        "line 6: missing channel (and no --channel given)",
        "line 7: bits must be a non-negative integer",
        "line 8: not a JSON object",
        "line 9: invalid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "line 11: sent_at must be an RFC 3339 string or integer epoch milliseconds",
    ]


def test_write_jsonl_round_trips_messages() -> None:
    full = ChatMessage(
        platform="twitch",
        channel="forsen",
        message_id="abc",
        sent_at=datetime(2024, 1, 6, 16, 0, 5, 123456, tzinfo=UTC),
        text='quotes " and \\ and 👉 and\ttab',
        user_id="1",
        user_login="a",
        user_name="Ä",
        kind="resub",
        badges={"subscriber/": "12", "moderator": "1"},
        is_mod=True,
        is_subscriber=True,
        is_first=True,
        bits=100,
        reply_parent_id="p",
        channel_platform_id="22484632",
        emotes=(EmoteUse("25", "Kappa", "twitch", 2), EmoteUse("x", "forsenE", "7tv")),
        received_at=datetime(2024, 1, 6, 16, 0, 6, tzinfo=UTC),
        source="replay",
        extra={"color": "#FF0000"},
    )
    td = _messages(list(read_events(_td_bytes(_td_root(TD_COMMENTS)), "auto")))
    yt = _messages(list(read_events(CD_YOUTUBE, "chat-downloader", channel="t")))
    originals = [full, *td, *yt]

    buffer = io.StringIO()
    assert write_jsonl(originals, buffer) == len(originals)
    data = buffer.getvalue().encode()

    assert detect_format(data) == "jsonl"
    assert list(read_events(data, "jsonl")) == originals

    with pytest.raises(TypeError):
        write_jsonl([Malformed("x", "y")], io.StringIO())  # type: ignore[list-item]


# --- irc --------------------------------------------------------------------------------------


def test_irc_log_replays_real_lines_with_their_ids() -> None:
    pytest.importorskip("collector.irc")
    lines = _irc_lines()
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()

    events = list(read_events(data, "auto", chunk_size=4096))

    stats = json.loads((NYMN / "derived_stats.json").read_text(encoding="utf-8"))
    messages = _messages(events)
    assert len(events) == stats["lines"] == 800
    assert len(messages) == stats["privmsg"] == 798
    assert sum(isinstance(e, ModerationEvent) for e in events) == stats["clearchat"]["timeout"]
    assert all(m.source == "replay" and m.channel == "nymn" for m in messages)
    assert messages[0].message_id == "33445373-4dcf-46a5-b2a9-2eb9db2386a5"
    assert messages[0].sent_at == _us(stats["first_ts"] * 1000)
    assert messages[0].received_at is None


def test_irc_log_stamp_prefix_and_bad_lines() -> None:
    pytest.importorskip("collector.irc")
    first, second = _irc_lines()[:2]
    data = (
        f"[2024-01-06 16:19:45] {first}\n"
        "[2024-01-06 16:19:46] :nick!nick@nick.tmi.twitch.tv PRIVMSG #nymn :no time tag\n"
        "[2024-01-06 16:19:47] @id=x :nick!nick@nick.tmi.twitch.tv PRIVMSG\n"
        f"{second}\n"
    ).encode()
    events = list(read_events(data, "irc", channel="#NymN", name="stamped.log"))
    stamped, untagged, bad, plain = events
    assert isinstance(stamped, ChatMessage)
    assert stamped.received_at == datetime(2024, 1, 6, 16, 19, 45, tzinfo=UTC)
    assert isinstance(untagged, ChatMessage)
    assert untagged.sent_at == datetime(2024, 1, 6, 16, 19, 46, tzinfo=UTC)
    assert isinstance(bad, Malformed) and bad.reason.startswith("line 3: ")
    assert bad.source_name == "stamped.log"
    assert isinstance(plain, ChatMessage) and plain.channel == "nymn"
