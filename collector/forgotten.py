"""Users that ``chatpulse forget`` removed, as the writer and the forget command match them.

A user is matched by case-folded login or by user id, on one platform or (``platform`` None)
on every platform.  The rows live in ``chat.forgotten_users`` (sql/0013_forget.sql).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import class_row

from chatpulse.core.queries import load_queries
from collector.events import ChatEvent, ChatMessage, ModerationEvent

__all__ = ["Forgotten", "ForgottenUser", "load_forgotten"]

_Q = load_queries("collector")  # sql/queries/collector.sql


class ForgottenUser(NamedTuple):
    """One ``chat.forgotten_users`` row: platform (None: every platform), login, user id."""

    platform: str | None
    user_login: str | None
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Forgotten:
    """The tombstones: (platform or None, case-folded login) and (platform or None, user id)."""

    logins: frozenset[tuple[str | None, str]] = frozenset()
    ids: frozenset[tuple[str | None, str]] = frozenset()

    @classmethod
    def of(cls, rows: Iterable[ForgottenUser]) -> Forgotten:
        """From ``chat.forgotten_users`` rows."""
        logins: set[tuple[str | None, str]] = set()
        ids: set[tuple[str | None, str]] = set()
        for row in rows:
            if row.user_login:
                logins.add((row.platform, row.user_login.casefold()))
            if row.user_id:
                ids.add((row.platform, row.user_id))
        return cls(frozenset(logins), frozenset(ids))

    def __bool__(self) -> bool:
        return bool(self.logins or self.ids)

    def matches(self, platform: str, login: str | None, user_id: str | None) -> bool:
        """Whether a user seen on ``platform`` with this login and id is forgotten."""
        if login:
            folded = login.strip().lstrip("@").casefold()
            if (None, folded) in self.logins or (platform, folded) in self.logins:
                return True
        if user_id:
            return (None, user_id) in self.ids or (platform, user_id) in self.ids
        return False

    def drops(self, event: ChatEvent) -> bool:
        """Whether ``event`` is by (a message) or about (a moderation event) a forgotten user."""
        if isinstance(event, ChatMessage):
            return self.matches(event.platform, event.user_login, event.user_id)
        if isinstance(event, ModerationEvent):
            return self.matches(event.platform, event.target_login, event.target_user_id)
        return False


async def load_forgotten(conn: psycopg.AsyncConnection[Any]) -> Forgotten:
    """Read the tombstones inside the caller's transaction.

    Takes ``chat.forgotten_users`` in SHARE mode until that transaction ends, so a batch and
    a ``chatpulse forget`` (which inserts in SHARE ROW EXCLUSIVE mode) never overlap: either
    the batch commits first and forget deletes its rows, or forget commits first and the batch
    sees the tombstone.
    """
    await conn.execute(_Q["lock_forgotten_users"])
    async with conn.cursor(row_factory=class_row(ForgottenUser)) as cur:
        await cur.execute(_Q["forgotten_users"])
        return Forgotten.of(await cur.fetchall())
