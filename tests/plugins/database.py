"""The database plugin: real PostgreSQL databases, fresh for each test.

``CHATPULSE_TEST_DATABASE_URL`` names a server and a database we may connect to with the right
to create databases (default: the local PostgreSQL).  Each integration test gets its own
database cloned from a migrated template.  TimescaleDB tests use
``CHATPULSE_TEST_TIMESCALEDB_URL`` (or the main server when it preloads timescaledb) and skip
with the reason otherwise.

Every database a run creates is named ``<prefix><run>_…``: the prefix is
``CHATPULSE_TEST_DB_PREFIX`` (default ``chatpulse_test_``), ``<run>`` is this run's id.  A run
holds a PostgreSQL advisory lock on its id while it lasts, and drops its databases when it ends
(the session template included).  At start it also drops the databases of runs with the same
prefix whose lock is free (killed runs), never those of a run still going: so ``make test`` can
share a server with other runs and other work.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from chatpulse.core.migrate import run_migrations

ADMIN_URL = os.environ.get(
    "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

DB_PREFIX = os.environ.get("CHATPULSE_TEST_DB_PREFIX", "chatpulse_test_")
if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", DB_PREFIX):
    raise pytest.UsageError(
        f"CHATPULSE_TEST_DB_PREFIX={DB_PREFIX!r}: use 1-40 lower-case letters, digits and _"
    )
#: This run's id: 8 hex digits, a positive int4 (the key of its advisory lock).
RUN_ID = f"{secrets.randbelow(2**31):08x}"
#: First key of the two-key advisory locks that mark a live run ("cpts").
LOCK_CLASS = 0x63707473


def run_prefix(run_id: str = RUN_ID) -> str:
    """The name prefix of every database of run ``run_id``."""
    return f"{DB_PREFIX}{run_id}_"


def sweep_databases(conn: psycopg.Connection[tuple[object, ...]], own: str | None) -> list[str]:
    """Drop the prefixed databases of runs whose lock is free, and those of run ``own``.

    ``conn`` is an autocommit connection to the admin database.  Returns the names dropped.
    """
    pattern = re.compile(re.escape(DB_PREFIX) + r"([0-9a-f]{8})_[a-z0-9_]+")
    dropped = []
    names = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
    for name in names:
        m = pattern.fullmatch(str(name))
        if m is None:
            continue
        run = m.group(1)
        if run != own:
            key = int(run, 16)
            free = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key))
            row = free.fetchone()
            if not (row and row[0]):
                continue  # that run is still going
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        dropped.append(str(name))
    return dropped


def with_dbname(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def create_database(admin_url: str, template: str | None = None) -> str:
    """Create a uniquely named database and return its URL."""
    name = f"{run_prefix()}{uuid.uuid4().hex[:12]}"
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
def admin_url() -> Iterator[str]:
    """The admin URL; for the whole run, holds the run's lock and cleans up (see above)."""
    problem = _server_ok(ADMIN_URL)
    if problem:
        pytest.fail(f"CHATPULSE_TEST_DATABASE_URL unreachable ({problem}); start PostgreSQL")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, int(RUN_ID, 16)))
        sweep_databases(conn, own=None)
        yield ADMIN_URL
        sweep_databases(conn, own=RUN_ID)


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
def ts_empty_db_url(admin_url: str) -> Iterator[str]:
    """A fresh empty database on a TimescaleDB server; skips when there is none.  It takes
    ``admin_url`` for the run's lock: on the default server (which may preload timescaledb) a
    concurrent run's sweep must not drop this run's database."""
    admin = timescaledb_admin_url()
    if admin is None:
        pytest.skip(
            "TimescaleDB not available (set CHATPULSE_TEST_TIMESCALEDB_URL to a server "
            "that preloads timescaledb)"
        )
    url = create_database(admin)
    yield url
    drop_database(admin, url)
