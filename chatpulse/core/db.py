"""Database access: where the database is, and connections to it.

:func:`database` yields a connection string: the configured URL, or an embedded PostgreSQL
(pgserver) started inside the data directory and stopped on exit when no URL is configured.
One :class:`psycopg_pool.AsyncConnectionPool` per process (:func:`open_pool`).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from chatpulse.core.errors import DatabaseError
from chatpulse.core.settings import Settings, redact_url

__all__ = ["EMBEDDED_DBNAME", "connect", "database", "embedded_server", "open_pool"]

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "chatpulse"
APPLICATION_NAME = "chatpulse"


@contextlib.contextmanager
def embedded_server(pgdata: Path) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL in ``pgdata`` and yield its URL.

    The server is shared by every chatpulse process using the same directory and stopped when
    the last of them exits.  Raises :class:`DatabaseError` when it cannot start.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            pgdata.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises CalledProcessError, OSError, assertion errors
        raise DatabaseError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DBNAME}';")  # noqa: S608 (a constant)
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {EMBEDDED_DBNAME};")
        url = str(server.get_uri(EMBEDDED_DBNAME))
        log.info("embedded database ready", extra={"pgdata": str(pgdata)})
        yield url
    finally:
        server.cleanup()


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield the connection URL to use: the configured one or the embedded server's."""
    if settings.database_url is not None:
        yield settings.database_url.get_secret_value()
        return
    with embedded_server(settings.data_dir / "postgres") as url:
        yield url


async def connect(
    conninfo: str, *, autocommit: bool = False, **kwargs: Any
) -> psycopg.AsyncConnection[Any]:
    """Open one connection; raises :class:`DatabaseError` (URL redacted) when it cannot."""
    try:
        return await psycopg.AsyncConnection.connect(
            conninfo, autocommit=autocommit, application_name=APPLICATION_NAME, **kwargs
        )
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {redact_url(conninfo)}: {exc}") from exc


async def open_pool(
    conninfo: str, *, size: int = 4, name: str = "chatpulse"
) -> AsyncConnectionPool:
    """Open the process's connection pool and wait until one connection works."""
    pool = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=size,
        name=name,
        kwargs={"application_name": f"{APPLICATION_NAME}-{name}"},
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=30)
    except Exception as exc:
        await pool.close()
        raise DatabaseError(f"cannot connect to {redact_url(conninfo)}: {exc}") from exc
    return pool
