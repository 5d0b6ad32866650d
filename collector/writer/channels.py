"""The channel registry: (platform, channel login) to ``chat.channels.id``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from chatpulse.core.queries import load_queries

__all__ = ["ChannelRegistry"]

_Q = load_queries("collector")  # sql/queries/collector.sql


@dataclass(frozen=True, slots=True)
class _ChannelRow:
    platform: str
    name: str
    id: int
    platform_id: str | None


class ChannelRegistry:
    """Maps (platform, channel login) to ``chat.channels.id``, creating channels on first sight.

    Ids are cached only after the transaction that created them committed: :meth:`resolve`
    fills the caller's ``pending`` dict, which the caller passes to :meth:`commit` after its
    commit.  Each transaction has its own ``pending``, so a batch written on another connection
    never uses an id that a rolled-back transaction created.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._with_platform_id: set[int] = set()

    async def resolve(
        self,
        conn: psycopg.AsyncConnection[Any],
        wanted: dict[tuple[str, str], str | None],
        pending: dict[tuple[str, str], int],
    ) -> dict[tuple[str, str], int]:
        """Return ids for ``wanted`` ((platform, login) -> platform room id or None)."""
        out: dict[tuple[str, str], int] = {}
        missing: list[dict[str, str | None]] = []
        for key, platform_id in wanted.items():
            known = self._ids.get(key) or pending.get(key)
            if known is None:
                missing.append({"platform": key[0], "name": key[1], "platform_id": platform_id})
            else:
                out[key] = known
                if platform_id and known not in self._with_platform_id:
                    await conn.execute(
                        _Q["set_channel_platform_id"], {"platform_id": platform_id, "id": known}
                    )
                    self._with_platform_id.add(known)
        if missing:
            async with conn.cursor(row_factory=class_row(_ChannelRow)) as cur:
                await cur.executemany(_Q["upsert_channel"], missing)
                await cur.execute(
                    _Q["channel_ids"],
                    {
                        "platforms": [m["platform"] for m in missing],
                        "names": [m["name"] for m in missing],
                    },
                )
                for row in await cur.fetchall():
                    out[(row.platform, row.name)] = row.id
                    pending[(row.platform, row.name)] = row.id
                    if row.platform_id:
                        self._with_platform_id.add(row.id)
        return out

    def commit(self, pending: dict[tuple[str, str], int]) -> None:
        """Cache the ids a committed transaction resolved."""
        self._ids.update(pending)
