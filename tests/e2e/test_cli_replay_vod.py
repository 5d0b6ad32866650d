"""``chatpulse replay`` of VOD comment files as the real tools write them (issue 20, 1-2).

A TwitchDownloader JSON of a highlight and a twitch-archiver history of GQL comments, built
from real #nymn chat (tests/vod_exports.py), loaded with no flags beyond what the file cannot
say; the database must hold what happened, when it happened.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg

from tests.e2e.cli import run_cli
from tests.vod_exports import (
    HIGHLIGHT_VIDEO_CREATED,
    NYMN_ROOM_ID,
    gql_history,
    highlight_export,
)


def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
        "CHATPULSE_LOG_LEVEL": "warning",
    }


def test_replay_of_a_highlight_export_lands_over_its_48_minutes(
    db_url: str, tmp_path: Path
) -> None:
    root, lines, offsets = highlight_export()
    path = tmp_path / "highlight.json"
    path.write_text(json.dumps(root, separators=(",", ":")), encoding="utf-8")

    done = run_cli("replay", str(path), env=_env(db_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "804 messages (804 new, 0 already stored)" in done.stdout
    clock_lines = [line for line in done.stdout.splitlines() if "clock:" in line]
    assert clock_lines == [
        f"{path}: clock: video.created_at + content_offset_seconds, because created_at "
        "collapsed (the comments' created_at span 5.5 s, their offsets 48.7 min, video.type "
        "highlight); each comment's own created_at is kept in extra"
    ]

    with psycopg.connect(db_url) as conn:
        channel = conn.execute("SELECT name, platform_id FROM chat.channels").fetchall()
        rows = conn.execute(
            "SELECT message_id, sent_at, kind FROM chat.messages ORDER BY sent_at, message_id"
        ).fetchall()
        minutes = conn.execute(
            "SELECT count(DISTINCT date_trunc('minute', sent_at)) FROM chat.messages"
        ).fetchone()
        uses = conn.execute(
            "SELECT emote_name, provider, sum(count) FROM chat.emote_uses "
            "WHERE emote_name = 'forsenParty' GROUP BY 1, 2"
        ).fetchall()
    assert channel == [("nymn", NYMN_ROOM_ID)]
    expected = {
        r.message.message_id: HIGHLIGHT_VIDEO_CREATED + timedelta(seconds=o)
        for r, o in zip(lines, offsets, strict=True)
    }
    assert {mid: at for mid, at, _ in rows} == expected
    assert rows[-1][1] - rows[0][1] == timedelta(minutes=48, seconds=42)
    assert minutes is not None and minutes[0] >= 48
    kinds = Counter(kind for _, _, kind in rows)
    assert (kinds["sub"], kinds["resub"]) == (2, 4)
    twitch_forsen_party = sum(
        e.count for r in lines for e in r.message.emotes if e.emote_name == "forsenParty"
    )
    assert uses == [("forsenParty", "twitch", twitch_forsen_party)]


def test_replay_of_a_gql_history_loads_every_stream_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    history = gql_history(3, deleted_logins=frozenset({"purple_geco", "mon_dieud"}))
    files: list[Path] = []
    for k, (_, nodes, _) in enumerate(history):
        folder = tmp_path / f"vod{k}"
        folder.mkdir()
        data = json.dumps(nodes).encode()
        if k == 1:
            path = folder / "verbose_chat.json.gz"
            path.write_bytes(gzip.compress(data))
        else:
            path = folder / "verbose_chat.json"
            path.write_bytes(data)
        files.append(path)
    env = _env(db_url, tmp_path)

    missing = run_cli("replay", *map(str, files), env=env)
    assert missing.returncode == 2
    assert "--channel" in missing.stderr and "twitch-gql" in missing.stderr
    assert "Traceback" not in missing.stderr

    first = run_cli("replay", *map(str, files), "--channel", "nymn", env=env)
    assert first.returncode == 0, first.stderr
    assert "798 messages (798 new, 0 already stored)" in first.stdout
    assert first.stdout.count("clock: createdAt, because it follows the offsets") == 3

    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT m.message_id, m.sent_at, m.user_id, m.user_login, m.text, m.is_mod, "
            "m.is_subscriber, m.badges, c.name FROM chat.messages m "
            "JOIN chat.channels c ON c.id = m.channel_id"
        ).fetchall()
        uses = conn.execute(
            "SELECT message_id, emote_id, emote_name, count FROM chat.emote_uses "
            "WHERE provider = 'twitch'"
        ).fetchall()
        all_uses = conn.execute("SELECT count(*) FROM chat.emote_uses").fetchone()
    assert len(rows) == 798
    stored = {r[0]: r for r in rows}
    expected_uses = set()
    for _, nodes, lines in history:
        for node, real in zip(nodes, lines, strict=True):
            mid, sent_at, user_id, login, text, is_mod, is_sub, badges, chan = stored[node["id"]]
            assert chan == "nymn"
            assert sent_at.isoformat().replace("+00:00", "Z").startswith(node["createdAt"][:19])
            assert abs(sent_at - real.message.sent_at) % timedelta(days=1) == timedelta(0)
            assert text == real.message.text
            assert badges == real.message.badges
            assert is_mod == real.message.is_mod
            assert is_sub == ("subscriber" in badges or "founder" in badges)
            if node["commenter"] is None:
                assert (user_id, login) == (None, None)
            else:
                assert (user_id, login) == (real.message.user_id, real.message.user_login)
            expected_uses |= {(mid, e.emote_id, e.emote_name, e.count) for e in real.message.emotes}
    assert sum(1 for r in rows if r[2] is None) > 0
    assert set(uses) == expected_uses and len(uses) == len(expected_uses) > 0
    # Each stream keeps its own day.
    days = Counter(r[1].date() for r in rows)
    assert sorted(days.values()) == sorted(len(nodes) for _, nodes, _ in history)

    second = run_cli("replay", *map(str, files), "--channel", "nymn", env=env)
    assert second.returncode == 0, second.stderr
    assert "(0 new, 798 already stored)" in second.stdout
    with psycopg.connect(db_url) as conn:
        again = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
        again_uses = conn.execute("SELECT count(*) FROM chat.emote_uses").fetchone()
    assert again == (798,)
    assert again_uses == all_uses


def test_replay_of_a_collapsed_export_without_any_start_exits_2_naming_start(
    db_url: str, tmp_path: Path
) -> None:
    root, _, _ = highlight_export()
    del root["video"]["created_at"]
    path = tmp_path / "highlight.json"
    path.write_text(json.dumps(root), encoding="utf-8")
    done = run_cli("replay", str(path), env=_env(db_url, tmp_path))
    assert done.returncode == 2, done.stderr
    assert "--start" in done.stderr and "highlight.json" in done.stderr
    assert "Traceback" not in done.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM chat.messages").fetchone() == (0,)
