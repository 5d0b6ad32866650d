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
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from psycopg.rows import class_row, scalar_row

from chatpulse.core.aggregates import backend_of, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.queries import load_queries
from collector.codec import decode_events, encode_events
from collector.forgotten import Forgotten, ForgottenUser
from collector.spool import Spool, SpoolLockedError

__all__ = ["ForgetReport", "forget_files", "forget_in_database", "normalize_login"]

log = logging.getLogger(__name__)

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


_Q = load_queries("app")  # sql/queries/app.sql

# The user's rows, in the order they are deleted (messages last: the others refer to them).
_DELETES = (
    "message_scores",
    "scoring_failures",
    "emote_uses",
    "moderation_events",
    "stream_chatters",
    "channel_chatters",
    "chatter_cluster_members",
    "messages",
)


class _ChatterCounts(NamedTuple):
    """The user's rows in each chatters aggregate (row of ``count_user_chatters``)."""

    chatters_1m: int
    chatters_1h: int
    chatters_6h: int
    chatters_1d: int


class _Span(NamedTuple):
    first: datetime | None
    last: datetime | None


async def _count_chatters(conn: Any, args: dict[str, Any]) -> _ChatterCounts:
    cur = conn.cursor(row_factory=class_row(_ChatterCounts))
    await cur.execute(_Q["count_user_chatters"], args)
    counts: _ChatterCounts = await cur.fetchone()
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
        found = conn.cursor(row_factory=scalar_row)
        await found.execute(_Q["forget_user_ids"], args)
        ids = sorted({str(user_id) for user_id in await found.fetchall()})
        args["ids"] = ids
        async with conn.transaction():
            await conn.execute(_Q["lock_tombstones"])
            added = 0
            for user_id in [None, *ids]:
                cur = await conn.execute(
                    _Q["add_tombstone"], {"platform": platform, "login": login, "user_id": user_id}
                )
                added += max(cur.rowcount, 0)
            removed["tombstones"] = added
        async with conn.transaction():
            await conn.execute(_Q["collect_forget_rows"], args)
            ranges = conn.cursor(row_factory=class_row(_Span))
            await ranges.execute(_Q["forget_spans"], args)
            spans = [r for r in await ranges.fetchall() if r.first is not None]
            before = await _count_chatters(conn, args)
            for place in _DELETES:
                if place == "channel_chatters":  # the counts of those rows first
                    await conn.execute(_Q["forget_channel_segments"], args)
                cur = await conn.execute(_Q[f"forget_{place}"], args)
                removed[place] = max(cur.rowcount, 0)
            samples = conn.cursor(row_factory=scalar_row)
            await samples.execute(_Q["forget_samples"], args)
            removed["hype_moment_samples"] = int(await samples.fetchone() or 0)
        if spans:
            start = min(s.first for s in spans if s.first is not None)
            end = max(s.last for s in spans if s.last is not None)
            if await backend_of(conn) == "timescaledb":
                await refresh_range(conn, start, end)
            else:
                await refresh_range(conn, None, None)  # the invalidation log knows the range
        after = await _count_chatters(conn, args)
        for view, was, now in zip(_ChatterCounts._fields, before, after, strict=True):
            removed[view] = was - now
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
    forgotten = Forgotten.of(
        [
            ForgottenUser(platform, login, None),
            *(ForgottenUser(platform, login, i) for i in user_ids),
        ]
    )
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
