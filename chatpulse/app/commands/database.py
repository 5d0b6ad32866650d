"""Handlers of the database commands: ``migrate`` and ``forget``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

import psycopg
import tenacity

from chatpulse.core.db import database
from chatpulse.core.errors import ConfigError, DatabaseError, MigrationError
from chatpulse.core.migrate import MigrationReport, run_migrations
from chatpulse.core.settings import Settings, redact_url

__all__ = ["cmd_forget", "cmd_migrate", "forget_user", "migrate", "migrate_when_reachable"]

log = logging.getLogger(__name__)


async def migrate(settings: Settings, url: str) -> MigrationReport:
    """Run the migrations with the settings' backend, policies and reader password.

    Every command that writes calls this first, so a fresh database just works.
    """
    password = settings.reader_password.get_secret_value() if settings.reader_password else None
    return await run_migrations(
        url,
        timescaledb=settings.timescaledb,
        compress_after=settings.compress_after,
        retention=settings.retention,
        reader_password=password,
        reader_statement_timeout=settings.reader_statement_timeout,
        reader_idle_timeout=settings.reader_idle_in_transaction_timeout,
    )


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database cannot be reached now" (so waiting may help).

    A connection that fails or breaks, also in the middle of a migration, is; a migration the
    database rejects, or a schema newer than this code, is not.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (psycopg.OperationalError, psycopg.InterfaceError, OSError)):
            return True
        if isinstance(seen, DatabaseError) and not isinstance(seen, MigrationError):
            return True  # chatpulse.core.db.connect: "cannot connect to …"
        seen = seen.__cause__
    return False


async def migrate_when_reachable(
    settings: Settings, url: str, *, max_wait_s: float = 5.0
) -> MigrationReport:
    """:func:`migrate`, waiting for a database that cannot be reached yet.

    Tries again with jittered exponential backoff (tenacity, at most ``max_wait_s`` between
    tries) for as long as it takes; logs one warning when it starts waiting and one line when
    the schema is ready, not a line per try.  A migration error is raised at once.  The
    collector runs this beside collection, which spools meanwhile.
    """
    waiting: list[str] = []

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if not waiting:
            error = state.outcome.exception() if state.outcome else None
            waiting.append(str(error))
            log.warning(
                "database unreachable: waiting for it to check the schema; "
                "collected chat is spooled meanwhile",
                extra={"database": redact_url(url), "error": str(error)},
            )

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_unreachable),
        wait=tenacity.wait_random_exponential(multiplier=0.25, max=max_wait_s),
        before_sleep=before_sleep,
        reraise=True,
    )
    report: MigrationReport = await retrying(migrate, settings, url)
    if waiting:
        log.warning("database reachable: schema ready", extra={"version": report.current_version})
    return report


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse migrate``: create or upgrade the schema, print what was done."""
    with database(settings) as url:
        report = asyncio.run(migrate(settings, url))
    for notice in report.notices:
        print(f"notice: {notice}")
    ts = f" (TimescaleDB {report.timescaledb_version})" if report.timescaledb_version else ""
    if report.applied:
        applied = ", ".join(f"{v:04d}" for v in report.applied)
        print(
            f"schema at version {report.current_version} on {report.backend}{ts}; applied {applied}"
        )
    else:
        print(f"schema at version {report.current_version} on {report.backend}{ts}; nothing to do")
    return 0


async def forget_user(conninfo: str, login: str, platform: str | None = None) -> dict[str, int]:
    """The database part of ``forget`` (see :mod:`chatpulse.app.forget`); removed rows per place."""
    from chatpulse.app.forget import forget_in_database

    removed, _ = await forget_in_database(conninfo, login, platform)
    return removed


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse forget --user LOGIN``: database, spool and dead letters; prints the report.

    Exits 1 when a place could not be done now (a spool held by a running process).
    """
    from chatpulse.app.forget import forget_files, forget_in_database, normalize_login

    login = normalize_login(args.user)
    if not login:
        raise ConfigError("forget --user: give a login")
    with database(settings) as url:
        asyncio.run(migrate(settings, url))  # the tombstone table may be new
        removed, ids = asyncio.run(forget_in_database(url, login, args.platform))
    files, skipped = forget_files(settings.data_dir, login, ids, args.platform)
    removed.update(files)
    report = {"user": login, "platform": args.platform, "user_ids": ids, "deleted": removed}
    if skipped:
        report["skipped"] = skipped
    print(json.dumps(report))
    log.info("user forgotten", extra={"user": login, "rows": removed})
    for line in skipped:
        print(f"not forgotten yet: {line}", file=sys.stderr)
    return 1 if skipped else 0
