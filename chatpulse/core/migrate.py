"""The migration runner: numbered ``.sql`` files in ``sql/`` applied once, in order.

File names are ``NNNN_name.sql`` (both backends), ``NNNN_name.timescaledb.sql`` or
``NNNN_name.postgres.sql`` (one backend).  A version may have one common file or per-backend
files; a version with no file for the active backend is recorded as applied all the same.
A file whose first line is ``-- chatpulse:no-transaction`` runs statement by statement outside
a transaction block (TimescaleDB's continuous aggregates want that) and must therefore be
idempotent (``IF NOT EXISTS``); every other file runs in one transaction with its record.

Two ``chatpulse migrate`` at once are safe: the runner holds a PostgreSQL advisory lock for
the whole run, and the second finds nothing left to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row

from chatpulse.core.contract import READER_RELATIONS, READER_ROLE, READER_VECTOR_RELATIONS
from chatpulse.core.db import connect
from chatpulse.core.errors import MigrationError
from chatpulse.core.queries import load_queries

__all__ = [
    "READER_RELATIONS",
    "READER_ROLE",
    "READER_VECTOR_RELATIONS",
    "Backend",
    "Migration",
    "MigrationReport",
    "detect_backend",
    "load_migrations",
    "run_migrations",
    "split_statements",
]

log = logging.getLogger(__name__)

_Q = load_queries("core")  # sql/queries/core.sql

Backend = Literal["timescaledb", "postgres"]
#: pg_advisory_lock key: the first 8 bytes of sha256("chatpulse.migrate"), fixed forever (the
#: module moved to chatpulse.core; the key did not, so old and new versions still exclude each other).
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"chatpulse.migrate").digest()[:8], "big", signed=True)
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescaledb|postgres))?\.sql$")
_NO_TX = "-- chatpulse:no-transaction"
# Raw chat tables that take the columnstore and retention policies.
_RAW_TABLES = ("messages", "emote_uses", "moderation_events", "message_scores")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file for one backend (or both, ``backend=None``)."""

    version: int
    name: str
    backend: Backend | None
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith(_NO_TX)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(slots=True)
class MigrationReport:
    """What :func:`run_migrations` did."""

    backend: Backend
    applied: list[int]
    current_version: int
    timescaledb_version: str | None
    notices: list[str]


def _sql_dir() -> Any:
    try:
        return resources.files("chatpulse.sql")
    except ModuleNotFoundError:  # source tree without the package-dir mapping
        return Path(__file__).resolve().parent.parent / "sql"


def load_migrations(directory: Any = None) -> list[Migration]:
    """Read every migration file, sorted by version; raises MigrationError on a bad layout."""
    root = directory if directory is not None else _sql_dir()
    found: list[Migration] = []
    for entry in root.iterdir():
        # sql/queries/ holds named queries (chatpulse.core.queries), not migrations.
        if not entry.is_file() or not entry.name.endswith(".sql"):
            continue
        match = _NAME_RE.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file name not understood: {entry.name}")
        version, name, backend = int(match[1]), match[2], match[3]
        found.append(Migration(version, name, backend, entry.read_text(encoding="utf-8")))  # type: ignore[arg-type]
    found.sort(key=lambda m: (m.version, m.backend or ""))
    by_version: dict[int, list[Migration]] = {}
    for migration in found:
        by_version.setdefault(migration.version, []).append(migration)
    for version, files in by_version.items():
        if any(m.backend is None for m in files) and len(files) > 1:
            raise MigrationError(f"migration {version:04d} has a common file and backend files")
        if len({m.backend for m in files}) != len(files):
            raise MigrationError(f"migration {version:04d} has two files for one backend")
    return found


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements on top-level semicolons.

    Understands single-quoted strings, double-quoted identifiers, dollar-quoted bodies
    (``$$ … $$``, ``$tag$ … $tag$``), ``--`` line comments and ``/* */`` block comments, so
    function bodies stay whole.  Empty statements and comment-only pieces are dropped.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(script)
    has_code = False
    while i < n:
        ch = script[i]
        if ch == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            end = n if end == -1 else end
            buf.append(script[i:end])
            i = end
            continue
        if ch == "/" and script.startswith("/*", i):
            end = script.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(script[i:end])
            i = end
            continue
        if ch in ("'", '"'):
            j = i + 1
            while j < n:
                if script[j] == ch:
                    if j + 1 < n and script[j + 1] == ch:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            buf.append(script[i : j + 1])
            has_code = True
            i = j + 1
            continue
        if ch == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", script[i:])
            if tag:
                delim = tag.group(0)
                end = script.find(delim, i + len(delim))
                end = n if end == -1 else end + len(delim)
                buf.append(script[i:end])
                has_code = True
                i = end
                continue
        if ch == ";":
            if has_code:
                statements.append("".join(buf).strip())
            buf, has_code = [], False
            i += 1
            continue
        if not ch.isspace():
            has_code = True
        buf.append(ch)
        i += 1
    if has_code:
        statements.append("".join(buf).strip())
    return statements


