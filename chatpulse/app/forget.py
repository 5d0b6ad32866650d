"""``chatpulse forget --user LOGIN``: one user out of everything chatpulse keeps, for good.

Places, in order:

1. a tombstone in ``chat.forgotten_users`` (case-folded login, and every user id seen with
   it), committed first: from then on the writer drops the user's messages and the moderation
   events against them, whatever brings them (live, replay, gap fill, spool drain);
2. the database: messages (by login or id), their scores, scoring failures and emote uses,
   moderation events against the user, and their lines in hype moments' sample messages;
   then the aggregates are recomputed, which removes the user's ``chatters_*`` rows and their
   share of every count;
3. files in the data directory: the records of each spool (``DATA_DIR/spool/<role>``,
   rewritten with :meth:`collector.spool.Spool.rewrite`) and every line of the dead-letter
   files (``DATA_DIR/dead-letters/*.jsonl*``) that names the user.  A spool that a running
   process holds is skipped, with its dead-letter file: that process's writer already drops
   the user when it drains (1.), and the command exits 1 naming what to run again.

Dead letters are unparsed input, so a line is taken out when the login (case-folded, as a
whole word) or a known user id appears anywhere in it: a short common login may take a few
unrelated diagnostic lines with it, never leave one of the user's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from chatpulse.core.aggregates import backend_of, refresh_range
from chatpulse.core.db import connect
from collector.codec import decode_events, encode_events
from collector.forgotten import Forgotten
from collector.spool import Spool, SpoolLockedError

__all__ = ["ForgetReport", "forget_files", "forget_in_database", "normalize_login"]

log = logging.getLogger(__name__)

_CHATTERS = ("chatters_1m", "chatters_1h", "chatters_6h", "chatters_1d")
_SPOOL_MAX_BYTES = 1 << 62  # the bound of appends; a rewrite appends nothing


def normalize_login(login: str) -> str:
    """``@Bob `` -> ``bob``: how logins are compared everywhere."""
    return login.strip().lstrip("@").casefold()


@dataclass(slots=True)
class ForgetReport:
    """What was removed, per place, and what could not be done now."""

    user: str
    platform: str | None
    user_ids: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


_USER = """
    (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))
    AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)"""

_IDS = """
SELECT m.user_id FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
WHERE lower(m.user_login) = %(login)s AND m.user_id IS NOT NULL
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
UNION
SELECT e.target_user_id FROM chat.moderation_events e JOIN chat.channels c ON c.id = e.channel_id
WHERE lower(e.target_login) = %(login)s AND e.target_user_id IS NOT NULL
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
"""

_DELETES: dict[str, str] = {
    "message_scores": """DELETE FROM chat.message_scores s USING forget_rows f
        WHERE s.channel_id = f.channel_id AND s.message_id = f.message_id
          AND s.sent_at = f.sent_at""",
    "scoring_failures": """DELETE FROM chat.scoring_failures s USING forget_rows f
        WHERE s.channel_id = f.channel_id AND s.message_id = f.message_id
          AND s.sent_at = f.sent_at""",
    "emote_uses": """DELETE FROM chat.emote_uses e USING forget_rows f
        WHERE e.channel_id = f.channel_id AND e.message_id = f.message_id
          AND e.sent_at = f.sent_at""",
    "moderation_events": """DELETE FROM chat.moderation_events e USING chat.channels c
        WHERE c.id = e.channel_id
          AND (lower(e.target_login) = %(login)s OR e.target_user_id = ANY(%(ids)s))
          AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)""",
    "stream_chatters": """DELETE FROM chat.stream_chatters s USING chat.channels c
        WHERE c.id = s.channel_id
          AND (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
               OR s.chatter = 'login:' || %(login)s)
          AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)""",
    "chatter_cluster_members": """DELETE FROM chat.chatter_cluster_members s USING chat.channels c
        WHERE c.id = s.channel_id
          AND (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
               OR s.chatter = 'login:' || %(login)s)
          AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)""",
    "messages": """DELETE FROM chat.messages m USING forget_rows f
        WHERE m.channel_id = f.channel_id AND m.message_id = f.message_id
          AND m.sent_at = f.sent_at""",
}

# Sample lines removed from hype moments (an element per line; the moment itself stays).
_SAMPLES = """
WITH changed AS (
    UPDATE chat.hype_moments h SET sample_messages = coalesce((
        SELECT jsonb_agg(x ORDER BY n) FROM jsonb_array_elements(h.sample_messages)
            WITH ORDINALITY AS t(x, n)
        WHERE lower(x->>'user') IS DISTINCT FROM %(login)s), '[]'::jsonb)
    FROM chat.channels c
    WHERE c.id = h.channel_id AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
      AND EXISTS (SELECT 1 FROM jsonb_array_elements(h.sample_messages) x
                  WHERE lower(x->>'user') = %(login)s)
    RETURNING jsonb_array_length(h.sample_messages) AS left_,
              (SELECT jsonb_array_length(o.sample_messages) FROM chat.hype_moments o
               WHERE o.id = h.id) AS before_
)
SELECT coalesce(sum(before_ - left_), 0) FROM changed
"""


async def _count_chatters(conn: Any, args: dict[str, Any]) -> dict[str, int]:
    counts = {}
    for view in _CHATTERS:
        query = sql.SQL(
            "SELECT count(*) FROM {} m JOIN chat.channels c ON c.id = m.channel_id WHERE {}"
        ).format(sql.Identifier("chat", view), sql.SQL(_USER))
        cur = await conn.execute(query, args)
        row = await cur.fetchone()
        counts[view] = int(row[0]) if row else 0
    return counts


async def forget_in_database(
    conninfo: str, login: str, platform: str | None = None
) -> tuple[dict[str, int], list[str]]:
    """Tombstone the user, delete their rows and recompute the aggregates.

    Returns (removed per place, the user ids found for the login).  The tombstone commits
    before anything is deleted (see :func:`collector.forgotten.load_forgotten` for the lock
    that keeps a batch in flight from slipping past it).
    """
    login = normalize_login(login)
    args: dict[str, Any] = {"login": login, "platform": platform, "ids": []}
    removed: dict[str, int] = {}
    async with await connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(_IDS, args)
        ids = sorted({str(r[0]) for r in await cur.fetchall()})
        args["ids"] = ids
        async with conn.transaction():
            await conn.execute("LOCK TABLE chat.forgotten_users IN SHARE ROW EXCLUSIVE MODE")
            added = 0
            for user_id in [None, *ids]:
                cur = await conn.execute(
                    "INSERT INTO chat.forgotten_users (platform, user_login, user_id) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    (platform, login, user_id),
                )
                added += max(cur.rowcount, 0)
            removed["tombstones"] = added
        async with conn.transaction():
            rows = sql.SQL(
                "CREATE TEMP TABLE forget_rows ON COMMIT DROP AS "
                "SELECT m.channel_id, m.message_id, m.sent_at FROM chat.messages m "
                "JOIN chat.channels c ON c.id = m.channel_id WHERE {}"
            ).format(sql.SQL(_USER))
            await conn.execute(rows, args)
            cur = await conn.execute(
                "SELECT min(sent_at), max(sent_at) FROM forget_rows UNION ALL "
                "SELECT min(e.at), max(e.at) FROM chat.moderation_events e "
                "JOIN chat.channels c ON c.id = e.channel_id "
                "WHERE (lower(e.target_login) = %(login)s OR e.target_user_id = ANY(%(ids)s)) "
                "AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)",
                args,
            )
            spans = [r for r in await cur.fetchall() if r[0] is not None]
            before = await _count_chatters(conn, args)
            for place, statement in _DELETES.items():
                cur = await conn.execute(statement, args)
                removed[place] = max(cur.rowcount, 0)
            cur = await conn.execute(_SAMPLES, args)
            row = await cur.fetchone()
            removed["hype_moment_samples"] = int(row[0]) if row else 0
        if spans:
            start = min(s[0] for s in spans)
            end = max(s[1] for s in spans)
            if await backend_of(conn) == "timescaledb":
                await refresh_range(conn, start, end)
            else:
                await refresh_range(conn, None, None)  # the invalidation log knows the range
        after = await _count_chatters(conn, args)
        for view in _CHATTERS:
            removed[view] = before[view] - after[view]
    return removed, ids


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(text)}(?![\w])", re.IGNORECASE)


def _strip_spool(spool: Spool, forgotten: Forgotten) -> int:
    """Take the user's events out of every record; returns the events removed."""
    removed = 0

    def transform(payload: bytes) -> bytes:
        nonlocal removed
        try:
            events = decode_events(payload)
        except Exception:  # unreadable: the writer dead-letters it; nothing to match here
            return payload
        kept = [e for e in events if not forgotten.drops(e)]
        if len(kept) == len(events):
            return payload
        removed += len(events) - len(kept)
        return encode_events(kept)

    spool.rewrite(transform)
    return removed


