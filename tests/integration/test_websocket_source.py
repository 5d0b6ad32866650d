"""JsonWebSocketSource against a real local WebSocket server that misbehaves on purpose.

The server (websockets' own ``serve`` on 127.0.0.1, a free port) records every frame the client
sends, plays a script per connection, and can cut the TCP connection without a close frame or
stop reading so that pings go unanswered.  No database is needed.  Every wait is on a condition
with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatpulse.core.errors import ConfigError
from collector.events import ChatEvent, ChatMessage, Malformed
from collector.sources.base import ReconnectPolicy
from collector.sources.websocket import FieldMapping, JsonWebSocketSource

MAPPING = FieldMapping(
    platform="relay",
    id="id",
    text="data.text",
    user_login="data.user",
    time="ts",
    time_format="epoch_ms",
    filter_path="type",
    filter_value="chat",
)
SUBSCRIBE = json.dumps({"op": "subscribe", "room": "lobby"})
FAST = ReconnectPolicy(initial_s=0, max_s=0, healthy_after_s=30)
TIMEOUT_S = 5.0


def chat(n: int) -> str:
    return json.dumps(
        {
            "type": "chat",
            "id": f"m{n}",
            "ts": 1_700_000_000_000 + n,
            "data": {"text": f"msg {n}", "user": "bob"},
        }
    )


@dataclass
class Recorder:
    """A SourceListener that records calls and lets a test wait for a condition on them."""

    events: list[ChatEvent] = field(default_factory=list)
    calls: list[tuple[str, Sequence[str], datetime, str]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_event(self, event: ChatEvent) -> None:
        async with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    async def on_connected(self, channels: Sequence[str], at: datetime) -> None:
        async with self.changed:
            self.calls.append(("connected", list(channels), at, ""))
            self.changed.notify_all()

    async def on_disconnected(self, channels: Sequence[str], at: datetime, reason: str) -> None:
        async with self.changed:
            self.calls.append(("disconnected", list(channels), at, reason))
            self.changed.notify_all()

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def texts(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, ChatMessage)]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(TIMEOUT_S), self.changed:
            await self.changed.wait_for(predicate)


Script = Callable[[ServerConnection, int], Awaitable[None]]


@dataclass
class Relay:
    """What the fake relay saw: the first frame of each connection (the subscribe)."""

    url: str
    first_frames: list[str] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def relay(
    script: Script, *, expect_subscribe: bool = True, **serve_kwargs: Any
) -> AsyncIterator[Relay]:
    """Run a WebSocket server whose n-th connection (0-based) is handled by ``script(ws, n)``,
    after the server has read the client's first frame when ``expect_subscribe``."""
    state = Relay(url="")

    async def handler(ws: ServerConnection) -> None:
        n = state.connections
        state.connections += 1
        if expect_subscribe:
            state.first_frames.append(str(await ws.recv()))
        await script(ws, n)

    async with serve(handler, "127.0.0.1", 0, **serve_kwargs) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        state.url = f"ws://127.0.0.1:{port}/chat"
        yield state


async def hold_open(ws: ServerConnection) -> None:
    await ws.wait_closed()


def start(source: JsonWebSocketSource, rec: Recorder) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    return asyncio.create_task(source.run(rec, stop)), stop


async def stop_within(task: asyncio.Task[None], stop: asyncio.Event, limit_s: float) -> float:
    began = time.monotonic()
    stop.set()
    async with asyncio.timeout(limit_s):
        await task
    return time.monotonic() - began


async def test_abrupt_drop_reconnects_and_delivers_every_message_in_order() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            for i in (1, 2, 3):
                await ws.send(chat(i))
            # Cut TCP with no close frame: what a crashed relay or a lost route looks like.
            ws.transport.abort()
            return
        for i in (4, 5, 6):
            await ws.send(chat(i))
        await hold_open(ws)

    async with relay(script) as server:
        rec = Recorder()
        source = JsonWebSocketSource(
            server.url, MAPPING, channel="#Lobby", subscribe=SUBSCRIBE, policy=FAST
        )
        task, stop = start(source, rec)
        await rec.wait_for(lambda: len(rec.events) == 6)
        await stop_within(task, stop, 2.0)

    assert rec.texts() == [f"msg {i}" for i in range(1, 7)]
    assert [e.message_id for e in rec.events if isinstance(e, ChatMessage)] == [
        f"m{i}" for i in range(1, 7)
    ]
    assert {e.channel for e in rec.events if isinstance(e, ChatMessage)} == {"lobby"}
    assert rec.kinds() == ["connected", "disconnected", "connected"]
    assert all(c[1] == ["lobby"] for c in rec.calls)
    assert "connection closed" in rec.calls[1][3]
    assert rec.calls[0][2] <= rec.calls[1][2] <= rec.calls[2][2]
    # The subscribe command goes out again on the new connection.
    assert server.first_frames == [SUBSCRIBE, SUBSCRIBE]


async def test_malformed_and_non_chat_frames_do_not_break_the_connection() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send("this is not json")
        await ws.send(json.dumps({"type": "presence", "who": "bob"}))
        await ws.send(json.dumps({"type": "chat", "id": "x", "ts": 1, "data": {}}))
        await ws.send(chat(7))
        await hold_open(ws)

    async with relay(script) as server:
        rec = Recorder()
        source = JsonWebSocketSource(
            server.url, MAPPING, channel="lobby", subscribe=SUBSCRIBE, policy=FAST
        )
        task, stop = start(source, rec)
        await rec.wait_for(lambda: any(isinstance(e, ChatMessage) for e in rec.events))
        await stop_within(task, stop, 2.0)

    assert [type(e).__name__ for e in rec.events] == ["Malformed", "Malformed", "ChatMessage"]
    first, second = rec.events[0], rec.events[1]
    assert isinstance(first, Malformed) and first.raw == "this is not json"
    assert isinstance(second, Malformed) and second.reason.startswith("text:")
    assert rec.kinds() == ["connected"]


