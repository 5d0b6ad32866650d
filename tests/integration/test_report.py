"""``chatpulse report`` on replayed, scored real chat."""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatpulse.app import charts
from chatpulse.app.report import load_report, render_report
from chatpulse.core.aggregates import refresh_pending
from chatpulse.core.db import connect
from detector.model import DetectorConfig
from detector.runner import run_detector
from tests.e2e.cli import run_cli
from tests.emote_api_stub import NYMN_ID, EmoteApiStub, nymn_routes
from tests.integration.test_emote_rematch import settings_for as rematch_settings
from tests.integration.test_replay import nymn_irc_log, replay, settings_for
from tests.scoring import score_with_lexicon
from tests.td_export import Comment, nymn_vod, write_txt


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
    page = render_report(data, interactive=False)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<polyline") >= 3
    assert "forsenParty" in page and "2024-01-06 16:21:30" in page
    assert re.search(r"messages<b>798</b>", page)
    # a live IRC log records no start: the stream starts at its first message
    with psycopg.connect(db_url) as conn:
        first = conn.execute("SELECT min(sent_at) FROM chat.messages").fetchone()
    assert first is not None and data.streams[0]["start"] == first[0]
    into = int((datetime(2024, 1, 6, 16, 21, 30, tzinfo=UTC) - first[0]).total_seconds())
    assert f"+0:{into // 60:02d}:{into % 60:02d} into the stream" in page
    assert f"stream start {first[0]:%H:%M:%S} UTC (first message)" in page


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


def _figures(page: str) -> dict[str, dict[str, Any]]:
    """The Plotly figures of a report page by title, read back from their data attribute."""
    out = {}
    for raw in re.findall(r"data-chatpulse-figure='([^']*)'", page):
        figure = json.loads(html.unescape(raw))
        out[figure["layout"]["title"]["text"]] = figure
    return out


def _nymn_report_data(db_url: str, tmp_path: Path) -> Any:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    score_with_lexicon(db_url)

    async def refresh() -> None:
        async with await connect(db_url) as conn:
            await refresh_pending(conn)

    asyncio.run(refresh())
    return asyncio.run(load_report(db_url, "nymn"))


def test_interactive_report_holds_plotly_figures_with_the_data_and_plotly_js_once(
    db_url: str, tmp_path: Path
) -> None:
    from plotly.offline import get_plotlyjs

    data = _nymn_report_data(db_url, tmp_path)
    page = render_report(data, interactive=True)
    # plotly.js inlined exactly once, nothing fetched from elsewhere
    assert page.count(get_plotlyjs()[:2000]) == 1
    assert page.count("<script") == 1 + page.count("Plotly.newPlot(")
    assert re.search(r"<(script|link|img)[^>]+(src|href)=", page) is None
    figures = _figures(page)
    assert page.count("Plotly.newPlot(") == len(figures) >= 5
    messages = figures["messages per minute"]["data"][0]
    assert sum(v for v in messages["y"] if v is not None) == 798
    assert len(messages["x"]) == len(messages["y"])
    chatters = figures["chatters per minute"]["data"][0]
    assert max(chatters["y"]) == max(r["chatters"] for r in data.activity)
    mood = figures["average sentiment per minute (−1 negative … +1 positive)"]
    assert mood["layout"]["yaxis"]["range"] == [-1, 1]
    emotes = figures["uses of the top emotes"]["data"][0]
    assert emotes["y"][0].startswith("forsenParty") and emotes["x"][0] == float(
        data.top_emotes[0]["uses"]
    )
    assert charts.FALLBACK_NOTE not in page


