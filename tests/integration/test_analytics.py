"""Streams, audience segments, shapes and signatures (issue 15) on the real PostgreSQL.

Real chat: the #nymn sample (798 messages, 2024-01-06 16:19-16:27 UTC) replayed as IRC, and as
TwitchDownloader JSON VODs built from it (tests/td_export.py) that span several streams;
another community: the YouTube live chat replay of the chat-downloader examples.  Constructed
audiences with known answers are written as plain chat.messages rows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.runner import AnalyzeSummary, analyze_pass, stream_signatures
from analytics.signatures import compare
from chatpulse.core.db import connect
from chatpulse.core.settings import load_settings
from collector import irc
from collector.app import replay_files
from tests.conftest import FIXTURES
from tests.td_export import nymn_vod, write_json

NYMN = FIXTURES / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
YOUTUBE = (
    FIXTURES
    / "xenova-chat-downloader-examples"
    / "[YouTube] Get messages from live chat replay.json"
)
GAP = timedelta(minutes=30)


def _settings(url: str, tmp: Path) -> Any:
    return load_settings(
        overrides={"database_url": url, "data_dir": tmp / "data", "emote_providers": []}
    )


def replay(url: str, tmp: Path, files: list[Path], **kw: Any) -> None:
    asyncio.run(replay_files(_settings(url, tmp), url, files, **kw))


def nymn_log(tmp: Path, shift: timedelta = timedelta(0), name: str = "nymn.log") -> Path:
    """The real sample as an IRC log, every line moved by ``shift`` (new message ids)."""
    lines = irc.parse_recent_messages(NYMN.read_text())
    out = []
    for line in lines:
        if shift:
            tags, _, rest = line.partition(" ")
            parts = []
            for tag in tags.lstrip("@").split(";"):
                key, _, value = tag.partition("=")
                if key == "tmi-sent-ts" and value:
                    value = str(int(value) + int(shift.total_seconds() * 1000))
                elif key == "id" and value:
                    value = f"{value[:-6]}{int(shift.total_seconds()) % 1000000:06d}"
                parts.append(f"{key}={value}")
            line = "@" + ";".join(parts) + " " + rest
        out.append(line)
    path = tmp / name
    path.write_text("\n".join(out) + "\n")
    return path


def analyze(url: str) -> AnalyzeSummary:
    async def go() -> AnalyzeSummary:
        total = AnalyzeSummary()
        async with (
            await connect(url, autocommit=True) as conn,
            await connect(url, autocommit=True) as reader,
        ):
            while True:
                one = await analyze_pass(conn, GAP, reader=reader)
                total.add(one)
                if one.idle:
                    return total

    return asyncio.run(go())


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def everything(url: str) -> list[list[tuple[Any, ...]]]:
    """Every analytics row, for "re-running changes nothing"."""
    return [
        rows(
            url,
            "SELECT id, channel_id, started_at, ended_at, found_by, messages, chatters,"
            " new_chatters, retained, peak_per_min, mood, top_emotes FROM chat.streams ORDER BY id",
        ),
        rows(url, "SELECT * FROM chat.stream_chatters ORDER BY stream_id, chatter"),
        rows(url, "SELECT * FROM chat.stream_shape ORDER BY stream_id, decile"),
        rows(url, "SELECT * FROM chat.stream_emotes ORDER BY stream_id, emote_name"),
        rows(url, "SELECT * FROM chat.chatter_segments ORDER BY channel_id, chatter"),
    ]


def assert_current_segments(url: str) -> None:
    """chat.chatter_segments (kept by analyze) is each chatter's segment in their latest
    stream, as read from every chatter row."""
    assert rows(url, "SELECT * FROM chat.chatter_segments ORDER BY channel_id, chatter") == rows(
        url,
        "SELECT DISTINCT ON (channel_id, chatter) channel_id, chatter, login, segment, started_at"
        " FROM chat.stream_chatters ORDER BY channel_id, chatter, started_at DESC",
    )
    # chat.channel_segments counts them per latest stream and segment.
    assert rows(
        url, "SELECT * FROM chat.channel_segments ORDER BY channel_id, last_stream_at, segment"
    ) == rows(
        url,
        "SELECT channel_id, last_stream_at, segment, count(*)::int FROM chat.chatter_segments"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )


# -- streams on real chat ---------------------------------------------------------------------


def test_one_stream_on_the_real_sample_with_exact_counts(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, [nymn_log(tmp_path)])
    first = analyze(db_url)
    assert first.streams_created == 1
    [(_sid, start, end, found_by, messages, chatters, new, peak)] = rows(
        db_url,
        "SELECT id, started_at, ended_at, found_by, messages, chatters, new_chatters,"
        " peak_per_min FROM chat.streams",
    )
    expect = rows(
        db_url,
        "SELECT min(sent_at), max(sent_at), count(*),"
        " count(DISTINCT chat.chatter_key(user_id, user_login, user_name)) FROM chat.messages",
    )[0]
    assert (start, end, messages, chatters) == expect
    assert found_by == "activity" and new == chatters  # everyone is new in the first stream
    assert (
        peak
        == rows(
            db_url,
            "SELECT max(n) FROM (SELECT count(*) n FROM chat.messages GROUP BY date_trunc('minute', sent_at)) x",
        )[0][0]
    )
    # Ten tenths, together every message.
    shape = rows(db_url, "SELECT decile, messages, share FROM chat.stream_shape ORDER BY 1")
    assert [d for d, _, _ in shape] == list(range(10))
    assert sum(m for _, m, _ in shape) == messages
    assert abs(sum(s for _, _, s in shape) - 1.0) < 1e-4

    # Each tenth's messages, chatters and emote uses, counted here message by message.
    def us(d: timedelta) -> int:
        return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds

    tenths: dict[int, tuple[int, set[str], int]] = {d: (0, set(), 0) for d in range(10)}
    for at, chatter, emotes in rows(
        db_url,
        "SELECT sent_at, chat.chatter_key(user_id, user_login, user_name), emote_count"
        " FROM chat.messages",
    ):
        d = min(9, 10 * us(at - start) // max(us(end - start), 1))
        n, who, e = tenths[d]
        tenths[d] = (n + 1, who | ({chatter} if chatter else set()), e + emotes)
    assert rows(
        db_url, "SELECT decile, messages, chatters, emote_uses FROM chat.stream_shape ORDER BY 1"
    ) == [(d, n, len(who), e) for d, (n, who, e) in sorted(tenths.items())]
    assert len({len(who) for _, who, _ in tenths.values()}) > 1
    # Every chatter in exactly one segment; the usual stream is this one.
    assert rows(db_url, "SELECT count(*), count(DISTINCT chatter) FROM chat.stream_chatters") == [
        (chatters, chatters)
    ]
    assert rows(db_url, "SELECT count(*) FROM chat.channel_shape") == [(10,)]
    before = everything(db_url)
    again = analyze(db_url)
    assert again.idle and everything(db_url) == before


def test_replayed_vods_spanning_two_streams_late_rows_and_bridging(
    db_url: str, tmp_path: Path
) -> None:
    """A TwitchDownloader JSON whose chat spans two streams (3 h apart) gives two streams, the
    first starting at video.created_at; a later IRC replay adds a third; late rows fill the
    silence between the second and third, which merge (keeping the second's id)."""
    vod_start = datetime(2024, 1, 6, 16, 10, tzinfo=UTC)  # 9 minutes before the first line
    comments = nymn_vod(vod_start, copies=(0.0, 3.0))
    replay(db_url, tmp_path, [write_json(tmp_path / "vod.json", comments, vod_start=vod_start)])
    analyze(db_url)
    streams = rows(
        db_url, "SELECT id, started_at, ended_at, found_by, messages FROM chat.streams ORDER BY 2"
    )
    first_msg = min(c.created_at for c in comments)
    last_msg = max(c.created_at for c in comments if c.created_at < first_msg + timedelta(hours=1))
    assert [(s[1], s[2], s[3], s[4]) for s in streams] == [
        (vod_start, last_msg, "replay", 798),
        (first_msg + timedelta(hours=3), last_msg + timedelta(hours=3), "activity", 798),
    ]
    # A third stream from an IRC replay of the same chat 6 hours later.
    replay(db_url, tmp_path, [nymn_log(tmp_path, timedelta(hours=6))])
    third = analyze(db_url)
    assert (third.streams_recomputed, third.streams_created) == (1, 1)
    assert_current_segments(db_url)
    after = rows(db_url, "SELECT id, started_at, messages FROM chat.streams ORDER BY 2")
    assert [a[:2] for a in after[:2]] == [s[:2] for s in streams]  # untouched, same ids
    assert len(after) == 3
    # The third stream: the core of the first two came back.
    retained, previous, returning = rows(
        db_url,
        "SELECT retained, previous_chatters, returning_chatters FROM chat.streams WHERE id = %s",
        after[2][0],
    )[0]
    assert retained == returning and 0 < retained <= previous
    # Late rows (gap fill) every 20 minutes between the second and the third stream.
    with psycopg.connect(db_url) as conn:
        channel = conn.execute("SELECT id FROM chat.channels WHERE name = 'nymn'").fetchone()
        assert channel is not None
        t = streams[1][2] + timedelta(minutes=20)
        n = 0
        while t < after[2][1]:
            conn.execute(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text,"
                " source) VALUES (%s, %s, %s, 'latecomer', 'still here', 'gapfill')",
                (t, channel[0], f"late-{n}"),
            )
            t += timedelta(minutes=20)
            n += 1
    merged = analyze(db_url)
    assert merged.streams_deleted == 1
    final = rows(db_url, "SELECT id, started_at, ended_at, messages FROM chat.streams ORDER BY 2")
    assert len(final) == 2
    assert final[0][:2] == streams[0][:2]
    assert final[1][0] == streams[1][0] and final[1][3] == 798 * 2 + n
    assert_current_segments(db_url)  # the deleted stream's chatters moved to the merged one
    before = everything(db_url)
    assert analyze(db_url).idle and everything(db_url) == before


def test_replay_start_inside_an_island_splits_it(db_url: str, tmp_path: Path) -> None:
    """--start given to a replay marks a stream start even when chat never paused."""
    replay(db_url, tmp_path, [nymn_log(tmp_path)])
    analyze(db_url)
    split_at = datetime(2024, 1, 6, 16, 23, tzinfo=UTC)
    replay(
        db_url,
        tmp_path,
        [nymn_log(tmp_path, name="again.log")],
        channel="nymn",
        start=split_at,
    )
    analyze(db_url)
    found = rows(db_url, "SELECT started_at, found_by, messages FROM chat.streams ORDER BY 1")
    assert [f[1] for f in found] == ["activity", "replay"]
    assert found[1][0] == split_at
    assert found[0][2] + found[1][2] == 798


# -- audience segments on a constructed audience ----------------------------------------------

T0 = datetime(2024, 3, 1, 18, 0, tzinfo=UTC)
COPYPASTA = "this is the copypasta everyone posts when the streamer dies again"


def _constructed(url: str) -> dict[str, Any]:
    """Three one-hour streams a day apart with a loyal core, regulars, a spammer, a copypasta
    wave and a copypasta spammer (stream 2), a raid of first-time chatters (stream 3) and bots."""
    msgs: list[tuple[datetime, str, str]] = []

    def say(stream: int, second: float, login: str, text: str) -> None:
        msgs.append((T0 + timedelta(days=stream, seconds=second), login, text))

    for s in range(3):
        for u in range(5):  # loyal core: 25 different messages per stream
            for k in range(25):
                say(
                    s,
                    60 + 130 * k + (k * k * 37) % 97 + u,
                    f"core{u}",
                    f"message {k} from core{u} in stream {s}",
                )
        for u in range(3):  # regulars: 3 messages per stream
            for k in range(3):
                say(s, 200 + 900 * k + u, f"reg{u}", f"hello {k} {u} {s}")
        for k in range(6):  # a known bot
            say(s, 100 + 600 * k, "nightbot", f"follow the socials {k}")
        for k in range(12):  # an unknown bot posting every 5 minutes exactly
            say(s, 30 + 300 * k, "timerbot", f"tip {k}: hydrate")
    for k in range(10):  # a spammer in stream 2
        say(1, 400 + 20 * k, "spammy", "BUY FOLLOWERS CHEAP")
    for u in range(20):  # a copypasta wave in stream 2: once each, plus one own line
        say(1, 1800 + u, f"wave{u}", COPYPASTA)
        say(1, 2400 + u, f"wave{u}", f"lol {u}")
    for k in range(6):  # someone who keeps posting the copypasta
        say(1, 1850 + 30 * k, "pasta", COPYPASTA)
    say(1, 2600, "pasta", "ok")
    for u in range(30):  # a raid of first-time chatters in stream 3
        say(2, 1200 + u, f"raider{u}", "RAID HYPE")
        say(2, 1500 + u, f"raider{u}", f"hi from raider {u}")
    return {"channel": _write_chat(url, "constructed", msgs), "messages": len(msgs)}


def _write_chat(url: str, channel: str, msgs: list[tuple[datetime, str, str]]) -> int:
    """A new channel with ``msgs`` (sent_at, login, text) as plain chat.messages rows; its id."""
    with psycopg.connect(url) as conn:
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (channel,)
        ).fetchone()
        assert cid is not None
        with conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_login, text) FROM STDIN"
        ) as copy:
            for i, (at, login, text) in enumerate(msgs):
                copy.write_row((at, cid[0], f"m{i}", login, text))
    return int(cid[0])


