"""Tests for collector.irc: line parsing, event mapping, outgoing lines, recent-messages.

Real data: tests/fixtures/chatterino-irc-snapshots (110 Twitch lines with Chatterino's own parse,
CC0-1.0) and tests/fixtures/chatterino-recentmessages-nymn (a real recent-messages response, MIT;
expected values in derived_stats.json come from an independent parser).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.events import (
    ChatMessage,
    ControlEvent,
    EmoteUse,
    Malformed,
    ModerationEvent,
    deterministic_message_id,
    moderation_event_key,
)
from collector.irc import (
    IrcMessage,
    IrcParseError,
    RecentMessagesError,
    escape_tag_value,
    format_line,
    parse_emote_ranges,
    parse_emotes,
    parse_event,
    parse_line,
    parse_recent_messages,
    parse_recent_messages_response,
    repair_counts,
    split_frame,
    to_event,
    unescape_tag_value,
)
from tests.paths import IRC_SNAPSHOTS, NYMN, nymn_irc_lines

SNAPSHOTS = IRC_SNAPSHOTS

RECEIVED = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def _ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _snapshot_rows() -> list[tuple[str, str, str]]:
    text = (SNAPSHOTS / "irc_inputs.tsv").read_text(encoding="utf-8")
    # split("\n"), not splitlines(): raw lines may hold U+2028 and friends.
    rows = [line.split("\t", 2) for line in text.split("\n")[1:] if line]
    return [(r[0], r[1], r[2]) for r in rows]


SNAPSHOT_ROWS = _snapshot_rows()


def _snapshot(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (SNAPSHOTS / "IrcMessageHandler" / name).read_text(encoding="utf-8")
    )
    return data


def _chat(line: str, **kw: Any) -> ChatMessage:
    event = parse_event(line, **kw)
    assert isinstance(event, ChatMessage), event
    return event


def _moderation(line: str, **kw: Any) -> ModerationEvent:
    event = parse_event(line, **kw)
    assert isinstance(event, ModerationEvent), event
    return event


def _control(line: str) -> ControlEvent:
    event = parse_event(line)
    assert isinstance(event, ControlEvent), event
    return event


# ------------------------------------------------------------------------------------------
# parse_line
# ------------------------------------------------------------------------------------------


def test_parse_line_splits_tags_prefix_command_and_params() -> None:
    msg = parse_line("@a=1;b=x\\sy :nick!nick@nick.tmi.twitch.tv PRIVMSG #Chan :hello there\r\n")
    assert msg == IrcMessage(
        tags={"a": "1", "b": "x y"},
        prefix="nick!nick@nick.tmi.twitch.tv",
        command="PRIVMSG",
        params=("#Chan", "hello there"),
    )
    assert msg.nick == "nick"
    assert msg.channel == "chan"
    assert msg.trailing == "hello there"


def test_parse_line_accepts_lines_without_tags_or_prefix() -> None:
    assert parse_line("PING :tmi.twitch.tv") == IrcMessage({}, None, "PING", ("tmi.twitch.tv",))
    assert parse_line("RECONNECT\n") == IrcMessage({}, None, "RECONNECT", ())
    assert parse_line(":tmi.twitch.tv 001 justinfan1 :Welcome, GLHF!").params == (
        "justinfan1",
        "Welcome, GLHF!",
    )


def test_parse_line_keeps_middle_params_and_collapses_repeated_spaces() -> None:
    msg = parse_line(":tmi.twitch.tv CLEARCHAT  #pajlada   nerixyz ")
    assert msg.params == ("#pajlada", "nerixyz")
    assert msg.trailing == "nerixyz"


def test_parse_line_keeps_spaces_and_colons_inside_trailing() -> None:
    msg = parse_line("PRIVMSG #c :  a :b  ")
    assert msg.params == ("#c", "  a :b  ")


def test_parse_line_upper_cases_command() -> None:
    assert parse_line("privmsg #c :x").command == "PRIVMSG"


def test_tag_without_equals_sign_has_empty_value() -> None:
    assert parse_line("@flags;emotes=;x=1 CMD").tags == {"flags": "", "emotes": "", "x": "1"}


_TAG_KEY = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-/+0123456789", min_size=1, max_size=6)
_TAG_VALUE = st.text(alphabet="abcxyz0123456789,:/-_=#\\", max_size=6)


@given(
    st.lists(
        st.one_of(
            st.tuples(_TAG_KEY, st.none()),  # a bare key
            st.tuples(_TAG_KEY, _TAG_VALUE),
            st.just(("", None)),  # an empty item: ``;;``, or a leading or trailing ``;``
        ),
        min_size=1,
        max_size=8,
    )
)
def test_tags_parse_as_ircv3_says_whichever_path_takes_the_line(
    items: list[tuple[str, str | None]],
) -> None:
    # Escapes, empty items and bare keys take different paths through _parse_tags: each must
    # give what the rule gives (empty items dropped, a bare key empty, the last repeat wins).
    raw = ";".join(key if value is None else f"{key}={value}" for key, value in items)
    expected = {key: unescape_tag_value(value or "") for key, value in items if key}
    if not raw:
        return
    assert parse_line(f"@{raw} CMD").tags == expected


@pytest.mark.parametrize(
    ("escaped", "value"),
    [
        ("a\\:b", "a;b"),
        ("a\\sb", "a b"),
        ("a\\\\b", "a\\b"),
        ("a\\rb", "a\rb"),
        ("a\\nb", "a\nb"),
        ("a\\bc", "abc"),  # unknown escape -> the character
        ("abc\\", "abc"),  # trailing lone backslash dropped
        ("name\\s\\s", "name  "),  # consecutive escapes (Chatterino PR #3711)
        ("\\\\s", "\\s"),  # escaped backslash, then a literal s
        ("plain", "plain"),
    ],
)
def test_tag_values_are_unescaped_per_ircv3(escaped: str, value: str) -> None:
    assert unescape_tag_value(escaped) == value
    assert parse_line(f"@k={escaped} CMD").tags["k"] == value


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        ("   \r\n", "empty line"),
        ("@a=1", "no command"),
        ("@a=1 :prefix", "no command"),
        (":prefix", "no command"),
        (": PRIVMSG #c :x", "empty prefix"),
        ("@=v CMD", "tag without a key"),
        ("12 foo", "invalid command"),
        ("1234 foo", "invalid command"),
        ("PRIV-MSG #c", "invalid command"),
        ("PRIVMSG #c :a\rb", "CR, LF or NUL"),
        ("PRIVMSG #c :a\nPRIVMSG #c :b", "CR, LF or NUL"),
        ("PRIVMSG #c :a\x00b", "CR, LF or NUL"),
    ],
)
def test_parse_line_rejects_malformed_lines_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(IrcParseError, match=reason):
        parse_line(line)


@pytest.mark.parametrize(
    ("prefix", "nick"),
    [
        ("nick!user@host.tmi.twitch.tv", "nick"),
        ("nick@host", "nick"),
        ("nick", "nick"),
        ("tmi.twitch.tv", None),
        ("!nerixyz@nerixyz.tmi.twitch.tv", None),  # Chatterino snapshot no-nick.json
        (None, None),
    ],
)
def test_nick_comes_from_a_user_prefix_only(prefix: str | None, nick: str | None) -> None:
    assert IrcMessage({}, prefix, "PRIVMSG", ()).nick == nick


def test_channel_and_trailing_when_absent() -> None:
    msg = parse_line(":tmi.twitch.tv NOTICE * :Improperly formatted auth")
    assert msg.channel is None
    assert IrcMessage({}, None, "RECONNECT", ()).trailing == ""


def test_split_frame_yields_each_line_of_a_websocket_frame() -> None:
    frame = "PING :tmi.twitch.tv\r\n:a!a@a PRIVMSG #c :hi\r\n\r\nRECONNECT\n"
    assert split_frame(frame) == ["PING :tmi.twitch.tv", ":a!a@a PRIVMSG #c :hi", "RECONNECT"]
    assert split_frame("\r\n") == []


# ------------------------------------------------------------------------------------------
# format_line
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("CAP", "REQ", "twitch.tv/tags twitch.tv/commands"),
            "CAP REQ :twitch.tv/tags twitch.tv/commands",
        ),
        (("PASS", "oauth:abc"), "PASS oauth:abc"),
        (("NICK", "justinfan12345"), "NICK justinfan12345"),
        (("JOIN", "#pajlada"), "JOIN #pajlada"),
        (("PONG", "tmi.twitch.tv"), "PONG tmi.twitch.tv"),
        (("PRIVMSG", "#c", ":)"), "PRIVMSG #c ::)"),
        (("PRIVMSG", "#c", ""), "PRIVMSG #c :"),
    ],
)
def test_format_line_builds_the_client_handshake_lines(args: tuple[str, ...], line: str) -> None:
    assert format_line(*args) == line


def test_format_line_escapes_tags_and_adds_prefix() -> None:
    line = format_line(
        "PRIVMSG", "#c", "hi", tags={"display-name": "a b;c\\"}, prefix="a!a@a.tmi.twitch.tv"
    )
    assert line == "@display-name=a\\sb\\:c\\\\ :a!a@a.tmi.twitch.tv PRIVMSG #c hi"
    assert parse_line(line).tags == {"display-name": "a b;c\\"}


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("PRIV MSG",), {}),
        (("",), {}),
        (("PRIVMSG", "#c d", "x"), {}),
        (("PRIVMSG", "", "x"), {}),
        (("PRIVMSG", ":c", "x"), {}),
        (("PRIVMSG", "#c", "a\r\nQUIT"), {}),
        (("PRIVMSG", "#c", "x"), {"tags": {"a=b": "1"}}),
        (("PRIVMSG", "#c", "x"), {"tags": {"a": "nul\x00"}}),
        (("PRIVMSG", "#c", "x"), {"prefix": "a b"}),
    ],
)
def test_format_line_refuses_what_cannot_be_sent_faithfully(
    args: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        format_line(*args, **kwargs)


_NO_LINE_BREAK = st.text().filter(lambda s: not any(c in s for c in "\r\n\x00"))
_MIDDLE = st.text(min_size=1).filter(
    lambda s: not any(c in s for c in " \r\n\x00") and not s.startswith(":")
)
_TAG_KEY = st.from_regex(r"\A\+?([a-z0-9.-]+/)?[A-Za-z0-9-]+\Z")
_TAG_VALUE = st.text().filter(lambda s: "\x00" not in s)
_COMMAND = st.one_of(st.from_regex(r"\A[A-Z]{1,12}\Z"), st.from_regex(r"\A[0-9]{3}\Z"))
_PREFIX = st.none() | _MIDDLE


@given(
    command=_COMMAND,
    middles=st.lists(_MIDDLE, max_size=4),
    last=st.none() | _NO_LINE_BREAK,
    tags=st.dictionaries(_TAG_KEY, _TAG_VALUE, max_size=6),
    prefix=_PREFIX,
)
def test_format_then_parse_is_identity(
    command: str, middles: list[str], last: str | None, tags: dict[str, str], prefix: str | None
) -> None:
    params = (*middles, last) if last is not None else tuple(middles)
    line = format_line(command, *params, tags=tags, prefix=prefix)
    assert parse_line(line) == IrcMessage(tags, prefix, command, params)


@given(st.text())
def test_escape_then_unescape_is_identity(value: str) -> None:
    escaped = escape_tag_value(value)
    assert not any(c in escaped for c in " ;\r\n")
    assert unescape_tag_value(escaped) == value


# ------------------------------------------------------------------------------------------
# to_event: PRIVMSG
# ------------------------------------------------------------------------------------------

_ACTION = _snapshot("action.json")["input"]


def test_privmsg_maps_every_field_of_a_chat_message() -> None:
    line = (
        "@badge-info=subscriber/80;badges=vip/1,subscriber/3072;bits=100;color=#CC44FF;"
        "display-name=Some\\sOne;emotes=25:0-4;first-msg=1;id=abc-1;mod=0;room-id=111;"
        "subscriber=1;tmi-sent-ts=1662206235860;user-id=222;reply-parent-msg-id=parent-9;"
        "msg-param-x=y;custom-reward-id=r1;unknown-tag=z "
        ":someone!someone@someone.tmi.twitch.tv PRIVMSG #Pajlada :Kappa cheer100"
    )
    msg = _chat(line, received_at=RECEIVED, source="live")
    assert msg == ChatMessage(
        platform="twitch",
        channel="pajlada",
        message_id="abc-1",
        sent_at=_ms(1662206235860),
        text="Kappa cheer100",
        user_id="222",
        user_login="someone",
        user_name="Some One",
        kind="chat",
        badges={"vip": "1", "subscriber": "3072"},
        is_mod=False,
        is_subscriber=True,
        is_first=True,
        bits=100,
        reply_parent_id="parent-9",
        channel_platform_id="111",
        emotes=(EmoteUse("25", "Kappa", "twitch", 1),),
        received_at=RECEIVED,
        source="live",
        extra={
            "color": "#CC44FF",
            "msg-param-x": "y",
            "custom-reward-id": "r1",
            "sub-months": "80",
        },
    )


def test_action_is_unwrapped_and_its_emote_offsets_refer_to_the_inner_text() -> None:
    msg = _chat(_ACTION)
    assert msg.kind == "action"
    assert msg.text == "Kappa"
    assert msg.emotes == (EmoteUse("25", "Kappa", "twitch", 1),)


def test_action_needs_both_the_prefix_with_a_space_and_the_closing_byte() -> None:
    assert _chat("@tmi-sent-ts=1 :a!a@a PRIVMSG #c :\x01ACTION waves").kind == "chat"
    assert _chat("@tmi-sent-ts=1 :a!a@a PRIVMSG #c :\x01ACTIONwaves\x01").kind == "chat"
    assert _chat("@tmi-sent-ts=1 :a!a@a PRIVMSG #c :\x01ACTION \x01").text == ""


@pytest.mark.parametrize("badge", ["broadcaster", "moderator"])
def test_broadcaster_and_moderator_badges_count_as_mod(badge: str) -> None:
    msg = _chat(f"@mod=0;badges={badge}/1;tmi-sent-ts=1 :a!a@a PRIVMSG #c :x")
    assert msg.is_mod


def test_mod_tag_alone_counts_as_mod_and_subscriber_badge_as_subscriber() -> None:
    assert _chat("@mod=1;tmi-sent-ts=1 :a!a@a PRIVMSG #c :x").is_mod
    msg = _chat("@subscriber=0;badges=subscriber/12;tmi-sent-ts=1 :a!a@a PRIVMSG #c :x")
    assert msg.is_subscriber
    plain = _chat("@mod=0;subscriber=0;badges=vip/1;tmi-sent-ts=1 :a!a@a PRIVMSG #c :x")
    assert not plain.is_mod and not plain.is_subscriber


def test_sent_at_falls_back_to_received_at_when_tmi_sent_ts_is_absent() -> None:
    msg = _chat(":a!a@a PRIVMSG #c :x", received_at=RECEIVED)
    assert msg.sent_at == RECEIVED
    assert msg.received_at == RECEIVED


def test_message_without_any_time_is_malformed() -> None:
    event = parse_event(":a!a@a PRIVMSG #c :x")
    assert isinstance(event, Malformed)
    assert "tmi-sent-ts" in event.reason
    assert event.raw == ":a!a@a PRIVMSG #c :x"


def test_message_without_id_gets_the_deterministic_id_so_replays_dedupe() -> None:
    line = "@tmi-sent-ts=1662201102276 :test!test@test.tmi.twitch.tv PRIVMSG #pajlada :foo bar"
    first, second = _chat(line), _chat(line)
    assert first.message_id == second.message_id
    assert first.message_id == deterministic_message_id(
        "twitch", "pajlada", _ms(1662201102276), "test", "foo bar"
    )


def test_platform_and_source_are_passed_through() -> None:
    msg = _chat("@tmi-sent-ts=1 :a!a@a PRIVMSG #c :x", source="replay", platform="kick")
    assert (msg.platform, msg.source) == ("kick", "replay")


# ------------------------------------------------------------------------------------------
# Emotes
# ------------------------------------------------------------------------------------------


def test_emote_offsets_count_code_points_not_utf16_units() -> None:
    # Chatterino snapshot emotes3.json: 😂 is one code point but two UTF-16 units.
    assert parse_emotes("25:1-5/25:9-13", "😂Kappa😂 &Kappa a  b") == (
        EmoteUse("25", "Kappa", "twitch", 2),
    )
    assert parse_emotes("25:0-4,8-12", "Kappa 😂 Kappa") == (EmoteUse("25", "Kappa", "twitch", 2),)


def test_emotes_are_grouped_by_id_in_order_of_first_use() -> None:
    text = "Keepo Kappa Keepo"
    assert parse_emotes("25:6-10/1902:0-4,12-16", text) == (
        EmoteUse("1902", "Keepo", "twitch", 2),
        EmoteUse("25", "Kappa", "twitch", 1),
    )


def test_non_numeric_emote_ids_are_kept_as_text() -> None:
    assert parse_emotes("emotesv2_ee52e9d2:0-10", "forsenParty x") == (
        EmoteUse("emotesv2_ee52e9d2", "forsenParty", "twitch", 1),
    )


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        ("25:04", "Kappa"),  # bad-emotes.json: no dash
        ("25:4-0", "Kappa"),  # bad-emotes2.json: reversed
        ("84608:0-15", "foo bar"),  # bad-emotes3.json: end past the text
        ("84608:9-10", "foo bar"),  # bad-emotes4.json: entirely past the text
        ("25:-1-3", "Kappa"),
        ("25:a-b", "Kappa"),
        ("25:²-3", "Kappa"),
        ("25", "Kappa"),
        (":0-4", "Kappa"),
        ("25:", "Kappa"),
        ("////", "Kappa"),
    ],
)
def test_bad_emote_ranges_are_skipped_not_fatal(tag: str, text: str) -> None:
    assert parse_emotes(tag, text) == ()
    msg = _chat(f"@emotes={tag};tmi-sent-ts=1 :a!a@a PRIVMSG #c :{text}")
    assert msg.emotes == ()
    assert msg.text == text


def test_a_bad_range_does_not_drop_the_good_ranges_of_the_same_emote() -> None:
    assert parse_emotes("25:0-4,99-103", "Kappa") == (EmoteUse("25", "Kappa", "twitch", 1),)
    assert parse_emote_ranges("25:0-4,99-103", "Kappa").dropped == 1


# ------------------------------------------------------------------------------------------
# to_event: USERNOTICE, CLEARCHAT, CLEARMSG
# ------------------------------------------------------------------------------------------


def test_usernotice_becomes_a_message_of_its_msg_id_kind_with_params_in_extra() -> None:
    msg = _chat(_snapshot("sub-no-message.json")["input"])
    assert msg.kind == "resub"
    assert msg.text == ""
    assert (msg.user_login, msg.user_id, msg.user_name) == ("cspice", "47894662", "cspice")
    assert msg.message_id == "6fc4c3e0-ca61-454a-84b8-5669dee69fc9"
    assert msg.extra["msg-param-months"] == "12"
    assert msg.extra["msg-param-sub-plan"] == "2000"
    assert msg.extra["msg-param-sub-plan-name"] == "Channel Subscription (forsenlol): $9.99 Sub"
    assert msg.extra["system-msg"] == (
        "cspice just subscribed with a Tier 2 sub. cspice subscribed for 12 months in a row!"
    )


def test_usernotice_keeps_the_users_own_message_as_text() -> None:
    msg = _chat(_snapshot("sub-message.json")["input"])
    assert (msg.kind, msg.text) == ("resub", "Great stream -- keep it up!")
    assert msg.extra["system-msg"] == "ronni has subscribed for 6 months!"


def test_raid_and_announcement_kinds() -> None:
    raid = _chat(_snapshot("raid.json")["input"])
    assert raid.kind == "raid"
    assert raid.extra["msg-param-viewerCount"] == "2"
    announcement = _chat(_snapshot("announcement-blue.json")["input"])
    assert announcement.kind == "announcement"
    assert announcement.extra["msg-param-color"] == "BLUE"
    assert announcement.text == "blue announcement"


def test_usernotice_without_msg_id_is_kind_usernotice() -> None:
    assert _chat("@tmi-sent-ts=1 :tmi.twitch.tv USERNOTICE #c").kind == "usernotice"


def test_clearchat_with_duration_is_a_timeout() -> None:
    event = _moderation(_snapshot("timeout.json")["input"], source="gapfill")
    at = _ms(1729628658012)
    assert event == ModerationEvent(
        platform="twitch",
        channel="pajlada",
        at=at,
        kind="timeout",
        event_key=moderation_event_key("twitch", "pajlada", at, "timeout", "129546453"),
        target_user_id="129546453",
        target_login="nerixyz",
        duration_s=1,
        channel_platform_id="11148817",
        source="gapfill",
    )


def test_clearchat_with_target_and_no_duration_is_a_ban() -> None:
    line = "@room-id=1;target-user-id=2;tmi-sent-ts=1000 :tmi.twitch.tv CLEARCHAT #c :baduser"
    event = _moderation(line)
    assert (event.kind, event.target_login, event.target_user_id) == ("ban", "baduser", "2")
    assert event.duration_s is None


def test_clearchat_without_target_clears_the_chat() -> None:
    event = _moderation(_snapshot("clearchat.json")["input"])
    assert event.kind == "clear"
    assert event.target_login is None and event.target_user_id is None
    assert event.at == _ms(1729627607545)


def test_clearmsg_is_a_deletion_of_one_message() -> None:
    event = _moderation(_snapshot("clearmsg-non-truncated.json")["input"])
    assert event.kind == "delete"
    assert event.target_login == "kooby_"
    assert event.target_message_id == "862716db-9a7c-4563-8480-af799769ae81"
    assert event.event_key == moderation_event_key(
        "twitch", "pajlada", event.at, "delete", "kooby_", event.target_message_id
    )


def test_clearmsg_without_target_msg_id_is_malformed() -> None:
    event = parse_event("@login=a;tmi-sent-ts=1 :tmi.twitch.tv CLEARMSG #c :text")
    assert isinstance(event, Malformed)
    assert "target-msg-id" in event.reason


def test_moderation_key_is_the_same_live_and_from_gap_fill() -> None:
    live = _snapshot("timeout.json")["input"].replace("historical=1;", "")
    gapfill = _snapshot("timeout.json")["input"]
    a = _moderation(live, received_at=RECEIVED)
    b = _moderation(gapfill, received_at=RECEIVED + timedelta(minutes=5), source="gapfill")
    assert a.event_key == b.event_key


def test_historical_lines_parse_like_live_ones() -> None:
    live = (
        "@id=x1;tmi-sent-ts=1704557984095;user-id=9;emotes=25:0-4 "
        ":a!a@a.tmi.twitch.tv PRIVMSG #nymn :Kappa"
    )
    historical = live.replace("@id=x1;", "@historical=1;rm-received-ts=1704557984273;id=x1;")
    a = _chat(live, received_at=RECEIVED)
    b = _chat(historical, received_at=RECEIVED, source="gapfill")
    assert b == ChatMessage(**{**_fields(a), "source": "gapfill"})


def _fields(msg: ChatMessage) -> dict[str, Any]:
    return {name: getattr(msg, name) for name in ChatMessage.__slots__}


# ------------------------------------------------------------------------------------------
# to_event: control
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind", "channel", "text"),
    [
        ("PING :tmi.twitch.tv", "ping", None, "tmi.twitch.tv"),
        (":tmi.twitch.tv PONG tmi.twitch.tv :tmi.twitch.tv", "pong", None, "tmi.twitch.tv"),
        (":tmi.twitch.tv RECONNECT", "reconnect", None, ""),
        (":tmi.twitch.tv 001 justinfan1 :Welcome, GLHF!", "welcome", None, "Welcome, GLHF!"),
        (
            ":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands",
            "cap",
            None,
            "twitch.tv/tags twitch.tv/commands",
        ),
        (
            ":tmi.twitch.tv NOTICE * :Login authentication failed",
            "auth_failed",
            None,
            "Login authentication failed",
        ),
        (
            ":tmi.twitch.tv NOTICE * :Improperly formatted auth",
            "auth_failed",
            None,
            "Improperly formatted auth",
        ),
        (
            "@msg-id=slow_on :tmi.twitch.tv NOTICE #Forsen :This room is now in slow mode.",
            "notice",
            "forsen",
            "This room is now in slow mode.",
        ),
        (":justinfan1!justinfan1@justinfan1.tmi.twitch.tv JOIN #pajlada", "join", "pajlada", ""),
        (":justinfan1!justinfan1@justinfan1.tmi.twitch.tv PART #pajlada", "part", "pajlada", ""),
    ],
)
def test_connection_lines_become_control_events(
    line: str, kind: str, channel: str | None, text: str
) -> None:
    event = _control(line)
    assert (event.kind, event.channel, event.text) == (kind, channel, text)


def test_roomstate_and_notice_carry_their_tags_as_params() -> None:
    room = _control("@emote-only=0;followers-only=-1;room-id=1;slow=0 :tmi.twitch.tv ROOMSTATE #c")
    assert room.kind == "roomstate"
    assert room.params == {"emote-only": "0", "followers-only": "-1", "room-id": "1", "slow": "0"}
    notice = _control(_snapshot("emoteonly-on.json")["input"])
    assert notice.params["msg-id"] == "emote_only_on"
    assert notice.text == "This room is now in emote-only mode."


def test_join_names_the_login_that_joined() -> None:
    assert _control(":bob!bob@bob.tmi.twitch.tv JOIN #c").params == {"login": "bob"}


def test_unknown_commands_are_other_with_the_command_named() -> None:
    event = _control("@emote-sets=0;user-id=1 :tmi.twitch.tv GLOBALUSERSTATE")
    assert event.kind == "other"
    assert event.params["command"] == "GLOBALUSERSTATE"
    assert event.params["user-id"] == "1"


def test_naive_received_at_is_a_caller_error() -> None:
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_event(":a!a@a PRIVMSG #c :x", received_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        to_event(parse_line(":a!a@a PRIVMSG #c :x"), received_at=naive)


# ------------------------------------------------------------------------------------------
# Malformed input: parse_event never raises
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        (b"\xff\xfe PRIVMSG #c :x", "not UTF-8"),
        ("@a=1", "no command"),
        ("n0t a command", "invalid command"),
        ("@tmi-sent-ts=1 :a!a@a PRIVMSG nochannel :x", "without a #channel"),
        ("@tmi-sent-ts=1 :a!a@a PRIVMSG #c", "without text"),
        ("@tmi-sent-ts=soon :a!a@a PRIVMSG #c :x", "tmi-sent-ts"),
        ("@tmi-sent-ts=99999999999999999999 :a!a@a PRIVMSG #c :x", "out of range"),
        ("@ban-duration=5 :tmi.twitch.tv CLEARCHAT #c :u", "tmi-sent-ts"),
        ("PRIVMSG #c :a\r\nPRIVMSG #c :b", "CR, LF or NUL"),
    ],
)
def test_bad_lines_come_back_as_malformed_with_reason(line: str | bytes, reason: str) -> None:
    event = parse_event(line, source="live")
    assert isinstance(event, Malformed)
    assert reason in event.reason
    expected_raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    assert event.raw == expected_raw


def test_bytes_lines_are_decoded_as_utf8() -> None:
    msg = parse_event("@tmi-sent-ts=1 :a!a@a PRIVMSG #c :héllo 😂".encode())
    assert isinstance(msg, ChatMessage)
    assert msg.text == "héllo 😂"


_IRCISH = st.lists(
    st.sampled_from(
        [*"@:;=/,-#! \\\r\n\x00\x01aAzZ09", "😂", "é", "PRIVMSG ", "CLEARCHAT ", "tmi-sent-ts="]
    ),
    max_size=40,
).map("".join)


@given(st.one_of(st.text(max_size=200), _IRCISH, st.binary(max_size=100)))
def test_parse_event_never_raises(line: str | bytes) -> None:
    event = parse_event(line, received_at=RECEIVED)
    assert isinstance(event, ChatMessage | ModerationEvent | ControlEvent | Malformed)


@given(
    tags=st.dictionaries(
        st.sampled_from(
            ["emotes", "tmi-sent-ts", "bits", "ban-duration", "badges", "id", "target-msg-id"]
        ),
        st.text(alphabet="0123456789:-,/abc", max_size=20),
    ),
    command=st.sampled_from(["PRIVMSG", "USERNOTICE", "CLEARCHAT", "CLEARMSG", "NOTICE"]),
    text=_NO_LINE_BREAK,
)
def test_parse_event_never_raises_on_odd_tag_values(
    tags: dict[str, str], command: str, text: str
) -> None:
    line = format_line(command, "#c", text, tags=tags, prefix="a!a@a")
    event = parse_event(line)
    assert isinstance(event, ChatMessage | ModerationEvent | ControlEvent | Malformed)


# ------------------------------------------------------------------------------------------
# Chatterino snapshots: every line of irc_inputs.tsv
# ------------------------------------------------------------------------------------------

_EVENT_TYPE = {
    "PRIVMSG": ChatMessage,
    "USERNOTICE": ChatMessage,
    "CLEARCHAT": ModerationEvent,
    "CLEARMSG": ModerationEvent,
    "NOTICE": ControlEvent,
}
_TWITCH_EMOTE_URL = re.compile(r"static-cdn\.jtvnw\.net/emoticons/v2/([^/]+)/")


def test_snapshot_table_lists_all_110_lines() -> None:
    assert len(SNAPSHOT_ROWS) == 110
    assert Counter(cmd for _, cmd, _ in SNAPSHOT_ROWS) == {
        "PRIVMSG": 70,
        "USERNOTICE": 29,
        "CLEARCHAT": 8,
        "CLEARMSG": 2,
        "NOTICE": 1,
    }


@pytest.mark.parametrize(
    ("name", "command", "raw"), SNAPSHOT_ROWS, ids=[r[0] for r in SNAPSHOT_ROWS]
)
def test_snapshot_line_parses_to_the_event_of_its_command(
    name: str, command: str, raw: str
) -> None:
    assert _snapshot(name)["input"] == raw
    assert parse_line(raw).command == command
    event = parse_event(raw, received_at=RECEIVED)
    assert type(event) is _EVENT_TYPE[command]
    if isinstance(event, ChatMessage | ModerationEvent):
        # Every such snapshot line carries tmi-sent-ts; the event time is that, not received_at.
        sent = event.sent_at if isinstance(event, ChatMessage) else event.at
        assert sent == _ms(int(parse_line(raw).tags["tmi-sent-ts"]))


def _chatterino_time(raw: str) -> str:
    # Chatterino shows rm-received-ts for recent-messages lines, tmi-sent-ts otherwise (s).
    tags = parse_line(raw).tags
    ms = int(tags.get("rm-received-ts") or tags["tmi-sent-ts"])
    return _ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def _twitch_emotes(output: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for element in output["elements"]:
        if element["type"] != "EmoteElement":
            continue
        match = _TWITCH_EMOTE_URL.search(element["emote"].get("images", {}).get("1x", ""))
        if match:
            found.append((match.group(1), element["emote"]["name"]))
    return found


# Snapshots whose rendering Chatterino changes by settings (ignores, highlights, display mode),
# or where the rendered message is not the line itself (blocked users: nothing rendered).
_COMPARABLE_PRIVMSG = [
    row
    for row in SNAPSHOT_ROWS
    if row[1] == "PRIVMSG" and "settings" not in _snapshot(row[0]) and _snapshot(row[0])["output"]
]


@pytest.mark.parametrize(
    ("name", "command", "raw"), _COMPARABLE_PRIVMSG, ids=[r[0] for r in _COMPARABLE_PRIVMSG]
)
def test_privmsg_snapshot_matches_chatterinos_parse(name: str, command: str, raw: str) -> None:
    out = _snapshot(name)["output"][0]
    msg = _chat(raw)
    if msg.reply_parent_id and msg.text != out["messageText"]:
        # Chatterino hides the leading "@parent " of a reply; we keep the text as sent.
        assert msg.text.startswith("@")
        assert msg.text.endswith(" " + out["messageText"])
    else:
        assert msg.text == out["messageText"]
    if out["id"]:
        assert msg.message_id == out["id"]
    assert out["serverReceivedTime"] == _chatterino_time(raw)
    if "rm-received-ts" not in parse_line(raw).tags:
        assert msg.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ") == out["serverReceivedTime"]
    assert (msg.user_login or "") == out["loginName"]
    assert (msg.user_id or "") == out["userID"]
    if out["loginName"]:
        assert (msg.user_name or "") in (out["displayName"], out["localizedName"])
    assert list(msg.badges) == out["twitchBadges"]
    assert msg.bits == out.get("bits", 0)
    if out.get("replyParent"):
        assert msg.reply_parent_id == out["replyParent"]
    assert msg.kind == ("action" if "Action" in out["flags"].split("|") else "chat")
    # reward-bits: Chatterino adds the reward's own emote, not from the tag; emotes4/5: see
    # test_emote_snapshots_pin_names_ids_and_counts.
    if name not in ("reward-bits.json", "emotes4.json", "emotes5.json"):
        ours = sorted((e.emote_id, e.emote_name) for e in msg.emotes for _ in range(e.count))
        assert ours == sorted(_twitch_emotes(out))


def test_emote_snapshots_pin_names_ids_and_counts() -> None:
    assert _chat(_snapshot("emotes.json")["input"]).emotes == (
        EmoteUse("25", "Kappa", "twitch", 1),
        EmoteUse("1902", "Keepo", "twitch", 1),
        EmoteUse("305954156", "PogChamp", "twitch", 1),
    )
    # emotes4/5 are Chatterino's made-up ranges that cut the word "foo" ("f", "fo"): Chatterino
    # draws them, chatpulse refuses a slice that cuts a word (it would be a fake emote, like
    # "UL" from an off-by-one "LUL"), so no emote and the range is counted as dropped.
    for name in ("emotes4.json", "emotes5.json"):
        msg = _chat(_snapshot(name)["input"])
        assert msg.emotes == ()
        assert msg.extra["emote-ranges-dropped"] == "1"
    assert _chat(_snapshot("mod.json")["input"]).emotes == (
        EmoteUse("41", "Kreygasm", "twitch", 2),
    )


def test_cheer_snapshots_keep_bits() -> None:
    assert _chat(_snapshot("cheer1.json")["input"]).bits == 5
    assert _chat(_snapshot("cheer4.json")["input"]).bits == 10


def test_display_name_escapes_and_reply_tags_are_unescaped() -> None:
    msg = _chat(_snapshot("reply-unescape.json")["input"])
    assert msg.reply_parent_id == "241c2a7e-be6e-4132-981b-fc76c5137e3a"
    assert msg.text == "@xgspidermonkey  b"


def test_invalid_badge_entries_are_dropped_like_chatterino() -> None:
    msg = _chat(_snapshot("badges-invalid.json")["input"])
    assert msg.badges == {}
    assert msg.is_subscriber  # the subscriber tag still says so


_USERNOTICE_ROWS = [row for row in SNAPSHOT_ROWS if row[1] == "USERNOTICE"]


@pytest.mark.parametrize(
    ("name", "command", "raw"), _USERNOTICE_ROWS, ids=[r[0] for r in _USERNOTICE_ROWS]
)
def test_usernotice_snapshot_matches_chatterinos_parse(name: str, command: str, raw: str) -> None:
    msg = _chat(raw)
    tags = parse_line(raw).tags
    assert msg.kind == tags["msg-id"]
    assert msg.user_login == tags["login"]
    assert msg.message_id == tags["id"]
    assert all(msg.extra[k] == v for k, v in tags.items() if k.startswith("msg-param-") and v)
    if tags.get("system-msg"):
        assert msg.extra["system-msg"] == tags["system-msg"]
    # Chatterino renders the user's own words (if any) as a message with the user's login.
    spoken = [o for o in _snapshot(name)["output"] if o["loginName"]]
    if spoken and "settings" not in _snapshot(name):
        assert msg.text == spoken[0]["messageText"]
        assert list(msg.badges) == spoken[0]["twitchBadges"]


_DURATION = re.compile(r"timed out for ((?:\d+[smhd]\s?)+)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@pytest.mark.parametrize(
    ("name", "command", "raw"),
    [r for r in SNAPSHOT_ROWS if r[1] in ("CLEARCHAT", "CLEARMSG")],
    ids=[r[0] for r in SNAPSHOT_ROWS if r[1] in ("CLEARCHAT", "CLEARMSG")],
)
def test_moderation_snapshot_matches_chatterinos_parse(name: str, command: str, raw: str) -> None:
    out = _snapshot(name)["output"][0]
    event = _moderation(raw)
    text = out["messageText"]
    if command == "CLEARMSG":
        assert event.kind == "delete"
        assert out["timeoutUser"] == f"msg:{event.target_message_id}"
        assert text.startswith(f"A message from {event.target_login} was deleted")
    elif "cleared by a moderator" in text:
        assert event.kind == "clear"
        assert event.target_login is None
    else:
        assert event.kind == "timeout"
        assert event.target_login == out["timeoutUser"]
        match = _DURATION.search(text)
        assert match is not None
        seconds = sum(int(part[:-1]) * _UNIT_S[part[-1]] for part in match.group(1).split())
        assert event.duration_s == seconds


def test_notice_snapshot_matches_chatterinos_text() -> None:
    raw = _snapshot("emoteonly-on.json")["input"]
    assert _control(raw).text == _snapshot("emoteonly-on.json")["output"][0]["messageText"]


# ------------------------------------------------------------------------------------------
# recent-messages (nymn)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nymn_events() -> list[ChatMessage | ModerationEvent | ControlEvent | Malformed]:
    lines = nymn_irc_lines()
    return [parse_event(line, source="gapfill") for line in lines]


@pytest.fixture(scope="module")
def nymn_stats() -> dict[str, Any]:
    stats: dict[str, Any] = json.loads((NYMN / "derived_stats.json").read_text(encoding="utf-8"))
    return stats


def test_nymn_recent_messages_parse_into_798_messages_and_2_timeouts(
    nymn_events: list[Any], nymn_stats: dict[str, Any]
) -> None:
    assert len(nymn_events) == nymn_stats["lines"] == 800
    messages = [e for e in nymn_events if isinstance(e, ChatMessage)]
    moderation = [e for e in nymn_events if isinstance(e, ModerationEvent)]
    assert len(messages) == nymn_stats["privmsg"] == 798
    assert [(m.kind, m.duration_s) for m in moderation] == [("timeout", 180), ("timeout", 180)]
    assert [m.target_login for m in moderation] == ["e7om", "abitbol"]
    assert all(e.source == "gapfill" for e in messages + moderation)
    assert all(m.channel == "nymn" and m.channel_platform_id == "62300805" for m in messages)


def test_nymn_chatters_and_time_span_match_the_independent_count(
    nymn_events: list[Any], nymn_stats: dict[str, Any]
) -> None:
    messages = [e for e in nymn_events if isinstance(e, ChatMessage)]
    assert len({m.user_id for m in messages}) == nymn_stats["unique_chatters"] == 118
    assert len({m.user_login for m in messages}) == 118
    assert min(m.sent_at for m in messages) == _ms(nymn_stats["first_ts"])
    assert max(m.sent_at for m in messages) == _ms(nymn_stats["last_ts"])
    assert min(m.sent_at for m in messages).isoformat() == "2024-01-06T16:19:44.095000+00:00"
    per_second = Counter(m.sent_at.replace(microsecond=0) for m in messages)
    assert max(per_second.values()) == nymn_stats["peak_privmsg_per_1s"]


def test_nymn_native_emote_counts_match_the_independent_count(
    nymn_events: list[Any], nymn_stats: dict[str, Any]
) -> None:
    counts: Counter[str] = Counter()
    for event in nymn_events:
        if isinstance(event, ChatMessage):
            for emote in event.emotes:
                counts[emote.emote_name] += emote.count
    for name, expected in nymn_stats["top_native_emotes"]:
        assert counts[name] == expected, name
    assert counts["forsenParty"] == 915


def test_nymn_actions_are_unwrapped(nymn_events: list[Any]) -> None:
    actions = [e for e in nymn_events if isinstance(e, ChatMessage) and e.kind == "action"]
    assert len(actions) == 5
    assert not any("\x01" in a.text for a in actions)


def test_recent_messages_with_channel_not_joined_still_returns_lines() -> None:
    body = json.dumps(
        {
            "messages": ["PING :x"],
            "error": "The bot is currently not joined to this channel",
            "error_code": "channel_not_joined",
        }
    )
    assert parse_recent_messages(body) == ["PING :x"]
    response = parse_recent_messages_response(body)
    assert response.error_code == "channel_not_joined"
    assert response.messages == ("PING :x",)


def test_recent_messages_error_body_raises_with_its_code() -> None:
    body = (
        '{"status": 403, "status_message": "Forbidden", '
        '"error": "The channel has opted out", "error_code": "channel_ignored"}'
    )
    with pytest.raises(RecentMessagesError) as info:
        parse_recent_messages(body)
    assert info.value.error_code == "channel_ignored"
    assert isinstance(info.value, IrcParseError)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        "[]",
        "{}",
        '{"messages": "PING :x"}',
        '{"messages": [1, 2]}',
        '{"messages": [], "error": 5}',
    ],
)
def test_recent_messages_bad_bodies_raise(body: str | bytes) -> None:
    with pytest.raises(IrcParseError):
        parse_recent_messages(body)


def test_recent_messages_empty_list_is_fine() -> None:
    assert parse_recent_messages('{"messages": [], "error": null, "error_code": null}') == []


# ------------------------------------------------------------------------------------------
# Issue 20 item 3: every real line stored right
# ------------------------------------------------------------------------------------------

# Real lines from robotty/dank-twitch-irc (clearmsg.spec.ts) and robotty/twitch-irc-rs
# (usernotice.rs, privmsg.rs); see tests/data/irc-conformance/PROVENANCE.md.
_NEGATIVE_TS_CLEARMSG = (
    "@login=supibot;room-id=;target-msg-id=25fd76d9-4731-4907-978e-a391134ebd67;"
    "tmi-sent-ts=-6795364578871 :tmi.twitch.tv CLEARMSG #randers :Pong! Uptime: 6h, "
    "15m; Temperature: 54.8°C; Latency to TMI: 183ms; Commands used: 795"
)
_ACTION_RESUB = (
    r"@badge-info=subscriber/23;badges=moderator/1,subscriber/12;color=#19E6E6;"
    r"display-name=randers;emotes=25:7-11,23-27/499:29-30;flags=;"
    r"id=8c2918c2-adf4-4208-a554-8a72d016de70;login=randers;mod=1;msg-id=resub;"
    r"msg-param-cumulative-months=23;msg-param-months=0;msg-param-should-share-streak=1;"
    r"msg-param-streak-months=23;msg-param-sub-plan-name=look\sat\sthose\sshitty\semotes,\srip"
    r"\s$5\sLUL;msg-param-sub-plan=1000;room-id=11148817;subscriber=1;system-msg=randers\s"
    r"subscribed\sat\sTier\s1.\sThey've\ssubscribed\sfor\s23\smonths,\scurrently\son\sa\s23\s"
    r"month\sstreak!;tmi-sent-ts=1595497450553;user-id=40286300;user-type=mod "
    ":tmi.twitch.tv USERNOTICE #pajlada :\x01ACTION Kappa TEST TEST Kappa :)\x01"
)
_OFF_BY_ONE = (
    r"@badge-info=;badges=;color=;display-name=some_1_happy;emotes=425618:49-51;"
    r"flags=24-28:A.3;id=9eb37414-0952-44cc-b177-ad8007088034;mod=0;room-id=35768443;"
    r"subscriber=0;tmi-sent-ts=1597921035256;turbo=0;user-id=473035780;user-type= "
    r":some_1_happy!some_1_happy@some_1_happy.tmi.twitch.tv PRIVMSG #mocbka34 "
    r":Я не такой красивый. Не урод, но до тебя далеко LUL"
)


def _repairs_since(before: dict[str, int]) -> dict[str, int]:
    after = repair_counts()
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_negative_tmi_sent_ts_on_clearmsg_falls_back_to_the_received_time() -> None:
    before = repair_counts()
    event = _moderation(_NEGATIVE_TS_CLEARMSG, received_at=RECEIVED)
    assert event.kind == "delete"
    assert event.at == RECEIVED
    assert event.target_message_id == "25fd76d9-4731-4907-978e-a391134ebd67"
    assert event.target_login == "supibot"
    assert event.extra == {"tmi-sent-ts": "-6795364578871"}
    assert _repairs_since(before) == {"sent_ts_fallback": 1}


def test_unusable_stamp_prefers_the_recent_messages_receive_time() -> None:
    line = "@rm-received-ts=1757929422007;" + _NEGATIVE_TS_CLEARMSG[1:]
    event = _moderation(line, received_at=RECEIVED, source="gapfill")
    assert event.at == _ms(1757929422007)
    assert event.extra == {"tmi-sent-ts": "-6795364578871"}


@pytest.mark.parametrize("stamp", ["-1", "soon", "99999999999999999999", "1.5e12"])
def test_unusable_stamp_on_chat_and_clearchat_keeps_the_event(stamp: str) -> None:
    msg = _chat(f"@tmi-sent-ts={stamp};id=m1 :a!a@a PRIVMSG #c :hi", received_at=RECEIVED)
    assert (msg.sent_at, msg.extra) == (RECEIVED, {"tmi-sent-ts": stamp})
    ban = _moderation(
        f"@tmi-sent-ts={stamp};target-user-id=7 :tmi.twitch.tv CLEARCHAT #c :u",
        received_at=RECEIVED,
    )
    assert (ban.kind, ban.at, ban.extra) == ("ban", RECEIVED, {"tmi-sent-ts": stamp})


def test_unusable_stamp_without_any_received_time_is_a_dead_letter_naming_both() -> None:
    event = parse_event(_NEGATIVE_TS_CLEARMSG)
    assert isinstance(event, Malformed)
    assert "tmi-sent-ts" in event.reason
    assert "no received time" in event.reason


def test_emote_range_past_the_end_is_clamped_and_counted() -> None:
    before = repair_counts()
    msg = _chat("@tmi-sent-ts=1;emotes=25:6-11 :a!a@a PRIVMSG #c :hello Kappa")
    assert msg.emotes == (EmoteUse("25", "Kappa", "twitch", 1),)
    assert msg.extra["emote-ranges-clamped"] == "1"
    assert _repairs_since(before) == {"emote_range_clamped": 1}


def test_off_by_one_range_is_realigned_not_sliced_into_a_fake_emote() -> None:
    # twitch-irc-rs test_incorrect_emote_index: the clamped slice would be "UL".
    before = repair_counts()
    msg = _chat(_OFF_BY_ONE)
    assert msg.emotes == (EmoteUse("425618", "LUL", "twitch", 1),)
    assert msg.extra["emote-ranges-realigned"] == "1"
    assert _repairs_since(before) == {"emote_range_realigned": 1}


def test_action_resub_is_unwrapped_and_its_emotes_named_right() -> None:
    # Stored before as text "\x01ACTION Kappa ...\x01" with emotes " Kapp" and " :".
    msg = _chat(_ACTION_RESUB)
    assert msg.kind == "resub"
    assert msg.text == "Kappa TEST TEST Kappa :)"
    assert msg.emotes == (
        EmoteUse("25", "Kappa", "twitch", 2),
        EmoteUse("499", ":)", "twitch", 1),
    )
    assert msg.extra["action"] == "1"
    assert msg.extra["emote-ranges-realigned"] == "3"
    assert msg.extra["sub-months"] == "23"
    assert msg.is_mod


def test_misaligned_range_takes_the_name_of_another_use_of_the_same_emote() -> None:
    # The second range cuts a long word and no shift lines it up: the first use names it.
    ranges = parse_emote_ranges("25:0-4,8-12", "Kappa abcdefghijklmnop")
    assert ranges.uses == (EmoteUse("25", "Kappa", "twitch", 2),)
    assert (ranges.realigned, ranges.dropped) == (1, 0)


def test_an_emote_touching_an_emoji_or_punctuation_lines_up() -> None:
    # Chatterino emotes3.json (real): "😂Kappa😂 &Kappa a  b" with 25:1-5/25:9-13.
    ranges = parse_emote_ranges("25:1-5/25:9-13", "😂Kappa😂 &Kappa a  b")
    assert ranges == parse_emote_ranges("25:1-5,9-13", "😂Kappa😂 &Kappa a  b")
    assert ranges.uses == (EmoteUse("25", "Kappa", "twitch", 2),)
    assert (ranges.clamped, ranges.realigned, ranges.dropped) == (0, 0, 0)


def test_a_range_nothing_lines_up_is_dropped_and_counted() -> None:
    ranges = parse_emote_ranges("84608:0-0", "foo bar")
    assert (ranges.uses, ranges.dropped) == ((), 1)


@pytest.mark.parametrize(
    ("tags", "field", "value"),
    [
        ("bits=lots", "bits", 0),
        ("bits=-5", "bits", 0),
        ("bits=99999999999", "bits", 0),
        ("badge-info=subscriber/many", "extra", None),
    ],
)
def test_one_malformed_optional_tag_drops_that_field_only(
    tags: str, field: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = repair_counts()
    with caplog.at_level(logging.DEBUG, logger="collector.irc"):
        msg = _chat(f"@tmi-sent-ts=1;id=x;{tags} :a!a@a PRIVMSG #c :still here")
    assert msg.text == "still here"
    if field == "bits":
        assert msg.bits == value
    assert "sub-months" not in msg.extra
    key, _, raw = tags.partition("=")
    assert msg.extra[key] == raw  # the raw value is kept, the typed field dropped
    assert _repairs_since(before) == {"tag_dropped": 1}
    assert any("unusable optional tag" in r.getMessage() for r in caplog.records)


def test_malformed_ban_duration_is_a_timeout_of_unknown_length() -> None:
    event = _moderation("@tmi-sent-ts=1;ban-duration=-5 :tmi.twitch.tv CLEARCHAT #c :u")
    assert (event.kind, event.duration_s, event.extra) == ("timeout", None, {"ban-duration": "-5"})


@pytest.mark.parametrize(("badge_info", "months"), [("subscriber/27", "27"), ("founder/3", "3")])
def test_subscription_months_are_kept(badge_info: str, months: str) -> None:
    msg = _chat(f"@tmi-sent-ts=1;badge-info={badge_info} :a!a@a PRIVMSG #c :x")
    assert msg.extra["sub-months"] == months


def test_reply_parent_display_name_and_body_are_kept() -> None:
    line = (
        "@badge-info=;badges=;client-nonce=cd56193132f934ac71b4d5ac488d4bd6;color=;"
        "display-name=LeftSwing;emotes=;first-msg=0;flags=;id=5b4f63a9-776f-4fce-bf3c-d9707f52e32d;"
        "mod=0;reply-parent-display-name=Retoon;reply-parent-msg-body=hello;"
        "reply-parent-msg-id=6b13e51b-7ecb-43b5-ba5b-2bb5288df696;reply-parent-user-id=37940952;"
        "reply-parent-user-login=retoon;returning-chatter=0;room-id=37940952;subscriber=0;"
        "tmi-sent-ts=1673925983585;turbo=0;user-id=133651738;user-type= "
        ":leftswing!leftswing@leftswing.tmi.twitch.tv PRIVMSG #retoon :@Retoon yes"
    )
    msg = _chat(line)
    assert msg.reply_parent_id == "6b13e51b-7ecb-43b5-ba5b-2bb5288df696"
    assert msg.extra["reply-parent-display-name"] == "Retoon"
    assert msg.extra["reply-parent-msg-body"] == "hello"
    assert msg.extra["reply-parent-user-login"] == "retoon"


@pytest.mark.parametrize("badge", ["broadcaster", "moderator", "lead_moderator"])
def test_is_mod_means_moderator_powers_broadcaster_included(badge: str) -> None:
    assert _chat(f"@tmi-sent-ts=1;mod=0;badges={badge}/1 :a!a@a PRIVMSG #c :x").is_mod


def test_repairs_are_a_prometheus_counter_of_the_collector() -> None:
    from prometheus_client import CollectorRegistry

    from collector.metrics import CollectorMetrics

    registry = CollectorRegistry()
    CollectorMetrics(registry)

    def scraped() -> float:
        value = registry.get_sample_value(
            "chatpulse_irc_repairs_total", {"kind": "sent_ts_fallback"}
        )
        assert value is not None
        return value

    before = scraped()
    _moderation(_NEGATIVE_TS_CLEARMSG, received_at=RECEIVED)
    assert scraped() == before + 1