async def test_silent_peer_is_detected_by_the_ping_timeout() -> None:
    reconnected = asyncio.Event()

    async def script(ws: ServerConnection, n: int) -> None:
        if n == 0:
            await ws.send(chat(1))
            # Stop reading: pings go unanswered, as on a half-open TCP connection.
            ws.transport.pause_reading()
            await reconnected.wait()
            ws.transport.abort()  # the server side never learns on its own; let it go
            return
        reconnected.set()
        await ws.send(chat(2))
        await hold_open(ws)

    async with relay(script) as server:
        rec = Recorder()
        source = JsonWebSocketSource(
            server.url,
            MAPPING,
            channel="lobby",
            subscribe=SUBSCRIBE,
            policy=FAST,
            ping_interval_s=0.2,
        )
        task, stop = start(source, rec)
        await rec.wait_for(lambda: len(rec.events) == 2)
        await stop_within(task, stop, 2.0)

    assert rec.texts() == ["msg 1", "msg 2"]
    assert rec.kinds() == ["connected", "disconnected", "connected"]
    assert "ping timeout" in rec.calls[1][3]


async def test_stop_while_connected_returns_within_a_second() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(chat(1))
        await hold_open(ws)

    async with relay(script) as server:
        rec = Recorder()
        source = JsonWebSocketSource(server.url, MAPPING, channel="lobby", subscribe=SUBSCRIBE)
        task, stop = start(source, rec)
        await rec.wait_for(lambda: len(rec.events) == 1)
        elapsed = await stop_within(task, stop, 1.5)

    assert elapsed < 1.0
    # A requested stop is not a lost connection: no gap is reported.
    assert rec.kinds() == ["connected"]


async def test_stop_during_backoff_returns_within_a_second() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        ws.transport.abort()

    async with relay(script) as server:
        rec = Recorder()
        # Waits of up to a minute: stop must not sit them out.
        slow = ReconnectPolicy(initial_s=60, max_s=60, healthy_after_s=30)
        source = JsonWebSocketSource(
            server.url, MAPPING, channel="lobby", subscribe=SUBSCRIBE, policy=slow
        )
        task, stop = start(source, rec)
        await rec.wait_for(lambda: "disconnected" in rec.kinds())
        elapsed = await stop_within(task, stop, 1.5)

    assert elapsed < 1.0
    assert rec.kinds() == ["connected", "disconnected"]


async def test_stop_while_connecting_returns_within_a_second() -> None:
    # A server that accepts TCP but never answers the handshake: connect would wait 10 s.
    accepted = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # until the client goes away
        writer.close()

    tcp = await asyncio.start_server(on_client, "127.0.0.1", 0)
    async with tcp:
        port = tcp.sockets[0].getsockname()[1]
        rec = Recorder()
        source = JsonWebSocketSource(f"ws://127.0.0.1:{port}/", MAPPING, channel="lobby")
        task, stop = start(source, rec)
        async with asyncio.timeout(TIMEOUT_S):
            await accepted.wait()
        elapsed = await stop_within(task, stop, 1.5)

    assert elapsed < 1.0
    assert rec.calls == []


async def test_rejected_handshake_raises_config_error() -> None:
    def reject(ws: ServerConnection, request: Request) -> Response:
        return Response(403, "Forbidden", Headers(), b"bad token\n")

    async def script(ws: ServerConnection, n: int) -> None:  # pragma: no cover - never reached
        await hold_open(ws)

    async with relay(script, expect_subscribe=False, process_request=reject) as server:
        rec = Recorder()
        source = JsonWebSocketSource(server.url + "?token=secret", MAPPING, policy=FAST)
        with pytest.raises(ConfigError, match="HTTP 403") as info:
            async with asyncio.timeout(TIMEOUT_S):
                await source.run(rec, asyncio.Event())

    # The message names the host, never the token in the query.
    assert "secret" not in str(info.value)
    assert rec.calls == []


async def test_server_errors_are_retried_until_the_relay_is_back() -> None:
    attempts = 0

    def flaky(ws: ServerConnection, request: Request) -> Response | None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            return Response(503, "Service Unavailable", Headers(), b"")
        return None

    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(chat(1))
        await hold_open(ws)

    async with relay(script, expect_subscribe=False, process_request=flaky) as server:
        rec = Recorder()
        source = JsonWebSocketSource(server.url, MAPPING, channel="lobby", policy=FAST)
        task, stop = start(source, rec)
        await rec.wait_for(lambda: len(rec.events) == 1)
        await stop_within(task, stop, 2.0)

    assert attempts == 3
    # Failed handshakes were never connections: no gap, one connect.
    assert rec.kinds() == ["connected"]
    assert server.connections == 1


async def test_backoff_resets_after_a_healthy_connection() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        ws.transport.abort()

    async with relay(script) as server:
        rec = Recorder()
        # Every connection counts as healthy at once, so each wait stays within initial_s
        # (10 waits <= 0.5 s).  Without the reset they would grow to 0.05 * 2**9 s and ten
        # reconnects would take about 25 s on average, far past the timeout.
        policy = ReconnectPolicy(initial_s=0.05, max_s=60, healthy_after_s=0)
        source = JsonWebSocketSource(
            server.url, MAPPING, channel="lobby", subscribe=SUBSCRIBE, policy=policy
        )
        task, stop = start(source, rec)
        await rec.wait_for(lambda: rec.kinds().count("disconnected") >= 10)
        await stop_within(task, stop, 2.0)

    assert server.connections >= 10
