"""Known stream starts (``chat.stream_hints``): what a replay or Helix says about a stream.

The collector records them while it loads a file; ``chatpulse analyze`` reads them when it
draws stream boundaries (analytics/).  Both sides meet here, in the core, so neither imports
the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

__all__ = ["add_stream_hint"]


async def add_stream_hint(
    conn: AsyncConnection[Any],
    channel_id: int,
    at: datetime,
    found_by: str = "replay",
    title: str | None = None,
    category: str | None = None,
) -> None:
    """Record a known stream start (a replay's start, Helix); the next analyze pass uses it."""
    await conn.execute(
        "INSERT INTO chat.stream_hints (channel_id, at, found_by, title, category) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (channel_id, at) DO UPDATE SET "
        "title = coalesce(EXCLUDED.title, chat.stream_hints.title), "
        "category = coalesce(EXCLUDED.category, chat.stream_hints.category)",
        (channel_id, at, found_by, title, category),
    )
