"""Handlers of the database commands: ``migrate`` and ``forget``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from chatpulse.db import database
from chatpulse.errors import ConfigError
from chatpulse.migrate import MigrationReport, run_migrations
from chatpulse.settings import Settings

__all__ = ["cmd_forget", "cmd_migrate", "forget_user", "migrate"]

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
    """The database part of ``forget`` (see :mod:`chatpulse.forget`); removed rows per place."""
    from chatpulse.forget import forget_in_database

    removed, _ = await forget_in_database(conninfo, login, platform)
    return removed


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse forget --user LOGIN``: database, spool and dead letters; prints the report.

    Exits 1 when a place could not be done now (a spool held by a running process).
    """
    from chatpulse.forget import forget_files, forget_in_database, normalize_login

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