def test_islands_are_the_runs_a_message_by_message_reading_finds(db_url: str) -> None:
    """The islands query walks the index a gap at a time; its runs are the ones found by
    comparing each message with the one before, also for silences of exactly the gap, one
    microsecond more, messages at one instant, and for several gap lengths, in a window that
    starts and ends inside runs."""
    import random

    from analytics.runner import _Q

    rng = random.Random(15)
    gap = timedelta(minutes=30)
    step = [
        timedelta(seconds=1),
        timedelta(minutes=29, seconds=59),
        gap,  # exactly the gap: not a break
        gap + timedelta(microseconds=1),  # a break
        timedelta(hours=3),
        timedelta(microseconds=1),
        timedelta(0),  # two messages at one instant
    ]
    times = [T0 + timedelta(minutes=17, microseconds=3)]
    for _ in range(3000):
        times.append(times[-1] + rng.choice(step))
    channel = _write_chat(db_url, "islands", [(at, "someone", "hi") for at in times])
    gaps = (gap, timedelta(minutes=29, seconds=59), timedelta(seconds=1), timedelta(hours=2))
    windows = ((times[0], times[-1]), (times[7], times[-9]))
    for g, (lo, hi) in itertools.product(gaps, windows):
        expected: list[tuple[datetime, datetime]] = []
        for at in times:
            if not lo <= at <= hi:
                continue
            if expected and at - expected[-1][1] <= g:
                expected[-1] = (expected[-1][0], at)
            else:
                expected.append((at, at))
        with psycopg.connect(db_url) as conn:
            found = conn.execute(
                _Q["islands"], {"channel": channel, "lo": lo, "hi": hi, "gap": g}
            ).fetchall()
        assert [tuple(r) for r in found] == expected, (g, lo, hi)
        assert len(expected) > 100, g


