"""``chatpulse forget`` as a user runs it: database, aggregates, samples, spool, dead letters,
and a tombstone that keeps the user out of every later write."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from collector.codec import decode_events, encode_events
from collector.events import ChatEvent, ChatMessage, ModerationEvent
from collector.spool import Spool
from collector.writer import ChannelRegistry, write_events
from tests.e2e.cli import run_cli

T0 = 1_704_558_000_000  # 2024-01-06T16:20:00Z in ms


def _line(n: int, login: str, user_id: str, text: str) -> str:
    return (
        f"@id=00000000-0000-0000-0000-{n:012d};tmi-sent-ts={T0 + n * 1000};user-id={user_id};"
        f"display-name={login.capitalize()} :{login}!{login}@{login}.tmi.twitch.tv "
        f"PRIVMSG #c :{text}"
    )


def _event(login: str, user_id: str, n: int) -> ChatMessage:
    return ChatMessage(
        platform="twitch",
        channel="c",
        message_id=f"spooled-{n}",
        sent_at=datetime(2024, 1, 6, 16, 30, n, tzinfo=UTC),
        text=f"spooled {n}",
        user_id=user_id,
        user_login=login,
    )


def _env(db_url: str, data: Path) -> dict[str, str]:
    return {"CHATPULSE_DATABASE_URL": db_url, "CHATPULSE_DATA_DIR": str(data)}


def _rows(db_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchall()


def test_forget_everywhere_and_for_good(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "chat.log"
    log.write_text(
        "\n".join(
            [
                _line(1, "bob", "111", "hello from bob"),
                _line(2, "amy", "222", "hi amy here"),
                _line(3, "bob", "111", "bob again LUL"),
            ]
        )
        + "\n"
    )
    done = run_cli("replay", str(log), "--channel", "c", env=_env(db_url, data))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min, sample_messages) SELECT id, now(), now(), "
            'now(), 1, 1, 1, \'[{"user": "Bob", "text": "hello from bob"}, '
            '{"user": "amy", "text": "hi amy here"}]\' FROM chat.channels'
        )
    assert len(_rows(db_url, "SELECT 1 FROM chat.chatters_1m WHERE user_login = 'bob'")) == 1

    # What a collector left behind: a spooled batch and dead letters that name Bob.
    spool_dir = data / "spool" / "collect"
    with Spool(spool_dir, max_bytes=1 << 20) as spool:
        batch: list[ChatEvent] = [
            _event("Bob", "111", 1),
            _event("amy", "222", 2),
            ModerationEvent(
                platform="twitch",
                channel="c",
                at=datetime(2024, 1, 6, 16, 30, 3, tzinfo=UTC),
                kind="timeout",
                event_key="k1",
                target_login="bob",
                target_user_id="111",
            ),
        ]
        spool.append(encode_events(batch))
    dead = data / "dead-letters"
    dead.mkdir(parents=True, exist_ok=True)
    (dead / "collect.jsonl").write_text(
        json.dumps({"reason": "no command", "raw": "@x :bob!bob@bob PRIVMSG #c"})
        + "\n"
        + json.dumps({"reason": "no command", "raw": "@x :amy!amy@amy PRIVMSG #c"})
        + "\n"
    )
    (dead / "collect.jsonl.1").write_text(
        json.dumps({"reason": "bad", "raw": "user-id=111 hello"}) + "\n"
    )

    done = run_cli("forget", "--user", "BOB", env=_env(db_url, data))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["user"] == "bob" and report["user_ids"] == ["111"]
    deleted = report["deleted"]
    assert deleted["messages"] == 2
    assert deleted["tombstones"] == 2  # by login, and by the user id seen with it
    assert deleted["chatters_1m"] == 1 and deleted["chatters_1h"] == 1
    assert deleted["hype_moment_samples"] == 1
    assert deleted["spool_events"] == 2  # Bob's message and the timeout against him
    assert deleted["dead_letters"] == 2  # by login, and by id in the rotated file

    assert _rows(db_url, "SELECT user_login FROM chat.messages") == [("amy",)]
    assert _rows(db_url, "SELECT DISTINCT user_login FROM chat.chatters_1m") == [("amy",)]
    assert _rows(db_url, "SELECT sum(chatters), sum(messages) FROM chat.activity_1m") == [(1, 1)]
    samples = _rows(db_url, "SELECT sample_messages FROM chat.hype_moments")
    assert samples == [([{"user": "amy", "text": "hi amy here"}],)]
    with Spool(spool_dir, max_bytes=1 << 20) as spool:
        assert spool.corrupt_segments == 0 and spool.torn_records == 0
        head = spool.peek()
        assert head is not None
        assert decode_events(head[1]) == [batch[1]]
    assert "amy" in (dead / "collect.jsonl").read_text()
    assert "bob" not in (dead / "collect.jsonl").read_text()
    assert (dead / "collect.jsonl.1").read_text() == ""

    # For good: a replay of the same file, and Bob under a new login with the same id.
    log.write_text(log.read_text() + _line(4, "robert", "111", "new name, same id") + "\n")
    again = run_cli("replay", str(log), "--channel", "c", env=_env(db_url, data))
    assert again.returncode == 0, again.stderr
    assert _rows(db_url, "SELECT user_login FROM chat.messages") == [("amy",)]

    # The writer path a spool drain and gap fill take drops him too.
    async def write() -> int:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            result = await write_events(conn, [_event("bob", "999", 7)], ChannelRegistry())
            return result.forgotten

    assert asyncio.run(write()) == 1
    assert _rows(db_url, "SELECT count(*) FROM chat.messages") == [(1,)]


def test_forget_with_a_spool_in_use_says_what_is_left(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Spool(data / "spool" / "collect", max_bytes=1 << 20) as spool:
        spool.append(encode_events([_event("bob", "111", 1)]))
        done = run_cli("forget", "--user", "bob", env=_env(db_url, data))
        assert done.returncode == 1
        assert "in use by a running process" in done.stderr
        report = json.loads(done.stdout)
        assert report["deleted"]["tombstones"] == 1 and report["skipped"]
        head = spool.peek()
        assert head is not None and len(decode_events(head[1])) == 1  # untouched
    assert _rows(db_url, "SELECT user_login FROM chat.forgotten_users") == [("bob",)]
