"""Embedding throughput, ``ask`` latency and storage of the topics feature.

    python bench/embed.py [--windows 86400] [--messages 400000] [--device cpu]

Starts its own pgserver (PostgreSQL 16 + pgvector 0.6.2) in a temporary directory.

1. Throughput: the real chat of tests/fixtures (four sources, ~1,450 messages, ~780 distinct
   texts) embedded with the offline model (torch), messages/s and distinct texts/s (each distinct
   text once, as ``chatpulse embed`` does).
2. ``ask`` latency: a generated history of ``--windows`` 30-s windows of one channel (86,400 = a
   month) whose vectors are the real windows' vectors with noise, and ``--messages`` messages
   (real texts) for the full-text side; p50/p95 of ``topics.store.ask`` over 40 questions, with
   and without a channel filter.
3. Storage: bytes per row of chat.text_embeddings and chat.window_embeddings (with the HNSW
   index), and so per million messages at the distinct-text ratio and messages per window of
   the real chat measured in 1.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatpulse.core.db import connect
from chatpulse.core.migrate import run_migrations
from chatpulse.core.settings import Settings
from tests.topics_data import insert_spliced, part_texts
from topics.embed import load_embedder, parse_vector, vector_literal
from topics.store import ask, embed_pass

QUESTIONS = [
    "people saying they are late",
    "shark donation",
    "EDM party music",
    "the streamer threw the game",
    "congrats on 300k",
    "chat laughing",
    "boss fight",
    "love you techno",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=86_400)
    ap.add_argument("--messages", type=int, default=400_000)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    pgdata = Path(tempfile.mkdtemp(prefix="chatpulse-bench-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE bench;")
        url = str(server.get_uri("bench"))
        asyncio.run(run_migrations(url, timescaledb="off"))
        asyncio.run(run(url, args))
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


async def run(url: str, args: argparse.Namespace) -> None:
    embedder = load_embedder(Settings(embed_device=args.device))
    with psycopg.connect(url) as conn:
        insert_spliced(conn)
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT md5(text)) FROM chat.messages"
        ).fetchone() or (0, 0)
    started = time.perf_counter()
    windows = 0
    async with await connect(url) as conn:
        while (stats := await embed_pass(conn, embedder)).windows:
            windows += stats.windows
    took = time.perf_counter() - started
    print(
        f"embedding ({embedder.device}, {embedder.model}): {total} messages, {distinct} distinct "
        f"texts, {windows} windows in {took:.1f} s: {total / took:.0f} messages/s, "
        f"{distinct / took:.0f} distinct texts/s"
    )
    raw = [t for texts in part_texts().values() for t in texts]
    with psycopg.connect(url) as conn:
        base = [
            parse_vector(str(v))
            for (v,) in conn.execute("SELECT embedding::text FROM chat.window_embeddings")
        ]
        text_bytes = conn.execute(
            "SELECT pg_total_relation_size('chat.text_embeddings')::float / count(*) FROM chat.text_embeddings"
        ).fetchone()
        cid = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('month') RETURNING id"
        ).fetchone()
        assert cid is not None and text_bytes is not None
        start = datetime(2024, 1, 1, tzinfo=UTC)
        rng = random.Random(1)
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY chat.window_embeddings (channel_id, window_start, window_end, model, messages, "
                "distinct_texts, embedding) FROM STDIN"
            ) as copy,
        ):
            for i in range(args.windows):
                v = [x + rng.gauss(0, 0.03) for x in rng.choice(base)]
                n = sum(x * x for x in v) ** 0.5
                w = start + timedelta(seconds=30 * i)
                copy.write_row(
                    (
                        cid[0],
                        w,
                        w + timedelta(seconds=30),
                        embedder.model,
                        100,
                        40,
                        vector_literal([x / n for x in v]),
                    )
                )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY chat.messages (sent_at, channel_id, message_id, text) FROM STDIN"
            ) as copy,
        ):
            span = args.windows * 30
            for i in range(args.messages):
                copy.write_row(
                    (
                        start + timedelta(seconds=span * i / args.messages),
                        cid[0],
                        f"m{i}",
                        rng.choice(raw),
                    )
                )
        conn.commit()
        conn.execute("ANALYZE chat.window_embeddings")
        conn.execute("ANALYZE chat.messages")
        conn.commit()
        win_bytes = conn.execute(
            "SELECT pg_total_relation_size('chat.window_embeddings')::float / count(*) FROM chat.window_embeddings"
        ).fetchone()
        assert win_bytes is not None
        print(
            f"history: {args.windows} windows and {args.messages} messages loaded in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    for label, channels in (("no filter", None), ("--channel month", ["month"])):
        lat = []
        async with await connect(url) as conn:
            for i in range(40):
                q = QUESTIONS[i % len(QUESTIONS)]
                t1 = time.perf_counter()
                found = await ask(conn, embedder, q, channels=channels, limit=5)
                await conn.commit()
                lat.append((time.perf_counter() - t1) * 1000)
                assert found
        lat.sort()
        print(
            f"ask latency ({label}, {args.windows} windows, {args.messages} messages): "
            f"p50 {statistics.median(lat):.0f} ms, p95 {lat[int(0.95 * len(lat)) - 1]:.0f} ms"
        )
    per_window = total / max(windows, 1)
    per_million = 1e6 * (distinct / total) * text_bytes[0] + 1e6 / per_window * win_bytes[0]
    print(
        f"storage: {text_bytes[0]:.0f} B per distinct text, {win_bytes[0]:.0f} B per window "
        f"(with HNSW); real chat here: {distinct / total:.2f} distinct texts per message, "
        f"{per_window:.0f} messages per window -> {per_million / 2**20:.0f} MiB per million "
        f"messages (a busy channel repeats more and fills windows fuller: less)"
    )


if __name__ == "__main__":
    main()