def _segments(url: str, stream_no: int) -> dict[str, str]:
    return dict(
        rows(
            url,
            "SELECT sc.login, sc.segment FROM chat.stream_chatters sc JOIN chat.streams s"
            " ON s.id = sc.stream_id WHERE s.started_at >= %s AND s.started_at < %s",
            T0 + timedelta(days=stream_no),
            T0 + timedelta(days=stream_no + 1),
        )
    )


def test_segments_of_a_constructed_audience(db_url: str) -> None:
    made = _constructed(db_url)
    analyze(db_url)
    streams = rows(
        db_url,
        "SELECT chatters, new_chatters, returning_chatters, previous_chatters, retained, messages"
        " FROM chat.streams ORDER BY started_at",
    )
    assert len(streams) == 3 and sum(s[5] for s in streams) == made["messages"]
    s1, s2, s3 = (_segments(db_url, i) for i in range(3))
    # Stream 1: everyone is new; the bots are bots from the start.
    assert {v for k, v in s1.items() if k.startswith(("core", "reg"))} == {"one-time"}
    assert s1["nightbot"] == "bot" and s1["timerbot"] == "bot"
    # Stream 2: the core are power users, the regulars regular, the spammers spammers; the
    # wave (one copy each) is not spam.
    assert {s2[f"core{u}"] for u in range(5)} == {"power user"}
    assert {s2[f"reg{u}"] for u in range(3)} == {"regular"}
    assert s2["spammy"] == "spammer" and s2["pasta"] == "spammer"
    assert {s2[f"wave{u}"] for u in range(20)} == {"one-time"}
    # Stream 3: the raid is 30 first-time chatters; the core returned.
    assert {s3[f"raider{u}"] for u in range(30)} == {"one-time"}
    assert {s3[f"core{u}"] for u in range(5)} == {"power user"}
    first_time = rows(
        db_url,
        "SELECT count(*) FROM chat.stream_chatters sc JOIN chat.streams s ON s.id = sc.stream_id"
        " WHERE sc.first_time AND sc.login LIKE 'raider%%'",
    )[0][0]
    assert first_time == 30
    # chatters, new, returning, previous, retained
    assert streams[0][:5] == (10, 10, 0, None, None)
    assert streams[1][:5] == (10 + 1 + 20 + 1, 22, 10, 10, 10)
    assert streams[2][:5] == (10 + 30, 30, 10, 32, 10)
    # The current segment of each chatter: the one of their latest stream.
    current = dict(
        rows(
            db_url,
            "SELECT login, segment FROM chat.chatter_segments WHERE channel_id = %s",
            made["channel"],
        )
    )
    assert current["core0"] == "power user" and current["spammy"] == "spammer"


