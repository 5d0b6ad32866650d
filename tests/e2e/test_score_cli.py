"""``chatpulse score`` as a user runs it: after a replay, everything scored and aggregated."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg

from collector import irc
from tests.conftest import FIXTURES
from tests.e2e.cli import chatpulse_exe, run_cli
from tests.helpers import free_port


def _env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CHATPULSE_DATABASE_URL": db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
        "CHATPULSE_EMOTE_PROVIDERS": "",
        "CHATPULSE_METRICS_PORT": "0",
        **extra,
    }


def _nymn_log(tmp_path: Path) -> Path:
    lines = irc.parse_recent_messages(
        (FIXTURES / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json").read_text()
    )
    path = tmp_path / "nymn.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def _counts(db_url: str) -> tuple[int, int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM chat.messages), "
            "(SELECT count(*) FROM chat.message_scores), "
            "(SELECT coalesce(sum(scored), 0) FROM chat.sentiment_1m)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_score_until_idle_after_replay_scores_every_message(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url, tmp_path)
    assert run_cli("replay", str(_nymn_log(tmp_path)), env=env).returncode == 0
    done = run_cli("score", "--until-idle", env=env)
    assert done.returncode == 0, done.stderr
    assert re.search(r"scored 798 messages with lexicon@\S+ \(0 not scored", done.stdout)
    assert '"scorer stopped"' in done.stderr  # progress and summary are logged
    assert _counts(db_url) == (798, 798, 798)
    again = run_cli("score", "--until-idle", "--backend", "lexicon", env=env)
    assert again.returncode == 0
    assert "scored 0 messages" in again.stdout
    assert _counts(db_url) == (798, 798, 798)


def test_polling_scorer_serves_metrics_and_stops_on_sigterm(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url, tmp_path)
    assert run_cli("replay", str(_nymn_log(tmp_path)), env=env).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [*chatpulse_exe(), "score"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")},
            **env,
            "CHATPULSE_METRICS_PORT": str(port),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        body = ""
        while 'chatpulse_scorer_lag_seconds{model="lexicon@' not in body or (
            "chatpulse_scorer_messages_scored_total" not in body
            or not re.search(r"chatpulse_scorer_messages_scored_total\{[^}]*\} 798\.0", body)
        ):
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                continue
        assert re.search(r'chatpulse_scorer_lag_seconds\{model="lexicon@[^"]+"\} 0\.0', body)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "scored 798 messages" in out
