"""Collector faults with real processes: a database outage that a ``kill -9`` and a restart
fall into, and a collector that starts while the database is down.

Real parts throughout: ``chatpulse collect`` subprocesses, the fake Twitch server (a real
WebSocket peer replaying recorded IRC), a local HTTP recent-messages endpoint, the TCP proxy
in front of the real PostgreSQL.  Every wait is on a condition, bounded.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from chatpulse.app.commands.database import _unreachable, migrate_when_reachable
from chatpulse.core.errors import DatabaseError, MigrationError
from collector import irc
from collector.app import run_collector
from collector.codec import decode_events
from collector.events import ChatMessage
from collector.sources.twitch import TwitchIrcSource
from collector.spool import Spool
from tests.e2e.cli import chatpulse_exe
from tests.fake_twitch import FakeTwitchServer
from tests.helpers import until
from tests.http_stub import HttpStub
from tests.integration.test_collect_live import (
    FAST,
    LINES,
    PRIVMSG_IDS,
    privmsgs,
    rm_body,
    scalar,
    settings_for,
    via_proxy,
    wait_rows,
)
from tests.tcp_proxy import TcpProxy

WAITING_LOG = "waiting for it to check the schema"


def ids_of(lines: list[str]) -> set[str]:
    return {
        e.message_id
        for e in (irc.parse_event(line) for line in lines)
        if isinstance(e, ChatMessage)
    }


def collector_env(
    db_url: str, proxy: TcpProxy, server: FakeTwitchServer, data: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
    env.update(
        {
            "CHATPULSE_DATABASE_URL": via_proxy(db_url, proxy.port),
            "CHATPULSE_TWITCH_IRC_URL": server.url,
            "CHATPULSE_DATA_DIR": str(data),
            "CHATPULSE_EMOTE_PROVIDERS": "",
            "CHATPULSE_METRICS_PORT": "0",
            "CHATPULSE_FLUSH_INTERVAL_S": "0.05",
            "CHATPULSE_TIMESCALEDB": "off",
        }
    )
    return env


async def start_collector(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *chatpulse_exe(),
        "collect",
        "--channel",
        "nymn",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def joined_while_alive(
    server: FakeTwitchServer, proc: asyncio.subprocess.Process, n: int
) -> None:
    """Wait for the collector's ``n``-th JOIN; fail at once (with its stderr) if it exits."""
    join = asyncio.create_task(server.wait_for_join("nymn", n=n, within=30))
    exited = asyncio.create_task(proc.wait())
    done, _ = await asyncio.wait({join, exited}, return_when=asyncio.FIRST_COMPLETED)
    if exited in done:
        join.cancel()
        err = await proc.stderr.read() if proc.stderr else b""
        raise AssertionError(
            f"collector exited {proc.returncode} before joining: {err.decode()[-2000:]}"
        )
    exited.cancel()
    join.result()


def requested(stub: HttpStub, n: int) -> Callable[[], bool]:
    """A check: the stub has answered ``n`` requests."""
    return lambda: len(stub.requests) >= n


def spool_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.spool"))


def spooled_messages(directory: Path, scratch: Path) -> list[ChatMessage]:
    """The messages waiting in a (closed) spool, read from a copy so the original is intact."""
    shutil.copytree(directory, scratch, ignore=shutil.ignore_patterns(".lock"))
    out: list[ChatMessage] = []
    with Spool(scratch, max_bytes=1 << 30) as spool:
        while (head := spool.peek()) is not None:
            out.extend(e for e in decode_events(head[1]) if isinstance(e, ChatMessage))
            spool.ack(head[0])
    return out


