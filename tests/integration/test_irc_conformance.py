"""IRC conformance: 259 real Twitch IRC lines replayed into the real database, every row checked.

``tests/data/irc-conformance/corpus.jsonl`` holds the lines with their provenance (Chatterino's
snapshots, dialect's and twitch-irc-rs's parser tests, dank-twitch-irc's; see PROVENANCE.md):
PRIVMSG, every USERNOTICE ``msg-id`` Twitch documents, CLEARCHAT, CLEARMSG and the non-chat
commands, with the known oddities (negative ``tmi-sent-ts``, emote ranges past the text or off
by some, a ``/me`` sub notice, bad emote tags).  ``expected.jsonl`` holds, per line, what it must
become: its ``chat.messages`` row (every column but the ingest cursor), its ``chat.emote_uses``
rows, its ``chat.moderation_events`` row (every column but the write time ``received_at``), or
``ignored`` (a non-chat command), or ``duplicate`` (an earlier line holds the same key).

The test replays the corpus with ``chatpulse replay --format irc`` (each line behind a
``[YYYY-MM-DD HH:MM:SS]`` log stamp, so ``received_at`` is known) and compares the database with
``expected.jsonl`` exactly.  After a deliberate parser change, regenerate and review the diff::

    python -m tests.integration.test_irc_conformance postgresql://postgres@127.0.0.1/some_db
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collector.events import ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.irc import parse_event, parse_line
from tests.paths import IRC_CONFORMANCE, IRC_SNAPSHOTS

DATA = IRC_CONFORMANCE
CORPUS = DATA / "corpus.jsonl"
EXPECTED = DATA / "expected.jsonl"
# Each line n is stamped BASE + n seconds in the replayed log.
BASE = datetime(2024, 1, 6, 16, 0, 0, tzinfo=UTC)

#: Every USERNOTICE msg-id Twitch documents (dev.twitch.tv/docs/chat/irc, USERNOTICE tags, now
#: and in earlier versions of the page) and the newer ones seen on real lines.
DOCUMENTED_KINDS = frozenset(
    {
        "sub",
        "resub",
        "subgift",
        "anonsubgift",
        "submysterygift",
        "anonsubmysterygift",
        "giftpaidupgrade",
        "anongiftpaidupgrade",
        "primepaidupgrade",
        "rewardgift",
        "raid",
        "unraid",
        "ritual",
        "bitsbadgetier",
        "announcement",
        "viewermilestone",
        "sharedchatnotice",
        "communitypayforward",
        "standardpayforward",
        "extendsub",
        "charitydonation",
    }
)

_MESSAGE_SQL = """
SELECT c.name AS channel, m.sent_at, m.message_id, m.user_id, m.user_login, m.user_name, m.text,
       m.kind, m.badges, m.is_mod, m.is_subscriber, m.is_first, m.bits, m.reply_parent_id,
       m.emote_count, m.extra, m.received_at, m.source
FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
"""
_EMOTE_SQL = """
SELECT c.name AS channel, e.sent_at, e.message_id, e.emote_id, e.emote_name, e.provider,
       e.count, e.user_id
FROM chat.emote_uses e JOIN chat.channels c ON c.id = e.channel_id
ORDER BY e.emote_id, e.provider
"""
_MODERATION_SQL = """
SELECT c.name AS channel, d.at, d.kind, d.target_user_id, d.target_login, d.target_message_id,
       d.duration_s, d.event_key, d.source, d.extra
