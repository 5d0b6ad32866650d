"""Live collection end to end: a fake Twitch peer, the real PostgreSQL, real faults.

Exactly once through a dropped connection, a server RECONNECT (with gap rows and gap fill),
a database outage (a TCP proxy the test cuts), and ``kill -9`` while the database is down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from prometheus_client import CollectorRegistry

from chatpulse.core.settings import Settings, load_settings
from collector import irc
from collector.app import run_collector
from collector.sources.base import ReconnectPolicy
from collector.sources.twitch import TwitchIrcSource
from tests.conftest import FIXTURES
from tests.e2e.cli import chatpulse_exe
from tests.fake_twitch import DROP, FakeTwitchServer
from tests.http_stub import HttpStub
from tests.tcp_proxy import TcpProxy

LINES = irc.parse_recent_messages(
    (FIXTURES / "chatterino-recentmessages-nymn" / "recentmessages-nymn.json").read_text()
)
PRIVMSG_IDS = {
    e.message_id for e in (irc.parse_event(line) for line in LINES) if hasattr(e, "message_id")
}


def privmsgs(lines: list[str]) -> int:
    return sum(1 for line in lines if " PRIVMSG " in line)


FAST = ReconnectPolicy(initial_s=0.05, max_s=0.2, healthy_after_s=0.5)


def rm_body(lines: list[str]) -> str:
    return json.dumps({"messages": lines, "error": None, "error_code": None})


def settings_for(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        overrides={
            "database_url": db_url,
            "data_dir": tmp_path / "data",
            "emote_providers": [],
            "flush_interval_s": 0.05,
            "channels": ["nymn"],
            **extra,
        }
    )


def via_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


async def wait_rows(url: str, n: int, within: float = 30.0, table: str = "chat.messages") -> int:
    deadline = time.monotonic() + within
    got = 0
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(scalar, url, f"SELECT count(*) FROM {table}")
        if got >= n:
            return int(got)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{table} holds {got} rows, wanted {n}")


def assert_exactly_once(url: str, expected_ids: set[str]) -> None:
    with psycopg.connect(url) as conn:
        rows = [r[0] for r in conn.execute("SELECT message_id FROM chat.messages")]
    assert len(rows) == len(set(rows)), "a message is stored twice"
    assert set(rows) == expected_ids


async def test_drop_and_reconnect_store_every_message_once_with_gaps_filled(
    db_url: str, tmp_path: Path
) -> None:
    # conn 0 hears lines 0-199 then drops; lines 200-399 are said while we are away and come
    # back through recent-messages; conn 1 hears 400-599, then the server says RECONNECT;
    # conn 2 hears 600-799.  Recent-messages answers nothing at start-up.
    script = [[*LINES[0:200], DROP], [*LINES[400:600], ":tmi.twitch.tv RECONNECT"], LINES[600:800]]
    with HttpStub([rm_body([]), rm_body(LINES[150:450])]) as rm:
        async with FakeTwitchServer(script=script) as server:
            settings = settings_for(db_url, tmp_path, recent_messages_url=rm.url + "/rm/{channel}")
            source = TwitchIrcSource(["nymn"], url=server.url, policy=FAST)
            stop = asyncio.Event()
            task = asyncio.create_task(
                run_collector(settings, db_url, [source], stop=stop, registry=CollectorRegistry())
            )
            await wait_rows(db_url, len(PRIVMSG_IDS))
            await wait_rows(db_url, 2, table="chat.gaps WHERE filled_at IS NOT NULL")
            stop.set()
            totals = await asyncio.wait_for(task, 15)
    assert_exactly_once(db_url, PRIVMSG_IDS)
    assert totals.written == len(PRIVMSG_IDS)
    assert scalar(db_url, "SELECT count(*) FROM chat.moderation_events") == 2
    with psycopg.connect(db_url) as conn:
        gaps = conn.execute(
            "SELECT reason, ended_at > started_at, recovered FROM chat.gaps ORDER BY started_at"
        ).fetchall()
        sources = dict(
            conn.execute("SELECT source, count(*) FROM chat.messages GROUP BY 1").fetchall()
        )
    assert len(gaps) == 2
    assert gaps[0][1] and gaps[1][1]
    assert "RECONNECT" in gaps[1][0]
    # Lines 200-399 were never heard live, so the fill brought all of them back.  It may bring
    # more: frames still in the server's buffer when it aborted the connection (150-199) are
    # lost live, and the fill may win the race for 400-449 against the new connection.
    assert privmsgs(LINES[200:400]) <= gaps[0][2] <= privmsgs(LINES[150:450]), (gaps, sources)
    assert sources["gapfill"] == gaps[0][2] + gaps[1][2]
    assert sources["live"] == len(PRIVMSG_IDS) - sources["gapfill"]
    assert rm.requests == ["/rm/nymn"] * 3


async def test_database_outage_mid_stream_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path
) -> None:
    port = urlsplit(db_url).port or 5432
    with TcpProxy("127.0.0.1", port) as proxy:
        proxied = via_proxy(db_url, proxy.port)
        async with FakeTwitchServer() as server:
            settings = settings_for(proxied, tmp_path)
            source = TwitchIrcSource(["nymn"], url=server.url, policy=FAST)
            stop = asyncio.Event()
            task = asyncio.create_task(
                run_collector(settings, proxied, [source], stop=stop, registry=CollectorRegistry())
            )
            await server.wait_for_join("nymn")
            await server.send(*LINES[0:300])
            await wait_rows(db_url, privmsgs(LINES[0:300]))
            proxy.cut()
            await server.send(*LINES[300:600])
            await asyncio.sleep(3)  # several seconds of outage while chat goes on
            spooled = list((tmp_path / "data" / "spool" / "collect").glob("*.spool"))
            assert spooled and sum(p.stat().st_size for p in spooled) > 0
            proxy.restore()
            await server.send(*LINES[600:800])
            await wait_rows(db_url, len(PRIVMSG_IDS))
            stop.set()
            await asyncio.wait_for(task, 15)
    assert_exactly_once(db_url, PRIVMSG_IDS)


async def _start_collector(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *chatpulse_exe(),
        "collect",
        "--channel",
        "nymn",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_kill_9_while_database_down_then_restart_writes_every_spooled_message(
    db_url: str, tmp_path: Path
) -> None:
    port = urlsplit(db_url).port or 5432
    # Recent-messages holds the lines around the kill: what the killed collector had received
    # but not yet spooled comes back through the restart's gap fill.
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        HttpStub([rm_body([]), rm_body(LINES[250:600])]) as rm,
    ):
        async with FakeTwitchServer() as server:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
            env.update(
                {
                    "CHATPULSE_DATABASE_URL": via_proxy(db_url, proxy.port),
                    "CHATPULSE_TWITCH_IRC_URL": server.url,
                    "CHATPULSE_DATA_DIR": str(tmp_path / "data"),
                    "CHATPULSE_EMOTE_PROVIDERS": "",
                    "CHATPULSE_METRICS_PORT": "0",
                    "CHATPULSE_FLUSH_INTERVAL_S": "0.05",
                    "CHATPULSE_TIMESCALEDB": "off",
                    "CHATPULSE_RECENT_MESSAGES_URL": rm.url + "/rm/{channel}",
                }
            )
            first = await _start_collector(env)
            try:
                await server.wait_for_join("nymn", within=30)
                await server.send(*LINES[0:300])
                await wait_rows(db_url, privmsgs(LINES[0:300]))
                proxy.cut()
                await server.send(*LINES[300:600])
                spool_dir = tmp_path / "data" / "spool" / "collect"
                # wait until a batch is fsynced in the spool (the rest may still be in flight)
                deadline = time.monotonic() + 30
                while not sum(p.stat().st_size for p in spool_dir.glob("*.spool")):
                    assert time.monotonic() < deadline, "nothing spooled"
                    await asyncio.sleep(0.05)
            finally:
                first.send_signal(signal.SIGKILL)
                await first.wait()
            assert first.returncode == -signal.SIGKILL
            assert scalar(db_url, "SELECT count(*) FROM chat.messages") == privmsgs(LINES[0:300])
            proxy.restore()
            second = await _start_collector(env)
            try:
                await wait_rows(db_url, privmsgs(LINES[:600]))
                await server.wait_for_join("nymn", n=2, within=30)
                await server.send(*LINES[600:800])
                await wait_rows(db_url, len(PRIVMSG_IDS))
            finally:
                second.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(second.communicate(), 20)
            assert second.returncode == 0, err.decode()[-2000:]
            assert b"collector stopped" in out
    assert_exactly_once(db_url, PRIVMSG_IDS)
    assert rm.requests == ["/rm/nymn"] * 2
    assert scalar(db_url, "SELECT count(*) FROM chat.gaps WHERE reason = 'collector_restart'") == 1
