"""The writer's two ways into chat.messages (collector/writer/batch.py): new messages are
copied straight in after one look-up of the stored keys; a key twice in a batch, or a message
a concurrent writer stored after that look-up, goes through staging with ON CONFLICT.  Either
way every message is stored once (docs/architecture.md, "Exactly once into the database").
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from collector.events import ChatMessage, EmoteUse
from collector.writer import ChannelRegistry, write_events
from tests.helpers import until

T0 = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)
KAPPA = EmoteUse("25", "Kappa", "twitch")


def message(i: int, text: str = "Kappa hi", emotes: tuple[EmoteUse, ...] = ()) -> ChatMessage:
    return ChatMessage(
        platform="twitch",
        channel="nymn",
        message_id=f"m-{i}",
        sent_at=T0 + timedelta(seconds=i),
        text=text,
        user_id=f"u{i}",
        user_login=f"user{i}",
        emotes=emotes,
        source="replay",
    )


def stored(db_url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT message_id, text, emote_count FROM chat.messages ORDER BY message_id"
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def uses(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT message_id, emote_name FROM chat.emote_uses ORDER BY message_id, emote_name"
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


async def test_a_batch_holding_a_message_twice_stores_it_once(db_url: str) -> None:
    batch = [message(1, emotes=(KAPPA,)), message(1, emotes=(KAPPA,)), message(2)]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        result = await write_events(conn, batch, ChannelRegistry())
    assert (result.written, result.duplicates) == (2, 1)
    assert stored(db_url) == [("m-1", "Kappa hi", 1), ("m-2", "Kappa hi", 0)]
    assert uses(db_url) == [("m-1", "Kappa")]


async def test_stored_messages_are_skipped_and_get_the_emote_uses_found_since(
    db_url: str,
) -> None:
    channels = ChannelRegistry()
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await write_events(conn, [message(1)], channels)
        # Again, now that Kappa is known, beside a new message.
        again = [message(1, emotes=(KAPPA,)), message(2, emotes=(KAPPA,))]
        result = await write_events(conn, again, channels)
    assert (result.written, result.duplicates) == (1, 1)
    assert (result.emote_uses_inserted, result.emote_uses_backfilled) == (2, 1)
    assert stored(db_url) == [("m-1", "Kappa hi", 1), ("m-2", "Kappa hi", 1)]
    assert uses(db_url) == [("m-1", "Kappa"), ("m-2", "Kappa")]


def _waits_on_a_lock(db_url: str, pid: int) -> bool:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return row is not None and row[0] == "Lock"


async def test_a_message_a_concurrent_writer_stores_after_the_look_up_is_stored_once(
    db_url: str,
) -> None:
    channels = ChannelRegistry()
    async with (
        await psycopg.AsyncConnection.connect(db_url) as ours,
        await psycopg.AsyncConnection.connect(db_url) as theirs,
    ):
        await write_events(ours, [message(0)], channels)  # the channel exists
        # The other writer inserts m-1 and has not committed: our look-up cannot see it, our
        # COPY waits for it, then meets the unique key.
        await theirs.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, text, source) "
            "SELECT %s, id, 'm-1', 'theirs', 'live' FROM chat.channels WHERE name = 'nymn'",
            (message(1).sent_at,),
        )
        writing = asyncio.create_task(
            write_events(ours, [message(1, "ours"), message(2, "ours")], channels)
        )
        await until("our COPY to wait", lambda: _waits_on_a_lock(db_url, ours.info.backend_pid))
        await theirs.commit()
        result = await writing
    assert (result.written, result.duplicates) == (1, 1)
    assert stored(db_url) == [
        ("m-0", "Kappa hi", 0),
        ("m-1", "theirs", 0),
        ("m-2", "ours", 0),
    ]


async def test_a_rolled_back_first_batch_leaves_staging_usable(db_url: str) -> None:
    # The staging tables are created inside the first batch's transaction: when that batch
    # rolls back they are gone, and the next batch on the connection must create them again.
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await conn.execute("SET statement_timeout = '300ms'")
        await conn.commit()
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE chat.channels IN ACCESS EXCLUSIVE MODE")
            try:
                await write_events(conn, [message(1)], ChannelRegistry())
            except psycopg.errors.QueryCanceled:
                pass
            else:
                raise AssertionError("the batch should have timed out behind the lock")
            locker.rollback()
        await conn.execute("RESET statement_timeout")
        await conn.commit()
        batch = [message(1, emotes=(KAPPA,)), message(1, emotes=(KAPPA,))]  # needs staging
        result = await write_events(conn, batch, ChannelRegistry())
    assert (result.written, result.duplicates) == (1, 1)
    assert stored(db_url) == [("m-1", "Kappa hi", 1)]


AWKWARD = 'tab\there, new\nline, cr\rhere, back\\slash \\N \\. nul\x00 é 😂 "quoted"'


def _every_column(db_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT m.sent_at, m.message_id, m.user_id, m.user_login, m.user_name, m.text,"
            " m.kind, m.badges, m.is_mod, m.is_subscriber, m.is_first, m.bits,"
            " m.reply_parent_id, m.emote_count, m.extra, m.received_at, m.source,"
            " e.emote_id, e.emote_name, e.provider, e.count, e.user_id"
            " FROM chat.messages m LEFT JOIN chat.emote_uses e USING (channel_id, message_id,"
            " sent_at) ORDER BY m.message_id, e.emote_id"
        ).fetchall()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("twice", [False, True], ids=["copied", "staged"])
async def test_every_value_is_stored_as_it_came_through_either_path(
    db_url: str, twice: bool
) -> None:
    # The writer formats COPY text itself (collector/writer/rows.py): tabs, newlines, carriage
    # returns, backslashes (one before "N" or "." too), quotes in JSON and non-ASCII text come
    # back as they went; NUL, which PostgreSQL text cannot hold, comes back as U+FFFD.
    received = T0 + timedelta(minutes=5)
    odd = ChatMessage(
        platform="twitch",
        channel="nymn",
        message_id="id\\with\ttab",
        sent_at=T0 + timedelta(microseconds=123),
        text=AWKWARD,
        user_id="u\\1",
        user_login="login\n",
        user_name="Näme\r",
        kind="action",
        badges={"sub\\scriber": '3"6', "vip": "1"},
        is_mod=True,
        is_subscriber=True,
        is_first=True,
        bits=100,
        reply_parent_id="parent\tid",
        emotes=(EmoteUse("e\\1", "Kap\tpa", "twitch", 2), EmoteUse("😂", "😂", "emoji")),
        received_at=received,
        source="replay",
        extra={"color": "#FF0000", "system-msg": 'a\\sb "c"\ttab\nnl é'},
    )
    plain = ChatMessage("twitch", "nymn", "plain", T0, "hi", source="live")
    batch = [odd, plain, odd] if twice else [odd, plain]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        result = await write_events(conn, batch, ChannelRegistry(), now=lambda: received)
    assert result.written == 2
    nul_free = AWKWARD.replace("\x00", "\ufffd")
    odd_row = (
        odd.sent_at, "id\\with\ttab", "u\\1", "login\n", "Näme\r", nul_free, "action",
        {"sub\\scriber": '3"6', "vip": "1"}, True, True, True, 100, "parent\tid", 3,
        {"color": "#FF0000", "system-msg": 'a\\sb "c"\ttab\nnl é'}, received, "replay",
    )  # fmt: skip
    assert _every_column(db_url) == [
        (*odd_row, "e\\1", "Kap\tpa", "twitch", 2, "u\\1"),
        (*odd_row, "😂", "😂", "emoji", 1, "u\\1"),
        (T0, "plain", None, None, None, "hi", "chat", {}, False, False, False, 0, None, 0, None,
         received, "live", None, None, None, None, None),
    ]  # fmt: skip
