"""The report's stream sections (chatpulse/app/report_streams.py) on real chat: the #nymn
sample replayed as two streams a day apart, scored and analyzed."""

from __future__ import annotations

import asyncio
import html
import json
import re
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from chatpulse.app.report import load_report, render_report
from tests.integration.test_analytics import analyze, nymn_log, replay
from tests.scoring import score_with_lexicon

DAY = timedelta(days=1)


def test_report_shows_shape_audience_and_the_usual_stream(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, [nymn_log(tmp_path), nymn_log(tmp_path, DAY, "second.log")])
    # Before analyze: the report says how to get the sections.
    page = render_report(asyncio.run(load_report(db_url, "nymn")))
    assert "No analyzed stream in this range" in page and "chatpulse analyze" in page
    assert score_with_lexicon(db_url) == 2 * 798
    analyze(db_url)
    with psycopg.connect(db_url) as conn:
        streams = conn.execute(
            "SELECT id, started_at, ended_at, chatters FROM chat.streams ORDER BY started_at"
        ).fetchall()
    assert len(streams) == 2
    second = streams[1]

    data = asyncio.run(load_report(db_url, "nymn", second[1], second[2] + timedelta(seconds=1)))
    a = data.analysis
    assert a.stream is not None and a.stream["id"] == second[0]
    assert [r["decile"] for r in a.shape] == list(range(10))
    assert abs(sum(float(r["share"]) for r in a.shape) - 1) < 1e-3
    # The same chat twice: this stream is exactly the usual one.
    assert all(abs(float(r["share"]) - float(r["usual_share"])) < 1e-6 for r in a.shape)
    assert sum(int(r["chatters"]) for r in a.segments) == second[3]
    assert a.usual["streams"] == 1 and float(a.usual["messages"]) == 798

    page = render_report(data, interactive=False)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for heading in ("Stream shape", "Audience", "Against the channel's usual stream"):
        assert f"<h2>{heading}</h2>" in page
    assert len(re.findall(r"<title>\d+–\d+%: this stream", page)) == 20  # share and mood
    assert len(re.findall(r"<title>\d+–\d+%: usual", page)) == 20
    # Everyone of the first stream came back, nobody is new.
    assert f"{second[3]:,} of the previous stream's {second[3]:,} chatters came back" in page
    assert "0 writing here for the first time" in page
    assert "mean of 1 other stream" in page and "+0%" in page
    assert "No analyzed stream in this range" not in page
    # The interactive report: the same numbers in the Plotly figures.
    live = render_report(data, interactive=True)
    figures = {
        f["layout"]["title"]["text"]: f
        for f in (
            json.loads(html.unescape(raw))
            for raw in re.findall(r"data-chatpulse-figure='([^']*)'", live)
        )
    }
    share = figures["share of messages by tenth of the stream"]["data"]
    assert share[0]["y"] == pytest.approx([float(r["share"]) for r in a.shape])
    assert share[1]["y"] == pytest.approx([float(r["usual_share"]) for r in a.shape])
    assert share[0]["x"][0] == "0–10%" and share[0]["x"][-1] == "90–100%"
    segments = figures["chatters per segment"]["data"][0]
    assert sum(segments["x"]) == second[3]
