"""``chatpulse report`` on replayed, scored real chat."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from chatpulse.aggregates import refresh_pending
from chatpulse.db import connect
from chatpulse.report import load_report, render_report
from tests.e2e.cli import run_cli
from tests.integration.test_replay import nymn_irc_log, replay, settings_for
from tests.scoring import score_with_lexicon


def test_report_shows_activity_mood_emotes_and_hype(db_url: str, tmp_path: Path) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    assert score_with_lexicon(db_url) == 798
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min, top_emotes) SELECT id, '2024-01-06 16:21:00Z', "
            "'2024-01-06 16:21:30Z', '2024-01-06 16:22:00Z', 9.5, 130, 40, '{forsenParty,EDM}' "
            "FROM chat.channels"
        )

    async def refresh() -> None:
        async with await connect(db_url) as conn:
            await refresh_pending(conn)

    asyncio.run(refresh())
    data = asyncio.run(load_report(db_url, "#NymN"))
    assert data.totals["messages"] == 798 and data.totals["chatters"] == 118
    assert sum(r["messages"] for r in data.activity) == 798
    assert sum(r["scored"] for r in data.sentiment) == 798
    assert data.top_emotes[0]["emote_name"] == "forsenParty"
    page = render_report(data)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<polyline") >= 3
    assert "forsenParty" in page and "2024-01-06 16:21:30" in page
    assert re.search(r"messages<b>798</b>", page)


def test_report_cli_writes_a_file_and_rejects_unknown_channel(db_url: str, tmp_path: Path) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    env = {"CHATPULSE_DATABASE_URL": db_url, "CHATPULSE_DATA_DIR": str(tmp_path / "d")}
    out = tmp_path / "r.html"
    done = run_cli(
        "report",
        "--channel",
        "nymn",
        "--from",
        "2024-01-06T16:20:00Z",
        "--to",
        "2024-01-06T16:25:00Z",
        "--out",
        str(out),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    text = out.read_text()
    assert "16:20 – 16:25 UTC" in text
    bad = run_cli("report", "--channel", "nobody", "--out", str(out), env=env)
    assert bad.returncode == 2 and "nobody" in bad.stderr


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(db_url: str, tmp_path: Path) -> None:
    """The report opens in a real browser: its DOM keeps the charts and the page paints."""
    import subprocess

    import pytest

    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium not installed (Debian package chromium; CI installs it)")
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    score_with_lexicon(db_url)

    async def refresh() -> None:
        async with await connect(db_url) as conn:
            await refresh_pending(conn)

    asyncio.run(refresh())
    page = tmp_path / "report.html"
    page.write_text(render_report(asyncio.run(load_report(db_url, "nymn"))))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the browser parsed the page: every chart is an SVG with its data line, the numbers are there
    assert dom.stdout.count("<svg") >= 5
    assert dom.stdout.count("<polyline") >= 4
    assert "<b>798</b>" in dom.stdout and "forsenParty" in dom.stdout
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [browser, *flags, "--window-size=960,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a painted page, not a blank one


def test_report_moderation_section(db_url: str) -> None:
    """Real CLEARMSG/CLEARCHAT lines (tests/integration/test_moderation.py): four toxic
    messages, one deleted 4 s after it was sent, one whose author was timed out 30 s later, one
    banned too late (11 min) and one never acted on; a moderator wrote once."""
    from tests.integration.test_moderation import _setup

    _setup(db_url)
    data = asyncio.run(load_report(db_url, "pajlada"))
    m = data.moderation
    assert (m["toxic"], m["acted"], m["never_acted"]) == (4, 2, 2)
    assert m["median_latency_s"] == pytest.approx(17.0)  # median of 4 s and 30 s
    assert (m["deletions"], m["timeouts"], m["bans"]) == (1, 1, 1)
    assert m["mod_messages"] == 1
    assert data.moderators == [{"moderator": "modperson", "messages": 1}]
    page = render_report(data)
    assert "<h2>Moderation</h2>" in page
    assert "2 (50%)" in page and "17.0 s" in page and "1 / 1 / 1" in page and "modperson" in page
    # A range with no toxic message: zeros, no division by zero, no median.
    quiet = asyncio.run(
        load_report(
            db_url,
            "pajlada",
            data.start - timedelta(days=1),
            data.start - timedelta(hours=23),
        )
    )
    assert quiet.moderation["toxic"] == 0 and quiet.moderation["median_latency_s"] is None
    assert "<h2>Moderation</h2>" in render_report(quiet)
