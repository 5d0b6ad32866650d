"""The hype forecast against a real database: real chat re-timed over 3 hours with injected
crowd reactions (tests/hype_stream.py), the detector's moments written by the real detector,
then ``chatpulse eval forecast --json``, ``chatpulse forecast --until-idle`` and the "Hype
likely" alert rule as Grafana's read-only role runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from chatpulse.app.cli import main
from detector.model import DetectorConfig
from detector.runner import run_detector
from tests.conftest import create_database, drop_database
from tests.hype_stream import build_stream

pytest.importorskip("sklearn", reason="the forecast needs the 'forecast' extra")

T0 = datetime(2024, 3, 2, 18, 0, tzinfo=UTC)


def _load(url: str) -> None:
    msgs, _ = build_stream(seed=3, hours=3.0, t0=T0.timestamp())
    with psycopg.connect(url) as conn:
        cid = conn.execute(
            "INSERT INTO chat.channels (platform, name) VALUES ('twitch', 'nymn') RETURNING id"
        ).fetchone()
        assert cid is not None
        with conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_login, text, emote_count,"
            " source) FROM STDIN"
        ) as copy:
            for k, m in enumerate(msgs):
                at = datetime.fromtimestamp(m.t, UTC)
                copy.write_row((at, cid[0], f"m{k}", m.user, m.text, len(m.emotes), "replay"))
        with conn.cursor().copy(
            "COPY chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name,"
            " provider, count) FROM STDIN"
        ) as copy:
            for k, m in enumerate(msgs):
                at = datetime.fromtimestamp(m.t, UTC)
                for name, uses in m.emotes:
                    copy.write_row((at, cid[0], f"m{k}", name, name, "twitch", uses))
    asyncio.run(run_detector(url, DetectorConfig(), until_idle=True))


@pytest.fixture(scope="module")
def chat_url(admin_url: str, template_db: str) -> Iterator[str]:
    url = create_database(admin_url, template=template_db)
    _load(url)
    yield url
    drop_database(admin_url, url)


def test_eval_forecast_json(chat_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(chat_url) as conn:
        row = conn.execute("SELECT count(*) FROM chat.hype_moments").fetchone()
    assert row is not None and row[0] >= 15  # ~6.8 reactions an hour injected
    code = main(["eval", "forecast", "--channel", "nymn", "--json", "--database-url", chat_url])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["task"] == "forecast" and doc["horizon_s"] == 60
    for key in ("precision", "recall", "f1", "lead_s_mean", "lead_s_median", "moments"):
        assert isinstance(doc[key], (int, float)), key
    (ch,) = doc["channels"]
    assert ch["channel"] == "nymn" and ch["split_by"] == "time"
    assert ch["train_until"] < ch["test_from"]  # ISO times in UTC: a time split
    assert ch["train_moments"] >= 5 and ch["moments"] >= 4
    assert doc["recall"] >= 0.75 and doc["lead_s_median"] > 0
    assert doc["precision"] > doc["baseline"]["precision"]
    # The table prints the same figures.
    assert main(["eval", "forecast", "--database-url", chat_url]) == 0
    out = capsys.readouterr().out
    assert "nymn" in out and f"{doc['precision']:.1%}" in out


def test_eval_forecast_unknown_channel_and_missing_file(
    chat_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "forecast", "--channel", "nobody", "--database-url", chat_url]) == 1
    assert "no such channel" in capsys.readouterr().out
    assert main(["eval", "sentiment", "--database-url", chat_url]) == 2
    assert "FILE.csv" in capsys.readouterr().err


def test_forecast_job_writes_and_the_alert_fires(
    chat_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_grafana_sql import _alert_sql, _rule, _series, run_as_reader

    assert main(["forecast", "--until-idle", "--database-url", chat_url]) == 0
    assert "models trained" in capsys.readouterr().out
    with psycopg.connect(chat_url) as conn:
        rows = conn.execute(
            "SELECT at, probability, likely, threshold, horizon_s FROM chat.hype_forecasts"
            " ORDER BY at"
        ).fetchall()
        last = conn.execute("SELECT max(sent_at) FROM chat.messages").fetchone()
        peaks = [
            r[0]
            for r in conn.execute("SELECT peak_at FROM chat.hype_moments ORDER BY 1").fetchall()
        ]
    assert last is not None
    # The last hour of chat, one row per 5-s hop, each a probability.
    assert 700 <= len(rows) <= 721
    assert rows[-1][0] <= last[0] + timedelta(seconds=5)
    assert all(0 <= r[1] <= 1 and r[2] == (r[1] >= r[3]) and r[4] == 60 for r in rows)
    # A second run adds nothing (it goes on from the last hop written).
    assert main(["forecast", "--until-idle", "--database-url", chat_url]) == 0
    assert "0 forecasts written" in capsys.readouterr().out

    # The alert: fires for the channel in the 30 s before a peak it foresaw, quiet on a calm
    # stretch far from any moment.
    rule = _rule("chatpulse-hype-likely")
    likely = [r[0] for r in rows if r[2]]
    assert likely
    warned_peak = next(p for p in peaks if any(p - timedelta(seconds=60) <= a <= p for a in likely))
    at = max(a for a in likely if a <= warned_peak)

    def fired(end: datetime) -> dict[tuple[Any, ...], float]:
        return _series(*run_as_reader(chat_url, _alert_sql(rule, end)))

    assert fired(at + timedelta(seconds=5))[("nymn",)] >= 0.5
    calm = [
        r[0]
        for r in rows
        if all(abs((r[0] - p).total_seconds()) > 300 for p in peaks)
        and not any(abs((r[0] - a).total_seconds()) <= 60 for a in likely)
    ]
    assert calm
    assert fired(calm[len(calm) // 2]) == {("nymn",): 0.0}
