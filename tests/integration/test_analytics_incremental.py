"""An incremental analyze pass leaves exactly the tables a first pass over the same rows writes
(issue 15): after a new hour of the last stream, late rows inside an earlier stream, a replay
whose rows span two streams (and move one's start), and a new stream.

The chat is constructed (one channel, three one-hour streams a day apart): a loyal core, casual
chatters, a copypasta that crosses the three-chatter line only with the late rows, a spammer, a
machine-regular bot and a raid; emote rows and scores (sentiments that are sums of powers of
two, so a mean does not depend on the order it is summed in).  After each step the analysis
tables are read (streams by start time, not id), emptied, analyzed again from scratch and read
again: both reads must be equal, every column.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from analytics.runner import analyze_pass
from analytics.segments import SegmentRules
from chatpulse.core.db import connect

GAP = timedelta(minutes=30)
T0 = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)
PASTA = "this copypasta only counts once three chatters post it"
#: A share at which whether a chatter is regular depends on their first stream: "returner"
#: writes in streams 1 and 3, then 4 (3 of 4 streams since the first: casual, not regular; an
#: update that took stream 3 for the first would count 3 of 2).
RULES = SegmentRules(regular_share=0.8)

Row = tuple[datetime, str, str, int]  # sent_at, login, text, emotes


def _stream(day: int, minutes: tuple[int, int], rng: random.Random, tag: str) -> list[Row]:
    """Chat of stream ``day`` between two minutes after its start."""
    out: list[Row] = []
    start = T0 + timedelta(days=day)
    lo, hi = minutes
    for second in range(lo * 60, hi * 60, 7):
        at = start + timedelta(seconds=second, microseconds=rng.randrange(1_000_000))
        login = f"core{rng.randrange(4)}" if rng.random() < 0.5 else f"fan{rng.randrange(25)}"
        text = rng.choice(["hello", "LUL", "what a play", f"gg {tag}", f"line {second} {tag}"])
        out.append((at, login, text, rng.randrange(3)))
    for k in range((hi - lo) // 3):  # a bot every 90 s exactly
        out.append((start + timedelta(minutes=lo, seconds=90 * k), "timerbot", f"tip {k}", 0))
    return out


def _write(url: str, channel: int, rows: list[Row], tag: str) -> None:
    """One transaction: the messages, their emote rows and scores (as a replay writes them)."""
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_id, user_login, text,"
            " emote_count, source) FROM STDIN"
        ) as copy:
            for i, (at, login, text, emotes) in enumerate(rows):
                copy.write_row((at, channel, f"{tag}-{i}", login, login, text, emotes, "replay"))
        with conn.cursor().copy(
            "COPY chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name,"
            " provider, count, user_id) FROM STDIN"
        ) as copy:
            for i, (at, login, _, emotes) in enumerate(rows):
                if emotes:
                    name = "KEKW" if i % 3 else "OMEGALUL"
                    copy.write_row((at, channel, f"{tag}-{i}", name, name, "bttv", emotes, login))
        with conn.cursor().copy(
            "COPY chat.message_scores (sent_at, channel_id, message_id, model, sentiment, label)"
            " FROM STDIN"
        ) as copy:
            for i, (at, *_) in enumerate(rows):
                if i % 4:  # the scorer has not reached every message
                    s = (i % 9 - 4) / 8
                    label = "positive" if s > 0 else "negative" if s < 0 else "neutral"
                    copy.write_row((at, channel, f"{tag}-{i}", "test@1", s, label))


def _channel(url: str, name: str) -> int:
    """A new channel's id."""
    with psycopg.connect(url) as conn:
        row = conn.execute("INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (name,))
        return int(row.fetchone()[0])  # type: ignore[index]


def _analyze(url: str, *, reader: bool = True) -> None:
    """Passes until idle; with ``reader`` (as ``chatpulse analyze`` runs) each stream's
    duplicates and emote counts are read on a second connection, without it on the same one."""

    async def go() -> None:
        async with (
            await connect(url, autocommit=True) as conn,
            await connect(url, autocommit=True) as second,
        ):
            while not (
                await analyze_pass(conn, GAP, RULES, reader=second if reader else None)
            ).idle:
                pass

    asyncio.run(go())


_TABLES = {
    "streams": "SELECT to_jsonb(s) - 'id' - 'analyzed_at' FROM chat.streams s"
    " ORDER BY s.channel_id, s.started_at",
    "stream_chatters": "SELECT s.started_at, to_jsonb(t) - 'stream_id' FROM chat.stream_chatters t"
    " JOIN chat.streams s ON s.id = t.stream_id ORDER BY s.started_at, t.chatter",
    "stream_shape": "SELECT s.started_at, to_jsonb(t) - 'stream_id' FROM chat.stream_shape t"
    " JOIN chat.streams s ON s.id = t.stream_id ORDER BY s.started_at, t.decile",
    "stream_emotes": "SELECT s.started_at, to_jsonb(t) - 'stream_id' FROM chat.stream_emotes t"
    " JOIN chat.streams s ON s.id = t.stream_id ORDER BY s.started_at, t.emote_name",
    "stream_segments": "SELECT s.started_at, to_jsonb(t) - 'stream_id' FROM chat.stream_segments t"
    " JOIN chat.streams s ON s.id = t.stream_id ORDER BY s.started_at, t.segment",
    "channel_chatters": "SELECT to_jsonb(t) FROM chat.channel_chatters t"
    " ORDER BY t.channel_id, t.chatter",
    "channel_segments": "SELECT to_jsonb(t) FROM chat.channel_segments t"
    " ORDER BY t.channel_id, t.last_stream_at, t.segment",
}


def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in _TABLES.items()}  # type: ignore[arg-type]


