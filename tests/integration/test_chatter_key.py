"""Chatters of sources without user ids, subscription kinds and emote backfills (issue 13
item 2, issue 20 items 3-4), on the real PostgreSQL (and TimescaleDB when present).

A chatter is ``chat.chatter_key(user_id, user_login, user_name)``: the user id when known, else
the login in lower case, else the display name in lower case.  Every distinct-chatter figure
(activity_1m/1h, chatters_*, ``chat.unique_chatters()``, the panels, hype moments, the report)
counts those keys.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatpulse.app.report import load_report, render_report
from chatpulse.core.aggregates import SUBSCRIPTION_KINDS, refresh_pending, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.migrate import load_migrations, run_migrations
from detector.model import DetectorConfig
from detector.runner import run_detector
from grafana.build import PROVISIONING_DIR
from grafana.macros import TimeRange, expand
from tests.conftest import ROOT
from tests.integration.test_grafana_sql import run_as_reader
from tests.integration.test_replay import replay, settings_for

T0 = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)

# A TwitchDownloader TXT export with UTC stamps: names only, no user ids.  "ALICE" and "Alice"
# are one login; a localized display name (no login) is a chatter of its own.
TXT = [
    "[2024-01-06 16:00:01 UTC] Alice: hello",
    "[2024-01-06 16:00:02 UTC] ALICE: hello again",
    "[2024-01-06 16:00:03 UTC] alice: and again",
    "[2024-01-06 16:00:04 UTC] Bob: hi",
    "[2024-01-06 16:00:05 UTC] 한글닉: 안녕",
    "[2024-01-06 16:01:01 UTC] alice: one more",
    "[2024-01-06 16:01:02 UTC] Carol: yo",
    "[2024-01-06 16:01:03 UTC] Carol: yo yo",
    "[2024-01-06 17:01:00 UTC] Dave: late",
]
# minute 16:00: alice, bob, 한글닉 -- 16:01: alice, carol -- 17:01: dave
MINUTES = [(T0, 5, 3), (T0 + timedelta(minutes=1), 3, 2), (T0 + timedelta(minutes=61), 1, 1)]
HOURS = [(T0, 8, 4), (T0 + timedelta(hours=1), 1, 1)]


def _rows(url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args or None).fetchall()  # type: ignore[arg-type]


def _panel_sql(title: str) -> str:
    path = PROVISIONING_DIR / "dashboards" / "chatpulse" / "overview.json"
    panels = json.loads(path.read_text())["panels"]
    return str(next(p for p in panels if p["title"] == title)["targets"][0]["rawSql"])


def _chatter_figures(url: str, channel: int) -> dict[str, Any]:
    return {
        "minutes": _rows(
            url,
            "SELECT bucket, messages, chatters FROM chat.activity_1m WHERE channel_id = %s "
            "ORDER BY bucket",
            channel,
        ),
        "hours": _rows(
            url,
            "SELECT bucket, messages, chatters FROM chat.activity_1h WHERE channel_id = %s "
            "ORDER BY bucket",
            channel,
        ),
        "per_user_hour": _rows(
            url,
            "SELECT chatter, user_login, messages FROM chat.chatters_1h WHERE channel_id = %s "
            "AND bucket = %s ORDER BY chatter",
            channel,
            T0,
        ),
        "days": _rows(
            url,
            "SELECT count(*), sum(messages) FROM chat.chatters_1d WHERE channel_id = %s",
            channel,
        ),
        "unique": _rows(
            url,
            "SELECT chat.unique_chatters('{nymn}', %s, %s), chat.unique_chatters('{nymn}', %s, %s)",
            T0,
            T0 + timedelta(hours=2),
            T0,
            T0 + timedelta(minutes=30),
        ),
    }


EXPECTED = {
    "minutes": MINUTES,
    "hours": HOURS,
    "per_user_hour": [
        ("login:alice", "alice", 4),
        ("login:bob", "bob", 1),
        ("login:carol", "carol", 2),
        ("name:한글닉", None, 1),
    ],
    "days": [(5, 9)],
    "unique": [(5, 4)],
}


def test_login_only_txt_replay_counts_real_chatters_everywhere(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(TXT) + "\n")
    summary = replay(settings_for(db_url, tmp_path), db_url, [path], channel="nymn")
    assert summary.inserted == len(TXT)
    assert _rows(db_url, "SELECT count(*) FROM chat.messages WHERE user_id IS NOT NULL") == [(0,)]
    (channel,) = _rows(db_url, "SELECT id FROM chat.channels WHERE name = 'nymn'")[0]
    assert _chatter_figures(db_url, channel) == EXPECTED

    # The panels, as Grafana sends them, as the read-only role.
    span = TimeRange(T0, T0 + timedelta(hours=2))
    unique = expand(_panel_sql("Unique chatters"), span, {"channel": ["nymn"]}, multi={"channel"})
    assert run_as_reader(db_url, unique)[1] == [(5,)]
    per_minute = expand(
        _panel_sql("Active chatters per minute"),
        span,
        {"channel": ["nymn"]},
        multi={"channel"},
        interval_ms=60_000,
    )
    got = [(int(row[0]), float(row[2])) for row in run_as_reader(db_url, per_minute)[1]]
    assert got == [(int(t.timestamp()), float(c)) for t, _, c in MINUTES]

    data = asyncio.run(load_report(db_url, "nymn"))
    assert data.totals["chatters"] == 5
    assert [int(r["chatters"]) for r in data.activity] == [c for _, _, c in MINUTES]


def test_rows_without_any_user_are_messages_but_no_chatter(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO chat.channels (id, name) OVERRIDING SYSTEM VALUE VALUES (7, 'x')")
        conn.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, "
            "user_name, text) VALUES (%s, 7, 'a', NULL, NULL, NULL, 'system'), "
            "(%s, 7, 'b', '', '', '', 'empty strings'), (%s, 7, 'c', '42', 'Zed', 'Zed', 'hi'), "
            "(%s, 7, 'd', NULL, 'zed', NULL, 'a login-only row of user 42 is another key')",
            (T0, T0, T0, T0),
        )
    asyncio.run(_refresh(db_url))
    assert _rows(db_url, "SELECT messages, chatters FROM chat.activity_1m") == [(4, 2)]
    assert _rows(db_url, "SELECT chat.chatter_key('42', 'Zed', NULL)") == [("42",)]
    assert _rows(db_url, "SELECT chat.unique_chatters('{x}', %s, %s)", T0, T0) == [(2,)]


async def _refresh(url: str) -> None:
    async with await connect(url, autocommit=True) as conn:
        await refresh_range(conn, None, None)


# -- the detector -----------------------------------------------------------------------------

RAID_AT = datetime(2024, 3, 1, 12, 35, tzinfo=UTC)


def _raid_jsonl(path: Path) -> None:
    """35 minutes of three regulars (10 messages per 5 s, two of them each 5 s), then a raid of
    300 login-only users: 12 of them write once every 5 s for 125 s, then the regulars alone.
    The message rate only doubles (too little to pass the hype threshold on its own); the
    chatter surge is what makes it a hype moment."""
    start = RAID_AT - timedelta(minutes=35)
    lines = []
    for hop in range((35 + 4) * 12):
        at = start + timedelta(seconds=5 * hop)
        pair = ("alice", "bob") if hop % 2 else ("bob", "carol")
        for j in range(10):
            lines.append(
                {
                    "channel": "raided",
                    "platform": "twitch",
                    "sent_at": (at + timedelta(milliseconds=400 * j)).isoformat(),
                    "user_login": pair[j % 2],
                    "text": f"chat {hop} {j}",
                }
            )
        raid_hop = hop - 35 * 12
        if 0 <= raid_hop < 25:
            for j in range(12):
                n = raid_hop * 12 + j
                lines.append(
                    {
                        "channel": "raided",
                        "platform": "twitch",
                        "sent_at": (at + timedelta(milliseconds=410 * j + 7)).isoformat(),
                        "user_login": f"raider{n:03d}",
                        "user_name": f"Raider{n:03d}",
                        "text": "raid hype",
                    }
                )
    path.write_text("\n".join(json.dumps(o) for o in lines) + "\n")


def _hypes(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, "SELECT started_at, ended_at, chatters FROM chat.hype_moments ORDER BY 1")


def test_a_raid_of_300_login_only_chatters_is_a_hype_moment(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "raid.jsonl"
    _raid_jsonl(path)
    replay(settings_for(db_url, tmp_path), db_url, [path])
    assert _rows(db_url, "SELECT count(DISTINCT user_login) FROM chat.messages") == [(303,)]

    # Without the chatter term the detector does not see it: the message rate alone is too low.
    asyncio.run(run_detector(db_url, DetectorConfig(hype_chatter_weight=0.0), until_idle=True))
    assert _hypes(db_url) == []

    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM chat.detector_state")
    asyncio.run(run_detector(db_url, DetectorConfig(), until_idle=True))
    hypes = _hypes(db_url)
    assert len(hypes) == 1
    started, ended, chatters = hypes[0]
    assert RAID_AT - timedelta(seconds=10) <= started < ended <= RAID_AT + timedelta(minutes=3)
    # the raiders who wrote within the moment, and the regulars
    raiders = _rows(
        db_url,
        "SELECT count(DISTINCT user_login) FROM chat.messages WHERE sent_at >= %s AND sent_at < %s",
        started,
        ended,
    )[0][0]
    assert chatters == raiders > 200
    page = render_report(asyncio.run(load_report(db_url, "raided")))
    assert f"<td>{chatters:,}</td>" in page  # the hype moment's chatters in the report


# -- subscriptions and emote uses --------------------------------------------------------------

NOT_SUBS = ("chat", "action", "raid", "announcement", "standardpayforward", "ritual")


def _insert_kinds(url: str, channel: int) -> None:
    with psycopg.connect(url) as conn:
        for i, kind in enumerate((*SUBSCRIPTION_KINDS, *NOT_SUBS)):
            conn.execute(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text, "
                "kind) VALUES (%s, %s, %s, %s, '', %s)",
                (T0 + timedelta(seconds=i), channel, f"k{i}", f"user{i}", kind),
            )


def test_subs_count_every_subscription_kind_and_the_readme_names_them(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO chat.channels (id, name) OVERRIDING SYSTEM VALUE VALUES (3, 's')")
    _insert_kinds(db_url, 3)
    asyncio.run(_refresh(db_url))
    n = len(SUBSCRIPTION_KINDS)
    assert _rows(db_url, "SELECT subs, raids, chatters FROM chat.activity_1m") == [
        (n, 1, n + len(NOT_SUBS))
    ]
    assert _rows(db_url, "SELECT sum(subs) FROM chat.chatters_1d") == [(n,)]
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "`subs` counts" in x)
    assert all(f"`{kind}`" in line for kind in SUBSCRIPTION_KINDS)


def test_an_emote_backfill_reaches_every_aggregate(db_url: str) -> None:
    """A rematch adds chat.emote_uses rows and updates messages.emote_count in one transaction,
    then calls refresh_range: activity and chatter aggregates agree with chat.emote_uses."""
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO chat.channels (id, name) OVERRIDING SYSTEM VALUE VALUES (5, 'e')")
        conn.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text, "
            "emote_count) VALUES (%s, 5, 'm1', 'a', 'Kappa ICANT ICANT', 1), "
            "(%s, 5, 'm2', 'b', 'ICANT', 0)",
            (T0, T0 + timedelta(seconds=30)),
        )
        conn.execute(
            "INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, "
            "emote_name, provider, count) VALUES (%s, 5, 'm1', '25', 'Kappa', 'twitch', 1)",
            (T0,),
        )
    asyncio.run(_refresh(db_url))
    assert _rows(db_url, "SELECT emote_uses FROM chat.activity_1m") == [(1,)]
    with psycopg.connect(db_url) as conn:  # the backfill
        conn.execute(
            "INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, "
            "emote_name, provider, count) VALUES (%s, 5, 'm1', 'x', 'ICANT', '7tv', 2), "
            "(%s, 5, 'm2', 'x', 'ICANT', '7tv', 1)",
            (T0, T0 + timedelta(seconds=30)),
        )
        conn.execute(
            "UPDATE chat.messages m SET emote_count = u.n FROM (SELECT message_id, sum(count) "
            "AS n FROM chat.emote_uses GROUP BY 1) u WHERE u.message_id = m.message_id"
        )

    async def refresh() -> None:
        async with await connect(db_url, autocommit=True) as conn:
            await refresh_range(conn, T0, T0 + timedelta(seconds=31))

    asyncio.run(refresh())
    stored = _rows(db_url, "SELECT sum(count) FROM chat.emote_uses")[0][0]
    assert stored == 4
    assert _rows(db_url, "SELECT emote_uses FROM chat.activity_1m") == [(stored,)]
    assert _rows(db_url, "SELECT emote_uses FROM chat.activity_1h") == [(stored,)]
    assert _rows(db_url, "SELECT sum(emote_uses) FROM chat.chatters_1d") == [(stored,)]
    assert _rows(db_url, "SELECT sum(uses) FROM chat.emotes_1m") == [(stored,)]


# -- an existing database ---------------------------------------------------------------------


def _seed_login_only(url: str) -> int:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO chat.channels (id, platform, name) OVERRIDING SYSTEM VALUE "
            "VALUES (1, 'twitch', 'nymn')"
        )
        for i, line in enumerate(TXT):
            stamp, rest = line[1:].split(" UTC] ", 1)
            name, text = rest.split(": ", 1)
            login = name.lower() if name.isascii() else None
            conn.execute(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, "
                "user_name, text, kind) VALUES (%s, 1, %s, %s, %s, %s, %s)",
                (
                    datetime.fromisoformat(stamp).replace(tzinfo=UTC),
                    f"m{i}",
                    login,
                    name,
                    text,
                    "submysterygift" if i == 3 else "chat",
                ),
            )
    return 1


def test_migrating_0011_to_0012_corrects_existing_aggregates(empty_db_url: str) -> None:
    upto_11 = [m for m in load_migrations() if m.version <= 11]
    asyncio.run(run_migrations(empty_db_url, timescaledb="off", migrations=upto_11))
    channel = _seed_login_only(empty_db_url)

    async def refresh() -> None:
        async with await connect(empty_db_url) as conn:
            await refresh_pending(conn)

    asyncio.run(refresh())
    # What 0011 gives: one "chatter" a minute, nobody in an hour, and no subs.
    assert _rows(empty_db_url, "SELECT chatters, subs FROM chat.activity_1m ORDER BY bucket") == [
        (1, 0),
        (1, 0),
        (1, 0),
    ]
    assert _rows(empty_db_url, "SELECT chat.unique_chatters('{nymn}', %s, %s)", T0, T0 + timedelta(hours=2)) == [(1,)]  # fmt: skip

    report = asyncio.run(run_migrations(empty_db_url, timescaledb="off"))
    assert 12 in report.applied
    assert _chatter_figures(empty_db_url, channel) == EXPECTED
    assert _rows(empty_db_url, "SELECT sum(subs) FROM chat.activity_1h") == [(1,)]
    assert _rows(empty_db_url, "SELECT count(*) FROM chat.aggregate_invalidations") == [(0,)]


@pytest.mark.timescaledb
def test_timescaledb_migrating_0011_to_0012_corrects_existing_aggregates(
    ts_empty_db_url: str,
) -> None:
    upto_11 = [m for m in load_migrations() if m.version <= 11]
    asyncio.run(run_migrations(ts_empty_db_url, compress_after=None, migrations=upto_11))
    channel = _seed_login_only(ts_empty_db_url)
    asyncio.run(_refresh(ts_empty_db_url))
    assert _rows(ts_empty_db_url, "SELECT max(chatters) FROM chat.activity_1m") == [(1,)]
    asyncio.run(run_migrations(ts_empty_db_url, compress_after=None))
    assert _chatter_figures(ts_empty_db_url, channel) == EXPECTED
    with psycopg.connect(ts_empty_db_url) as conn:
        jobs = {
            r[0]
            for r in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
            )
        }
        caggs = {
            r[0]
            for r in conn.execute(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            )
        }
    assert len(jobs) == len(caggs) == 9


@pytest.mark.timescaledb
def test_timescaledb_login_only_chatters_subs_and_emote_backfill(ts_empty_db_url: str) -> None:
    asyncio.run(run_migrations(ts_empty_db_url, compress_after=None))
    channel = _seed_login_only(ts_empty_db_url)
    _insert_kinds(ts_empty_db_url, channel)
    asyncio.run(_refresh(ts_empty_db_url))
    minute0 = _rows(
        ts_empty_db_url,
        "SELECT chatters, subs FROM chat.activity_1m WHERE bucket = %s",
        T0,
    )
    # the TXT minute (3 chatters, one submysterygift) and one user and row per kind
    kinds = len(SUBSCRIPTION_KINDS) + len(NOT_SUBS)
    assert minute0 == [(3 + kinds, 1 + len(SUBSCRIPTION_KINDS))]
    assert _rows(
        ts_empty_db_url,
        "SELECT chat.unique_chatters('{nymn}', %s, %s)",
        T0,
        T0 + timedelta(hours=2),
    ) == [(5 + kinds,)]
