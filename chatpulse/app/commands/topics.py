"""``chatpulse embed``, ``chatpulse ask`` and ``chatpulse topics``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from psycopg.rows import scalar_row

from chatpulse.app.times import parse_time_option
from chatpulse.core.db import connect, database
from chatpulse.core.errors import ConfigError
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings
from topics.store import (
    NoVectorsError,
    ask,
    compute_terms,
    compute_topics,
    ensure_vectors,
    run_embedder,
    vectors_available,
)

__all__ = ["cmd_ask", "cmd_embed", "cmd_topics"]

_Q = load_queries("app")  # sql/queries/app.sql


def _no_vectors(exc: NoVectorsError) -> int:
    print(f"chatpulse: {exc}", file=sys.stderr)
    return 2


def cmd_embed(settings: Settings, args: argparse.Namespace) -> int:
    """Embed every closed 30-s window not embedded yet (``--until-idle``) or keep doing so;
    ``--topics``: run what ``chatpulse up`` runs for topics (the compose stack's service)."""
    from topics.embed import load_embedder

    if getattr(args, "topics", False):
        if args.until_idle:
            raise ConfigError("embed: --topics runs until stopped; leave out --until-idle")
        from chatpulse.app.signals import stop_on_signals
        from topics.service import run_topics_service

        with database(settings) as url:

            async def serve() -> None:
                with stop_on_signals() as stop:
                    await run_topics_service(settings, url, stop)

            asyncio.run(serve())
        return 0
    with database(settings) as url:

        async def check() -> None:
            async with await connect(url, autocommit=True) as conn:
                await ensure_vectors(conn)

        try:
            asyncio.run(check())  # before the model loads: say it at once
            embedder = load_embedder(settings)
            stats = asyncio.run(
                run_embedder(
                    url,
                    embedder,
                    until_idle=args.until_idle,
                    poll_s=settings.embed_poll_interval_s,
                )
            )
        except NoVectorsError as exc:
            return _no_vectors(exc)
    print(
        f"embedded {stats.windows} windows ({stats.messages} messages, "
        f"{stats.embedded_texts} new distinct texts) with {embedder.model}"
    )
    return 0


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse ask "QUESTION"``: the best moments, as text or ``--json``."""
    from topics.embed import load_embedder

    start = parse_time_option(args.time_from, "--from")
    end = parse_time_option(args.time_to, "--to")
    if not args.question.strip():
        raise ConfigError("ask: the question is empty")
    with database(settings) as url:

        async def run() -> list[dict[str, Any]]:
            async with await connect(url) as conn:
                if not await vectors_available(conn):
                    from topics.store import NO_VECTORS

                    raise NoVectorsError(NO_VECTORS)
                embedder = load_embedder(settings)
                moments = await ask(
                    conn,
                    embedder,
                    args.question,
                    channels=args.channels,
                    time_from=start,
                    time_to=end,
                    limit=args.limit,
                )
                return [m.as_dict() for m in moments]

        try:
            found = asyncio.run(run())
        except NoVectorsError as exc:
            return _no_vectors(exc)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no moments found (are the windows embedded? chatpulse embed --until-idle)")
        return 0
    for i, m in enumerate(found, start=1):
        into = "" if m["into_stream_s"] is None else f", {m['into_stream_s'] / 60:.0f} min in"
        print(f"{i}. #{m['channel']} {m['start']} – {m['end']}{into}  score {m['score']:.4f}")
        for msg in m["messages"]:
            times = f" ×{msg['count']}" if msg["count"] > 1 else ""
            print(f"     {msg['text']}{times}")
        clip = m["clip_request"]
        print(
            f"     clip: POST /clips {json.dumps(clip)}"
            + (f"  (VOD {m['vod']} at {m['vod_offset_s']:.0f} s)" if m["vod"] else "")
        )
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    """Distinctive terms per window (always) and topics (with embeddings) of one channel."""
    start = parse_time_option(args.time_from, "--from")
    end = parse_time_option(args.time_to, "--to")
    name = args.channel.lstrip("#").lower()
    with database(settings) as url:

        async def run() -> tuple[int, Any, bool]:
            async with await connect(url, autocommit=True) as conn:
                cur = conn.cursor(row_factory=scalar_row)
                await cur.execute(_Q["channel_id"], {"name": name})
                channel_id = await cur.fetchone()
                if channel_id is None:
                    raise ConfigError(f"--channel: no channel named {name!r} in this database")
                terms = await compute_terms(conn, channel_id, start, end)
                if not await vectors_available(conn):
                    return terms, None, False
                from topics.embed import model_name

                result = await compute_topics(
                    conn, channel_id, model_name(settings), start, end, k=settings.topics_count
                )
                return terms, result, True

        terms, result, vectors = asyncio.run(run())
    print(f"#{name}: {terms} distinctive terms stored in chat.window_terms")
    if not vectors:
        from topics.store import NO_VECTORS

        print(f"chatpulse: topics skipped: {NO_VECTORS}", file=sys.stderr)
        return 0
    if result is None:
        print("no embedded windows: run chatpulse embed --until-idle first")
        return 0
    for c, label, words, emotes, n in result.topics:
        extra = f"  emotes: {' '.join(emotes)}" if emotes else ""
        print(f"  topic {c} ({n} windows): {label} — {', '.join(words)}{extra}")
    return 0