# -- signatures ---------------------------------------------------------------------------------


def test_signatures_rank_a_channels_own_streams_closest(db_url: str, tmp_path: Path) -> None:
    """Three streams of #nymn and three of a YouTube channel: every stream's nearest other
    stream is one of its own channel's, and so is the audience overlap."""
    replay(
        db_url,
        tmp_path,
        [nymn_log(tmp_path, timedelta(hours=h), f"nymn{h}.log") for h in (0, 5, 10)],
    )
    chat = json.loads(YOUTUBE.read_text())
    for k in range(3):
        copy = tmp_path / f"launch{k}.json"
        shift = k * 86_400_000_000  # a day later each, in microseconds
        copy.write_text(json.dumps([{**m, "timestamp": m["timestamp"] + shift} for m in chat]))
        replay(db_url, tmp_path, [copy], channel="launch", platform="youtube")
    analyze(db_url)
    listed = rows(
        db_url,
        "SELECT s.id, c.name FROM chat.streams s JOIN chat.channels c ON c.id = s.channel_id",
    )
    owner = dict(listed)
    assert sorted(owner.values()) == ["launch"] * 3 + ["nymn"] * 3, listed

    async def sigs() -> dict[int, Any]:
        async with await connect(db_url, autocommit=True) as conn:
            return await stream_signatures(conn, sorted(owner))

    signatures = asyncio.run(sigs())
    for a in owner:
        ranked = sorted(
            (compare(signatures[a], signatures[b]).distance, b) for b in owner if b != a
        )
        assert owner[ranked[0][1]] == owner[a], (a, ranked)
        assert owner[ranked[1][1]] == owner[a], (a, ranked)
        others = [compare(signatures[a], signatures[b]) for b in owner if b != a]
        assert all(
            c.audience > 0
            for c, b in zip(others, [b for b in owner if b != a], strict=True)
            if owner[b] == owner[a]
        )