def _assert_same_as_from_scratch(url: str) -> dict[str, list[tuple[Any, ...]]]:
    incremental = _tables(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "TRUNCATE chat.streams, chat.channel_chatters, chat.channel_segments,"
            " chat.analytics_state CASCADE"
        )
    _analyze(url, reader=False)  # one connection: the same rows as the two
    scratch = _tables(url)
    for name in _TABLES:
        assert incremental[name] == scratch[name], name
    return scratch


def test_incremental_passes_equal_a_first_pass_over_the_same_rows(db_url: str) -> None:
    rng = random.Random(15)
    channel = _channel(db_url, "inc")
    first = _stream(0, (0, 60), rng, "a") + _stream(1, (0, 60), rng, "b")
    first += _stream(2, (0, 40), rng, "c")
    first += [(T0 + timedelta(minutes=10, seconds=k), f"pasta{k}", PASTA, 0) for k in range(2)]
    first += [
        (T0 + timedelta(days=1, minutes=30, seconds=k), "spammy", "BUY NOW", 0) for k in range(8)
    ]
    first += [(T0 + timedelta(days=d, minutes=5), "returner", f"back {d}", 0) for d in (0, 2)]
    _write(db_url, channel, first, "first")
    _analyze(db_url)
    start = _tables(db_url)
    assert len(start["streams"]) == 3

    # A new hour continues the last stream.
    _write(db_url, channel, _stream(2, (40, 100), rng, "c2"), "hour")
    _analyze(db_url)
    _assert_same_as_from_scratch(db_url)

    # Late rows inside the first stream: new and known chatters, and the third copypasta copy.
    late = [
        (T0 + timedelta(minutes=20, seconds=11 * k), f"late{k % 3}", "late hi", 1) for k in range(9)
    ]
    late += [(T0 + timedelta(minutes=25, seconds=k), "core1", "catching up", 0) for k in range(3)]
    late.append((T0 + timedelta(minutes=31), "fan3", PASTA, 0))
    _write(db_url, channel, late, "late")
    _analyze(db_url)
    after_late = _assert_same_as_from_scratch(db_url)
    assert any(
        r[1]["duplicates"] > 0 and r[1]["login"].startswith("pasta")
        for r in after_late["stream_chatters"]
    )

    # A replay spanning two streams: rows in the second and the third, and 20 minutes before
    # the second's first message (within one gap, so it starts earlier).
    replay = _stream(1, (10, 30), rng, "r1") + _stream(2, (50, 70), rng, "r2")
    replay.append((T0 + timedelta(days=1, minutes=-20), "early", "first!", 0))
    _write(db_url, channel, replay, "replay")
    _analyze(db_url)
    after_replay = _assert_same_as_from_scratch(db_url)
    assert after_replay["streams"][1][0]["started_at"] < start["streams"][1][0]["started_at"]

    # A new stream the next day.
    next_day = _stream(3, (0, 30), rng, "d")
    next_day.append((T0 + timedelta(days=3, minutes=5), "returner", "back 3", 0))
    _write(db_url, channel, next_day, "next")
    _analyze(db_url)
    with psycopg.connect(db_url) as conn:
        updated = conn.execute(
            "SELECT segment FROM chat.stream_chatters WHERE login = 'returner' ORDER BY started_at"
        ).fetchall()
    assert [r[0] for r in updated] == ["one-time", "casual", "casual"]
    final = _assert_same_as_from_scratch(db_url)
    assert len(final["streams"]) == 4


