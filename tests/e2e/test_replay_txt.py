"""``chatpulse replay`` on TwitchDownloader TXT exports as TwitchDownloaderCLI writes them, and
on the files a new user gets wrong: every message stored once, or one clear line and an exit
code that says what happened (issue 13 item 1, issue 20 item 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.e2e.cli import run_cli
from tests.td_export import Comment, nymn_vod, write_json, write_txt

VOD_START = datetime(2024, 1, 6, 14, 0, tzinfo=UTC)
# Four copies of the real #nymn chat in one VOD; the last one is past 24 h ("[26:19:44]").
COPIES = (0.0, 3.0, 9.5, 24.0)


@pytest.fixture(scope="module")
def vod() -> list[Comment]:
    return nymn_vod(VOD_START, COPIES)


def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
    }


def _dead_letters(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "d" / "dead-letters" / "replay.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _rows(db_url: str) -> list[tuple[datetime, str, str]]:
    with psycopg.connect(db_url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT m.sent_at, m.user_name, m.text FROM chat.messages m ORDER BY 1, 2, 3"
            )
        ]


def _expected(vod: list[Comment], start: datetime) -> list[tuple[datetime, str, str]]:
    return sorted((start + timedelta(seconds=int(c.offset)), c.display_name, c.body) for c in vod)


def _stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_relative_txt_without_start_stops_before_loading(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "nymn.txt", vod, "Relative")
    done = run_cli("replay", str(txt), "--channel", "nymn", env=_env(db_url, tmp_path))
    assert done.returncode == 2, done.stderr
    lines = _stderr_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "--start" in lines[0] and "nymn.txt" in lines[0]
    assert "Traceback" not in done.stderr
    assert _rows(db_url) == []
    assert _dead_letters(tmp_path) == []


def test_relative_txt_with_start_stores_every_message_once(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "nymn.txt", vod, "Relative", newline="\r\n")  # Windows build
    env = _env(db_url, tmp_path)
    first = run_cli(
        "replay", str(txt), "--channel", "nymn", "--start", "2024-01-06T14:00:00Z", env=env
    )
    assert first.returncode == 0, first.stderr
    assert _rows(db_url) == _expected(vod, VOD_START)
    assert len(vod) == 3192
    assert f"{len(vod)} messages ({len(vod)} new, 0 already stored)" in first.stdout
    assert "nothing malformed" in first.stdout
    assert "kept in" not in first.stdout  # no dead-letter path when nothing went there
    assert "relative stamps counted from --start 2024-01-06T14:00:00Z" in first.stdout
    assert "malformed input" not in first.stderr
    # The 24 h wrap: the last copy is a day later, hours past 24 in the file.
    assert "[26:19:44]" in txt.read_text(encoding="utf-8")
    assert _rows(db_url)[-1][0] == datetime(2024, 1, 7, 16, 27, 15, tzinfo=UTC)

    second = run_cli(
        "replay", str(txt), "--channel", "nymn", "--start", "2024-01-06T16:00:00+02:00", env=env
    )
    assert second.returncode == 0, second.stderr
    assert f"(0 new, {len(vod)} already stored)" in second.stdout
    assert _dead_letters(tmp_path) == []


def test_relative_txt_takes_start_and_channel_from_a_json_of_the_same_vod(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "nymn.txt", vod, "Relative")
    # A download of a few seconds of the VOD: its trim (video.start) must not move the TXT,
    # and its five comments, which are also lines of the TXT, are stored once.
    head = write_json(tmp_path / "nymn-head.json", vod, vod_start=VOD_START, trim=(8384.0, 8385.0))
    in_json = len(json.loads(head.read_text(encoding="utf-8"))["comments"])
    assert 0 < in_json < 20
    done = run_cli("replay", str(txt), str(head), env=_env(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "video.created_at 2024-01-06T14:00:00Z of nymn-head.json" in done.stdout
    assert f"{in_json} lines already in the JSON of the same VOD" in done.stdout
    with psycopg.connect(db_url) as conn:
        channels = conn.execute(
            "SELECT DISTINCT c.name FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id"
        ).fetchall()
        from_txt = conn.execute(
            "SELECT min(sent_at), max(sent_at), count(*) FROM chat.messages "
            "WHERE message_id LIKE 'h:%'"
        ).fetchone()
    assert channels == [("nymn",)]
    expected = _expected(vod, VOD_START)
    assert from_txt == (expected[in_json][0], expected[-1][0], len(vod) - in_json)
    assert len(_rows(db_url)) == len(vod)


def test_txt_and_json_of_the_whole_vod_store_each_message_once(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "2026912334.txt", vod, "Relative")
    full = write_json(tmp_path / "2026912334.json", vod, vod_start=VOD_START)
    other_start = VOD_START + timedelta(days=9)
    other = write_json(  # another VOD in the same call: the names pair the files
        tmp_path / "other.json", nymn_vod(other_start, (216.0,))[:3], vod_start=other_start
    )
    env = _env(db_url, tmp_path)
    done = run_cli("replay", str(txt), str(full), str(other), env=env)
    assert done.returncode == 0, done.stderr
    assert f"{len(vod)} lines already in the JSON of the same VOD" in done.stdout
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE message_id LIKE 'h:%') FROM chat.messages"
        ).fetchone()
    assert row == (len(vod) + 3, 0)
    again = run_cli("replay", str(full), str(txt), env=env)
    assert again.returncode == 0, again.stderr
    assert "(0 new," in again.stdout


def test_utc_txt_is_detected_and_loads_without_start(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "nymn.txt", vod, "Utc")
    done = run_cli("replay", str(txt), "--channel", "nymn", env=_env(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "(twitchdownloader-txt)" in done.stdout
    assert _rows(db_url) == sorted(
        (c.created_at.replace(microsecond=0), c.display_name, c.body) for c in vod
    )


def test_txt_without_timestamps_cannot_be_placed_in_time(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = write_txt(tmp_path / "nymn.txt", vod, "None")
    done = run_cli(
        "replay",
        str(txt),
        "--channel",
        "nymn",
        "--start",
        "2024-01-06T14:00:00Z",
        env=_env(db_url, tmp_path),
    )
    assert done.returncode == 2, done.stderr
    lines = _stderr_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "cannot be placed in time" in lines[0] and "nymn.txt" in lines[0]
    assert _rows(db_url) == []


def test_partly_malformed_file_loads_the_rest_and_counts_by_reason(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    txt = tmp_path / "nymn.txt"
    write_txt(txt, vod, "Utc")
    huge = "A" * 3_000_000
    lines = txt.read_text(encoding="utf-8").splitlines()
    lines[100:100] = [
        "-- chat paused --",
        "garbage without a stamp",
        f"[2024-01-06 16:20:00 UTC] spammer: {huge}",
        "[2024-13-06 16:20:00 UTC] baddate: hi",
    ]
    txt.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_cli("replay", str(txt), "--channel", "nymn", env=_env(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert len(_rows(db_url)) == len(vod)
    dead = str(tmp_path / "d" / "dead-letters" / "replay.jsonl")
    file_line = next(line for line in done.stdout.splitlines() if "nymn.txt" in line)
    assert (
        f"{len(vod)} messages, 0 moderation events, 4 malformed "
        "(2 not a TwitchDownloader text line, 1 message longer than max_message_chars (2000), "
        f"1 bad UTC timestamp) kept in {dead}"
    ) in file_line
    # Per-line reasons are in the dead-letter file, not on stderr.
    assert "malformed input" not in done.stderr and "garbage" not in done.stderr
    letters = _dead_letters(tmp_path)
    assert len(letters) == 4
    (long_one,) = [d for d in letters if "max_message_chars" in d["reason"]]
    kept = json.loads(long_one["raw"])
    assert kept["text"] == huge and kept["user_name"] == "spammer"  # kept whole
    with psycopg.connect(db_url) as conn:
        longest = conn.execute("SELECT max(length(text)) FROM chat.messages").fetchone()
    assert longest is not None and longest[0] < 2000


def test_a_file_that_loads_nothing_exits_1(db_url: str, tmp_path: Path, vod: list[Comment]) -> None:
    # A TXT named as an IRC log: no line is IRC. Today every line vanishes and it exits 0.
    txt = write_txt(tmp_path / "nymn.txt", vod[:300], "Utc")
    done = run_cli(
        "replay", str(txt), "--format", "irc", "--channel", "nymn", env=_env(db_url, tmp_path)
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "nothing loaded: all 300 lines were malformed" in done.stderr
    assert len(_dead_letters(tmp_path)) == 300
    assert _rows(db_url) == []


def test_bare_words_in_an_irc_log_are_dead_letters(
    db_url: str, tmp_path: Path, vod: list[Comment]
) -> None:
    from collector import irc
    from tests.td_export import NYMN_FILE

    lines = irc.parse_recent_messages(NYMN_FILE.read_text(encoding="utf-8"))
    log = tmp_path / "nymn.log"
    log.write_text(
        "\n".join([*lines[:5], "x", "PING :tmi.twitch.tv", ":tmi.twitch.tv 376 me :>", *lines[5:]])
        + "\n",
        encoding="utf-8",
    )
    done = run_cli("replay", str(log), env=_env(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "798 messages, 2 moderation events, 1 malformed (1 unknown IRC command)" in done.stdout
    assert [d["raw"] for d in _dead_letters(tmp_path)] == ["x"]


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"", "the file is empty"),
        (b"\n\r\n  \n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "name one with --format"),
        (b"hello world\nthis is not chat\n", "name one with --format"),
    ],
)
def test_unusable_file_is_one_line_and_exit_2(
    db_url: str, tmp_path: Path, content: bytes, expect: str
) -> None:
    path = tmp_path / "mystery.txt"
    path.write_bytes(content)
    done = run_cli("replay", str(path), env=_env(db_url, tmp_path))
    assert done.returncode == 2
    lines = _stderr_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "mystery.txt" in lines[0] and expect in lines[0]
    if "--format" in expect:
        assert "twitchdownloader-txt" in lines[0] and "irc" in lines[0]


@pytest.mark.parametrize("value", ["2024-01-06T16:00:00", "yesterday", "2024-01-06"])
def test_bad_start_names_the_option(db_url: str, tmp_path: Path, value: str) -> None:
    txt = tmp_path / "chat.txt"
    txt.write_text("[0:00:30] LateLJ: Yoo\n", encoding="utf-8")
    done = run_cli(
        "replay", str(txt), "--channel", "a", "--start", value, env=_env(db_url, tmp_path)
    )
    assert done.returncode == 2
    lines = _stderr_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("chatpulse: --start"), done.stderr


def test_a_file_whose_every_event_the_database_rejects_exits_1(db_url: str, tmp_path: Path) -> None:
    # A channel name holding a lone surrogate (a JSON "\udc00" escape) has no UTF-8 form.
    jl = tmp_path / "bad.jsonl"
    at = "2025-01-01T00:00:00Z"
    jl.write_text(json.dumps({"channel": "c\udc00", "sent_at": at, "text": "x"}) + "\n")
    done = run_cli("replay", str(jl), env=_env(db_url, tmp_path))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "1 event(s) rejected by the database" in done.stderr
    assert [d["source"] for d in _dead_letters(tmp_path)] == ["writer"]
    assert _rows(db_url) == []