async def stop_collector(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert b"collector stopped" in out
    return err.decode()


async def test_kill_9_and_restart_during_a_database_outage_lose_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """The measured run: live chat through the TCP proxy, database cut, ``kill -9`` during the
    cut, restart during the cut, database back.  Every message the fake server sent (live, or
    while no collector ran and still held by recent-messages) is stored exactly once, and the
    collector's outage is a gap row that gap fill covered."""
    n = len(LINES)
    cut_at, kill_at, restart_at, restore_at = n // 4, n // 2, (5 * n) // 8, (7 * n) // 8
    # Recent-messages: nothing at the first start; at the restart, what was said from a
    # little before the cut until then (Twitch keeps the last few hundred lines).
    held = LINES[cut_at - 50 : restart_at]
    port = urlsplit(db_url).port or 5432
    data = tmp_path / "data"
    spool_dir = data / "spool" / "collect"
    with (
        HttpStub([rm_body([]), rm_body(held)]) as rm,
        TcpProxy("127.0.0.1", port) as proxy,
    ):
        async with FakeTwitchServer() as server:
            env = collector_env(db_url, proxy, server, data)
            env["CHATPULSE_RECENT_MESSAGES_URL"] = rm.url + "/rm/{channel}"
            first = await start_collector(env)
            try:
                await joined_while_alive(server, first, 1)
                await server.send(*LINES[:cut_at])
                await wait_rows(db_url, privmsgs(LINES[:cut_at]))
                proxy.cut()
                await server.send(*LINES[cut_at:kill_at])
                await until("a spooled batch", lambda: spool_bytes(spool_dir) > 0)
            finally:
                first.send_signal(signal.SIGKILL)
                await first.wait()
            assert first.returncode == -signal.SIGKILL
            written_before = await asyncio.to_thread(
                scalar, db_url, "SELECT max(sent_at) FROM chat.messages"
            )
            stored_before = ids_of(LINES[:cut_at])
            spooled = spooled_messages(spool_dir, tmp_path / "spool-copy")
            assert spooled, "nothing was spooled before the kill"
            # Said while no collector ran: only recent-messages has these.
            await server.send(*LINES[kill_at:restart_at])

            after_kill = spool_bytes(spool_dir)
            second = await start_collector(env)  # the database is still down
            err = ""
            try:
                await joined_while_alive(server, second, 2)
                await until("the restart's gap fill", requested(rm, 2))
                await server.send(*LINES[restart_at:restore_at])
                # The restarted collector spools (its gap marker, the fill, live chat).
                await until("the restart's spool", lambda: spool_bytes(spool_dir) > after_kill)
                assert second.returncode is None
                assert scalar(db_url, "SELECT count(*) FROM chat.messages") == len(stored_before)
                proxy.restore()
                await server.send(*LINES[restore_at:])
                await wait_rows(db_url, len(PRIVMSG_IDS), within=40)
                await wait_rows(db_url, 1, table="chat.gaps WHERE filled_at IS NOT NULL")
            finally:
                if second.returncode is None:
                    err = await stop_collector(second)
    assert rm.requests == ["/rm/nymn"] * 2

    with psycopg.connect(db_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT message_id FROM chat.messages")]
        gaps = conn.execute(
            "SELECT reason, started_at, ended_at, filled_at, recovered, collector FROM chat.gaps"
        ).fetchall()
        by_source: dict[str, int] = dict(
            conn.execute("SELECT source, count(*) FROM chat.messages GROUP BY 1").fetchall()
        )
    assert len(rows) == len(set(rows)), "a message is stored twice"
    assert set(rows) == PRIVMSG_IDS == ids_of(LINES[:restart_at]) | ids_of(LINES[restart_at:])

    # One gap: the collector's outage, from the last message written (to the database or
    # the spool) before the kill to the rejoin, covered by the fill.
    assert len(gaps) == 1, gaps
    reason, started_at, ended_at, filled_at, recovered, collector = gaps[0]
    assert reason == "collector_restart"
    last_written: datetime = max([written_before, *(m.sent_at for m in spooled)])
    assert started_at == last_written
    assert ended_at is not None and ended_at > started_at
    assert filled_at is not None and collector
    # The fill brought back exactly what neither the database nor the spool had: what was
    # said while no collector ran, and what the killed one had received but not spooled.
    brought_back = ids_of(held) - stored_before - {m.message_id for m in spooled}
    assert ids_of(LINES[kill_at:restart_at]) <= brought_back
    assert recovered == len(brought_back) == by_source["gapfill"]
    # The database wait is logged once, not once per try.
    assert err.count(WAITING_LOG) == 1, err[-3000:]


async def test_collector_starts_while_the_database_is_down_and_creates_the_schema_later(
    empty_db_url: str, tmp_path: Path
) -> None:
    """A first start against a database that is down (and still empty): the collector runs,
    spools, and writes everything once the database is back and the schema is created."""
    port = urlsplit(empty_db_url).port or 5432
    data = tmp_path / "data"
    with TcpProxy("127.0.0.1", port) as proxy:
        proxy.cut()
        async with FakeTwitchServer() as server:
            proc = await start_collector(collector_env(empty_db_url, proxy, server, data))
            try:
                await joined_while_alive(server, proc, 1)
                await server.send(*LINES[:200])
                await until("the spool", lambda: spool_bytes(data / "spool" / "collect") > 0)
                assert proc.returncode is None
                assert scalar(empty_db_url, "SELECT to_regclass('chat.messages')") is None
                proxy.restore()
                await until(
                    "the schema",
                    lambda: scalar(empty_db_url, "SELECT to_regclass('chat.gaps')") is not None,
                )
                await wait_rows(empty_db_url, privmsgs(LINES[:200]), within=40)
                await server.send(*LINES[200:300])
                await wait_rows(empty_db_url, privmsgs(LINES[:300]))
            finally:
                err = await stop_collector(proc) if proc.returncode is None else ""
    with psycopg.connect(empty_db_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT message_id FROM chat.messages")]
        gaps = conn.execute("SELECT count(*) FROM chat.gaps").fetchone()
    assert sorted(rows) == sorted(ids_of(LINES[:300]))
    assert gaps == (0,)  # a channel's first start is no outage
    assert err.count(WAITING_LOG) == 1, err[-3000:]


async def test_a_clean_restart_records_the_collector_outage_as_a_gap_and_fills_it(
    db_url: str, tmp_path: Path
) -> None:
    """Stop, chat goes on, start again: the time the collector was not running is a
    ``collector_restart`` gap from the last message written to the rejoin, and gap fill brings
    back what was said meanwhile."""
    with HttpStub([rm_body([]), rm_body(LINES[50:200])]) as rm:
        settings = settings_for(db_url, tmp_path, recent_messages_url=rm.url + "/rm/{channel}")
        async with FakeTwitchServer() as server:
            for run, lines in enumerate((LINES[:100], LINES[200:300])):
                source = TwitchIrcSource(["nymn"], url=server.url, policy=FAST)
                stop = asyncio.Event()
                task = asyncio.create_task(
                    run_collector(
                        settings, db_url, [source], stop=stop, registry=CollectorRegistry()
                    )
                )
                await server.wait_for_join("nymn", n=run + 1)
                await until("the start's gap fill", requested(rm, run + 1))
                await server.send(*lines)
                expected = ids_of(LINES[:100]) | (ids_of(LINES[:300]) if run else set())
                await wait_rows(db_url, len(expected))
                if run:
                    await wait_rows(db_url, 1, table="chat.gaps WHERE filled_at IS NOT NULL")
                stop.set()
                await asyncio.wait_for(task, 15)
                if not run:
                    last_before = scalar(db_url, "SELECT max(sent_at) FROM chat.messages")
                    # Said while no collector runs: only recent-messages has it.
                    await server.send(*LINES[100:200])
    with psycopg.connect(db_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT message_id FROM chat.messages")]
        gaps = conn.execute(
            "SELECT reason, started_at, ended_at, recovered FROM chat.gaps"
        ).fetchall()
    assert sorted(rows) == sorted(ids_of(LINES[:300]))
    assert len(gaps) == 1, gaps
    reason, started_at, ended_at, recovered = gaps[0]
    assert (reason, started_at) == ("collector_restart", last_before)
    assert ended_at > started_at
    assert recovered == len(ids_of(LINES[100:200]))


async def test_a_stop_while_waiting_for_the_database_keeps_everything_for_the_next_run(
    db_url: str, tmp_path: Path
) -> None:
    """SIGTERM (here: ``stop``) before the database ever answered: the schema wait is
    abandoned, what was collected stays in the spool, and the next run writes it."""
    port = urlsplit(db_url).port or 5432
    with TcpProxy("127.0.0.1", port) as proxy:
        proxied = via_proxy(db_url, proxy.port)
        settings = settings_for(proxied, tmp_path)
        proxy.cut()
        async with FakeTwitchServer() as server:
            for run in range(2):
                source = TwitchIrcSource(["nymn"], url=server.url, policy=FAST)
                stop = asyncio.Event()
                task = asyncio.create_task(
                    run_collector(
                        settings,
                        proxied,
                        [source],
                        stop=stop,
                        registry=CollectorRegistry(),
                        prepare=functools.partial(migrate_when_reachable, settings, proxied),
                    )
                )
                await server.wait_for_join("nymn", n=run + 1)
                if run == 0:
                    await server.send(*LINES[:200])
                    await until(
                        "the spool",
                        lambda: spool_bytes(tmp_path / "data" / "spool" / "collect") > 0,
                    )
                else:
                    proxy.restore()
                    await wait_rows(db_url, len(ids_of(LINES[:200])))
                stop.set()
                totals = await asyncio.wait_for(task, 15)
                if run == 0:
                    assert totals.written == 0
                    assert scalar(db_url, "SELECT count(*) FROM chat.messages") == 0
    with psycopg.connect(db_url) as conn:
        rows = [r[0] for r in conn.execute("SELECT message_id FROM chat.messages")]
    assert sorted(rows) == sorted(ids_of(LINES[:200]))


async def test_a_schema_check_that_fails_stops_the_collector(db_url: str, tmp_path: Path) -> None:
    async def bad_schema() -> None:
        raise MigrationError("the database holds schema version 99, newer than this code")

    async with FakeTwitchServer() as server:
        source = TwitchIrcSource(["nymn"], url=server.url, policy=FAST)
        with pytest.raises(MigrationError, match="version 99"):
            await asyncio.wait_for(
                run_collector(
                    settings_for(db_url, tmp_path),
                    db_url,
                    [source],
                    registry=CollectorRegistry(),
                    prepare=bad_schema,
                ),
                15,
            )


@pytest.mark.parametrize(
    ("error", "waits"),
    [
        (DatabaseError("cannot connect to postgresql://…: connection refused"), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (MigrationError("schema version 99 is newer than this code"), False),
        (MigrationError("migration 0003_aggregates failed: syntax error"), False),
    ],
)
def test_the_schema_check_waits_only_for_an_unreachable_database(
    error: Exception, waits: bool
) -> None:
    assert _unreachable(error) is waits


def test_a_migration_cut_off_by_the_outage_is_waited_for() -> None:
    try:
        try:
            raise psycopg.OperationalError("terminating connection")
        except psycopg.Error as exc:
            raise MigrationError("migration 0005_scorer failed: terminating connection") from exc
    except MigrationError as exc:
        assert _unreachable(exc)