def test_a_pass_whose_second_connection_fails_writes_nothing(db_url: str) -> None:
    """The duplicates and emote counts are read on a second connection: when it breaks in the
    middle of a pass, the channel's transaction rolls back and the pass raises; the next pass
    with a working connection does all of it."""
    _write(db_url, _channel(db_url, "broken"), _stream(0, (0, 60), random.Random(18), "a"), "a")

    async def go() -> None:
        async with (
            await connect(db_url, autocommit=True) as conn,
            await connect(db_url, autocommit=True) as reader,
        ):
            await conn.execute("SELECT pg_terminate_backend(%s)", (reader.info.backend_pid,))
            with pytest.raises(psycopg.OperationalError):
                await analyze_pass(conn, GAP, RULES, reader=reader)

    asyncio.run(go())
    written = _tables(db_url)
    assert all(not written[name] for name in _TABLES), written
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM chat.analytics_state").fetchone() == (0,)
    _analyze(db_url)
    assert len(_tables(db_url)["streams"]) == 1
    _assert_same_as_from_scratch(db_url)


def test_mood_follows_the_scorer(db_url: str) -> None:
    """A stream analyzed while a quarter of its messages have no score gets its mood and its
    tenths' mood again when the scorer catches up: the same as analyzing from scratch."""
    _write(db_url, _channel(db_url, "mood"), _stream(0, (0, 60), random.Random(7), "a"), "a")
    _analyze(db_url)
    before = _tables(db_url)["streams"][0][0]
    with psycopg.connect(db_url) as conn:
        late = conn.execute(
            "INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment,"
            " label) SELECT m.sent_at, m.channel_id, m.message_id, 'test@1', 0.75, 'positive'"
            " FROM chat.messages m WHERE NOT EXISTS (SELECT FROM chat.message_scores s"
            " WHERE s.channel_id = m.channel_id AND s.message_id = m.message_id)"
        ).rowcount
    assert late > 100
    _analyze(db_url)
    after = _assert_same_as_from_scratch(db_url)["streams"][0][0]
    assert after["scored"] == before["scored"] + late == after["messages"]
    assert after["mood"] > before["mood"]
    # Each tenth's mood is the mean of its messages' scores, counted here one by one.
    with psycopg.connect(db_url) as conn:
        start, end = conn.execute("SELECT started_at, ended_at FROM chat.streams").fetchone() or ()
        scores = conn.execute("SELECT sent_at, sentiment FROM chat.message_scores").fetchall()
        shape = conn.execute("SELECT decile, mood FROM chat.stream_shape ORDER BY 1").fetchall()
    by_tenth: dict[int, list[float]] = {}
    for at, sentiment in scores:
        d = min(
            9,
            10
            * ((at - start) // timedelta(microseconds=1))
            // ((end - start) // timedelta(microseconds=1)),
        )
        by_tenth.setdefault(d, []).append(sentiment)
    assert len(shape) == len(by_tenth) == 10
    for d, mood in shape:
        assert abs(mood - sum(by_tenth[d]) / len(by_tenth[d])) < 1e-6, d