FROM chat.moderation_events d JOIN chat.channels c ON c.id = d.channel_id
"""


def corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def write_log(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for item in corpus():
            stamp = (BASE + timedelta(seconds=item["n"])).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"[{stamp}] {item['raw']}\n")
    return path


def replay_cli(db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "data"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
    }
    cmd = [sys.executable, "-c", "from chatpulse.app.cli import main; main()"]
    args = ["replay", "--format", "irc", str(write_log(tmp_path / "conformance.log"))]
    return subprocess.run(
        cmd + args, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _json_value(v) for k, v in row.items()}


def _when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def actual_outcomes(db_url: str) -> list[dict[str, Any]]:
    """What the database holds for each corpus line, in the shape of ``expected.jsonl``."""
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        messages = {
            (r["channel"], r["message_id"], _when(r["sent_at"])): _row(r)
            for r in conn.execute(_MESSAGE_SQL)
        }
        emotes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in conn.execute(_EMOTE_SQL):
            key = (r["channel"], r["message_id"], _when(r["sent_at"]))
            emotes.setdefault(key, []).append(_row(r))
        moderation = {r["event_key"]: _row(r) for r in conn.execute(_MODERATION_SQL)}
    owned: set[Any] = set()
    out: list[dict[str, Any]] = []
    for item in corpus():
        # The line's key (the writer's unique key) finds its row; the parser computes it as
        # the collector does.  A key an earlier line already owns makes this line a duplicate.
        received = BASE + timedelta(seconds=item["n"])
        event = parse_event(item["raw"], received_at=received, source="replay")
        result: dict[str, Any] = {"n": item["n"]}
        if isinstance(event, ChatMessage):
            key: Any = (event.channel, event.message_id, _when(event.sent_at))
            if key in owned:
                result["outcome"] = "duplicate"
            else:
                owned.add(key)
                result["outcome"] = "message"
                result["message"] = messages.pop(key, None)
                result["emote_uses"] = emotes.pop(key, [])
        elif isinstance(event, ModerationEvent):
            if event.event_key in owned:
                result["outcome"] = "duplicate"
            else:
                owned.add(event.event_key)
                result["outcome"] = "moderation"
                result["moderation"] = moderation.pop(event.event_key, None)
        elif isinstance(event, ControlEvent):
            result["outcome"] = "ignored"
        else:
            assert isinstance(event, Malformed)
            result["outcome"] = "dead_letter"
            result["reason"] = event.reason
        out.append(result)
    # Nothing in the database that no line accounts for.
    assert (messages, emotes, moderation) == ({}, {}, {})
    return out


def test_every_line_replays_to_exactly_its_expected_rows(db_url: str, tmp_path: Path) -> None:
    done = replay_cli(db_url, tmp_path)
    assert done.returncode == 0, done.stderr
    expected = [json.loads(line) for line in EXPECTED.read_text(encoding="utf-8").splitlines()]
    actual = actual_outcomes(db_url)
    assert len(actual) == len(expected) >= 100
    for want, got in zip(expected, actual, strict=True):
        assert got == want, f"corpus line {want['n']}"
    # A second replay adds nothing.
    again = replay_cli(db_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert actual_outcomes(db_url) == actual


def test_corpus_covers_every_command_and_documented_notice_kind() -> None:
    kinds: set[str] = set()
    commands: set[str] = set()
    for item in corpus():
        event = parse_event(item["raw"], received_at=BASE)
        commands.add(parse_line(item["raw"]).command)
        if isinstance(event, ChatMessage) and "msg-id" in event.extra:
            kinds.add(event.kind)
    assert kinds >= DOCUMENTED_KINDS, DOCUMENTED_KINDS - kinds
    assert {
        "PRIVMSG",
        "USERNOTICE",
        "CLEARCHAT",
        "CLEARMSG",
        "NOTICE",
        "ROOMSTATE",
        "USERSTATE",
        "GLOBALUSERSTATE",
        "JOIN",
        "PART",
        "PING",
        "PONG",
        "RECONNECT",
        "WHISPER",
        "CAP",
    } <= commands


def test_expected_rows_agree_with_chatterinos_own_parse() -> None:
    """An independent check of expected.jsonl: Chatterino's parse of its own snapshot lines."""
    snapshots = IRC_SNAPSHOTS / "IrcMessageHandler"
    expected = {
        json.loads(line)["n"]: json.loads(line)
        for line in EXPECTED.read_text(encoding="utf-8").splitlines()
    }
    checked = 0
    for item in corpus():
        if item["source"] != "chatterino2" or " PRIVMSG #" not in item["raw"]:
            continue
        snapshot = json.loads((snapshots / Path(item["ref"]).name).read_text(encoding="utf-8"))
        row = expected[item["n"]].get("message")
        if not snapshot["output"] or row is None or "settings" in snapshot:
            continue
        out = snapshot["output"][0]
        assert (row["user_login"] or "") == out["loginName"], item["ref"]
        assert (row["user_id"] or "") == out["userID"], item["ref"]
        if out["id"]:
            assert row["message_id"] == out["id"], item["ref"]
        assert sorted(row["badges"]) == sorted(out["twitchBadges"]), item["ref"]  # jsonb order
        assert row["text"].endswith(out["messageText"]), item["ref"]
        checked += 1
    assert checked >= 30


def _regenerate(db_url: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        done = replay_cli(db_url, Path(tmp))
        sys.stderr.write(done.stdout + done.stderr)
        outcomes = actual_outcomes(db_url)
    with EXPECTED.open("w", encoding="utf-8") as f:
        for outcome in outcomes:
            f.write(json.dumps(outcome, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    _regenerate(sys.argv[1])
