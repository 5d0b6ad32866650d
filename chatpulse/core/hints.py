"""Known stream starts (``chat.stream_hints``): what a replay or Helix says about a stream.

The collector records them while it loads a file; ``chatpulse analyze`` reads them when it
draws stream boundaries (analytics/).  Both sides meet here, in the core, so neither imports
the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from chatpulse.core.queries import load_queries

__all__ = ["add_stream_hint"]

_Q = load_queries("core")  # sql/queries/core.sql


async def add_stream_hint(
    conn: AsyncConnection[Any],
    channel_id: int,
    at: datetime,
    found_by: str = "replay",
    title: str | None = None,
    category: str | None = None,
) -> None:
    """Record a known stream start (a replay's start, Helix); the next analyze pass uses it.
    Recording the same start again changes nothing unless it brings a new title or category."""
    await conn.execute(
        _Q["add_stream_hint"],
        {
            "channel_id": channel_id,
            "at": at,
            "found_by": found_by,
            "title": title,
            "category": category,
        },
    )
