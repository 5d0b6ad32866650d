"""Ingest benchmark: replay a large IRC log end to end and compare with a bare COPY.

Builds an IRC log of N messages from the real #nymn lines (fresh ids and timestamps, so every
line is a new message), replays it with the real ``chatpulse replay`` command into a fresh
database, and prints messages/s and the replay process's peak RSS.  In the same run it COPYs
the same rows into a bare table (no indexes, no constraints) and prints that rate.

    python bench/ingest.py [--messages 500000] [--admin-url postgresql://postgres@127.0.0.1/postgres]

Targets (issue 4): replay >= 20,000 messages/s and >= half the bare COPY rate; peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector import irc  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json"
_ID = re.compile(r"(^|;)id=[^; ]*")
_TS = re.compile(r"tmi-sent-ts=(\d+)")


def build_log(path: Path, n: int) -> int:
    lines = [line for line in irc.parse_recent_messages(SAMPLE.read_text()) if " PRIVMSG " in line]
    base = 1_704_557_984_095
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            line = lines[i % len(lines)]
            line = _ID.sub(lambda m: f"{m.group(1)}id={uuid.uuid4()}", line, count=1)
            line = _TS.sub(f"tmi-sent-ts={base + i * 20}", line, count=1)  # 50 msg/s of chat
            out.write(line + "\n")
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500_000)
    parser.add_argument(
        "--lanes", type=int, default=2, help="writer lanes (CHATPULSE_WRITER_LANES)"
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()

    dbname = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    url = re.sub(r"/[^/?]*(\?|$)", f"/{dbname}\\1", args.admin_url.split("://", 1)[1], count=1)
    url = args.admin_url.split("://", 1)[0] + "://" + url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log_file = Path(tmp) / "big.log"
            t0 = time.perf_counter()
            size = build_log(log_file, args.messages)
            print(
                f"built {args.messages:,} messages, {size / 2**20:.0f} MiB, in {time.perf_counter() - t0:.1f} s"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
            env.update(
                {
                    "CHATPULSE_DATABASE_URL": url,
                    "CHATPULSE_DATA_DIR": str(Path(tmp) / "data"),
                    "CHATPULSE_EMOTE_PROVIDERS": "",
                    "CHATPULSE_LOG_LEVEL": "warning",
                    "CHATPULSE_TIMESCALEDB": "off",
                    "CHATPULSE_WRITER_LANES": str(args.lanes),
                }
            )
            exe = [str(Path(sys.executable).parent / "chatpulse")]
            subprocess.run([*exe, "migrate"], env=env, check=True, capture_output=True)
            t0 = time.perf_counter()
            done = subprocess.run(
                [*exe, "replay", str(log_file)], env=env, capture_output=True, text=True
            )
            elapsed = time.perf_counter() - t0
            if done.returncode != 0:
                print(done.stderr[-3000:])
                return 1
            rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(done.stdout.strip())
            replay_rate = args.messages / elapsed

        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
            cols = (
                "sent_at, channel_id, message_id, user_id, user_login, user_name, text, kind, "
                "badges, is_mod, is_subscriber, is_first, bits, reply_parent_id, emote_count, "
                "extra, received_at, source"
            )
            conn.execute(
                f"CREATE UNLOGGED TABLE IF NOT EXISTS bare AS SELECT {cols} FROM chat.messages WITH NO DATA"
            )
            conn.execute("ALTER TABLE bare SET LOGGED")
            # badges/extra as text, so the client does no JSON work in the timed COPY
            text_cols = cols.replace("badges,", "badges::text,").replace("extra,", "extra::text,")
            rows = conn.execute(f"SELECT {text_cols} FROM chat.messages").fetchall()
            conn.commit()
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY bare ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            copy_elapsed = time.perf_counter() - t0
        copy_rate = len(rows) / copy_elapsed
        print(f"stored rows          {stored[0] if stored else 0:>12,}")
        print(
            f"replay end to end    {replay_rate:>12,.0f} messages/s  ({elapsed:.1f} s, `chatpulse replay`)"
        )
        print(
            f"bare COPY            {copy_rate:>12,.0f} rows/s      ({copy_elapsed:.1f} s, no indexes)"
        )
        print(f"replay / bare COPY   {replay_rate / copy_rate:>12.2f}")
        print(f"replay peak RSS      {rss_mb:>12,.0f} MB")
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