async def _scalar(conn: psycopg.AsyncConnection[Any], name: str, **params: Any) -> Any:
    """The first column of the first row of query ``name`` (None: no row)."""
    cur = conn.cursor(row_factory=scalar_row)
    await cur.execute(_Q[name], params or None)
    return await cur.fetchone()


async def _names(conn: psycopg.AsyncConnection[Any], name: str, **params: Any) -> list[str]:
    """The first column of every row of query ``name``."""
    cur = conn.cursor(row_factory=scalar_row)
    await cur.execute(_Q[name], params or None)
    return [str(v) for v in await cur.fetchall()]


async def detect_backend(conn: psycopg.AsyncConnection[Any], wanted: str = "auto") -> Backend:
    """Decide the backend: TimescaleDB when installed or loadable (``wanted`` = auto/on/off).

    ``CREATE EXTENSION timescaledb`` on a server that has the files but does not preload the
    library is FATAL and closes the connection, so "available" means listed in
    ``pg_available_extensions`` *and* named in ``shared_preload_libraries``.
    """
    if wanted == "off":
        return "postgres"
    if await _scalar(conn, "timescaledb_version"):
        return "timescaledb"
    available = await _scalar(conn, "timescaledb_available")
    preload = str(await _scalar(conn, "preload_libraries"))
    loadable = bool(available) and "timescaledb" in preload
    if loadable:
        try:
            await conn.execute(_Q["create_timescaledb"])
            return "timescaledb"
        except psycopg.Error as exc:
            if wanted == "on":
                raise MigrationError(f"cannot create the timescaledb extension: {exc}") from exc
            log.warning(
                "timescaledb available but not creatable; using plain PostgreSQL",
                extra={"error": str(exc).strip()},
            )
            return "postgres"
    if wanted == "on":
        why = "not installed" if not available else "not in shared_preload_libraries"
        raise MigrationError(f"timescaledb=on but the extension is {why} on this server")
    return "postgres"


