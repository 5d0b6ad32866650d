"""``chatpulse replay`` as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from tests.e2e.cli import run_cli
from tests.helpers import write_irc_log
from tests.paths import nymn_irc_lines


def test_replay_cli_twice_adds_nothing_and_reports_dead_letters(
    db_url: str, tmp_path: Path
) -> None:
    lines = nymn_irc_lines()
    log_file = write_irc_log(tmp_path / "nymn.log", [*lines[:10], "@a=b;c=d", *lines[10:]])
    env = {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
    }
    first = run_cli("replay", str(log_file), env=env)
    assert first.returncode == 0, first.stderr
    assert re.search(
        r"798 messages \(798 new, 0 already stored\), 2 moderation events, 1 malformed",
        first.stdout,
    )
    assert '"replay progress"' in first.stderr  # progress is logged (JSON lines)
    second = run_cli("replay", str(log_file), "--format", "irc", env=env)
    assert second.returncode == 0
    assert "(0 new, 798 already stored)" in second.stdout
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM chat.messages"
        ).fetchone()
    assert row == (798, 798)
    assert (tmp_path / "d" / "dead-letters" / "replay.jsonl").read_text().count("@a=b;c=d") == 2


def test_replay_cli_unknown_format_file_exits_nonzero_with_reason(
    tmp_path: Path, db_url: str
) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    done = run_cli(
        "replay",
        str(junk),
        env={"CHATPULSE_DATABASE_URL": db_url, "CHATPULSE_DATA_DIR": str(tmp_path / "d")},
    )
    assert done.returncode != 0
    assert "junk.bin" in done.stderr