# -- commands and forget ------------------------------------------------------------------------


def test_analyze_and_compare_commands(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``chatpulse analyze --until-idle`` works on the base install and says that clustering
    needs the extra; ``chatpulse compare`` prints both channels and their distance."""
    from chatpulse.app.cli import main
    from chatpulse.app.commands.analytics import clustering_available

    replay(db_url, tmp_path, [nymn_log(tmp_path)])
    with psycopg.connect(db_url) as conn:
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('other') RETURNING id"
        ).fetchone()
        assert cid is not None
        for k in range(50):
            conn.execute(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text)"
                " VALUES (%s, %s, %s, %s, %s)",
                (T0 + timedelta(seconds=10 * k), cid[0], f"o{k}", f"u{k % 7}", f"word{k % 5} chat"),
            )
    base = ["--database-url", db_url, "--data-dir", str(tmp_path / "d")]
    assert main(["analyze", "--until-idle", *base]) == 0
    out, err = capsys.readouterr()
    assert "2 streams recomputed" in out
    assert ("clustering needs the optional extra" in err) == (not clustering_available())
    assert main(["compare", "nymn", "other", "--json", *base]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in result["channels"]] == ["nymn", "other"]
    [pair] = result["pairs"]
    assert 0 < pair["distance"] <= 1 and pair["shared_chatters"] == 0
    assert main(["compare", "nymn", "nobody", *base]) == 2
    assert "nobody" in capsys.readouterr().err


def test_forget_removes_the_user_from_stream_chatters(db_url: str) -> None:
    from chatpulse.app.commands.database import forget_user

    _constructed(db_url)
    analyze(db_url)
    assert rows(db_url, "SELECT count(*) FROM chat.stream_chatters WHERE login = 'spammy'") == [
        (1,)
    ]
    removed = asyncio.run(forget_user(db_url, "spammy"))
    assert removed["stream_chatters"] == 1
    assert removed["channel_chatters"] == 1
    assert rows(db_url, "SELECT count(*) FROM chat.chatter_segments WHERE login = 'spammy'") == [
        (0,)
    ]
    assert_current_segments(db_url)
    assert rows(db_url, "SELECT count(*) FROM chat.stream_chatters WHERE login = 'spammy'") == [
        (0,)
    ]
    assert rows(db_url, "SELECT count(*) FROM chat.stream_chatters WHERE login = 'core0'") == [(3,)]
