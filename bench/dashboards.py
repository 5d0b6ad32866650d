"""Dashboard benchmark: p50/p95 latency of every panel's SQL over 6 h, 24 h and 7 d.

Generates a month of a busy channel (default 10 million messages, texts drawn from the real
#nymn sample, a skewed population of 20,000 chatters, emotes in ~40 % of messages, a score per
message, timeouts, hype moments and bursts) directly in the database with set-based INSERTs
(no Python per row), refreshes the aggregates, then runs every panel, variable and annotation
query of the committed dashboards, expanded exactly as Grafana would, ``--runs`` times per range
and prints p50/p95 in milliseconds.  Plain PostgreSQL always; TimescaleDB too when
``CHATPULSE_TEST_TIMESCALEDB_URL`` names a server with the extension (``$__timeGroup`` as
``time_bucket`` there, as the provisioned datasource sets ``timescaledb: true``).

    python bench/dashboards.py [--messages 10000000] [--days 30] [--runs 15] [--keep]
        [--backend both|postgres|timescaledb] [--load-only] [--url URL]

``--load-only`` keeps a generated database; ``--url`` measures such a database again after
applying any newer migrations (new indexes on old data, without a 20-minute reload).

Target (issue 7): every panel under 100 ms p95 at 24 h on the TimescaleDB path.  This is a
benchmark, not a test: 10 M messages take several GB per backend and tens of minutes to load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatpulse.core.aggregates import refresh_range  # noqa: E402
from chatpulse.core.migrate import run_migrations  # noqa: E402
from collector import irc  # noqa: E402
from grafana.build import PROVISIONING_DIR  # noqa: E402
from grafana.macros import TimeRange, expand, grafana_interval  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
END = datetime(2024, 2, 1, tzinfo=UTC)
MODEL = "bench@1"
EMOTES = [
    ("forsenParty", "twitch"), ("nymnEDM", "twitch"), ("forsenPossessed", "twitch"),
    ("KEKW", "bttv"), ("OMEGALUL", "ffz"), ("Clap", "7tv"), ("LULW", "7tv"), ("PogU", "ffz"),
    ("monkaS", "bttv"), ("Sadge", "7tv"), ("catJAM", "bttv"), ("EZ", "7tv"),
    ("😂", "emoji"), ("❤", "emoji"), ("forsenE", "twitch"), ("peepoHappy", "ffz"),
]  # fmt: skip
RANGES = {"6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# Ranges end this long before the data does, so that they start and end off the hour and off
# the minute, as a dashboard's "now-24h" to "now" does.
NOW = END - timedelta(minutes=7, seconds=13, milliseconds=250)


def _texts() -> list[str]:
    texts = []
    for line in irc.parse_recent_messages(SAMPLE.read_text()):
        if " PRIVMSG " in line:
            texts.append(line.split(" PRIVMSG ", 1)[1].split(" :", 1)[-1])
    return [t for t in texts if t] or ["hello chat"]


def _create(admin: str) -> str:
    name = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name


def _drop(admin: str, url: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


_DAY_SQL = """
INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, user_name,
                           text, kind, bits, emote_count, source)
SELECT t, %(channel)s, md5(%(day)s || ':' || i), u::text, 'user' || u, 'User' || u,
       (%(texts)s::text[])[1 + floor(random() * %(ntexts)s)::int],
       CASE WHEN random() < 0.004 THEN 'sub' WHEN random() < 0.0002 THEN 'raid' ELSE 'chat' END,
       CASE WHEN random() < 0.003 THEN 100 ELSE 0 END,
       CASE WHEN random() < 0.4 THEN 1 + floor(random() * 3)::int ELSE 0 END,
       'replay'
FROM generate_series(1, %(n)s) AS i,
     LATERAL (SELECT %(start)s::timestamptz + random() * INTERVAL '1 day' + i * INTERVAL '0 s' AS t,
                     floor(20000 * power(random(), 3))::int + i * 0 AS u OFFSET 0) g
"""

_EMOTES_SQL = """
INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider,
                             count, user_id)
SELECT m.sent_at, m.channel_id, m.message_id, e.name, e.name, e.provider, m.emote_count,
       m.user_id
FROM chat.messages m
CROSS JOIN LATERAL (
  SELECT (%(names)s::text[])[k] AS name, (%(providers)s::text[])[k] AS provider
  FROM (SELECT 1 + floor(power(random(), 2) * %(nemotes)s)::int + (m.emote_count * 0) AS k) r
) e
WHERE m.channel_id = %(channel)s AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
  AND m.emote_count > 0
