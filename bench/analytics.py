"""Benchmark: ``chatpulse analyze`` and the Streams, Audience and Compare channels panels on a
generated month of a busy channel.

Run from the repository root::

    .venv/bin/python bench/analytics.py [--messages 10000000] [--streams 30] [--runs 15]
        [--no-scores] [--keep] [--database NAME]

Needs a PostgreSQL (``CHATPULSE_TEST_DATABASE_URL``, default the local one; a scratch database
is created and dropped).  ``--keep`` keeps it and ``--database NAME`` measures again on a kept
one (same ``--messages`` and ``--streams``): the analysis tables are emptied and the added hour
deleted first, so two versions of the code can be measured on the same rows.  The data is generated in the database with set-based INSERTs (no
Python per row): ``--streams`` streams of 4 hours, one a day, ``--messages`` in all, texts drawn
from the real #nymn sample plus a copypasta (1 %), a population of 20,000 chatters whose
activity follows a power law (a loyal core returns every stream) plus a few thousand first-time
chatters per stream (raids), emotes in ~40 % of messages, a score per message (unless
``--no-scores``), and one hype moment and one emote burst per stream.  It then measures:

* ``full``: the first analysis of the whole month (streams, chatters, segments, shapes);
* ``incremental``: the pass after one new hour of chat is added to the last stream;
* ``idle``: a pass with nothing new;
* ``peak RSS`` of this process and the largest backend's (``VmHWM``, when readable);
* p50/p95 of every panel, variable and annotation SQL of the Streams, Audience and Compare
  channels dashboards at 24 h and 30 d (``--runs`` runs after one warm-up), expanded as Grafana
  would (:mod:`bench.dashboards`), on plain PostgreSQL.

Targets (issue 15): full month under 2 minutes on the 2-core machine, incremental under 5 s,
every panel under 100 ms p95 at 24 h.  The machine's load average is printed before and after:
the figures are wall-clock times on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

import psycopg  # noqa: E402

from analytics.runner import analyze_pass  # noqa: E402
from bench.dashboards import (  # noqa: E402
    EMOTES,
    MODEL,
    _texts,
    measure,
)
from chatpulse.core.db import connect  # noqa: E402
from chatpulse.core.migrate import run_migrations  # noqa: E402

ADMIN = os.environ.get(
    "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
GAP = timedelta(minutes=30)
START = datetime(2024, 3, 1, 18, tzinfo=UTC)
HOURS = 4
BOARDS = ("streams", "audience", "compare")
PASTA = "this is the copypasta everyone posts when the streamer dies again"

# One stream's messages: 95 % from a population of 20,000 chatters with a power law (user 0
# writes the most; the core comes back each stream), 5 % from first-time chatters of this
# stream only (a raid), 1 % copypasta; with their emote rows and (unless --no-scores) scores.
# One statement per stream: the rows are drawn once, sorted by time (live chat arrives in time
# order, so the time indexes grow at their right edge) and inserted into the three tables from
# the same drawn set (data-modifying CTEs), with every index and trigger of the schema in place.
_DRAW_SQL = """
WITH g AS MATERIALIZED (
    SELECT i, %(start)s::timestamptz + random() * %(span)s::interval AS t,
           CASE WHEN random() < 0.05
                THEN 1000000 * (%(stream)s + 1) + floor(random() * 4000)::int
                ELSE floor(20000 * power(random(), 3))::int END AS u,
           CASE WHEN random() < 0.01 THEN %(pasta)s
                ELSE (%(texts)s::text[])[1 + floor(random() * %(ntexts)s)::int] END AS text,
           CASE WHEN random() < 0.4 THEN 1 + floor(random() * 3)::int ELSE 0 END AS emote_count
    FROM generate_series(1, %(n)s) AS i
), m AS (
    INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, user_name,
                               text, emote_count, source)
    SELECT t, %(channel)s, %(tag)s || '-' || lpad(i::text, 9, '0'), u::text, 'user' || u,
           'User' || u, text, emote_count, 'replay'
    FROM g ORDER BY t
    RETURNING sent_at, channel_id, message_id, user_id, emote_count
), e AS (
    INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider,
                                 count, user_id)
    SELECT m.sent_at, m.channel_id, m.message_id, x.name, x.name, x.provider, m.emote_count,
           m.user_id
    FROM m CROSS JOIN LATERAL (
        SELECT (%(names)s::text[])[k] AS name, (%(providers)s::text[])[k] AS provider
        FROM (SELECT 1 + floor(power(random(), 2) * %(nemotes)s)::int + (m.emote_count * 0) AS k) r
    ) x
    WHERE m.emote_count > 0
    ORDER BY m.sent_at
    RETURNING 1
){scores}
SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM e)
"""

_SCORES_CTE = """, s AS (
    INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment, label,
      p_negative, p_neutral, p_positive, anger, anticipation, disgust, fear, joy, love, optimism,
      pessimism, sadness, surprise, trust, toxicity)
    SELECT m.sent_at, m.channel_id, m.message_id, %(model)s, x.s,
           CASE WHEN x.s > 0.05 THEN 'positive' WHEN x.s < -0.05 THEN 'negative' ELSE 'neutral' END,
           0.2, 0.5, 0.3, random() * 0.3, random() * 0.3, random() * 0.2, random() * 0.2,
           random() * 0.6, random() * 0.3, random() * 0.4, random() * 0.2, random() * 0.3,
           random() * 0.3, random() * 0.2,
           -- a real below 1.4e-45 is out of range (one draw in 30 million)
           greatest(power(random(), 6), 1e-30::float8)
    FROM m, LATERAL (SELECT (random() * 2 - 1) * random() + length(m.message_id) * 0 AS s
                     OFFSET 0) x
    ORDER BY m.sent_at
)"""


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _load(conn: psycopg.Connection[Any], p: dict[str, Any], scores: bool) -> None:
    with conn.transaction():
        # The sort of one stream's drawn rows stays in memory.
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute(_DRAW_SQL.replace("{scores}", _SCORES_CTE if scores else ""), p)


def _params(
    channel: int, texts: list[str], stream: int, start: datetime, span: timedelta, n: int
) -> dict[str, Any]:
    return {
        "channel": channel,
        "tag": f"s{stream}",
        "stream": stream,
        "texts": texts,
        "ntexts": len(texts),
        "pasta": PASTA,
        "n": n,
        "start": start,
        "span": span,
        "end": start + span,
        "model": MODEL,
        "names": [e[0] for e in EMOTES],
        "providers": [e[1] for e in EMOTES],
        "nemotes": len(EMOTES),
    }


def generate(url: str, messages: int, streams: int, *, scores: bool) -> int:
    """Fill ``url`` with ``streams`` streams; the busy channel's id."""
    texts = _texts()
    per = messages // streams
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('busy') RETURNING id"
        ).fetchone()
        assert row is not None
        channel = int(row[0])
        t0 = time.perf_counter()
        for s in range(streams):
            start = START + timedelta(days=s)
            _load(conn, _params(channel, texts, s, start, timedelta(hours=HOURS), per), scores)
            peak = start + timedelta(hours=2)
            conn.execute(
                "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score,"
                " messages_per_min, baseline_per_min, top_emotes)"
                " VALUES (%s, %s, %s, %s, 4, 900, 230, ARRAY['KEKW'])",
                (channel, peak - timedelta(minutes=1), peak, peak + timedelta(minutes=2)),
            )
            conn.execute(
                "INSERT INTO chat.emote_bursts (channel_id, emote_name, provider, started_at,"
                " peak_at, ended_at, peak_uses, baseline, score)"
                " VALUES (%s, 'KEKW', 'bttv', %s, %s, %s, 80, 6, 7)",
                (channel, peak - timedelta(seconds=20), peak, peak + timedelta(seconds=30)),
            )
            if (s + 1) % 5 == 0 or s + 1 == streams:
                print(
                    f"  stream {s + 1}/{streams}: {per * (s + 1):,} messages "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
        conn.execute("VACUUM ANALYZE")
    return channel


def reset(url: str, streams: int) -> int:
    """Bring a kept database back to its generated state: no analysis, no added hour; the
    busy channel's id."""
    cut = START + timedelta(days=streams - 1, hours=HOURS)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT id FROM chat.channels WHERE name = 'busy'").fetchone()
        assert row is not None, "not a database of this bench"
        # The analysis tables: chat.streams and every table that references it.
        conn.execute(
            "TRUNCATE chat.streams, chat.channel_chatters, chat.channel_segments, chat.analytics_state"
            " CASCADE"
        )
        for table in ("emote_uses", "message_scores", "messages"):
            conn.execute(f"DELETE FROM chat.{table} WHERE sent_at >= %s", (cut,))
        conn.execute("VACUUM ANALYZE")
        return int(row[0])


def add_hour(url: str, channel: int, streams: int, n: int, *, scores: bool) -> None:
    """One more hour of chat right after the last stream's end (it continues that stream)."""
    start = START + timedelta(days=streams - 1, hours=HOURS)
    with psycopg.connect(url, autocommit=True) as conn:
        p = _params(channel, _texts(), streams - 1, start, timedelta(hours=1), n)
        p["tag"] = "new"
        conn.execute("SELECT setseed(0.15)")  # the same hour on a kept database each time
        _load(conn, p, scores)


async def _pass(url: str) -> tuple[float, str, float | None]:
    """One analyze pass: seconds, what it did, and the peak RSS (MiB) of the server process
    that ran it (``VmHWM``; None when its /proc entry cannot be read: another host)."""
    async with (
        await connect(url, autocommit=True) as conn,
        await connect(url, autocommit=True) as reader,
    ):
        t = time.perf_counter()
        s = await analyze_pass(conn, GAP, reader=reader)
        took = time.perf_counter() - t
        return (
            took,
            f"{s.windows} windows, {s.streams_recomputed} streams recomputed",
            _hwm_mib(conn.info.backend_pid),
        )


def _hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure_panels(url: str, runs: int, end: datetime) -> list[tuple[str, str, float, float, int]]:
    """p50/p95 (ms) and rows of every SQL of the three dashboards at 24 h and 30 d."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT max(id)::text FROM chat.streams").fetchone()
    return measure(
        url,
        runs,
        timescaledb=False,
        now=end - timedelta(minutes=7, seconds=13),
        ranges={"24h": timedelta(hours=24), "30d": timedelta(days=30)},
        variables={"channel": ["busy"], "stream": row[0] if row else "0", "model": MODEL},
        boards=BOARDS,
    )


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--streams", type=int, default=30)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-scores", action="store_true", help="generate no message scores")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument(
        "--database", help="measure on this kept database (made with --keep, same sizes)"
    )
    args = parser.parse_args()
    name = args.database or f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    if not args.database:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    url = _url(name)
    scores = not args.no_scores
    keep = args.keep or bool(args.database)
    try:
        print(f"load average before: {_load_avg()}", flush=True)
        per = args.messages // args.streams
        total = per * args.streams
        t = time.perf_counter()
        if args.database:
            channel = reset(url, args.streams)
            print(f"reused {name} ({time.perf_counter() - t:.0f} s to reset)")
        else:
            asyncio.run(run_migrations(url, timescaledb="off"))
            channel = generate(url, args.messages, args.streams, scores=scores)
            print(
                f"generated {total:,} messages in {args.streams} streams "
                f"({time.perf_counter() - t:.0f} s, scores: {'yes' if scores else 'no'})"
            )
        full, what, full_hwm = asyncio.run(_pass(url))
        print(f"full analysis      {full:8.2f} s  ({what})  target < 120 s at 10 M", flush=True)
        new = per // HOURS
        add_hour(url, channel, args.streams, new, scores=scores)
        inc, what, inc_hwm = asyncio.run(_pass(url))
        print(f"incremental (1 h)  {inc:8.2f} s  ({new:,} new messages; {what})  target < 5 s")
        idle, _, _ = asyncio.run(_pass(url))
        print(f"idle pass          {idle:8.3f} s")
        with psycopg.connect(url) as conn:
            n = conn.execute(
                "SELECT count(*), sum(chatters), sum(messages) FROM chat.streams"
            ).fetchone()
        print(
            f"streams {n[0] if n else '?'}, chatter rows {n[1] if n else '?'}, "
            f"messages in streams {n[2] if n else '?'}"
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS (client)  {rss:8.1f} MiB")
        for label, hwm in (("full", full_hwm), ("incremental", inc_hwm)):
            if hwm is not None:
                print(f"peak RSS (server process of the {label} pass) {hwm:8.1f} MiB")
        if total < 9_900_000:
            f = 10_000_000 / total
            # The incremental pass recomputes the last stream: it scales with a stream's size
            # (a 10 M month has 30 streams), not with the month's.
            g = (10_000_000 / 30) / (total / args.streams)
            print(
                f"EXTRAPOLATED to 10 M messages in 30 streams (linear; not measured): "
                f"full ~{full * f:.0f} s (x{f:.1f}), incremental ~{inc * g:.1f} s "
                f"(x{g:.1f}: it recomputes the last stream, which grows with a stream's size)"
            )
        end = START + timedelta(days=args.streams - 1, hours=HOURS + 1)
        results = measure_panels(url, args.runs, end)
        print(f"\n== PostgreSQL panels: p50 / p95 ms (rows), {args.runs} runs ==")
        print(f"{'query':<60} {'24h':>22} {'30d':>22}")
        cells: dict[str, dict[str, tuple[float, float, int]]] = {}
        for where, label, p50, p95, rows in results:
            cells.setdefault(where, {})[label] = (p50, p95, rows)
        for where, c in cells.items():
            line = " ".join(f"{a:7.1f} /{b:7.1f} ({r:>4})" for a, b, r in (c["24h"], c["30d"]))
            print(f"{where[:60]:<60} {line}")
        for label in ("24h", "30d"):
            worst = max((r for r in results if r[1] == label), key=lambda r: r[3])
            print(
                f"worst p95 at {label}: {worst[3]:.1f} ms ({worst[0]})"
                + ("  target < 100 ms" if label == "24h" else "")
            )
        print(f"load average after: {_load_avg()}")
    finally:
        if keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
