"""Benchmark: ``chatpulse analyze`` and the Streams, Audience and Compare channels panels on a
generated month of a busy channel.

Run from the repository root::

    .venv/bin/python bench/analytics.py [--messages 10000000] [--streams 30] [--runs 15]
        [--no-scores] [--keep]

Needs a PostgreSQL (``CHATPULSE_TEST_DATABASE_URL``, default the local one; a scratch database
is created and dropped).  The data is generated in the database with set-based INSERTs (no
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
    _EMOTES_SQL,
    _SCORES_SQL,
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
# stream only (a raid), 1 % copypasta.
_STREAM_SQL = """
INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, user_name,
                           text, emote_count, source)
SELECT t, %(channel)s, %(tag)s || '-' || i, u::text, 'user' || u, 'User' || u,
       CASE WHEN random() < 0.01 THEN %(pasta)s
            ELSE (%(texts)s::text[])[1 + floor(random() * %(ntexts)s)::int] END,
       CASE WHEN random() < 0.4 THEN 1 + floor(random() * 3)::int ELSE 0 END,
       'replay'
FROM generate_series(1, %(n)s) AS i,
     LATERAL (SELECT %(start)s::timestamptz + random() * %(span)s::interval + i * INTERVAL '0 s' AS t,
                     CASE WHEN random() < 0.05
                          THEN 1000000 * (%(stream)s + 1) + floor(random() * 4000)::int
                          ELSE floor(20000 * power(random(), 3))::int END + i * 0 AS u
              OFFSET 0) g
"""


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _load(conn: psycopg.Connection[Any], p: dict[str, Any], scores: bool) -> None:
    with conn.transaction():
        conn.execute(_STREAM_SQL, p)
        conn.execute(_EMOTES_SQL, p)
        if scores:
            conn.execute(_SCORES_SQL, p)


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


def add_hour(url: str, channel: int, streams: int, n: int, *, scores: bool) -> None:
    """One more hour of chat right after the last stream's end (it continues that stream)."""
    start = START + timedelta(days=streams - 1, hours=HOURS)
    with psycopg.connect(url, autocommit=True) as conn:
        p = _params(channel, _texts(), streams - 1, start, timedelta(hours=1), n)
        p["tag"] = "new"
        _load(conn, p, scores)


async def _pass(url: str) -> tuple[float, str, float | None]:
    """One analyze pass: seconds, what it did, and the peak RSS (MiB) of the server process
    that ran it (``VmHWM``; None when its /proc entry cannot be read: another host)."""
    async with await connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        s = await analyze_pass(conn, GAP)
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
    args = parser.parse_args()
    name = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = _url(name)
    scores = not args.no_scores
    try:
        print(f"load average before: {_load_avg()}", flush=True)
        asyncio.run(run_migrations(url, timescaledb="off"))
        t = time.perf_counter()
        channel = generate(url, args.messages, args.streams, scores=scores)
        per = args.messages // args.streams
        total = per * args.streams
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
        if total < 10_000_000:
            f = 10_000_000 / total
            print(
                f"EXTRAPOLATED to 10 M messages (linear, x{f:.1f}; not measured): "
                f"full ~{full * f:.0f} s, incremental ~{inc * 10_000_000 / total:.1f} s "
                "(the incremental pass recomputes one stream, which grows with the same factor)"
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
        if args.keep:
            print(f"kept {url}")
        else:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
