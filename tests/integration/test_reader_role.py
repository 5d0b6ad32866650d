"""The read-only role Grafana uses, logged in for real: privileges, not good manners, hold it.

``default_transaction_read_only`` is only a default that the role may switch off itself, so
every attempt below is also made with it switched off.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from chatpulse.core.contract import READER_VECTOR_RELATIONS
from chatpulse.core.migrate import READER_RELATIONS, READER_ROLE, run_migrations

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "reader-secret"
INTERNAL = (
    "schema_migrations",
    "aggregate_invalidations",
    "detector_state",
    "scorer_progress",
    "scoring_claims",
    "scoring_failures",
    "forgotten_users",
    "vods",
)


def as_reader(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{READER_ROLE}:{PASSWORD}@{host}{port}"))


@pytest.fixture
def reader_url(db_url: str) -> Iterator[str]:
    """The test database migrated with short guard rails, and a login URL for the reader."""
    asyncio.run(
        run_migrations(
            db_url,
            timescaledb="off",
            reader_password=PASSWORD,
            reader_statement_timeout="500ms",
            reader_idle_timeout="1s",
        )
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO chat.channels (name) VALUES ('nymn')")
    yield as_reader(db_url)


def _refused(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    conn.rollback()


def test_the_reader_logs_in_and_reads_every_contract_relation(reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (READER_ROLE,)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("500ms",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("1s",)
        assert conn.execute("SHOW standard_conforming_strings").fetchone() == ("on",)
        for name in READER_RELATIONS:
            exists = conn.execute("SELECT to_regclass(%s)", (f"chat.{name}",)).fetchone()
            if name in READER_VECTOR_RELATIONS and exists == (None,):
                continue  # created only where pgvector is available
            conn.execute(f"SELECT * FROM chat.{name} LIMIT 1")
        assert conn.execute("SELECT name FROM chat.channels").fetchall() == [("nymn",)]
        conn.execute("SELECT chat.unique_chatters('{nymn}', now() - interval '1 day', now())")


def test_the_reader_cannot_write_even_with_read_only_switched_off(reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)
        conn.rollback()
        _refused(conn, "INSERT INTO chat.channels (name) VALUES ('x')")
        _refused(conn, "UPDATE chat.channels SET display_name = 'x'")
        _refused(conn, "DELETE FROM chat.messages")
        _refused(conn, "TRUNCATE chat.hype_moments")
        _refused(conn, "CREATE TABLE chat.mine (x int)")
        _refused(conn, "CREATE TABLE public.mine (x int)")
        _refused(conn, "SELECT chat.refresh_aggregates()")


def test_the_reader_cannot_create_temporary_tables(reader_url: str) -> None:
    # A read-only transaction refuses CREATE TEMP TABLE, but the role may switch that off:
    # only the missing TEMPORARY privilege stops it then.
    with psycopg.connect(reader_url) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        _refused(conn, "CREATE TEMP TABLE scratch (x int)")
        _refused(conn, "CREATE TEMP TABLE scratch AS SELECT * FROM chat.channels")


def test_the_reader_cannot_read_internal_state(reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        for name in INTERNAL:
            _refused(conn, f"SELECT * FROM chat.{name} LIMIT 1")


def test_a_long_query_hits_the_statement_timeout(reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(30)")
        assert time.monotonic() - started < 20


def test_an_idle_transaction_is_ended_by_the_server(db_url: str, reader_url: str) -> None:
    conn = psycopg.connect(reader_url)
    try:
        conn.execute("SELECT 1")  # a transaction is now open and idle
        pid = conn.info.backend_pid
        with psycopg.connect(db_url, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                assert time.monotonic() < deadline, "idle transaction not ended within 30 s"
                admin.execute("SELECT pg_sleep(0.1)")
        # PostgreSQL 14+ says why (25P03); the connection is gone either way.
        with pytest.raises(
            (psycopg.errors.IdleInTransactionSessionTimeout, psycopg.OperationalError)
        ):
            conn.execute("SELECT 1")
        assert conn.closed
    finally:
        conn.close()


def test_other_roles_keep_temporary_tables(admin_url: str, db_url: str) -> None:
    """TEMPORARY is taken from PUBLIC, so every existing role gets it back explicitly."""
    other = f"chatpulse_test_app_{uuid.uuid4().hex[:8]}"
    dbname = urlsplit(db_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {other} LOGIN")
    try:
        asyncio.run(run_migrations(db_url, timescaledb="off"))
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT has_database_privilege(%s, current_database(), 'TEMPORARY'), "
                "has_database_privilege(%s, current_database(), 'TEMPORARY')",
                (other, READER_ROLE),
            ).fetchone()
            assert row == (True, False)
            again = asyncio.run(run_migrations(db_url, timescaledb="off"))
            assert not [n for n in again.notices if "temporary" in n]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON DATABASE {dbname} FROM {other}")
            conn.execute(f"DROP ROLE {other}")


def test_reader_relations_are_the_readme_contract() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The SQL contract", 1)[1].split("\n## ", 1)[0]
    listed = {
        name
        for row in section.splitlines()
        if row.startswith("| `chat.")
        for name in re.findall(r"`chat\.(\w+)`", row.split("|")[1])
        if f"chat.{name}(" not in row.split("|")[1]
    }
    assert listed == set(READER_RELATIONS)