"""

_SCORES_SQL = """
INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment, label,
  p_negative, p_neutral, p_positive, anger, anticipation, disgust, fear, joy, love, optimism,
  pessimism, sadness, surprise, trust, toxicity)
SELECT m.sent_at, m.channel_id, m.message_id, %(model)s, s,
       CASE WHEN s > 0.05 THEN 'positive' WHEN s < -0.05 THEN 'negative' ELSE 'neutral' END,
       0.2, 0.5, 0.3, random() * 0.3, random() * 0.3, random() * 0.2, random() * 0.2,
       random() * 0.6, random() * 0.3, random() * 0.4, random() * 0.2, random() * 0.3,
       random() * 0.3, random() * 0.2, power(random(), 6)
FROM chat.messages m, LATERAL (SELECT (random() * 2 - 1) * random() + length(m.message_id) * 0 AS s OFFSET 0) x
WHERE m.channel_id = %(channel)s AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
"""

_EVENTS_SQL = """
INSERT INTO chat.moderation_events (at, channel_id, kind, target_user_id, target_login,
                                    duration_s, event_key)
SELECT m.sent_at + INTERVAL '2 seconds', m.channel_id,
       CASE WHEN random() < 0.1 THEN 'ban' WHEN random() < 0.3 THEN 'delete' ELSE 'timeout' END,
       m.user_id, m.user_login, 600, md5('mod:' || m.message_id)
FROM chat.messages m
WHERE m.channel_id = %(channel)s AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
  AND random() < 0.001;
