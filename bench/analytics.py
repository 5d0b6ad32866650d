"""Benchmark: ``chatpulse analyze`` on a generated month of a busy channel.

Run from the repository root: ``.venv/bin/python bench/analytics.py [--messages N]``.  Needs a
PostgreSQL (``CHATPULSE_TEST_DATABASE_URL``, default the local one; a scratch database is
created and dropped).  It writes ``--messages`` chat messages (default 1,000,000; the issue's
figure is 10,000,000) over ``--streams`` streams (default 30) of 4 hours, one a day, from a
pool of chatters whose activity follows a Zipf-like law (a loyal core, many one-time chatters,
some copypasta), then measures:

* ``full``: the first analysis of the whole month (streams, chatters, segments, shapes);
* ``incremental``: the pass after one new hour of chat is added to the last stream;
* ``idle``: a pass with nothing new;
* ``peak RSS`` of this process (the database server's memory is not included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

import psycopg  # noqa: E402

from analytics.runner import analyze_pass  # noqa: E402
from chatpulse.core.db import connect  # noqa: E402
from chatpulse.core.migrate import run_migrations  # noqa: E402

ADMIN = os.environ.get(
    "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
GAP = timedelta(minutes=30)
START = datetime(2024, 3, 1, 18, tzinfo=UTC)
WORDS = [
    "lol",
    "kekw",
    "pog",
    "hype",
    "gg",
    "wp",
    "nice",
    "clip",
    "that",
    "was",
    "insane",
    "chat",
    "why",
    "is",
    "he",
    "like",
    "this",
]
PASTA = "this is the copypasta everyone posts when the streamer dies again"


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _write(
    url: str, channel: int, start: datetime, hours: float, n: int, seed: int, tag: str
) -> None:
    rng = random.Random(seed)
    users = max(50, n // 40)
    span = hours * 3600
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_id, user_login, text,"
            " emote_count) FROM STDIN"
        ) as copy,
    ):
        for i in range(n):
            u = int(users * rng.random() ** 3)  # a few chatters write most lines
            at = start + timedelta(seconds=span * rng.random())
            text = (
                PASTA if rng.random() < 0.01 else " ".join(rng.choices(WORDS, k=rng.randint(1, 8)))
            )
            copy.write_row(
                (at, channel, f"{tag}-{i}", str(u), f"user{u}", text, text.count("kekw"))
            )


async def _pass(url: str) -> float:
    async with await connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        await analyze_pass(conn, GAP)
        return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=30)
    args = parser.parse_args()
    name = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = _url(name)
    try:
        asyncio.run(run_migrations(url, timescaledb="off"))
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "INSERT INTO chat.channels (name) VALUES ('busy') RETURNING id"
            ).fetchone()
            assert row is not None
            channel = int(row[0])
        per = args.messages // args.streams
        t = time.perf_counter()
        for s in range(args.streams):
            _write(url, channel, START + timedelta(days=s), 4, per, s, f"s{s}")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        print(
            f"generated {per * args.streams:,} messages in {args.streams} streams "
            f"({time.perf_counter() - t:.1f} s)"
        )
        full = asyncio.run(_pass(url))
        print(f"full analysis      {full:8.2f} s")
        last = START + timedelta(days=args.streams - 1)
        _write(url, channel, last + timedelta(hours=4), 1, per // 4, 999, "new")
        inc = asyncio.run(_pass(url))
        print(f"incremental (1 h)  {inc:8.2f} s  ({per // 4:,} new messages)")
        idle = asyncio.run(_pass(url))
        print(f"idle pass          {idle:8.3f} s")
        with psycopg.connect(url) as conn:
            n = conn.execute("SELECT count(*), sum(chatters) FROM chat.streams").fetchone()
        print(f"streams {n[0] if n else '?'}, chatter rows {n[1] if n else '?'}")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS (client)  {rss:8.1f} MiB")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
