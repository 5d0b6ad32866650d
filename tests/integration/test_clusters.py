"""Behavioural clustering of chatters (analytics/clusters.py) on a constructed audience.

Four one-hour streams a day apart: a loyal core of regulars who write varied, longer messages
minutes apart in every stream; spammers who post the same short emote line every few seconds
in one stream; and one-time chatters with a single line.  The clustering must keep spammers
and regulars apart, describe each cluster by its features, and replace its rows on a re-run.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.clusters import ChatterFeatures, cluster_channels, cluster_features
from chatpulse.core.db import connect

pytest.importorskip("sklearn")  # the optional extra `analytics` (installed in dev)

T0 = datetime(2024, 5, 1, 18, 0, tzinfo=UTC)
REGULARS = [f"regular{u}" for u in range(12)]
SPAMMERS = [f"spammer{u}" for u in range(6)]
ONE_TIME = [f"visitor{u}" for u in range(15)]


def _audience(url: str) -> int:
    msgs: list[tuple[datetime, str, str, int]] = []
    for s in range(4):
        day = T0 + timedelta(days=s)
        for u, login in enumerate(REGULARS):
            for k in range(8):
                at = day + timedelta(seconds=120 + 420 * k + 17 * u + (k * k * 13) % 50)
                text = f"that was a really interesting point number {k} from {login} today {s}"
                msgs.append((at, login, text, 0))
        for u, login in enumerate(SPAMMERS):
            if u % 4 != s:
                continue
            for k in range(30):
                at = day + timedelta(seconds=600 + 4 * k + u)
                msgs.append((at, login, "KEKW KEKW KEKW", 3))
        for u, login in enumerate(ONE_TIME):
            if u % 4 == s:
                msgs.append((day + timedelta(seconds=900 + 60 * u), login, f"hi {u}", 0))
        msgs.append((day + timedelta(seconds=3500), REGULARS[0], "good night everyone", 0))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('clustered') RETURNING id"
        ).fetchone()
        assert row is not None
        with conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_login, text, emote_count)"
            " FROM STDIN"
        ) as copy:
            for i, (at, login, text, emotes) in enumerate(msgs):
                copy.write_row((at, row[0], f"c{i}", login, text, emotes))
    return int(row[0])


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _members(url: str) -> dict[str, int]:
    return dict(_rows(url, "SELECT login, cluster FROM chat.chatter_cluster_members"))


def test_spammers_and_regulars_fall_into_separate_described_clusters(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatpulse.app.cli import main

    channel = _audience(db_url)
    base = ["--database-url", db_url, "--data-dir", str(tmp_path / "d")]
    assert main(["analyze", "--cluster", *base]) == 0
    out = capsys.readouterr().out
    assert f"channel {channel}:" in out and "clusters (silhouette" in out

    members = _members(db_url)
    assert set(members) == set(REGULARS + SPAMMERS + ONE_TIME)
    spam = {members[c] for c in SPAMMERS}
    regular = {members[c] for c in REGULARS}
    assert len(spam) == 1 and len(regular) == 1 and spam != regular
    assert not {members[c] for c in ONE_TIME} & spam

    clusters = {
        r[0]: r
        for r in _rows(
            db_url,
            "SELECT cluster, chatters, k, silhouette, description, duplicate_share, attendance,"
            " emote_share, streams FROM chat.chatter_clusters WHERE channel_id = %s",
            channel,
        )
    }
    (spam_cluster,) = spam
    (regular_cluster,) = regular
    assert clusters[spam_cluster][1] == len(SPAMMERS)
    assert clusters[spam_cluster][5] > 0.9 and clusters[spam_cluster][7] == pytest.approx(3.0)
    assert clusters[regular_cluster][6] == pytest.approx(1.0) and clusters[regular_cluster][8] == 4
    assert clusters[regular_cluster][5] < 0.1
    assert "duplicates +" in clusters[spam_cluster][4]
    k = {r[2] for r in clusters.values()}
    assert k == {len(clusters)} and 2 <= len(clusters) <= 6
    assert all(r[3] > 0.3 for r in clusters.values())
    # Numbered by size, largest first.
    sizes = [clusters[c][1] for c in sorted(clusters)]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(members)

    # Re-running gives the same answer and replaces the rows (no duplicates, no leftovers).
    assert main(["analyze", "--cluster", *base]) == 0
    assert _members(db_url) == members


def test_forget_removes_cluster_membership(db_url: str, tmp_path: Path) -> None:
    from chatpulse.app.cli import main
    from chatpulse.app.commands.database import forget_user

    _audience(db_url)
    assert main(["analyze", "--cluster", "--database-url", db_url]) == 0
    assert "spammer0" in _members(db_url)
    removed = asyncio.run(forget_user(db_url, "spammer0"))
    assert removed["chatter_cluster_members"] == 1
    assert "spammer0" not in _members(db_url) and "spammer1" in _members(db_url)


def test_analyze_reclusters_the_channels_a_pass_changed(db_url: str) -> None:
    """With clustering on, the live job clusters a channel once its streams change."""
    from analytics.runner import run_analyze

    channel = _audience(db_url)
    asyncio.run(run_analyze(db_url, timedelta(minutes=30), until_idle=True, cluster=True))
    assert (
        _rows(db_url, "SELECT count(*) FROM chat.chatter_clusters WHERE channel_id = %s", channel)[
            0
        ][0]
        >= 2
    )

    async def too_few() -> object:
        async with await connect(db_url, autocommit=True) as conn:
            with psycopg.connect(db_url) as c:
                c.execute("DELETE FROM chat.stream_chatters WHERE login NOT LIKE 'spammer%%'")
            return await cluster_channels(conn, [channel])

    # Six chatters left: too few to cluster; the channel's old clusters are removed.
    assert asyncio.run(too_few()) == {channel: None}
    assert _rows(db_url, "SELECT count(*) FROM chat.chatter_clusters")[0][0] == 0
    assert _rows(db_url, "SELECT count(*) FROM chat.chatter_cluster_members")[0][0] == 0


def test_identical_chatters_are_not_clustered() -> None:
    same = [
        ChatterFeatures(f"u{i}", f"u{i}", 3, 3, 1, 1.0, 0.0, 0.0, 20.0, None) for i in range(20)
    ]
    assert cluster_features(same) is None
    assert cluster_features(same[:5]) is None


def test_cluster_flag_without_the_extra_exits_2(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without scikit-learn, ``analyze --cluster`` names the extra and exits 2; plain
    ``analyze`` still works and writes no clusters."""
    from chatpulse.app.cli import main

    _audience(db_url)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if the extra were not installed
    assert main(["analyze", "--cluster", "--database-url", db_url]) == 2
    assert "chatpulse[analytics]" in capsys.readouterr().err
    assert main(["analyze", "--until-idle", "--database-url", db_url]) == 0
    assert _rows(db_url, "SELECT count(*) FROM chat.streams")[0][0] == 4
    assert _rows(db_url, "SELECT count(*) FROM chat.chatter_clusters")[0][0] == 0