"""


def load(url: str, messages: int, days: int, *, timescaledb: bool) -> None:
    """Migrate ``url`` and fill it with ``messages`` over ``days`` days ending at END."""
    asyncio.run(run_migrations(url, timescaledb="on" if timescaledb else "off"))
    texts = _texts()
    per_day = messages // days
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        busy = conn.execute(
            "INSERT INTO chat.channels (name) VALUES ('busy'), ('quiet') RETURNING id"
        ).fetchall()[0][0]
        for d in range(days):
            start = END - timedelta(days=days - d)
            params: dict[str, Any] = {
                "channel": busy,
                "day": str(d),
                "texts": texts,
                "ntexts": len(texts),
                "n": per_day,
                "start": start,
                "end": start + timedelta(days=1),
                "model": MODEL,
                "names": [e[0] for e in EMOTES],
                "providers": [e[1] for e in EMOTES],
                "nemotes": len(EMOTES),
            }
            with conn.transaction():
                conn.execute(_DAY_SQL, params)
                conn.execute(_EMOTES_SQL, params)
                conn.execute(_SCORES_SQL, params)
                conn.execute(_EVENTS_SQL, params)
                for h in range(0, 24, 12):
                    peak = start + timedelta(hours=h + 7)
                    conn.execute(
                        "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, "
                        "ended_at, score, messages_per_min, baseline_per_min, top_emotes) "
                        "VALUES (%s, %s, %s, %s, 4, 900, 230, ARRAY['forsenParty'])",
                        (busy, peak - timedelta(minutes=1), peak, peak + timedelta(minutes=2)),
                    )
                    conn.execute(
                        "INSERT INTO chat.emote_bursts (channel_id, emote_name, provider, "
                        "started_at, peak_at, ended_at, peak_uses, baseline, score) "
                        "VALUES (%s, 'KEKW', 'bttv', %s, %s, %s, 80, 6, 7)",
                        (busy, peak - timedelta(seconds=20), peak, peak + timedelta(seconds=30)),
                    )
            if not timescaledb:
                conn.execute("SELECT chat.refresh_aggregates()")
            print(
                f"  day {d + 1}/{days}: {per_day * (d + 1):,} messages "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    if timescaledb:
        asyncio.run(_refresh_ts(url, days))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"  loaded in {time.perf_counter() - t0:.0f} s", flush=True)


async def _refresh_ts(url: str, days: int) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        await refresh_range(conn, END - timedelta(days=days + 1), END)


def queries() -> list[tuple[str, str, str | None, int]]:
    """(where, SQL, panel minimum interval, max data points) of every dashboard SQL in the
    committed files."""
    out: list[tuple[str, str, str | None, int]] = []
    for path in sorted((PROVISIONING_DIR / "dashboards" / "chatpulse").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                if "rawSql" in target:
                    where = f"{path.stem}/{panel['title']}/{target['refId']}"
                    points = panel.get("maxDataPoints", 1000)
                    out.append((where, target["rawSql"], panel.get("interval"), points))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                out.append((f"{path.stem}/${var['name']}", var["query"], None, 1000))
        for anno in board["annotations"]["list"]:
            if "target" in anno:
                out.append(
                    (f"{path.stem}/annotation {anno['name']}", anno["target"]["rawSql"], None, 1000)
                )
    return out


def measure(
    url: str,
    runs: int,
    *,
    timescaledb: bool,
    search: str = "",
    now: datetime = NOW,
    ranges: dict[str, timedelta] = RANGES,
    variables: dict[str, Any] | None = None,
    boards: tuple[str, ...] | None = None,
) -> list[tuple[str, str, float, float, int]]:
    """(query, range, p50 ms, p95 ms, rows) of every provisioned SQL (of ``boards`` only, when
    given), each run ``runs`` times after one warm-up run, over the ranges ending at ``now``."""
    results = []
    if variables is None:
        variables = {"channel": ["busy"], "model": MODEL, "search": search, "user": ""}
    with psycopg.connect(url, autocommit=True) as conn:
        for where, raw, min_interval, points in queries():
            if boards is not None and where.split("/", 1)[0] not in boards:
                continue
            for label, length in ranges.items():
                span = TimeRange(now - length, now)
                sql = expand(
                    raw,
                    span,
                    variables,
                    multi={"channel"},
                    interval_ms=grafana_interval(
                        span, max_data_points=points, min_interval=min_interval or "10s"
                    ),
                    timescaledb=timescaledb,
                )
                timings, rows = [], 0
                for _ in range(runs + 1):  # the first run warms the cache and is dropped
                    t = time.perf_counter()
                    rows = len(conn.execute(sql).fetchall())  # type: ignore[arg-type]
                    timings.append((time.perf_counter() - t) * 1000)
                timings = sorted(timings[1:])
                p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
                results.append((where, label, statistics.median(timings), p95, rows))
    return results


def report(backend: str, results: list[tuple[str, str, float, float, int]]) -> None:
    print(f"\n== {backend}: p50 / p95 ms (rows) ==")
    print(f"{'query':<62} " + " ".join(f"{r:>22}" for r in RANGES))
    by_query: dict[str, dict[str, tuple[float, float, int]]] = {}
    for where, label, p50, p95, rows in results:
        by_query.setdefault(where, {})[label] = (p50, p95, rows)
    for where, cells in by_query.items():
        line = " ".join(
            f"{p50:7.1f} /{p95:7.1f} ({rows:>4})" for p50, p95, rows in (cells[r] for r in RANGES)
        )
        print(f"{where[:62]:<62} {line}")
    worst = max((r for r in results if r[1] == "24h"), key=lambda r: r[3])
    print(f"worst p95 at 24h: {worst[3]:.1f} ms ({worst[0]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--search", default="forsenParty", help="the search box's text")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument(
        "--backend",
        choices=["both", "postgres", "timescaledb"],
        default="both",
        help="which backends to run (TimescaleDB needs CHATPULSE_TEST_TIMESCALEDB_URL)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument(
        "--load-only", action="store_true", help="load and keep the databases, measure nothing"
    )
    parser.add_argument(
        "--url",
        help="measure this already loaded database (from --keep) instead of generating one; "
        "pending migrations are applied first, so new indexes can be measured on old data",
    )
    args = parser.parse_args()
    backends: list[tuple[str, str, bool]] = []
    if args.backend in ("both", "postgres"):
        backends.append(("PostgreSQL", args.admin_url, False))
    ts = os.environ.get("CHATPULSE_TEST_TIMESCALEDB_URL")
    if args.backend in ("both", "timescaledb"):
        if ts:
            backends.append(("TimescaleDB", ts, True))
        else:
            print("TimescaleDB: skipped (set CHATPULSE_TEST_TIMESCALEDB_URL)")
    if args.url:
        with psycopg.connect(args.url) as conn:
            timescaledb = conn.execute(
                "SELECT count(*) > 0 FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone() == (True,)
        asyncio.run(run_migrations(args.url, timescaledb="on" if timescaledb else "off"))
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        name = "TimescaleDB" if timescaledb else "PostgreSQL"
        report(name, measure(args.url, args.runs, timescaledb=timescaledb, search=args.search))
        return 0
    for name, admin, timescaledb in backends:
        url = _create(admin)
        try:
            print(f"{name}: loading {args.messages:,} messages over {args.days} days", flush=True)
            load(url, args.messages, args.days, timescaledb=timescaledb)
            if not args.load_only:
                report(name, measure(url, args.runs, timescaledb=timescaledb, search=args.search))
        finally:
            if args.keep or args.load_only:
                print(f"kept {url}", flush=True)
            else:
                _drop(admin, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
