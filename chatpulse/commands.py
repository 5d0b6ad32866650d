"""Handlers of the database commands: ``migrate`` and ``forget``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from chatpulse.aggregates import backend_of, refresh_range
from chatpulse.db import connect, database
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
    """Delete every row about one user (by login, any channel); returns rows deleted per table.

    Removes their messages, emote uses, scores, moderation events that target them, and their
    lines in hype moments' sample messages; aggregates are recomputed for the affected range.
    Runs in one transaction: all or nothing.
    """
    login = login.strip().lstrip("@").lower()
    counts: dict[str, int] = {}
    async with await connect(conninfo) as conn:
        async with conn.transaction():
            await conn.execute(
                """
                CREATE TEMP TABLE forget_rows ON COMMIT DROP AS
                SELECT m.channel_id, m.message_id, m.sent_at, m.user_id
                FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
                WHERE m.user_login = %(login)s
                  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
                """,
                {"login": login, "platform": platform},
            )
            cur = await conn.execute("SELECT min(sent_at), max(sent_at) FROM forget_rows")
            span = await cur.fetchone()
            statements: dict[str, str] = {
                "message_scores": """DELETE FROM chat.message_scores s USING forget_rows f
                    WHERE s.channel_id = f.channel_id AND s.message_id = f.message_id
                      AND s.sent_at = f.sent_at""",
                "emote_uses": """DELETE FROM chat.emote_uses e USING forget_rows f
                    WHERE e.channel_id = f.channel_id AND e.message_id = f.message_id
                      AND e.sent_at = f.sent_at""",
                "moderation_events": """DELETE FROM chat.moderation_events
                    WHERE target_login = %(login)s
                       OR target_user_id IN (SELECT user_id FROM forget_rows
                                             WHERE user_id IS NOT NULL)""",
                "messages": """DELETE FROM chat.messages m USING forget_rows f
                    WHERE m.channel_id = f.channel_id AND m.message_id = f.message_id
                      AND m.sent_at = f.sent_at""",
                "hype_moments": """UPDATE chat.hype_moments SET sample_messages = coalesce((
                        SELECT jsonb_agg(x) FROM jsonb_array_elements(sample_messages) x
                        WHERE lower(x->>'user') IS DISTINCT FROM %(login)s::text), '[]'::jsonb)
                    WHERE sample_messages @> jsonb_build_array(jsonb_build_object('user', %(login)s::text))""",
            }
            for table, statement in statements.items():
                cur = await conn.execute(statement, {"login": login})
                counts[table] = cur.rowcount
        if span and span[0] is not None and await backend_of(conn) == "timescaledb":
            await conn.set_autocommit(True)
            await refresh_range(conn, span[0], span[1])
        else:
            await refresh_range(conn, None, None)
    log.info("user forgotten", extra={"user": login, "rows": counts})
    return counts


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse forget --user LOGIN``."""
    with database(settings) as url:
        counts: dict[str, Any] = asyncio.run(forget_user(url, args.user, args.platform))
    print(json.dumps({"user": args.user.lower(), "deleted": counts}))
    return 0
