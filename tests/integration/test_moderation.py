"""Moderation against toxicity (sql/0015_moderation.sql) on real Twitch IRC moderation lines.

The CLEARMSG and CLEARCHAT lines are real (tests/data/irc-conformance/corpus.jsonl, from
Chatterino's snapshots and dank-twitch-irc's tests); the PRIVMSG lines they act on are built
with the same tags Twitch sends, timed against them, and scored as the scorer would store it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from collector.irc import parse_event
from collector.writer import ChannelRegistry, write_events
from tests.paths import IRC_CONFORMANCE

CORPUS = IRC_CONFORMANCE / "corpus.jsonl"


def _real(fragment: str) -> str:
    for line in CORPUS.read_text().splitlines():
        raw = str(json.loads(line)["raw"])
        if fragment in raw:
            return raw
    raise AssertionError(f"no corpus line with {fragment!r}")


# Real: a CLEARMSG deleting alazymeme's "NIGHT CUNT", a 1-s timeout of fabzeef, a ban of
# weeb123 (all #pajlada, 2020-07-12).
CLEARMSG = _real("target-msg-id=3c92014f-340a-4dc3-a9c9-e5cf182f4a84")
TIMEOUT = _real("target-user-id=148973258")
BAN = _real("target-user-id=70948394")


def _ms(raw: str) -> int:
    return int(raw.split("tmi-sent-ts=", 1)[1].split(";")[0].split(" ")[0])


def privmsg(login: str, uid: str, msg_id: str, at_ms: int, text: str, mod: bool = False) -> str:
    badges = "moderator/1" if mod else ""
    return (
        f"@badge-info=;badges={badges};color=;display-name={login};emotes=;flags=;id={msg_id};"
        f"mod={int(mod)};room-id=11148817;subscriber=0;tmi-sent-ts={at_ms};turbo=0;"
        f"user-id={uid};user-type= :{login}!{login}@{login}.tmi.twitch.tv PRIVMSG #pajlada :{text}"
    )


def _setup(db_url: str) -> None:
    lines = [
        # deleted 4 s after it was sent (the real CLEARMSG names it)
        privmsg(
            "alazymeme",
            "501",
            "3c92014f-340a-4dc3-a9c9-e5cf182f4a84",
            _ms(CLEARMSG) - 4000,
            "NIGHT CUNT",
        ),
        CLEARMSG,
        # its author timed out 30 s later
        privmsg("fabzeef", "148973258", "m-fab", _ms(TIMEOUT) - 30_000, "ur so dumb"),
        TIMEOUT,
        # banned, but 11 minutes later: outside the 10-minute window, never acted on
        privmsg("weeb123", "70948394", "m-weeb", _ms(BAN) - 660_000, "you suck"),
        BAN,
        # nobody ever acts on this one
        privmsg("quietone", "777", "m-quiet", _ms(CLEARMSG) - 50_000, "fucking idiot"),
        # a moderator talks (not toxic)
        privmsg("modperson", "888", "m-mod", _ms(CLEARMSG) - 20_000, "chill chat", mod=True),
    ]
    events = [parse_event(line, source="replay") for line in lines]

    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await write_events(conn, events, ChannelRegistry())

    asyncio.run(write())
    toxic = {
        "3c92014f-340a-4dc3-a9c9-e5cf182f4a84": 0.93,
        "m-fab": 0.71,
        "m-weeb": 0.66,
        "m-quiet": 0.88,
        "m-mod": 0.02,
    }
    with psycopg.connect(db_url) as conn:
        for message_id, tox in toxic.items():
            conn.execute(
                "INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model,"
                " sentiment, label, toxicity) SELECT sent_at, channel_id, message_id, 'lexicon@1',"
                " -0.5, 'negative', %s FROM chat.messages WHERE message_id = %s",
                (tox, message_id),
            )
        # a second model that finds the deleted message toxic too: still one toxic message
        conn.execute(
            "INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment,"
            " label, toxicity) SELECT sent_at, channel_id, message_id, 'other@1', -0.4,"
            " 'negative', 0.8 FROM chat.messages WHERE message_id = %s",
            ("3c92014f-340a-4dc3-a9c9-e5cf182f4a84",),
        )


def _rows(db_url: str, sql: str) -> list[dict[str, Any]]:
    with psycopg.connect(db_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_toxic_messages_acted_on_with_latency(db_url: str) -> None:
    _setup(db_url)
    rows = {
        r["user_login"]: r
        for r in _rows(db_url, "SELECT * FROM chat.toxic_messages ORDER BY sent_at")
    }
    assert set(rows) == {"alazymeme", "fabzeef", "weeb123", "quietone"}
    deleted = rows["alazymeme"]
    assert deleted["action"] == "delete" and deleted["latency_s"] == pytest.approx(4.0)
    assert deleted["toxicity"] == pytest.approx(0.93)  # the highest model's score
    assert rows["fabzeef"]["action"] == "timeout"
    assert rows["fabzeef"]["latency_s"] == pytest.approx(30.0)
    for login in ("weeb123", "quietone"):
        assert rows[login]["acted_at"] is None and rows[login]["never_acted"] is True


def test_per_minute_and_per_stream_figures(db_url: str) -> None:
    _setup(db_url)
    minutes = _rows(db_url, "SELECT * FROM chat.moderation_1m ORDER BY bucket")
    total = {
        k: sum(r[k] for r in minutes)
        for k in ("toxic", "acted", "never_acted", "bans", "timeouts", "deletions", "mod_messages")
    }
    assert total == {
        "toxic": 4,
        "acted": 2,
        "never_acted": 2,
        "bans": 1,
        "timeouts": 1,
        "deletions": 1,
        "mod_messages": 1,
    }
    deleted_minute = [r for r in minutes if r["deletions"] == 1]
    assert len(deleted_minute) == 1
    # Two streams, 2 h 15 min apart: the timeout's, and the ban's with the deletion's.
    streams = _rows(db_url, "SELECT * FROM chat.moderation_streams ORDER BY started_at")
    assert [s["toxic"] for s in streams] == [1, 3]
    assert streams[0]["acted_share"] == 1.0 and streams[0]["timeouts"] == 1
    last = streams[-1]  # weeb123's (never acted on), quietone's, the deleted one
    assert last["acted"] == 1 and last["never_acted"] == 2 and last["bans"] == 1
    assert last["acted_share"] == pytest.approx(1 / 3)
    assert last["avg_latency_s"] == pytest.approx(4.0) and last["mod_messages"] == 1
    assert datetime.now(UTC) - last["ended_at"] > timedelta(days=365)


def test_alert_fires_on_an_unanswered_toxic_surge(db_url: str) -> None:
    from tests.integration.test_grafana_sql import _alert_sql, _rule, _series, run_as_reader

    rule = _rule("chatpulse-toxic-unanswered")
    end = datetime(2024, 1, 6, 17, 0, tzinfo=UTC)
    base = int((end - timedelta(minutes=9)).timestamp() * 1000)
    lines = [
        privmsg(f"troll{k}", str(900 + k), f"m-tox{k}", base + k * 60_000, "fucking idiot")
        for k in range(6)
    ]
    events = [parse_event(line, source="replay") for line in lines]

    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await write_events(conn, events, ChannelRegistry())

    asyncio.run(write())
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment,"
            " label, toxicity) SELECT sent_at, channel_id, message_id, 'lexicon@1', -0.6,"
            " 'negative', 0.9 FROM chat.messages"
        )

    def fired() -> dict[tuple[Any, ...], float]:
        return _series(*run_as_reader(db_url, _alert_sql(rule, end)))

    # Six toxic messages 9 to 4 minutes before, none acted on: fires with 6.
    assert fired() == {("pajlada",): 6.0}
    # Moderators delete two of them (a third acted on): moderation answers, no alert.
    with psycopg.connect(db_url) as conn:
        for k in (0, 1):
            conn.execute(
                "INSERT INTO chat.moderation_events (at, channel_id, kind, target_login,"
                " target_message_id, event_key) SELECT sent_at + INTERVAL '20 seconds',"
                " channel_id, 'delete', user_login, message_id, 'k' || message_id"
                " FROM chat.messages WHERE message_id = %s",
                (f"m-tox{k}",),
            )
    assert fired() == {("pajlada",): 0.0}
