"""TwitchDownloader TXT variants, the TD JSON head, IRC bare lines and the message cap in
collector.formats (issue 13 item 1).  Files are written as TwitchDownloaderCLI writes them
(tests/td_export.py) from the real #nymn chat, as bytes: nothing is written."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from collector.events import ChatMessage, ControlEvent, Malformed
from collector.formats import (
    FormatError,
    detect_format,
    read_events,
    reason_category,
    td_json_head,
    td_txt_timestamps,
)
from tests.td_export import json_bytes, nymn_vod, txt_bytes

VOD_START = datetime(2024, 1, 6, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("variant", "stamps"),
    [("Relative", "relative"), ("Utc", "utc"), ("UtcFull", "utc"), ("None", "none")],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_auto_recognises_every_txt_variant_as_written(
    variant: str, stamps: str, newline: str
) -> None:
    vod = nymn_vod(VOD_START, (0.0, 30.0))
    data = txt_bytes(vod, variant, newline)
    assert detect_format(data) == "twitchdownloader-txt"
    assert td_txt_timestamps(data) == stamps
    gz = gzip.compress(data)
    assert detect_format(gz) == "twitchdownloader-txt"
    assert td_txt_timestamps(gz) == stamps


def test_relative_txt_needs_a_start_before_reading() -> None:
    vod = nymn_vod(VOD_START)
    data = txt_bytes(vod, "Relative")
    with pytest.raises(FormatError, match="--start"):
        read_events(data, "auto", channel="nymn")
    events = list(read_events(data, "auto", channel="nymn", start=VOD_START))
    messages = [e for e in events if isinstance(e, ChatMessage)]
    assert len(messages) == len(vod) == len(events)
    assert messages[0].sent_at == VOD_START + timedelta(seconds=int(vod[0].offset))


def test_txt_without_timestamps_is_refused() -> None:
    data = txt_bytes(nymn_vod(VOD_START), "None")
    for start in (None, VOD_START):
        with pytest.raises(FormatError, match="cannot be placed in time"):
            read_events(data, "twitchdownloader-txt", channel="nymn", start=start)


def test_td_json_head_reads_the_video_without_the_comments() -> None:
    vod = nymn_vod(VOD_START)
    data = json_bytes(vod, vod_start=VOD_START, trim=(8000.0, 9000.0))
    head = td_json_head(data)
    assert head.channel == "nymn" and head.channel_id == "62300805"
    assert head.video_id == "2026912334" and not head.is_clip
    assert (head.start_s, head.end_s) == (8000.0, 9000.0)
    # Offsets count from the start of the VOD whatever the trim: the origin is created_at.
    assert head.offset_origin == head.created_at == VOD_START
    # Only the head is read: a file cut right after "comments": [ gives the same answer.
    text = data.decode()
    cut = gzip.compress(text[: text.index('"comments"') + 20].encode())
    assert td_json_head(cut) == head

    root = json.loads(text)
    # TD writes clipper between streamer and video (ChatRoot.cs order).
    root = (
        {k: v for k, v in root.items() if k in ("FileInfo", "streamer")}
        | {"clipper": {"name": "x", "login": "x", "id": 1}}
        | {k: v for k, v in root.items() if k not in ("FileInfo", "streamer")}
    )
    clip = json.dumps(root).encode()
    assert td_json_head(clip).is_clip and td_json_head(clip).offset_origin is None
    with pytest.raises(FormatError):
        td_json_head(txt_bytes(vod[:3], "Utc"))


def test_bare_words_in_irc_mode_are_malformed_not_dropped() -> None:
    data = (
        b"x\nhello world\nPING :tmi.twitch.tv\n:tmi.twitch.tv 372 me :motd\n"
        b":tmi.twitch.tv USERSTATE #nymn\n"
    )
    events = list(read_events(data, "irc"))
    bad = [e for e in events if isinstance(e, Malformed)]
    assert [(b.raw, b.reason) for b in bad] == [
        ("x", "line 1: unknown IRC command 'X'"),
        ("hello world", "line 2: unknown IRC command 'HELLO'"),
    ]
    assert sum(isinstance(e, ControlEvent) for e in events) == 3


def test_message_longer_than_the_cap_is_kept_whole_as_malformed() -> None:
    huge = "PogChamp " * 1000
    data = (
        f"[2024-01-06 16:00:05 UTC] a: short\n[2024-01-06 16:00:06 UTC] Spammer: {huge}\n".encode()
    )
    events = list(read_events(data, "auto", channel="nymn", max_message_chars=500))
    assert isinstance(events[0], ChatMessage)
    bad = events[1]
    assert isinstance(bad, Malformed)
    assert bad.reason == "message longer than max_message_chars (500): 9000 characters"
    kept = json.loads(bad.raw)
    assert kept["text"] == huge and kept["user_name"] == "Spammer"
    uncapped = list(read_events(data, "auto", channel="nymn"))
    assert all(isinstance(e, ChatMessage) for e in uncapped)


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("line 12: bad UTC timestamp '2024-13-01 00:00:00'", "bad UTC timestamp"),
        ("line 3: not UTF-8: invalid start byte", "not UTF-8"),
        ("comments item 4: missing created_at", "missing created_at"),
        ("item 9: invalid JSON: Expecting value: line 1 column 1 (char 0)", "invalid JSON"),
        (
            "message longer than max_message_chars (2000): 9000 characters",
            "message longer than max_message_chars (2000)",
        ),
    ],
)
def test_reason_category_drops_position_and_detail(reason: str, category: str) -> None:
    assert reason_category(reason) == category
