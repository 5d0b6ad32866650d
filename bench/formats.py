"""Replay throughput and peak RSS per chat file format, against raw IRC, in one run.

Builds N messages from the real #nymn lines (fresh ids, 50 messages/s), writes the same
messages as a raw IRC log, a TwitchDownloader JSON, a Twitch GQL comment list (twitch-archiver)
and a chat-downloader JSON, then for each file:

* ``parse``: :func:`collector.formats.read_events` alone, in this process (the reader's rate,
  in CPU time);
* ``replay``: the real ``chatpulse replay`` command into a fresh database, end to end, with the
  peak RSS of its process tree (the largest of the command and its parse worker).

    python bench/formats.py [--messages 200000] [--rounds 2] [--admin-url postgresql://...]

Targets (issue 20): each JSON format's replay >= 0.8x the IRC replay rate on the same messages;
peak RSS < 300 MB whatever the file size (the readers stream).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.formats import read_events  # noqa: E402
from tests.vod_exports import NYMN_ROOM_ID, RealLine, gql_node, nymn_chat_lines, td_comment  # noqa: E402

_ID = re.compile(r"(^|;)id=[^; ]*")
_TS = re.compile(r"tmi-sent-ts=(\d+)")
_T0 = datetime(2024, 1, 6, 16, 0, tzinfo=UTC)
_STEP = timedelta(milliseconds=20)  # 50 messages/s of chat
_VOD_START = _T0 - timedelta(minutes=5)

# What the CLI needs besides the file (the formats that name no channel or platform).
FLAGS = {
    "irc": [],
    "twitchdownloader": [],
    "twitch-gql": ["--channel", "nymn"],
    "chat-downloader": ["--channel", "nymn", "--platform", "twitch"],
}


def _messages(n: int) -> Iterator[tuple[str, RealLine, str, datetime]]:
    """(raw IRC line, real message, fresh id, fresh time) for N messages."""
    base = nymn_chat_lines()
    for i in range(n):
        raw, real = base[i % len(base)]
        mid = str(uuid.UUID(int=i + 1))
        sent = _T0 + i * _STEP
        yield raw, real, mid, sent


def _with(real: RealLine, mid: str) -> RealLine:
    from dataclasses import replace

    return replace(real, message=replace(real.message, message_id=mid))


def _cd_item(real: RealLine, mid: str, sent: datetime) -> dict[str, Any]:
    msg = real.message
    locations: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for text, emote_id, at in real.fragments:
        if emote_id is not None:
            locations.setdefault(emote_id, []).append(f"{at}-{at + len(text) - 1}")
            names[emote_id] = text
    offset = (sent - _VOD_START).total_seconds()
    item: dict[str, Any] = {
        "author": {
            "badges": [
                {"name": k, "version": int(v) if v.isdigit() else v, "title": k}
                for k, v in msg.badges.items()
            ],
            "colour": msg.extra.get("color"),
            "display_name": msg.user_name,
            "id": msg.user_id,
            "name": msg.user_login,
        },
        "channel_id": NYMN_ROOM_ID,
        "is_first_message": False,
        "message": msg.text,
        "message_id": mid,
        "message_type": "text_message",
        "time_in_seconds": offset,
        "time_text": f"{int(offset) // 60}:{int(offset) % 60:02d}",
        "timestamp": int((sent - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)),
    }
    if locations:
        item["emotes"] = [
            {
                "id": eid,
                "images": [
                    {
                        "height": 28,
                        "id": "1.0x",
                        "url": f"https://static-cdn.jtvnw.net/emoticons/v2/{eid}/default/dark/1.0",
                        "width": 28,
                    }
                ],
                "locations": ",".join(locs),
                "name": names[eid],
            }
            for eid, locs in locations.items()
        ]
    return item


def _json_list(out: TextIO, items: Iterator[dict[str, Any]], indent: int | None) -> None:
    out.write("[")
    for k, item in enumerate(items):
        out.write(("," if k else "") + json.dumps(item, ensure_ascii=False, indent=indent))
    out.write("]")


def build(folder: Path, n: int) -> dict[str, Path]:
    paths = {
        "irc": folder / "chat.log",
        "twitchdownloader": folder / "td.json",
        "twitch-gql": folder / "verbose_chat.json",
        "chat-downloader": folder / "cd.json",
    }
    with paths["irc"].open("w", encoding="utf-8") as out:
        for raw, _, mid, sent in _messages(n):
            line = _ID.sub(f"\\g<1>id={mid}", raw, count=1)
            ms = int(sent.timestamp() * 1000)
            out.write(_TS.sub(f"tmi-sent-ts={ms}", line, count=1) + "\n")
    with paths["twitchdownloader"].open("w", encoding="utf-8") as out:
        header = {
            "FileInfo": {"Version": {"Major": 1, "Minor": 4, "Patch": 0}},
            "streamer": {"name": "NymN", "login": "nymn", "id": int(NYMN_ROOM_ID)},
            "video": {"id": "2030405060", "created_at": _VOD_START.isoformat(), "type": "archive"},
        }
        out.write(json.dumps(header, separators=(",", ":"))[:-1] + ',"comments":')
        _json_list(
            out,
            (
                td_comment(
                    _with(real, mid),
                    created_at=sent,
                    offset=(sent - _VOD_START).total_seconds(),
                    video_id="2030405060",
                )
                for _, real, mid, sent in _messages(n)
            ),
            None,
        )
        out.write(',"embeddedData":null}')
    with paths["twitch-gql"].open("w", encoding="utf-8") as out:
        _json_list(
            out,
            (
                gql_node(
                    _with(real, mid),
                    created_at=sent,
                    offset=int((sent - _VOD_START).total_seconds()),
                )
                for _, real, mid, sent in _messages(n)
            ),
            None,
        )
    with paths["chat-downloader"].open("w", encoding="utf-8") as out:
        # chat-downloader writes with indent=4 (continuous_write.py).
        _json_list(out, (_cd_item(real, mid, sent) for _, real, mid, sent in _messages(n)), 4)
    return paths


def parse_rate(path: Path, fmt: str, n: int) -> float:
    flags = FLAGS[fmt]
    kwargs: dict[str, Any] = {}
    if "--channel" in flags:
        kwargs["channel"] = "nymn"
    if "--platform" in flags:
        kwargs["platform"] = "twitch"
    # CPU time of this process: the reader's own cost, whatever else the machine runs.
    t0 = time.process_time()
    count = sum(1 for _ in read_events(path, fmt, **kwargs))
    elapsed = time.process_time() - t0
    if count != n:
        raise SystemExit(f"{fmt}: read {count} events, expected {n}")
    return n / elapsed


_MEASURE = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _db(admin_url: str) -> tuple[str, str]:
    name = f"chatpulse_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    scheme, rest = admin_url.split("://", 1)
    return name, scheme + "://" + re.sub(r"/[^/?]*(\?|$)", f"/{name}\\1", rest, count=1)


def replay(path: Path, fmt: str, n: int, admin_url: str, tmp: Path) -> tuple[float, float]:
    """(messages/s, peak RSS in MB) of ``chatpulse replay`` into a fresh database."""
    name, url = _db(admin_url)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
        env.update(
            {
                "CHATPULSE_DATABASE_URL": url,
                "CHATPULSE_DATA_DIR": str(tmp / f"data-{fmt}"),
                "CHATPULSE_EMOTE_PROVIDERS": "",
                "CHATPULSE_LOG_LEVEL": "warning",
                "CHATPULSE_TIMESCALEDB": "off",
            }
        )
        exe = str(Path(sys.executable).parent / "chatpulse")
        subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, exe, "replay", str(path), *FLAGS[fmt]],
            env=env,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{fmt}: replay failed\n{done.stderr[-3000:]}")
        rss_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM chat.messages").fetchone()
        if row is None or row[0] != n:
            raise SystemExit(f"{fmt}: {row} rows stored, expected {n}")
        return n / elapsed, rss_mb
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--no-replay", action="store_true", help="measure the readers only")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the best of each is shown")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "CHATPULSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    n = args.messages
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        paths = build(tmp, n)
        print(f"built {n:,} messages in 4 formats in {time.perf_counter() - t0:.1f} s")
        print(
            f"{'format':<18}{'MiB':>7}{'parse msg/s':>13}{'x IRC':>7}"
            f"{'replay msg/s':>14}{'x IRC':>7}{'peak RSS MB':>13}"
        )
        # Best of the rounds per format (the machine may be busy with other work); the
        # formats take turns within each round, so a slow spell hits all of them alike.
        parse: dict[str, float] = {}
        rate: dict[str, float] = {}
        rss: dict[str, float] = {}
        for _ in range(args.rounds):
            for fmt, path in paths.items():
                parse[fmt] = max(parse.get(fmt, 0.0), parse_rate(path, fmt, n))
                if not args.no_replay:
                    r, mb = replay(path, fmt, n, args.admin_url, tmp)
                    rate[fmt] = max(rate.get(fmt, 0.0), r)
                    rss[fmt] = max(rss.get(fmt, 0.0), mb)
        for fmt, path in paths.items():
            size = path.stat().st_size / 2**20
            line = f"{fmt:<18}{size:>7.0f}{parse[fmt]:>13,.0f}{parse[fmt] / parse['irc']:>7.2f}"
            if not args.no_replay:
                line += f"{rate[fmt]:>14,.0f}{rate[fmt] / rate['irc']:>7.2f}{rss[fmt]:>13,.0f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
