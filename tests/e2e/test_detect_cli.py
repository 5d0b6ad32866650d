"""``chatpulse detect --until-idle`` after ``chatpulse replay``, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.e2e.cli import run_cli
from tests.helpers import write_irc_log


def test_detect_until_idle_after_replay_writes_the_burst_once(db_url: str, tmp_path: Path) -> None:
    log_file = write_irc_log(tmp_path / "nymn.log")
    env = {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
    }
    assert run_cli("replay", str(log_file), env=env).returncode == 0
    first = run_cli("detect", "--until-idle", env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "emote bursts" in first.stdout
    second = run_cli("detect", "--until-idle", env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "detect: 0 emote bursts and 0 hype moments" in second.stdout
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT emote_name, count(*) FROM chat.emote_bursts GROUP BY 1"
        ).fetchall()
        state = conn.execute("SELECT count(*) FROM chat.detector_state").fetchone()
    assert ("forsenParty", 1) in rows
    assert state == (1,)
