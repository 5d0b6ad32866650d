"""Shared fixtures: real PostgreSQL databases, fresh for each test.

``CHATPULSE_TEST_DATABASE_URL`` names a server and a database we may connect to with the right
to create databases (default: the local PostgreSQL).  Each integration test gets its own
database cloned from a migrated template.  TimescaleDB tests use
``CHATPULSE_TEST_TIMESCALEDB_URL`` (or the main server when it preloads timescaledb) and skip
with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from chatpulse.migrate import run_migrations

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ADMIN_URL = os.environ.get(
    "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def with_dbname(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def create_database(admin_url: str, template: str | None = None) -> str:
    """Create a uniquely named database and return its URL."""
    name = f"chatpulse_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        tmpl = f" TEMPLATE {template}" if template else ""
        conn.execute(f"CREATE DATABASE {name}{tmpl}")
    return with_dbname(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _server_ok(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc)


def timescaledb_admin_url() -> str | None:
    """The URL of a server with TimescaleDB preloaded, or None."""
    candidates = [os.environ.get("CHATPULSE_TEST_TIMESCALEDB_URL"), ADMIN_URL]
    for url in candidates:
        if not url:
            continue
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                row = conn.execute(
                    "SELECT current_setting('shared_preload_libraries') LIKE '%%timescaledb%%'"
                ).fetchone()
                if row and row[0]:
                    return url
        except psycopg.Error:
            continue
    return None


@pytest.fixture(scope="session")
def admin_url() -> str:
    problem = _server_ok(ADMIN_URL)
    if problem:
        pytest.fail(f"CHATPULSE_TEST_DATABASE_URL unreachable ({problem}); start PostgreSQL")
    return ADMIN_URL


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A migrated database (plain PostgreSQL backend) that per-test databases are cloned from."""
    url = create_database(admin_url)
    asyncio.run(run_migrations(url, timescaledb="off"))
    name = urlsplit(url).path.lstrip("/")
    yield name
    drop_database(admin_url, url)


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh migrated database for one test."""
    url = create_database(admin_url, template=template_db)
    yield url
    drop_database(admin_url, url)


@pytest.fixture
def empty_db_url(admin_url: str) -> Iterator[str]:
    """A fresh empty database for one test."""
    url = create_database(admin_url)
    yield url
    drop_database(admin_url, url)


@pytest.fixture
def ts_empty_db_url() -> Iterator[str]:
    """A fresh empty database on a TimescaleDB server; skips when there is none."""
    admin = timescaledb_admin_url()
    if admin is None:
        pytest.skip(
            "TimescaleDB not available (set CHATPULSE_TEST_TIMESCALEDB_URL to a server "
            "that preloads timescaledb)"
        )
    url = create_database(admin)
    yield url
    drop_database(admin, url)