_CREATE_RECORD = """
CREATE SCHEMA IF NOT EXISTS chat;
CREATE TABLE IF NOT EXISTS chat.schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    backend     text        NOT NULL,
    checksum    text,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class _Applied:
    """One row of ``chat.schema_migrations``."""

    version: int
    name: str
    backend: str
    checksum: str | None


async def _recorded(conn: psycopg.AsyncConnection[Any]) -> dict[int, _Applied]:
    cur = conn.cursor(row_factory=class_row(_Applied))
    await cur.execute(_Q["applied_migrations"])
    return {row.version: row for row in await cur.fetchall()}


async def run_migrations(
    conninfo: str,
    *,
    timescaledb: str = "auto",
    compress_after: str | None = None,
    retention: str | None = None,
    reader_password: str | None = None,
    reader_statement_timeout: str = "30s",
    reader_idle_timeout: str = "60s",
    migrations: list[Migration] | None = None,
) -> MigrationReport:
    """Create or upgrade the ``chat`` schema; idempotent and safe to run concurrently.

    Also sets the TimescaleDB columnstore and retention policies to the given intervals
    (``None`` removes them) and creates or updates the read-only role ``chatpulse_reader``
    when the connecting role may, with its guard rails (see :func:`_ensure_reader`).  Raises :class:`MigrationError` when a migration fails
    (that migration is rolled back; earlier ones stay) or the database is newer than this code.
    """
    migrations = load_migrations() if migrations is None else migrations
    notices: list[str] = []
    conn = await connect(conninfo, autocommit=True)
    conn.add_notice_handler(
        lambda d: log.debug("postgres notice", extra={"notice": d.message_primary})
    )
    try:
        await conn.execute(_Q["lock_migrations"], {"key": _LOCK_KEY})
        try:
            async with conn.transaction():
                await conn.execute(_CREATE_RECORD)
            recorded = await _recorded(conn)
            backends = {r.backend for r in recorded.values()}
            if backends:
                backend: Backend = "timescaledb" if "timescaledb" in backends else "postgres"
                if backend == "postgres" and timescaledb == "on":
                    raise MigrationError(
                        "timescaledb=on but this database was created for plain PostgreSQL; "
                        "migrate the data into a fresh TimescaleDB database instead"
                    )
                if backend == "timescaledb":
                    await conn.execute(_Q["create_timescaledb"])
            else:
                backend = await detect_backend(conn, timescaledb)
            known = {m.version for m in migrations}
            newer = sorted(v for v in recorded if v not in known)
            if newer and max(newer) > max(known, default=0):
                raise MigrationError(
                    f"the database is at schema version {max(newer)}, newer than this chatpulse "
                    f"knows ({max(known, default=0)}); upgrade chatpulse"
                )
            applied: list[int] = []
            for version in sorted(known):
                if version in recorded:
                    _warn_changed(version, recorded[version], migrations, backend)
                    continue
                files = [m for m in migrations if m.version == version]
                chosen = next((m for m in files if m.backend in (None, backend)), None)
                await _apply(conn, version, files, chosen, backend)
                applied.append(version)
                log.debug("migration applied", extra={"version": version, "backend": backend})
            ts_version = None
            if backend == "timescaledb":
                ts_version = await _scalar(conn, "timescaledb_version")
                notices += await _set_policies(conn, compress_after, retention)
            notices += await _ensure_reader(
                conn, reader_password, reader_statement_timeout, reader_idle_timeout
            )
            current = max(known, default=0)
            if applied:  # one line for the whole upgrade; each version at debug level
                log.info(
                    "schema migrated",
                    extra={"version": current, "applied": applied, "backend": backend},
                )
            return MigrationReport(backend, applied, current, ts_version, notices)
        finally:
            await conn.execute(_Q["unlock_migrations"], {"key": _LOCK_KEY})
    finally:
        await conn.close()


def _warn_changed(
    version: int,
    record: _Applied,
    migrations: list[Migration],
    backend: Backend,
) -> None:
    current = next(
        (m for m in migrations if m.version == version and m.backend in (None, backend)), None
    )
    if current is not None and record.checksum and record.checksum != current.checksum:
        log.warning(
            "an applied migration file has changed since it ran; the change is not applied",
            extra={"version": version, "migration": current.name},
        )


async def _apply(
    conn: psycopg.AsyncConnection[Any],
    version: int,
    files: list[Migration],
    chosen: Migration | None,
    backend: Backend,
) -> None:
    name = chosen.name if chosen else files[0].name
    record = _Q["record_migration"]
    args = {
        "version": version,
        "name": name,
        "backend": backend,
        "checksum": chosen.checksum if chosen else None,
    }
    try:
        if chosen is None:
            await conn.execute(record, args)
        elif chosen.transactional:
            async with conn.transaction():
                await conn.execute(chosen.sql.encode())
                await conn.execute(record, args)
        else:
            for statement in split_statements(chosen.sql):
                await conn.execute(statement.encode())
            await conn.execute(record, args)
    except psycopg.Error as exc:
        raise MigrationError(f"migration {version:04d}_{name} failed: {exc}") from exc


async def _set_policies(
    conn: psycopg.AsyncConnection[Any], compress_after: str | None, retention: str | None
) -> list[str]:
    """Make the columnstore and retention policies match the settings (TimescaleDB only)."""
    notices: list[str] = []
    license_ = await _scalar(conn, "timescaledb_license")
    if license_ == "apache":
        return [
            "timescaledb runs under the Apache license: columnstore, refresh and retention "
            "policies need the Community license; aggregates are refreshed by chatpulse"
        ]
    for table in _RAW_TABLES:
        rel = f"chat.{table}"
        # Replace rather than keep: the setting may have changed since the last migrate.
        await conn.execute(_Q["remove_columnstore_policy"], {"rel": rel})
        if compress_after:
            await conn.execute(_Q["add_columnstore_policy"], {"rel": rel, "after": compress_after})
        await conn.execute(_Q["remove_retention_policy"], {"rel": rel})
        if retention:
            await conn.execute(_Q["add_retention_policy"], {"rel": rel, "after": retention})
    if retention:
        too_short = await _scalar(conn, "retention_too_short", retention=retention)
        if too_short:
            notices.append(
                f"retention {retention} is shorter than the aggregates' 7-day refresh window: "
                "aggregates of dropped chunks may be emptied by a later refresh"
            )
    return notices


async def _ensure_reader(
    conn: psycopg.AsyncConnection[Any],
    password: str | None,
    statement_timeout: str = "30s",
    idle_timeout: str = "60s",
) -> list[str]:
    """Create/refresh the read-only role Grafana uses, or explain why not.

    Privileges do the work (``default_transaction_read_only`` alone can be switched off by
    the role itself): SELECT on :data:`READER_RELATIONS` only, no temporary tables
    (:func:`_deny_temp`), and, in this database, ``statement_timeout``,
    ``idle_in_transaction_session_timeout`` and ``standard_conforming_strings = on`` (so that a
    backslash in a dashboard variable can never end a string literal).
    """
    may = await _scalar(conn, "may_create_roles")
    exists = await _scalar(conn, "role_exists", role=READER_ROLE)
    role = sql.Identifier(READER_ROLE)
    if not exists:
        if not may:
            return [
                f"role {READER_ROLE} not created: the connecting role may not create roles; "
                f"ask an administrator to run CREATE ROLE {READER_ROLE} LOGIN and re-run migrate"
            ]
        try:
            await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
        except psycopg.errors.DuplicateObject:
            pass  # another database's migrate created it a moment ago (roles are cluster-wide)
        except psycopg.errors.UniqueViolation:
            pass
    notices: list[str] = []
    database = sql.Identifier(str(await _scalar(conn, "current_database")))
    if may:
        per_database = {
            "statement_timeout": statement_timeout,
            "idle_in_transaction_session_timeout": idle_timeout,
            "standard_conforming_strings": "on",
        }
        statements = [sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role)]
        if password:
            statements.insert(
                0, sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
            )
        statements += [
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                role, database, sql.Identifier(name), sql.Literal(value)
            )
            for name, value in per_database.items()
        ]
        for statement in statements:
            # "tuple concurrently updated": another migrate set the same value just now.
            with contextlib.suppress(psycopg.errors.InternalError_):
                await conn.execute(statement)
    else:
        notices.append(
            f"{READER_ROLE}: timeouts not set (the connecting role may not alter roles); ask an "
            f"administrator to run ALTER ROLE {READER_ROLE} IN DATABASE ... SET "
            f"statement_timeout = '{statement_timeout}'"
        )
    try:
        async with conn.transaction():
            await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA chat TO {}").format(role))
            # Earlier versions granted every table and every future one: take that back.
            await conn.execute(
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA chat FROM {}").format(role)
            )
            await conn.execute(
                sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA chat FROM {}").format(role)
            )
            await conn.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA chat REVOKE SELECT ON TABLES FROM {}"
                ).format(role)
            )
            for name in await _names(conn, "reader_relations", names=list(READER_RELATIONS)):
                await conn.execute(
                    sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier("chat", name), role)
                )
    except psycopg.Error as exc:
        notices.append(f"could not grant read access to {READER_ROLE}: {exc}".strip())
    notices += await _deny_temp(conn, database)
    if await _scalar(conn, "may_create_in_public", role=READER_ROLE):
        notices.append(
            f"{READER_ROLE} may create tables in schema public (PostgreSQL before 15 grants "
            "that to PUBLIC); consider REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        )
    return notices


async def _deny_temp(conn: psycopg.AsyncConnection[Any], database: sql.Identifier) -> list[str]:
    """Take TEMPORARY on this database from the reader, and from nobody else.

    A temporary table needs the database's TEMPORARY privilege, which every role has through
    PUBLIC unless that grant is revoked, and a privilege PUBLIC holds cannot be denied to one
    role.  So, only while the reader still has it: every other existing role (the roles the
    reader is a member of excepted, superusers need nothing) is granted TEMPORARY explicitly,
    then PUBLIC's grant is revoked.  Existing roles keep what they had; a role created later
    needs ``GRANT TEMPORARY ON DATABASE ... TO it`` (README).  Needs the database's owner or a
    superuser; otherwise a notice says what to ask for.
    """
    if not await _scalar(conn, "has_temporary", role=READER_ROLE):
        return []
    try:
        async with conn.transaction():
            for name in await _names(conn, "roles_with_temporary", role=READER_ROLE):
                await conn.execute(
                    sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
                        database, sql.Identifier(name)
                    )
                )
            for grantee in (sql.SQL("PUBLIC"), sql.Identifier(READER_ROLE)):
                await conn.execute(
                    sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(database, grantee)
                )
    except psycopg.Error as exc:
        return [f"{READER_ROLE} may still create temporary tables: {exc}".strip()]
    if await _scalar(conn, "has_temporary", role=READER_ROLE):
        return [f"{READER_ROLE} may still create temporary tables through a role it is a member of"]
    return []
