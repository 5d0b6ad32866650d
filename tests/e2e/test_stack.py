"""``chatpulse demo`` and ``chatpulse up`` as users run them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from chatpulse.core.db import EMBEDDED_DBNAME, embedded_server
from chatpulse.core.errors import DatabaseError
from tests.e2e.cli import chatpulse_exe, run_cli
from tests.helpers import free_port
from tests.integration.test_replay import nymn_irc_log


def _demo(data: Path) -> subprocess.CompletedProcess[str]:
    done = run_cli("demo", env={"CHATPULSE_DATA_DIR": str(data)}, timeout=300)
    if done.returncode != 0 and "cannot start the embedded PostgreSQL" in done.stderr:
        pytest.skip("embedded PostgreSQL cannot start here")
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_demo_on_the_embedded_default_prints_summary_and_leaves_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _demo(data)
    out = done.stdout
    assert "messages      798 from 118 chatters, 2 moderation events" in out
    assert re.search(r"top emotes\s+.*forsenParty", out)
    assert re.search(
        r"mood\s+[+-]\d\.\d\d \((positive|neutral|negative)\), 798 messages scored", out
    )
    assert "emote burst   forsenParty" in out
    clip = re.search(r"clip\s+.*: (\S+\.mp4)", out)
    assert clip and Path(clip.group(1)).stat().st_size > 0
    report = re.search(r"report\s+(\S+\.html)", out)
    # Plotly figures with the report extra (dev installs it), else inline SVG
    assert report and re.search(r"<svg|Plotly\.newPlot\(", Path(report.group(1)).read_text())
    assert "[7/7]" in done.stderr  # progress is shown
    # no user names or message text in what the demo prints (other people's chat)
    assert "purple_geco" not in out.lower()
    with embedded_server(data / "postgres") as url, psycopg.connect(url) as conn:
        assert url.endswith(EMBEDDED_DBNAME) or EMBEDDED_DBNAME in url
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM chat.messages), (SELECT count(*) FROM chat.message_scores),"
            " (SELECT count(*) FROM chat.emote_bursts), (SELECT count(*) FROM chat.clips "
            "WHERE status = 'done'), (SELECT sum(scored) FROM chat.sentiment_1m)"
        ).fetchone()
    assert counts == (798, 798, counts[2], 1, 798) and counts[2] >= 1

    # A second run inserts nothing, yet its summary still shows what the database holds.
    again = _demo(data).stdout
    with embedded_server(data / "postgres") as url, psycopg.connect(url) as conn:
        messages, chatters, moderation = conn.execute(
            "SELECT count(*), count(DISTINCT chat.chatter_key(user_id, user_login, user_name)), "
            "(SELECT count(*) FROM chat.moderation_events) FROM chat.messages"
        ).fetchone() or (0, 0, 0)
        top = conn.execute(
            "SELECT emote_name, provider, sum(count) FROM chat.emote_uses GROUP BY 1, 2 "
            "ORDER BY 3 DESC, 1, 2 LIMIT 5"
        ).fetchall()
        scored = conn.execute("SELECT count(*) FROM chat.message_scores").fetchone()
    assert (messages, chatters, moderation) == (798, 118, 2)
    line = f"messages      {messages} from {chatters} chatters, {moderation} moderation events"
    assert line in again, again
    shown = ", ".join(f"{n} ({p}) ×{u}" for n, p, u in top)
    assert f"top emotes    {shown}" in again, again
    assert scored is not None and f", {scored[0]} messages scored" in again


def test_up_runs_every_service_and_stops_cleanly(db_url: str, tmp_path: Path) -> None:
    api_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
    env.update(
        {
            "CHATPULSE_DATABASE_URL": db_url,
            "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
            "CHATPULSE_WEBHOOK_TOKEN": "t0ken",
            "CHATPULSE_CLIPPER_PORT": str(api_port),
            "CHATPULSE_METRICS_PORT": str(metrics_port),
            "CHATPULSE_EMOTE_PROVIDERS": "",
            "CHATPULSE_SCORER_POLL_INTERVAL_S": "0.2",
            "CHATPULSE_DETECT_POLL_INTERVAL_S": "0.5",
        }
    )
    proc = subprocess.Popen(
        [*chatpulse_exe(), "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError("clipper API never answered")
        replay = run_cli(
            "replay",
            str(nymn_irc_log(tmp_path)),
            env={
                "CHATPULSE_DATABASE_URL": db_url,
                "CHATPULSE_DATA_DIR": str(tmp_path / "r"),
                "CHATPULSE_EMOTE_PROVIDERS": "",
            },
        )
        assert replay.returncode == 0, replay.stderr
        scored = 0
        while time.monotonic() < deadline + 60 and scored < 798:
            with psycopg.connect(db_url) as conn:
                row = conn.execute("SELECT count(*) FROM chat.message_scores").fetchone()
            scored = row[0] if row else 0
            time.sleep(0.3)
        assert scored == 798  # the running scorer picked up what the replay wrote
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert "chatpulse_scorer_messages_scored_total" in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "chatpulse stopped cleanly" in err


def test_embedded_server_reports_a_clear_error_for_an_unusable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseError, match="embedded PostgreSQL"), embedded_server(blocker / "pg"):
        pass