def _strip_dead_letters(path: Path, patterns: list[re.Pattern[str]]) -> int:
    """Rewrite one dead-letter file without the lines that name the user; returns lines."""
    with open(path, "rb") as f:
        lines = f.readlines()
    kept = [
        line
        for line in lines
        if not any(p.search(line.decode("utf-8", "replace")) for p in patterns)
    ]
    if len(kept) == len(lines):
        return 0
    tmp = path.with_name(path.name + ".forget.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for line in kept:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    return len(lines) - len(kept)


def forget_files(
    data_dir: Path, login: str, user_ids: list[str], platform: str | None = None
) -> tuple[dict[str, int], list[str]]:
    """Take the user out of every spool and dead-letter file under ``data_dir``.

    Returns (removed per place: ``spool_events``, ``dead_letters``; what was skipped).  A role
    (``collect``, ``replay`` ...) whose spool another process holds is skipped whole.
    """
    login = normalize_login(login)
    forgotten = Forgotten.of([(platform, login, None), *((platform, login, i) for i in user_ids)])
    patterns = [_word(login), *(_word(i) for i in user_ids)]
    spool_root, dead_root = data_dir / "spool", data_dir / "dead-letters"
    roles = {p.name for p in spool_root.iterdir() if p.is_dir()} if spool_root.is_dir() else set()
    dead_files = (
        sorted(p for p in dead_root.glob("*.jsonl*") if p.is_file()) if dead_root.is_dir() else []
    )
    roles |= {p.name.split(".jsonl", 1)[0] for p in dead_files}
    removed = {"spool_events": 0, "dead_letters": 0}
    skipped: list[str] = []
    for role in sorted(roles):
        with contextlib.ExitStack() as stack:
            if (spool_root / role).is_dir():
                try:
                    spool = stack.enter_context(
                        Spool(spool_root / role, max_bytes=_SPOOL_MAX_BYTES)
                    )
                except SpoolLockedError:
                    skipped.append(
                        f"{spool_root / role} and its dead letters: in use by a running "
                        "process (its writer drops the user as it drains); run forget again "
                        "once it has stopped"
                    )
                    continue
                removed["spool_events"] += _strip_spool(spool, forgotten)
            for path in dead_files:
                if path.name.split(".jsonl", 1)[0] == role:
                    removed["dead_letters"] += _strip_dead_letters(path, patterns)
    return removed, skipped
