"""Benchmark: ``detect --until-idle`` over 10 hours of a busy channel, and live cost for 100.

Run from the repository root: ``.venv/bin/python bench/detect.py [--rate 30] [--hours 10]``.
The chat is the real #nymn sample (Chatterino, MIT) re-timed by
:func:`detector.synth.retime` with a slowly wandering rate, written with COPY straight
into ``chat.messages`` and ``chat.emote_uses`` of a fresh database on
``CHATPULSE_TEST_DATABASE_URL`` (plain PostgreSQL).  Prints: history seconds, events per hour,
median spike ratio; then CPU of the detector process per live poll cycle for 100 channels.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from chatpulse.core.db import connect  # noqa: E402
from chatpulse.core.migrate import run_migrations  # noqa: E402
from collector.events import ChatMessage  # noqa: E402
from collector.irc import parse_event, parse_recent_messages  # noqa: E402
from detector.model import DetectorConfig  # noqa: E402
from detector.runner import DetectOptions, Detector, run_detector  # noqa: E402
from detector.synth import SynthMessage, retime  # noqa: E402

__all__ = ["main"]

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"


def _real() -> list[SynthMessage]:
    out = []
    for e in map(parse_event, parse_recent_messages(SAMPLE.read_bytes())):
        if isinstance(e, ChatMessage):
            out.append(
                SynthMessage(
                    e.sent_at.timestamp(),
                    e.user_login or "",
                    e.text,
                    tuple((u.emote_name, u.count) for u in e.emotes),
                )
            )
    return out


def _copy(conn: psycopg.Connection, channel_id: int, msgs: list[SynthMessage], tag: str) -> None:
    with conn.cursor() as cur:
        with cur.copy(
            "COPY chat.messages (sent_at, channel_id, message_id, user_id, user_login, text,"
            " emote_count) FROM STDIN"
        ) as cp:
            for i, m in enumerate(msgs):
                at = datetime.fromtimestamp(m.t, UTC)
                cp.write_row((at, channel_id, f"{tag}{i}", m.user, m.user, m.text, len(m.emotes)))
        with cur.copy(
            "COPY chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name,"
            " provider, count) FROM STDIN"
        ) as cp:
            for i, m in enumerate(msgs):
                at = datetime.fromtimestamp(m.t, UTC)
                for name, uses in dict(m.emotes).items():
                    cp.write_row((at, channel_id, f"{tag}{i}", name, name, "twitch", uses))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=30.0, help="mean messages per second")
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=100, help="live: channels")
    parser.add_argument("--cycles", type=int, default=20, help="live: poll cycles measured")
    args = parser.parse_args()
    admin = os.environ.get(
        "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    dbname = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    url = admin.rsplit("/", 1)[0] + "/" + dbname
    try:
        asyncio.run(run_migrations(url, timescaledb="off"))
        real = _real()
        t0 = 1_700_000_000.0
        msgs = retime(real, start=t0, duration_s=args.hours * 3600, mean_rate=args.rate, seed=1)
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO chat.channels (name) VALUES ('busy')")
            started = time.perf_counter()
            _copy(conn, 1, msgs, "b")
            conn.execute("DELETE FROM chat.aggregate_invalidations")  # not what we measure
            conn.commit()
            conn.execute("ANALYZE")
        print(
            f"history: {len(msgs):,} messages over {args.hours} h written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        config = DetectorConfig()
        started = time.perf_counter()
        cpu = time.process_time()
        summary = asyncio.run(run_detector(url, config, until_idle=True))
        print(
            f"detect --until-idle: {time.perf_counter() - started:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU in this process ({summary.passes} passes)"
        )
        with psycopg.connect(url) as conn:
            bursts = conn.execute("SELECT count(*) FROM chat.emote_bursts").fetchone()
            ratios = [
                r[0]
                for r in conn.execute(
                    "SELECT messages_per_min / nullif(baseline_per_min, 0) FROM chat.hype_moments"
                )
            ]
        hours = args.hours
        median = statistics.median([r for r in ratios if r is not None]) if ratios else 0.0
        print(
            f"hype moments: {len(ratios)} ({len(ratios) / hours:.2f}/h), median spike "
            f"{median:.1f}x the baseline; emote bursts: {bursts[0] if bursts else 0} "
            f"({(bursts[0] if bursts else 0) / hours:.2f}/h)"
        )

        # -- live: N channels, 45 min of history each, then poll cycles of 2 s ----------------
        n = args.channels
        live_t0 = t0 + args.hours * 3600 + 7200
        per_channel = [
            retime(
                real,
                start=live_t0,
                duration_s=2700 + 2 * (args.cycles + 2),
                mean_rate=2.0,
                seed=100 + c,
            )
            for c in range(n)
        ]
        with psycopg.connect(url) as conn:
            for c in range(n):
                cid = conn.execute(
                    "INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (f"ch{c}",)
                ).fetchone()[0]
                _copy(conn, cid, [m for m in per_channel[c] if m.t < live_t0 + 2700], f"l{c}_")
            conn.commit()
            conn.execute("ANALYZE")
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM chat.channels WHERE name LIKE 'ch%%' ORDER BY id"
                )
            ]
        clock = {"now": live_t0 + 2700.0}
        detector = Detector(
            config, DetectOptions(), now=lambda: datetime.fromtimestamp(clock["now"], UTC)
        )

        async def live() -> list[tuple[float, float]]:
            conn = await connect(url)
            costs = []
            try:
                await detector.detect_pass(conn)  # warm-up: loads each channel's context once
                for k in range(args.cycles):
                    lo, hi = clock["now"], clock["now"] + 2
                    with psycopg.connect(url) as w:
                        for c, cid in enumerate(ids):
                            _copy(
                                w, cid, [m for m in per_channel[c] if lo <= m.t < hi], f"n{k}_{c}_"
                            )
                    clock["now"] = hi
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    await detector.detect_pass(conn)
                    costs.append((time.process_time() - cpu0, time.perf_counter() - wall0))
            finally:
                await conn.close()
            return costs

        costs = asyncio.run(live())
        cpu_med = statistics.median(c for c, _ in costs)
        wall_med = statistics.median(w for _, w in costs)
        print(
            f"live, {n} channels: per 2-s poll cycle {cpu_med * 1000:.0f} ms CPU in the "
            f"detector ({cpu_med / 2 * 100:.1f} % of one core), {wall_med * 1000:.0f} ms wall "
            "(database work included)"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
