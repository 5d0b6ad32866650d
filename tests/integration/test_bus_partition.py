"""A network partition between a collector and NATS, made for real: the collector runs on a
host of its own (a network namespace, tests/netns.py) with one cable to NATS and one to the
chat server; the NATS cable is pulled while chat keeps flowing.  Every wait is on a condition."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.e2e.cli import chatpulse_exe, run_cli
from tests.integration.test_bus import (
    TTL,
    ChannelServer,
    RecentStub,
    _settled,
    assert_no_traceback,
    env_for,
    ids_in,
    lease_owners,
    privmsg,
    settings_of,
    spawn,
    stop_all,
    until,
)
from tests.nats_server import NatsServer, nats_server_binary
from tests.netns import NetnsHost, netns_unavailable
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="no nats-server binary")


@pytest.fixture
def nats_srv(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def host() -> Iterator[NetnsHost]:
    why = netns_unavailable()
    if why is not None:
        pytest.skip(f"partition test needs a host of its own: {why}")
    with NetnsHost() as h:
        yield h


async def spawn_in(
    host: NetnsHost, *args: str, env: dict[str, str], log: Path
) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *host.command(*chatpulse_exe(), *args), env=env, stdout=out, stderr=out
        )


def gaps(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT c.name, g.reason, g.ended_at IS NOT NULL, g.filled_at IS NOT NULL,"
            " g.recovered FROM chat.gaps g JOIN chat.channels c ON c.id = g.channel_id"
            " ORDER BY 1"
        ).fetchall()


async def test_a_collector_cut_off_from_nats_loses_its_channels_in_time_and_its_late_copies_add_nothing(
    nats_srv: NatsServer, db_url: str, tmp_path: Path, host: NetnsHost
) -> None:
    settings = settings_of(db_url, nats_srv.url, tmp_path)
    channels = ["pa", "pb", "pc", "pd"]
    added = run_cli(
        "channels", "add", *channels, env=env_for(db_url, nats_srv.url, tmp_path), timeout=60
    )
    assert added.returncode == 0, added.stderr
    stub = RecentStub()
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with ChannelServer() as twitch:
            to_nats, to_chat = host.link(), host.link()
            chat_port = urlsplit(twitch.url).port
            stub_port = urlsplit(stub.url.replace("{channel}", "")).port
            assert chat_port and stub_port
            with (
                TcpProxy("127.0.0.1", nats_srv.port, listen_host=to_nats.host_ip) as nats_px,
                TcpProxy("127.0.0.1", chat_port, listen_host=to_chat.host_ip) as chat_px,
                TcpProxy("127.0.0.1", stub_port, listen_host=to_chat.host_ip) as stub_px,
            ):
                # collector A on its own host; B, the writers and NATS on this one
                a = await spawn_in(
                    host,
                    "collect",
                    "--sink",
                    "nats",
                    env=env_for(
                        db_url,
                        f"nats://{to_nats.host_ip}:{nats_px.port}",
                        tmp_path / "a",
                        CHATPULSE_TWITCH_IRC_URL=f"ws://{to_chat.host_ip}:{chat_px.port}",
                        CHATPULSE_RECENT_MESSAGES_URL=(
                            f"http://{to_chat.host_ip}:{stub_px.port}/{{channel}}"
                        ),
                    ),
                    log=tmp_path / "a.log",
                )
                procs.append(a)
                b = await spawn(
                    "collect",
                    "--sink",
                    "nats",
                    env=env_for(
                        db_url,
                        nats_srv.url,
                        tmp_path / "b",
                        CHATPULSE_TWITCH_IRC_URL=twitch.url,
                        CHATPULSE_RECENT_MESSAGES_URL=stub.url,
                    ),
                    log=tmp_path / "b.log",
                )
                procs.append(b)
                writers = [
                    await spawn(
                        "ingest",
                        env=env_for(db_url, nats_srv.url, tmp_path / f"w{i}"),
                        log=tmp_path / f"w{i}.log",
                    )
                    for i in range(2)
                ]
                procs += writers

                def held_by(pid: int, owners: dict[str, Any]) -> list[str]:
                    return sorted(
                        c
                        for c, le in owners.items()
                        if not le.released and le.owner.endswith(f":{pid}")
                    )

                async def balanced() -> bool:
                    owners = await lease_owners(settings)
                    return (
                        len(held_by(a.pid, owners)) == 2
                        and len(held_by(b.pid, owners)) == 2
                        and all(twitch.holders(c) == 1 for c in channels)
                    )

                await until("A and B holding 2 channels each", balanced, within=60)
                n = 0
                for c in channels:
                    await twitch.say(c, *(privmsg(c, f"{c}-{i}", i) for i in range(50)))
                    n += 50
                await until("every message", lambda: len(ids_in(db_url)) == n, within=60)

                theirs = held_by(a.pid, await lease_owners(settings))
                for c in theirs:  # what B's gap fill will find after the takeover
                    stub.lines[c] = [privmsg(c, f"{c}-missed-{i}", 1000 + i) for i in range(7)]

                # Pull A's cable to NATS.  A still hears the chat, so it goes on collecting and
                # publishing into the void.
                to_nats.cut()
                cut_at = time.monotonic()
                assert all(twitch.holders(c) == 1 for c in theirs)  # nobody else listens yet
                for c in theirs:
                    await twitch.say(c, *stub.lines[c])
                n += 7 * len(theirs)

                async def taken_over() -> bool:
                    owners = await lease_owners(settings)
                    return held_by(b.pid, owners) == channels and all(
                        twitch.holders(c) == 2
                        for c in theirs  # B joined; A never left
                    )

                await until("B to take A's channels over", taken_over, within=30)
                took = time.monotonic() - cut_at
                # A renewed at most TTL/3 before the cut; then TTL + one scan + a join, and a
                # margin for this loaded machine
                assert took < TTL + TTL / 3 + 5, took
                # Two owners now: A (cut off) and B both hear the chat of A's old channels.
                for c in channels:
                    await twitch.say(c, *(privmsg(c, f"{c}-{i}", i) for i in range(50, 60)))
                n += 10 * len(channels)
                await until(
                    "every message and the filled takeover gaps",
                    lambda: len(ids_in(db_url)) == n and len(gaps(db_url)) == len(theirs),
                    within=60,
                )
                await until("the gaps filled", lambda: all(g[3] for g in gaps(db_url)), within=60)
                # the fill found A's last 7 messages of each channel: only A had heard them
                assert gaps(db_url) == [(c, "takeover", True, True, 7) for c in theirs]

                # Heal: A learns it lost its leases and stops collecting those channels;
                # everything it heard while cut off is published now and adds nothing.
                to_nats.heal()
                await until(
                    "one collector per channel again",
                    lambda: all(twitch.holders(c) == 1 for c in channels),
                    within=90,
                )
                a_log = (tmp_path / "a.log").read_text()
                assert "lease lost to another collector" in a_log, a_log[-3000:]
                a.send_signal(signal.SIGTERM)  # A publishes what it still holds, then stops
                assert await asyncio.wait_for(a.wait(), 60) == 0
                b.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(b.wait(), 60) == 0
                a_log = (tmp_path / "a.log").read_text()
                assert "events not published" not in a_log, a_log[-3000:]
                await until("the writers to settle", lambda: _settled(settings), within=60)
                await stop_all(writers)
                ids = ids_in(db_url)
                assert len(ids) == len(set(ids)) == n
                # A's copies of the 7 messages per channel that B's fill stored first did reach
                # the writers after the heal, and were dropped as duplicates.
                dropped = sum(
                    int(m.group(1))
                    for i in range(2)
                    if (m := re.search(r"(\d+) duplicates", (tmp_path / f"w{i}.log").read_text()))
                )
                assert dropped >= 7 * len(theirs), dropped
    finally:
        await stop_all(procs)
        stub.close()
    assert_no_traceback(tmp_path)