def test_report_without_plotly_draws_svg_and_says_how_to_get_interactive_charts(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _nymn_report_data(db_url, tmp_path)
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if the report extra were missing
    assert not charts.interactive()
    page = render_report(data)
    assert "<script" not in page and "data-chatpulse-figure" not in page
    assert page.count("<polyline") >= 3
    assert page.count(html.escape(charts.FALLBACK_NOTE)) == 1


def test_report_renders_in_headless_chromium(db_url: str, tmp_path: Path) -> None:
    """The report opens offline in a real browser: Plotly draws every figure of the
    interactive page, the SVG page keeps its charts, and the page paints."""
    import subprocess

    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium not installed (Debian package chromium; CI installs it)")
    data = _nymn_report_data(db_url, tmp_path)
    page = tmp_path / "report.html"
    static = tmp_path / "static.html"
    page.write_text(render_report(data, interactive=True))
    static.write_text(render_report(data, interactive=False))
    figures = len(_figures(page.read_text()))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # offline: any request leaving the machine fails
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]

    def dom(path: Path) -> str:
        done = subprocess.run(
            [browser, *flags, "--virtual-time-budget=10000", "--dump-dom", path.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    drawn = dom(page)
    # Plotly ran: each figure's div holds its drawn SVG, with the data lines and bars
    assert drawn.count("js-plotly-plot") >= figures >= 5
    assert drawn.count('class="main-svg"') >= figures
    assert drawn.count('class="js-line"') >= 3
    assert "<b>798</b>" in drawn and "forsenParty" in drawn
    # the browser parsed the static page: every chart is an SVG with its data line
    svg = dom(static)
    assert svg.count("<svg") >= 5
    assert svg.count("<polyline") >= 4
    assert "<b>798</b>" in svg and "forsenParty" in svg
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            *flags,
            "--window-size=960,1400",
            "--virtual-time-budget=10000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000  # a painted page, not a blank one


# -- a real stream replayed from a login-only TwitchDownloader TXT (issue 13.7) -----------------

STREAM_START = datetime(2024, 1, 6, 15, 40, tzinfo=UTC)


def _recomment(c: Comment, when: datetime, tag: str = "") -> Comment:
    return Comment(
        c.id + tag,
        (when - STREAM_START).total_seconds(),
        when,
        c.user_id,
        c.login,
        c.display_name,
        c.body,
    )


def stream_of_real_chat() -> list[Comment]:
    """The real #nymn chat as a 72-minute stream that began at STREAM_START: quiet chat (every
    6th real message, evenly spread) for 25 minutes, the first 3 real minutes as they happened,
    25 quiet minutes, then the rest of the real chat."""
    real = nymn_vod(STREAM_START)
    first = real[0].created_at
    cut = first + timedelta(minutes=3)
    out = [c for c in real if c.created_at < cut]
    out += [
        _recomment(c, c.created_at + timedelta(minutes=25)) for c in real if c.created_at >= cut
    ]
    quiet = real[::6]
    for lo, tag in ((first - timedelta(minutes=25), "q"), (cut, "r")):
        out += [
            _recomment(c, lo + timedelta(seconds=i * 1500 / len(quiet)), tag)
            for i, c in enumerate(quiet)
        ]
    return sorted(out, key=lambda c: c.offset)


def _svg_texts(page: str, cls: str) -> list[list[str]]:
    """The text of every SVG ``<text class='… cls'>`` element, one list per plot area."""
    return [
        re.findall(rf"<text [^>]*class='[^']*\b{cls}\b[^']*'[^>]*>([^<]*)</text>", plot)
        for plot in re.findall(r"<g class='plot'>.*?</g>", page, flags=re.S)
    ]


def test_report_of_a_replayed_txt_shows_real_chatters_emotes_and_ranked_hype(
    db_url: str, tmp_path: Path
) -> None:
    comments = stream_of_real_chat()
    txt = write_txt(tmp_path / "nymn.txt", comments, "Relative")
    assert "[0:" in txt.read_text()[:20] and "nymn" not in txt.read_text()[:20]  # relative, no ids
    with EmoteApiStub(nymn_routes()) as api:
        settings = rematch_settings(db_url, tmp_path, **api.settings())
        done = replay(
            settings, db_url, [txt], fmt="twitchdownloader-txt", channel="nymn",
            start=STREAM_START, channel_id=NYMN_ID,
        )  # fmt: skip
    assert done.inserted == len(comments)
    assert score_with_lexicon(db_url) == len(comments)
    asyncio.run(run_detector(db_url, DetectorConfig(), until_idle=True))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT chat.refresh_aggregates()")
        logins = conn.execute(
            "SELECT count(DISTINCT user_login), count(user_id) FROM chat.messages"
        ).fetchone()
        moments = conn.execute(
            "SELECT id, score, started_at, peak_at, ended_at, sample_messages "
            "FROM chat.hype_moments ORDER BY score DESC"
        ).fetchall()
        emotes = conn.execute(
            "SELECT emote_name, sum(count) FROM chat.emote_uses WHERE provider = '7tv' "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3"
        ).fetchall()
        # A cut clip of the second moment (the clipper's own tests cut real ones).
        conn.execute(
            "INSERT INTO chat.clips (channel_id, dedup_key, trigger, start_at, end_at, status, "
            "location, duration_s, hype_moment_id) SELECT c.id, 'k', 'hype', %s, %s, 'done', "
            "%s, 30, %s FROM chat.channels c",
            (moments[1][3], moments[1][4], str(tmp_path / "second.mp4"), moments[1][0]),
        )
    distinct_logins, with_ids = logins or (0, 0)
    assert with_ids == 0 and distinct_logins == len({c.login for c in comments}) == 118
    assert len(moments) >= 2 and emotes[0][0] in {"EDM", "forsenParty"}

    page = render_report(asyncio.run(load_report(db_url, "nymn")), interactive=False)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    # real chatters (by login) and the channel's 7TV emotes
    assert f"chatters<b>{distinct_logins}</b>" in page
    for name, uses in emotes:
        assert re.search(rf">{name} \(7tv\)</text>.*?>{int(uses):,}</text>", page)
    # hype moments strongest first, each with its samples, times to the second, time into the
    # stream from the --start the replay recorded, and the clip link where one exists
    assert "stream start 15:40:00 UTC (recorded by the replay)" in page
    blocks = re.findall(r"<div class='moment'>(.*?)</div>", page, flags=re.S)
    assert len(blocks) == len(moments)
    scores = [float(s) for s in re.findall(r"score (\d+\.\d)</span>", page)]
    assert scores == sorted(scores, reverse=True) == [round(m[1], 1) for m in moments]
    for block, (_, _, started, peak, ended, samples) in zip(blocks, moments, strict=True):
        into = int((peak - STREAM_START).total_seconds())
        h, rest = divmod(into, 3600)
        assert f"+{h}:{rest // 60:02d}:{rest % 60:02d} into the stream" in block
        assert f"{started:%H:%M:%S} – {ended:%H:%M:%S} UTC" in block
        assert len(samples) >= 1
        for sample in samples:
            assert html.escape(sample["text"]) in block and f"<b>{sample['user']}</b>" in block
    assert "second.mp4" in blocks[1] and ".mp4" not in blocks[0]
    # readable axes: time ticks on round minutes, HH:MM, evenly spaced; y ticks round numbers
    x_ticks = [t for t in _svg_texts(page, "xtick") if t]
    y_ticks = [t for t in _svg_texts(page, "ytick") if t]
    assert len(x_ticks) >= 3 and len(y_ticks) == len(x_ticks)
    for labels in x_ticks:
        assert 3 <= len(labels) <= 8 and all(re.fullmatch(r"\d\d:\d\d", t) for t in labels)
        minutes = [int(t[:2]) * 60 + int(t[3:]) for t in labels]
        steps = {b - a for a, b in itertools.pairwise(minutes)}
        assert len(steps) == 1 and steps.pop() in (1, 2, 5, 10, 15, 30, 60)
    assert "time (UTC) on 2024-01-06" in page
    for labels in y_ticks:
        values = [float(t.replace(",", "").replace("−", "-")) for t in labels]
        gaps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
        assert len(gaps) == 1 and (values[0] == 0 or values[0] == -1)
        step = gaps.pop()
        assert round(step / 10 ** math.floor(math.log10(step)), 9) in (1, 2, 2.5, 5)
    # an emotion chart a person can read: one labelled panel per emotion with signal
    panels = re.search(r"<svg[^>]*aria-label='emotions'>.*?</svg>", page, flags=re.S)
    assert panels is not None
    names = re.findall(r"class='label' style='fill:(#[0-9a-f]{6})'>(\w+)</text>", panels.group(0))
    assert "joy" in [n for _, n in names] and len({c for c, _ in names}) == len(names)


def test_a_silence_over_30_minutes_starts_a_new_stream(db_url: str, tmp_path: Path) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    with psycopg.connect(db_url) as conn:
        # the same chat again 31 and 3 hours later: one stream continues, the other is new
        for shift, tag in (("31 minutes", "a"), ("3 hours", "b")):
            conn.execute(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, "
                "user_name, text, kind, source) SELECT sent_at + %s::interval, channel_id, "
                "message_id || %s, user_id, user_login, user_name, text, kind, source "
                "FROM chat.messages WHERE message_id NOT LIKE '%%a'",
                (shift, tag),
            )
        first = conn.execute("SELECT min(sent_at) FROM chat.messages").fetchone()
        assert first is not None
        conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min) SELECT id, %s, %s, %s, 5, 100, 10 "
            "FROM chat.channels",
            (first[0] + timedelta(hours=3), first[0] + timedelta(hours=3, seconds=75),
             first[0] + timedelta(hours=3, seconds=90)),
        )  # fmt: skip
    data = asyncio.run(load_report(db_url, "nymn"))
    starts = [s["start"] for s in data.streams]
    assert starts == [first[0], first[0] + timedelta(hours=3)]
    page = render_report(data)
    assert "· 2 streams ·" in page and "+0:01:15 into the stream" in page
