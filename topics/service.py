"""The ``chatpulse up`` service: keeps window embeddings, distinctive terms and topics current.

Embeds closed 30-s windows as they close (when the ``embed`` extra is installed and the
database has pgvector); every ``topics_interval_s`` recomputes the distinctive terms of the
channels that chatted in the last interval (over their last 6 hours) and, with embeddings,
their topics.  Without the extra or pgvector it says so once and keeps the terms current.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from datetime import UTC, datetime, timedelta

from chatpulse.core.db import connect
from chatpulse.core.settings import Settings
from topics.store import (
    NO_VECTORS,
    compute_terms,
    compute_topics,
    run_embedder,
    vectors_available,
)

__all__ = ["run_topics_service"]

log = logging.getLogger(__name__)

HISTORY = timedelta(hours=6)


async def refresh_topics(url: str, settings: Settings, model: str | None, since: datetime) -> int:
    """Terms (and topics when ``model``) of the channels with messages since ``since``."""
    done = 0
    async with await connect(url, autocommit=True) as conn:
        # Channels with chat since ``since``, and (with embeddings) channels whose latest
        # window embedding is newer than their topics: embedding lags the chat.
        cur = await conn.execute(
            "SELECT DISTINCT channel_id FROM chat.messages WHERE sent_at >= %s", (since,)
        )
        channels = {r[0] for r in await cur.fetchall()}
        if model is not None:
            cur = await conn.execute(
                "SELECT e.channel_id FROM chat.window_embeddings e GROUP BY 1"
                " HAVING max(e.computed_at) > coalesce((SELECT max(t.computed_at)"
                " FROM chat.topics t WHERE t.channel_id = e.channel_id), '-infinity')"
            )
            channels |= {r[0] for r in await cur.fetchall()}
        for channel_id in sorted(channels):
            end = datetime.now(UTC)
            await compute_terms(conn, channel_id, end - HISTORY, end)
            if model is not None:
                await compute_topics(
                    conn, channel_id, model, end - HISTORY, end, k=settings.topics_count
                )
            done += 1
    return done


async def run_topics_service(settings: Settings, url: str, stop: asyncio.Event) -> None:
    """Run until ``stop``; see the module docstring."""
    has_extra = all(
        importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "sklearn")
    )
    async with await connect(url, autocommit=True) as conn:
        vectors = await vectors_available(conn)
    model: str | None = None
    tasks: list[asyncio.Task[object]] = []
    if not has_extra:
        log.warning("embeddings off: the 'embed' extra is not installed (distinctive terms only)")
    elif not vectors:
        log.warning(NO_VECTORS + " (distinctive terms only)")
    else:
        from topics.embed import load_embedder

        embedder = await asyncio.to_thread(load_embedder, settings)
        model = embedder.model
        tasks.append(
            asyncio.create_task(
                run_embedder(url, embedder, poll_s=settings.embed_poll_interval_s, stop=stop)
            )
        )
    last = datetime.now(UTC) - HISTORY
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.topics_interval_s)
            if stop.is_set():
                break
            # One interval of overlap: a message written during the last refresh counts again.
            now = datetime.now(UTC) - timedelta(seconds=settings.topics_interval_s)
            try:
                await refresh_topics(url, settings, model, last)
            except Exception as exc:  # a failed refresh must not stop the other services
                log.warning("topics refresh failed", extra={"error": repr(exc)})
            last = now
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
