"""Live ingest benchmark: one collector, 100 channels, a combined 2,000 messages/s.

A local fake Twitch server (tests/fake_twitch.py) plays real #nymn lines re-addressed to 100
channels with fresh ids and current timestamps; the collector runs in this process against a
fresh database.  Prints the rate achieved, receipt-to-database delay (p50/p99 from the
collector's own histogram), and the collector's CPU use.

    python bench/live.py [--rate 2000] [--channels 100] [--seconds 30]

Target (issue 4): keeps up, with under 2 s from receipt to database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import sys
import time
import uuid
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatpulse.core.migrate import run_migrations  # noqa: E402
from chatpulse.core.settings import load_settings  # noqa: E402
from collector import irc  # noqa: E402
from collector.app import run_collector  # noqa: E402
from collector.sources.twitch import TwitchIrcSource  # noqa: E402
from tests.fake_twitch import FakeTwitchServer  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"


def quantile(registry: CollectorRegistry, name: str, q: float) -> float:
    buckets = sorted(
        (float(s.labels["le"]), s.value)
        for m in registry.collect()
        if m.name == name
        for s in m.samples
        if s.name.endswith("_bucket")
    )
    total = buckets[-1][1] if buckets else 0
    for le, count in buckets:
        if total and count >= q * total:
            return le
    return float("nan")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    lines = [x for x in irc.parse_recent_messages(SAMPLE.read_text()) if " PRIVMSG " in x]
    channels = [f"bench{i:03d}" for i in range(args.channels)]
    dbname = f"chatpulse_live_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    url = args.admin_url.rsplit("/", 1)[0] + "/" + dbname
    try:
        await run_migrations(url, timescaledb="off")
        async with FakeTwitchServer() as server:
            settings = load_settings(
                overrides={
                    "database_url": url,
                    "data_dir": f"/tmp/{dbname}",
                    "emote_providers": [],
                    "channels": channels,
                    "metrics_port": 0,
                    "log_level": "warning",
                }
            )
            registry = CollectorRegistry()
            stop = asyncio.Event()
            source = TwitchIrcSource(channels, url=server.url, join_rate=(1000, 1.0))
            task = asyncio.create_task(
                run_collector(settings, url, [source], registry=registry, stop=stop)
            )
            for ch in channels:
                await server.wait_for_join(ch, within=60)
            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            sent = 0
            tick = 0.05
            per_tick = max(1, int(args.rate * tick))
            next_at = time.perf_counter()
            while time.perf_counter() - t0 < args.seconds:
                now_ms = int(time.time() * 1000)
                frame = []
                for _ in range(per_tick):
                    line = lines[sent % len(lines)]
                    line = re.sub(
                        r"(^|;)id=[^; ]*", lambda m: f"{m.group(1)}id={uuid.uuid4()}", line, count=1
                    )
                    line = re.sub(r"tmi-sent-ts=\d+", f"tmi-sent-ts={now_ms}", line, count=1)
                    line = line.replace(" #nymn :", f" #{channels[sent % len(channels)]} :", 1)
                    frame.append(line)
                    sent += 1
                await server.send_frame(*frame)
                next_at += tick
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            sending = time.perf_counter() - t0
            deadline = time.monotonic() + 30
            stored = 0
            while time.monotonic() < deadline:
                with psycopg.connect(url) as conn:
                    row = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
                stored = row[0] if row else 0
                if stored >= sent:
                    break
                await asyncio.sleep(0.2)
            caught_up = time.perf_counter() - t0 - sending
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
            stop.set()
            await task
        cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
        print(f"channels             {args.channels}")
        print(
            f"sent                 {sent:,} messages in {sending:.1f} s ({sent / sending:,.0f}/s)"
        )
        print(f"stored               {stored:,} (caught up {caught_up:.2f} s after the last send)")
        print(
            f"receipt->db p50      <= {quantile(registry, 'chatpulse_ingest_delay_seconds', 0.5)} s"
        )
        print(
            f"receipt->db p99      <= {quantile(registry, 'chatpulse_ingest_delay_seconds', 0.99)} s"
        )
        print(
            f"process CPU          {100 * cpu / (sending + caught_up):.0f} % of one core "
            "(collector and the fake server share this process)"
        )
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
