"""The migration runner against the real PostgreSQL (and TimescaleDB when present)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from chatpulse.app.commands.database import forget_user
from chatpulse.core.aggregates import refresh_pending, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.migrate import load_migrations, run_migrations
from tests.schema_description import describe_schema

EXPECTED = (Path(__file__).parent / "expected_schema.txt").read_text().splitlines()
LATEST = max(m.version for m in load_migrations())


def _snapshot(url: str) -> list[tuple[object, ...]]:
    """Everything a re-run could change: relations, columns, indexes, triggers, records."""
    with psycopg.connect(url) as conn:
        rels = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'chat' ORDER BY 1"
        ).fetchall()
        trig = conn.execute(
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'chat' ORDER BY 1"
        ).fetchall()
        recs = conn.execute(
            "SELECT version, name, backend, checksum, applied_at FROM chat.schema_migrations ORDER BY 1"
        ).fetchall()
    return [*rels, *trig, *recs]


def test_migrate_empty_database_then_again_changes_nothing(empty_db_url: str) -> None:
    first = asyncio.run(run_migrations(empty_db_url, timescaledb="off"))
    assert first.applied == sorted({m.version for m in load_migrations()})
    assert first.current_version == LATEST
    before = _snapshot(empty_db_url)
    second = asyncio.run(run_migrations(empty_db_url, timescaledb="off"))
    assert second.applied == []
    assert _snapshot(empty_db_url) == before


def test_schema_equals_expected_description_on_plain_postgres(empty_db_url: str) -> None:
    asyncio.run(run_migrations(empty_db_url, timescaledb="off"))
    assert describe_schema(empty_db_url) == EXPECTED


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chatpulse.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_two_concurrent_migrate_processes_apply_the_schema_once(
    empty_db_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CHATPULSE_DATABASE_URL": empty_db_url,
        "CHATPULSE_TIMESCALEDB": "off",
        "CHATPULSE_DATA_DIR": str(tmp_path),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chatpulse.app.cli", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted(out for out, _ in outs)
    assert any("nothing to do" in s for s in said), said
    assert any("applied 0001" in s for s in said), said
    with psycopg.connect(empty_db_url) as conn:
        versions = [
            r[0] for r in conn.execute("SELECT version FROM chat.schema_migrations ORDER BY 1")
        ]
    assert versions == sorted({m.version for m in load_migrations()})
    assert describe_schema(empty_db_url) == EXPECTED


def test_migration_records_backend_and_refuses_newer_schema(empty_db_url: str) -> None:
    asyncio.run(run_migrations(empty_db_url, timescaledb="off"))
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        backends = {r[0] for r in conn.execute("SELECT backend FROM chat.schema_migrations")}
        conn.execute(
            "INSERT INTO chat.schema_migrations (version, name, backend) VALUES (9999, 'future', 'postgres')"
        )
    assert backends == {"postgres"}
    with pytest.raises(Exception, match="newer than this chatpulse"):
        asyncio.run(run_migrations(empty_db_url, timescaledb="off"))


def test_timescaledb_on_without_extension_fails_clearly(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as conn:
        preloaded = conn.execute(
            "SELECT current_setting('shared_preload_libraries') LIKE '%%timescaledb%%'"
        ).fetchone()
    if preloaded and preloaded[0]:
        pytest.skip("this server has TimescaleDB")
    with pytest.raises(Exception, match="timescaledb=on"):
        asyncio.run(run_migrations(empty_db_url, timescaledb="on"))


def test_reader_role_can_select_and_cannot_write(db_url: str) -> None:
    asyncio.run(run_migrations(db_url, timescaledb="off"))  # re-grant in this clone
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET ROLE chatpulse_reader")
        conn.execute("SELECT count(*) FROM chat.messages")
        conn.execute("SELECT count(*) FROM chat.activity_1m")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO chat.channels (name) VALUES ('x')")


# -- aggregates on plain PostgreSQL ---------------------------------------------------------

T0 = datetime(2024, 1, 6, 16, 19, 0, tzinfo=UTC)


def _coarse(conn: psycopg.Connection[tuple[object, ...]], channel: int) -> list[object]:
    """chatters_1h (per user and hour) and emotes_1m, as the dashboards read them."""
    users = conn.execute(
        "SELECT bucket, user_login, messages, subs FROM chat.chatters_1h WHERE channel_id = %s "
        "ORDER BY bucket, user_login",
        (channel,),
    ).fetchall()
    emotes = conn.execute(
        "SELECT bucket, emote_name, uses, messages FROM chat.emotes_1m WHERE channel_id = %s",
        (channel,),
    ).fetchall()
    return [*users, *emotes]


HOUR = datetime(2024, 1, 6, 16, tzinfo=UTC)
COARSE = [
    (HOUR, "alice", 4, 0),
    (HOUR, "bob", 1, 0),
    (HOUR, "carol", 2, 1),
    (HOUR + timedelta(hours=1), "dave", 1, 0),
    (T0, "forsenParty", 4, 2),
]


def _seed(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute(
        "INSERT INTO chat.channels (platform, name) VALUES ('twitch', 'nymn') RETURNING id"
    ).fetchone()
    assert row is not None
    channel = int(row[0])
    rows = []
    # minute 0: alice x3, bob x1 ; minute 1: alice x1, carol x2 (one a sub) ; hour later: dave
    plan = [
        (0, "alice"),
        (0, "alice"),
        (0, "alice"),
        (0, "bob"),
        (1, "alice"),
        (1, "carol"),
        (1, "carol"),
        (61, "dave"),
    ]
    for i, (minute, user) in enumerate(plan):
        kind = "sub" if (user, minute) == ("carol", 1) and i == 6 else "chat"
        rows.append(
            (
                T0 + timedelta(minutes=minute, seconds=i),
                channel,
                f"m{i}",
                f"id-{user}",
                user,
                "hello " * (i + 1),
                kind,
                2,
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, text, "
            "kind, emote_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute(
            "INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider, count) "
            "VALUES (%s, %s, 'm0', 'e1', 'forsenParty', '7tv', 3), (%s, %s, 'm1', 'e1', 'forsenParty', '7tv', 1)",
            (T0, channel, T0 + timedelta(seconds=1), channel),
        )
    conn.commit()
    return channel


def test_plain_postgres_aggregates_follow_inserts_and_deletes(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        channel = _seed(conn)

    async def refresh() -> int:
        async with await connect(db_url) as aconn:
            return await refresh_pending(aconn)

    assert asyncio.run(refresh()) >= 1
    with psycopg.connect(db_url) as conn:
        minutes = conn.execute(
            "SELECT bucket, messages, chatters, subs, emote_uses FROM chat.activity_1m "
            "WHERE channel_id = %s ORDER BY bucket",
            (channel,),
        ).fetchall()
        hours = conn.execute(
            "SELECT bucket, messages, chatters FROM chat.activity_1h WHERE channel_id = %s ORDER BY bucket",
            (channel,),
        ).fetchall()
        emotes = conn.execute(
            "SELECT bucket, uses, messages FROM chat.emotes_10s WHERE emote_name = 'forsenParty'"
        ).fetchall()
    assert minutes == [
        (T0, 4, 2, 0, 8),
        (T0 + timedelta(minutes=1), 3, 2, 1, 6),
        (T0 + timedelta(minutes=61), 1, 1, 0, 2),
    ]
    # distinct chatters over the hour: alice, bob, carol -- not the sum of minutes (4)
    assert hours == [
        (datetime(2024, 1, 6, 16, tzinfo=UTC), 7, 3),
        (datetime(2024, 1, 6, 17, tzinfo=UTC), 1, 1),
    ]
    assert emotes == [(T0, 4, 2)]
    with psycopg.connect(db_url) as conn:
        assert _coarse(conn, channel) == COARSE

    counts = asyncio.run(forget_user(db_url, "Alice"))
    assert counts["messages"] == 4
    assert counts["emote_uses"] == 2
    with psycopg.connect(db_url) as conn:
        minutes = conn.execute(
            "SELECT messages, chatters FROM chat.activity_1m WHERE channel_id = %s ORDER BY bucket",
            (channel,),
        ).fetchall()
        left = conn.execute(
            "SELECT count(*) FROM chat.messages WHERE user_login = 'alice'"
        ).fetchone()
        emotes = conn.execute("SELECT count(*) FROM chat.emotes_10s").fetchone()
    assert minutes == [(1, 1), (2, 1), (1, 1)]
    assert left == (0,)
    assert emotes == (0,)
    with psycopg.connect(db_url) as conn:
        assert _coarse(conn, channel) == [COARSE[1], COARSE[2], COARSE[3]]
    assert asyncio.run(refresh()) == 0  # nothing pending any more


# -- TimescaleDB ------------------------------------------------------------------------------


@pytest.mark.timescaledb
def test_timescaledb_hypertables_aggregates_and_policies(ts_empty_db_url: str) -> None:
    policies = {"compress_after": "7 days", "retention": "90 days"}
    first = asyncio.run(run_migrations(ts_empty_db_url, **policies))
    assert first.backend == "timescaledb"
    assert asyncio.run(run_migrations(ts_empty_db_url, **policies)).applied == []
    assert describe_schema(ts_empty_db_url) == EXPECTED
    with psycopg.connect(ts_empty_db_url) as conn:
        hypertables = {
            r[0]
            for r in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables "
                "WHERE hypertable_schema = 'chat'"
            )
        }
        caggs = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
                "WHERE view_schema = 'chat'"
            )
        }
        jobs = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
                "WHERE hypertable_schema = 'chat' OR hypertable_name IS NOT NULL"
            )
        }
    assert hypertables == {"messages", "emote_uses", "moderation_events", "message_scores"}
    assert caggs == {
        "chatters_1m": False,
        "activity_1m": False,
        "activity_1h": False,
        "sentiment_1m": False,
        "emotes_10s": False,
        "chatters_1h": False,
        "chatters_6h": False,
        "chatters_1d": False,
        "emotes_1m": False,
    }
    for view in caggs:
        assert ("policy_refresh_continuous_aggregate", view) in jobs
    for table in hypertables:
        assert ("policy_compression", table) in jobs
        assert ("policy_retention", table) in jobs


@pytest.mark.timescaledb
def test_timescaledb_aggregates_match_plain_postgres(ts_empty_db_url: str) -> None:
    asyncio.run(run_migrations(ts_empty_db_url, compress_after=None, retention=None))
    with psycopg.connect(ts_empty_db_url) as conn:
        channel = _seed(conn)
        jobs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        ).fetchone()
    assert jobs == (0,)

    async def refresh() -> None:
        async with await connect(ts_empty_db_url, autocommit=True) as aconn:
            await refresh_range(aconn, T0, T0 + timedelta(hours=2))

    asyncio.run(refresh())
    with psycopg.connect(ts_empty_db_url) as conn:
        minutes = conn.execute(
            "SELECT bucket, messages, chatters, subs, emote_uses FROM chat.activity_1m "
            "WHERE channel_id = %s ORDER BY bucket",
            (channel,),
        ).fetchall()
        hours = conn.execute(
            "SELECT bucket, messages, chatters FROM chat.activity_1h WHERE channel_id = %s ORDER BY bucket",
            (channel,),
        ).fetchall()
    assert minutes == [
        (T0, 4, 2, 0, 8),
        (T0 + timedelta(minutes=1), 3, 2, 1, 6),
        (T0 + timedelta(minutes=61), 1, 1, 0, 2),
    ]
    assert hours == [
        (datetime(2024, 1, 6, 16, tzinfo=UTC), 7, 3),
        (datetime(2024, 1, 6, 17, tzinfo=UTC), 1, 1),
    ]
    with psycopg.connect(ts_empty_db_url) as conn:
        assert _coarse(conn, channel) == COARSE
