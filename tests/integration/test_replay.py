"""Replay of chat logs into the real PostgreSQL: every format, exactly once, bad lines aside."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatpulse.core.settings import Settings, load_settings
from collector.app import replay_files
from collector.formats import read_events
from tests.conftest import FIXTURES
from tests.helpers import write_irc_log

NYMN = FIXTURES / "chatterino-recentmessages-nymn"
CD = FIXTURES / "xenova-chat-downloader-examples"
STATS = json.loads((NYMN / "derived_stats.json").read_text())


def settings_for(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "emote_providers": [],
            "flush_interval_s": 0.05,
            **extra,
        }
    )


def nymn_irc_log(tmp_path: Path) -> Path:
    return write_irc_log(tmp_path / "nymn.log")


def count(url: str, query: str, *args: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, args or None).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def replay(settings: Settings, url: str, files: list[Path], **kw: Any) -> Any:
    return asyncio.run(replay_files(settings, url, files, **kw))


def test_replay_irc_log_twice_adds_nothing(db_url: str, tmp_path: Path) -> None:
    log_file = nymn_irc_log(tmp_path)
    settings = settings_for(db_url, tmp_path)
    first = replay(settings, db_url, [log_file])
    assert (first.messages, first.inserted, first.moderation) == (798, 798, 2)
    snapshot = (
        count(db_url, "SELECT count(*) FROM chat.messages"),
        count(db_url, "SELECT count(*) FROM chat.emote_uses"),
        count(db_url, "SELECT count(*) FROM chat.moderation_events"),
    )
    second = replay(settings, db_url, [log_file])
    assert (second.messages, second.inserted, second.duplicates) == (798, 0, 798)
    again = (
        count(db_url, "SELECT count(*) FROM chat.messages"),
        count(db_url, "SELECT count(*) FROM chat.emote_uses"),
        count(db_url, "SELECT count(*) FROM chat.moderation_events"),
    )
    assert again == snapshot == (798, snapshot[1], 2)


def test_replayed_nymn_rows_match_an_independent_parse(db_url: str, tmp_path: Path) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    assert (
        count(db_url, "SELECT count(DISTINCT user_id) FROM chat.messages")
        == STATS["unique_chatters"]
    )
    assert (
        count(db_url, "SELECT min(sent_at) FROM chat.messages")
        .isoformat()
        .startswith("2024-01-06T16:19:44.095")
    )
    with psycopg.connect(db_url) as conn:
        native = dict(
            conn.execute(
                "SELECT emote_name, sum(count) FROM chat.emote_uses WHERE provider = 'twitch' "
                "GROUP BY 1"
            ).fetchall()
        )
        timeouts = conn.execute("SELECT kind, duration_s FROM chat.moderation_events").fetchall()
        channel = conn.execute("SELECT platform, name, platform_id FROM chat.channels").fetchall()
        minutes = conn.execute(
            "SELECT sum(messages), max(chatters) FROM chat.activity_1m"
        ).fetchone()
    for name, uses in STATS["top_native_emotes"]:
        assert native.get(name) == uses, name
    assert timeouts == [("timeout", 180), ("timeout", 180)]
    assert channel == [("twitch", "nymn", "62300805")]
    assert minutes is not None and minutes[0] == 798  # aggregates refreshed after the replay
    emotes_total = count(db_url, "SELECT sum(emote_count) FROM chat.messages")
    assert emotes_total == count(db_url, "SELECT sum(count) FROM chat.emote_uses")


def test_every_format_loads_its_real_sample(db_url: str, tmp_path: Path) -> None:
    settings = settings_for(db_url, tmp_path)
    yt = CD / "[YouTube] Get messages from live chat replay.json"
    tw = CD / "[Twitch] Get live chat replay.json"
    expected_yt = sum(
        1
        for e in read_events(yt, "chat-downloader", channel="ytchan")
        if type(e).__name__ == "ChatMessage"
    )
    summary = replay(settings, db_url, [yt], channel="ytchan")
    assert summary.inserted == expected_yt > 0
    assert count(db_url, "SELECT platform FROM chat.channels WHERE name = 'ytchan'") == "youtube"
    summary = replay(settings, db_url, [tw], channel="twchan", platform="twitch")
    assert summary.inserted == len(json.loads(tw.read_text())) > 0
    # JSON lines of our own shape, as tools and people write them
    jl = tmp_path / "chat.jsonl"
    jl.write_text(
        "\n".join(
            json.dumps(o)
            for o in [
                {
                    "channel": "Mine",
                    "sent_at": "2025-03-01T12:00:00Z",
                    "user_id": "1",
                    "user_login": "a",
                    "user_name": "A",
                    "text": "hello PogChamp",
                },
                {
                    "channel": "mine",
                    "sent_at": 1740830401000,
                    "user_id": "2",
                    "user_login": "b",
                    "user_name": "B",
                    "text": "😂😂 nice",
                    "bits": 100,
                    "kind": "chat",
                },
            ]
        )
        + "\n"
    )
    summary = replay(settings, db_url, [jl])
    assert summary.inserted == 2
    assert (
        count(
            db_url,
            "SELECT sum(bits) FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id "
            "WHERE c.name = 'mine'",
        )
        == 100
    )
    assert (
        count(
            db_url,
            "SELECT sum(e.count) FROM chat.emote_uses e JOIN chat.channels c ON c.id = e.channel_id "
            "WHERE provider = 'emoji' AND c.name = 'mine'",
        )
        == 2
    )
    assert replay(settings, db_url, [jl]).inserted == 0


def test_malformed_lines_go_to_dead_letters_and_the_rest_is_written(
    db_url: str, tmp_path: Path
) -> None:
    good = nymn_irc_log(tmp_path).read_text().splitlines()
    bad = [
        "@badge-info=;broken-tags-no-space",
        "PRIVMSG",
        "@a=b :x!x@x PRIVMSG #nymn",
        "\x00\x01garbage\x02",
        "@tmi-sent-ts=notanumber;id=x :u!u@u PRIVMSG #nymn :hi",
    ]
    mixed = tmp_path / "mixed.log"
    mixed.write_text("\n".join(good[:100] + bad + good[100:]) + "\n")
    settings = settings_for(db_url, tmp_path)
    summary = replay(settings, db_url, [mixed])
    assert summary.inserted == 798
    assert summary.malformed == len(bad)
    dead = settings.data_dir / "dead-letters" / "replay.jsonl"
    kept = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(kept) == len(bad)
    assert Counter(k["raw"] for k in kept) == Counter(bad)
    assert all(k["reason"] for k in kept)


def test_nul_characters_do_not_poison_a_batch(db_url: str, tmp_path: Path) -> None:
    jl = tmp_path / "nul.jsonl"
    jl.write_text(
        json.dumps(
            {
                "channel": "c",
                "sent_at": "2025-01-01T00:00:00Z",
                "user_id": "1",
                "user_login": "a",
                "user_name": "a",
                "text": "bad\u0000byte",
            }
        )
        + "\n"
    )
    assert replay(settings_for(db_url, tmp_path), db_url, [jl]).inserted == 1
    assert count(db_url, "SELECT text FROM chat.messages") == "bad\ufffdbyte"


def test_lone_surrogates_keep_the_message_and_an_unstorable_channel_is_dead_lettered(
    db_url: str, tmp_path: Path
) -> None:
    # json.dumps writes a lone surrogate as the escape "\\ud800", as any JSON source may.
    def line(channel: str, second: int, text: str) -> str:
        at = f"2025-01-01T00:00:{second:02d}Z"
        return json.dumps({"channel": channel, "sent_at": at, "user_name": "a", "text": text})

    jl = tmp_path / "surrogates.jsonl"
    jl.write_text(
        "\n".join([line("c", 0, "half \ud83d pair"), line("c\udc00", 1, "x"), line("c", 2, "ok")])
        + "\n"
    )
    settings = settings_for(db_url, tmp_path)
    summary = replay(settings, db_url, [jl])
    assert (summary.messages, summary.inserted, summary.rejected) == (3, 2, 1)
    with psycopg.connect(db_url) as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM chat.messages ORDER BY sent_at")]
    assert texts == ["half \ufffd pair", "ok"]
    kept = [json.loads(x) for x in summary.dead_letters.read_text().splitlines()]
    assert [k["source"] for k in kept] == ["writer"]
    assert "UTF-8" in kept[0]["reason"]


def test_replay_missing_file_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    from chatpulse.core.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        replay(settings_for(db_url, tmp_path), db_url, [tmp_path / "nope.log"])


def test_progress_ends_each_file_with_that_files_event_count(db_url: str, tmp_path: Path) -> None:
    # The last progress call of a file comes after its last batch and counts that file alone
    # (the log line a user reads at 100 %), not the files before it.
    log = nymn_irc_log(tmp_path)
    copy = tmp_path / "copy.log"
    copy.write_bytes(log.read_bytes())
    last: dict[str, tuple[int, int, int]] = {}
    summary = replay(
        settings_for(db_url, tmp_path),
        db_url,
        [log, copy],
        progress=lambda f, done, total, n: last.__setitem__(f, (done, total, n)),
    )
    size = log.stat().st_size
    assert summary.read > 0 and summary.read % 2 == 0
    assert last == {
        str(log): (size, size, summary.read // 2),
        str(copy): (size, size, summary.read // 2),
    }


def test_a_file_parsed_in_spans_stores_every_line_once_and_numbers_bad_lines_as_in_the_file(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.parse_worker

    # Any file is cut into spans (three parse processes), so the cuts fall between these lines.
    monkeypatch.setattr(collector.parse_worker, "SPLIT_BYTES", 1)
    good = nymn_irc_log(tmp_path).read_text().splitlines()
    lines = [*good[:300], "PRIVMSG", *good[300:600], "", "@a=b :x!x@x PRIVMSG #nymn", *good[600:]]
    spread = tmp_path / "spread.log"
    spread.write_text("\n".join(lines) + "\n")
    settings = settings_for(db_url, tmp_path, replay_parse_workers=3)
    seen: list[tuple[int, int]] = []
    summary = replay(
        settings, db_url, [spread], progress=lambda _f, done, total, _n: seen.append((done, total))
    )
    assert (summary.messages, summary.inserted, summary.moderation) == (798, 798, 2)
    assert summary.malformed == 2
    assert seen[-1] == (spread.stat().st_size, spread.stat().st_size)
    dead = settings.data_dir / "dead-letters" / "replay.jsonl"
    reasons = sorted(
        json.loads(line)["reason"].split(":")[0] for line in dead.read_text().splitlines()
    )
    assert reasons == ["line 301", "line 603"]
    assert count(db_url, "SELECT count(*) FROM chat.messages") == 798
    again = replay(settings, db_url, [spread])
    assert (again.inserted, again.duplicates) == (0, 798)
