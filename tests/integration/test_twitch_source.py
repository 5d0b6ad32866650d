"""TwitchIrcSource against a real local WebSocket peer (tests/fake_twitch.py); no database.

Chat lines are real: a recent-messages response from #nymn and Chatterino's IRC snapshot
inputs (tests/fixtures, with their PROVENANCE).  Every wait is on a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from collector.events import ChatEvent, ChatMessage, ControlEvent, Malformed, ModerationEvent
from collector.irc import parse_event
from collector.sources import twitch
from collector.sources.base import ReconnectPolicy
from collector.sources.twitch import (
    TwitchAuthError,
    TwitchIrcSource,
    _join_batches,
    _JoinLimiter,
    reconnect_wait,
)
from tests.fake_twitch import DROP, LOGGER, FakeTwitchServer
from tests.helpers import closed_port_url
from tests.paths import IRC_SNAPSHOTS, nymn_irc_lines

NO_WAIT = ReconnectPolicy(initial_s=0.0, max_s=0.0, healthy_after_s=30.0)
CAPS = "CAP REQ :twitch.tv/tags twitch.tv/commands twitch.tv/membership"


def _nymn_lines() -> list[str]:
    return nymn_irc_lines()


def _snapshot_lines() -> list[str]:
    text = (IRC_SNAPSHOTS / "irc_inputs.tsv").read_text(encoding="utf-8")
    # split("\n"), not splitlines(): raw lines may hold U+2028 and friends.
    return [row.split("\t", 2)[2] for row in text.split("\n")[1:] if row]


def _identity(event: ChatEvent) -> tuple[str, str]:
    """What identifies an event independently of when it was received."""
    if isinstance(event, ChatMessage):
        return ("message", event.message_id)
    if isinstance(event, ModerationEvent):
        return ("moderation", event.event_key)
    if isinstance(event, Malformed):
        return ("malformed", event.raw)
    return ("control", event.kind)


@dataclass
class Recorder:
    """A SourceListener that records every call, in order."""

    events: list[ChatEvent] = field(default_factory=list)
    connected: list[tuple[tuple[str, ...], datetime]] = field(default_factory=list)
    disconnected: list[tuple[tuple[str, ...], datetime, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def on_event(self, event: ChatEvent) -> None:
        self.events.append(event)
        self.calls.append(f"event:{event.kind}" if isinstance(event, ControlEvent) else "event")
        self._notify()

    async def on_connected(self, channels: Sequence[str], at: datetime) -> None:
        self.connected.append((tuple(channels), at))
        self.calls.append("connected:" + ",".join(channels))
        self._notify()

    async def on_disconnected(self, channels: Sequence[str], at: datetime, reason: str) -> None:
        self.disconnected.append((tuple(channels), at, reason))
        self.calls.append("disconnected:" + ",".join(channels))
        self._notify()

    @property
    def messages(self) -> list[ChatEvent]:
        return [e for e in self.events if not isinstance(e, ControlEvent)]

    def connected_channels(self) -> list[str]:
        return [c for chans, _ in self.connected for c in chans]

    async def wait_for_connected(self, n: int) -> None:
        """Wait until on_connected was called ``n`` times in all."""
        await self.wait_for(lambda: len(self.connected) >= n)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()


@asynccontextmanager
async def running(source: TwitchIrcSource, listener: Recorder) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``source`` in a task; on exit set stop and require run() to return within 1 s."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(listener, stop))
    try:
        yield task
    finally:
        stop.set()
        async with asyncio.timeout(2.0):
            await asyncio.gather(task, return_exceptions=True)


def _join_lines(server: FakeTwitchServer) -> list[tuple[float, list[str]]]:
    return [
        (at, [c.removeprefix("#") for c in line.split(" ", 1)[1].split(",")])
        for at, line in server.received_at
        if line.startswith("JOIN ")
    ]


# ------------------------------------------------------------------------------------------
# Login
# ------------------------------------------------------------------------------------------


async def test_anonymous_login_requests_caps_and_joins_channels_in_one_batch() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["A", "#b"], url=server.url, policy=NO_WAIT)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 2)
            assert source.connected
        sent = server.received
        assert sent[0] == CAPS
        nick = sent[1]
        assert re.fullmatch(r"NICK justinfan\d+", nick)
        assert 1000 <= int(nick.removeprefix("NICK justinfan")) <= 80999
        assert not any(line.startswith("PASS") for line in sent)
        assert "JOIN #a,#b" in sent
        assert listener.connected_channels() == ["a", "b"]
        # stop reports the end of the connection for the channels it had reported up
        assert listener.disconnected[-1][0] == ("a", "b")
        assert listener.disconnected[-1][2] == "stopped"


async def test_oauth_login_sends_pass_with_prefix_and_never_logs_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "s3cr3ttokenvalue0123456789abcd"
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(
            ["a"], url=server.url, login="MyBot", oauth_token=token, policy=NO_WAIT
        )
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
        assert server.received[:3] == [CAPS, f"PASS oauth:{token}", "NICK mybot"]
    # everything but the fake peer's own log, which plays Twitch and sees the PASS line
    records = [r.getMessage() for r in caplog.records if not r.name.startswith(LOGGER.name)]
    assert any("PASS" in m for m in records), "websockets' frame log should have been captured"
    assert not any(token in m for m in records)
    assert token not in repr(source)


async def test_oauth_prefix_already_present_is_not_doubled() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url, login="bot", oauth_token="oauth:xyz")
        async with running(source, listener):
            await server.wait_for_line("PASS oauth:xyz")
        assert "PASS oauth:oauth:xyz" not in server.received


async def test_rejected_login_raises_twitch_auth_error_from_run() -> None:
    async with FakeTwitchServer(auth_fail=True) as server:
        listener = Recorder()
        source = TwitchIrcSource(
            ["a"], url=server.url, login="bot", oauth_token="badtoken", policy=NO_WAIT
        )
        with pytest.raises(TwitchAuthError, match="Login authentication failed") as info:
            async with asyncio.timeout(3.0):
                await source.run(listener, asyncio.Event())
        assert "badtoken" not in str(info.value)
        assert server.connections == 1  # fatal: no retry with the same credentials
        assert listener.connected == []


# ------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------


async def test_server_ping_is_answered_with_pong_and_not_delivered() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            await server.send("PING :tmi.twitch.tv")
            await server.wait_for_line("PONG :tmi.twitch.tv")
        assert not any(isinstance(e, ControlEvent) and e.kind == "ping" for e in listener.events)


async def test_real_chat_lines_arrive_in_order_one_frame_each() -> None:
    lines = _nymn_lines()
    expected = [_identity(parse_event(line)) for line in lines]
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["nymn"], url=server.url)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            await server.send(*lines)
            await listener.wait_for(lambda: len(listener.messages) == len(lines))
    got = [_identity(e) for e in listener.messages]
    assert got == expected
    assert len([e for e in listener.messages if isinstance(e, ChatMessage)]) == 798
    first = listener.messages[0]
    assert isinstance(first, ChatMessage) and first.channel == "nymn"
    assert first.received_at is not None and first.received_at.tzinfo is not None


async def test_one_frame_with_many_lines_yields_every_event_in_order() -> None:
    lines = _snapshot_lines()
    expected = [_identity(parse_event(line)) for line in lines]
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["pajlada"], url=server.url)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            before = len(listener.events)
            await server.send_frame(*lines)
            await listener.wait_for(lambda: len(listener.events) - before == len(lines))
    assert [_identity(e) for e in listener.events[before:]] == expected
    kinds = {type(e).__name__ for e in listener.events[before:]}
    assert {"ChatMessage", "ModerationEvent"} <= kinds


async def test_join_echo_roomstate_and_welcome_are_delivered_as_control_events() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url)
        async with running(source, listener):
            await listener.wait_for(
                lambda: any(
                    isinstance(e, ControlEvent) and e.kind == "roomstate" for e in listener.events
                )
            )
    kinds = [e.kind for e in listener.events if isinstance(e, ControlEvent)]
    assert kinds.index("cap") < kinds.index("welcome") < kinds.index("join")
    # on_connected comes right after our own JOIN echo, before the channel's ROOMSTATE
    at = listener.calls.index("connected:a")
    assert listener.calls[at - 1] == "event:join"
    assert at < listener.calls.index("event:roomstate")


# ------------------------------------------------------------------------------------------
# Reconnecting
# ------------------------------------------------------------------------------------------


async def test_dropped_connection_reports_gap_rejoins_and_keeps_delivering() -> None:
    lines = _nymn_lines()[:6]
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["nymn"], url=server.url, policy=NO_WAIT)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            await server.send(*lines[:3])
            await listener.wait_for(lambda: len(listener.messages) == 3)
            await server.drop()
            await listener.wait_for(lambda: len(listener.connected) == 2)
            await server.wait_for_join("nymn", n=2)
            await server.send(*lines[3:])
            await listener.wait_for(lambda: len(listener.messages) == 6)
            assert source.reconnects == 1
        assert server.connections == 2
        assert server.received.count(CAPS) == 2
    calls = [c for c in listener.calls if not c.startswith("event")]
    assert calls[:3] == ["connected:nymn", "disconnected:nymn", "connected:nymn"]
    channels, gap_start, reason = listener.disconnected[0]
    assert channels == ("nymn",)
    assert reason.startswith("connection closed")
    assert gap_start <= listener.connected[1][1]
    assert [_identity(e) for e in listener.messages] == [
        _identity(parse_event(line)) for line in lines
    ]


async def test_scripted_drop_then_reconnect_delivers_both_connections_lines() -> None:
    lines = _nymn_lines()[:4]
    script = [[lines[0], lines[1], DROP], ["\r\n".join(lines[2:])]]
    async with FakeTwitchServer(script=script) as server:
        listener = Recorder()
        source = TwitchIrcSource(["nymn"], url=server.url, policy=NO_WAIT)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.messages) == 4)
    assert [_identity(e) for e in listener.messages] == [
        _identity(parse_event(line)) for line in lines
    ]
    assert len(listener.disconnected) >= 1


async def test_reconnect_command_reconnects_at_once_without_backoff() -> None:
    slow = ReconnectPolicy(initial_s=30.0, max_s=30.0)  # a backoff would blow the timeout
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a", "b"], url=server.url, policy=slow)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 2)
            await server.send_reconnect()
            await listener.wait_for(lambda: len(listener.connected) == 4, within=2.0)
        assert server.connections == 2
    assert listener.disconnected[0][0] == ("a", "b")
    assert listener.disconnected[0][2] == "server RECONNECT"
    assert not any(isinstance(e, ControlEvent) and e.kind == "reconnect" for e in listener.events)


async def test_repeated_reconnect_on_unhealthy_connections_falls_back_to_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []

    def record(policy: ReconnectPolicy, attempt: int) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(twitch, "reconnect_wait", record)
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url)  # healthy only after 30 s
        async with running(source, listener):
            for n in (1, 2, 3):
                await listener.wait_for_connected(n)
                await server.send_reconnect()
            await listener.wait_for_connected(4)
    # the first RECONNECT is obeyed at once; the next ones in a row wait like any failure
    assert attempts == [0, 1]


async def test_silent_server_is_detected_by_keepalive_ping() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(
            ["a"], url=server.url, policy=NO_WAIT, keepalive_s=0.3, pong_timeout_s=0.3
        )
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            server.go_silent()
            silent_since = time.monotonic()
            await listener.wait_for(lambda: len(listener.disconnected) == 1, within=2.0)
            detected_after = time.monotonic() - silent_since
            await server.wait_for(lambda: server.connections == 2)
        assert "PING :tmi.twitch.tv" in server.received
    assert listener.disconnected[0][2] == "keepalive timeout"
    # keepalive_s of silence, a PING, pong_timeout_s more: dead (plus scheduling slack)
    assert 0.5 <= detected_after <= 0.6 + 0.4


async def test_keepalive_pong_keeps_a_quiet_connection_alive() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url, keepalive_s=0.1, pong_timeout_s=0.3)
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 1)
            await server.wait_for_line("PING :tmi.twitch.tv", n=3)
            assert listener.disconnected == []
        assert server.connections == 1
    assert any(isinstance(e, ControlEvent) and e.kind == "pong" for e in listener.events)


async def test_join_rate_limit_splits_45_channels_into_paced_batches() -> None:
    channels = [f"chan{i:02d}" for i in range(45)]
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(channels, url=server.url, join_rate=(20, 0.5))
        async with running(source, listener):
            await listener.wait_for(lambda: len(listener.connected) == 45)
        joins = _join_lines(server)
    assert len(joins) >= 3
    assert [c for _, batch in joins for c in batch] == channels
    assert all(len(batch) <= 20 for _, batch in joins)
    # no 0.5 s window (small tolerance for the server's receive time) holds more than 20 joins
    for start, _ in joins:
        in_window = sum(len(b) for at, b in joins if start <= at < start + 0.45)
        assert in_window <= 20
    assert joins[-1][0] - joins[0][0] >= 0.9
    assert sorted(listener.connected_channels()) == channels


# ------------------------------------------------------------------------------------------
# Stopping
# ------------------------------------------------------------------------------------------


async def test_stop_returns_within_a_second_while_connected() -> None:
    async with FakeTwitchServer() as server:
        listener = Recorder()
        stop = asyncio.Event()
        source = TwitchIrcSource(["a"], url=server.url)
        task = asyncio.create_task(source.run(listener, stop))
        await listener.wait_for(lambda: len(listener.connected) == 1)
        started = time.monotonic()
        stop.set()
        async with asyncio.timeout(1.0):
            await task
        assert time.monotonic() - started < 1.0
        assert not source.connected


async def test_stop_returns_within_a_second_while_the_handshake_hangs() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept TCP, never answer the WebSocket upgrade
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        listener = Recorder()
        stop = asyncio.Event()
        source = TwitchIrcSource(["a"], url=f"ws://127.0.0.1:{port}")
        task = asyncio.create_task(source.run(listener, stop))
        await asyncio.sleep(0.2)  # let the client connect and send its upgrade request
        assert not task.done()
        started = time.monotonic()
        stop.set()
        async with asyncio.timeout(1.0):
            await task
        assert time.monotonic() - started < 1.0
        assert listener.events == [] and source.reconnects == 0


async def test_stop_returns_within_a_second_during_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    backing_off = asyncio.Event()

    def long_wait(policy: ReconnectPolicy, attempt: int) -> float:
        backing_off.set()
        return 30.0

    monkeypatch.setattr(twitch, "reconnect_wait", long_wait)
    listener = Recorder()
    stop = asyncio.Event()
    source = TwitchIrcSource(["a"], url=closed_port_url("ws"))
    task = asyncio.create_task(source.run(listener, stop))
    async with asyncio.timeout(2.0):
        await backing_off.wait()
    assert source.last_disconnect_reason is not None
    assert source.last_disconnect_reason.startswith("connect failed")
    started = time.monotonic()
    stop.set()
    async with asyncio.timeout(1.0):
        await task
    assert time.monotonic() - started < 1.0
    assert listener.connected == [] and listener.disconnected == []


async def test_backoff_attempts_grow_while_failing_and_reset_after_healthy_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []
    three = asyncio.Event()

    def record(policy: ReconnectPolicy, attempt: int) -> float:
        attempts.append(attempt)
        if len(attempts) >= 3:
            three.set()
        return 0.0

    monkeypatch.setattr(twitch, "reconnect_wait", record)
    listener = Recorder()
    source = TwitchIrcSource(["a"], url=closed_port_url("ws"))
    async with running(source, listener):
        async with asyncio.timeout(2.0):
            await three.wait()
    assert attempts[:3] == [0, 1, 2]

    attempts.clear()
    healthy_at_once = ReconnectPolicy(healthy_after_s=0.0)
    async with FakeTwitchServer() as server:
        listener = Recorder()
        source = TwitchIrcSource(["a"], url=server.url, policy=healthy_at_once)
        async with running(source, listener):
            for n in (1, 2, 3):
                await listener.wait_for_connected(n)
                await server.drop()
            await listener.wait_for(lambda: len(listener.connected) == 4)
    assert attempts[:3] == [0, 0, 0]


# ------------------------------------------------------------------------------------------
# Pure helpers: backoff, join pacing
# ------------------------------------------------------------------------------------------


def test_reconnect_wait_is_full_jitter_within_a_growing_capped_window() -> None:
    policy = ReconnectPolicy(initial_s=1.0, max_s=8.0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 8.0), (50, 8.0)]:
        waits = [reconnect_wait(policy, attempt) for _ in range(300)]
        assert all(0.0 <= w <= cap for w in waits), attempt
        # 300 uniform draws: the largest is within 10 % of the cap except with p = 0.9**300
        assert max(waits) > 0.9 * cap, attempt
    assert reconnect_wait(ReconnectPolicy(initial_s=0.0, max_s=0.0), 5) == 0.0
    with pytest.raises(ValueError):
        reconnect_wait(policy, -1)


def test_join_limiter_allows_limit_per_window_then_says_how_long_to_wait() -> None:
    limiter = _JoinLimiter(20, 10.0)
    assert limiter.allowance(100.0) == (20, 0.0)
    limiter.record(100.0, 15)
    assert limiter.allowance(101.0) == (5, 0.0)
    limiter.record(101.0, 5)
    free, wait = limiter.allowance(105.0)
    assert free == 0 and wait == pytest.approx(5.0)
    assert limiter.allowance(110.0) == (15, 0.0)  # the first 15 left the window
    assert limiter.allowance(111.0) == (20, 0.0)


def test_join_batches_respect_count_and_irc_line_length() -> None:
    assert _join_batches(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    long = [f"{'x' * 24}{i}" for i in range(40)]
    batches = _join_batches(long, 100)
    assert [c for b in batches for c in b] == long
    assert all(len("JOIN " + ",".join("#" + c for c in b)) <= 500 for b in batches)


def test_constructor_rejects_unusable_arguments() -> None:
    with pytest.raises(ValueError):
        TwitchIrcSource([])
    with pytest.raises(TypeError):
        TwitchIrcSource("nymn")
    with pytest.raises(ValueError):
        TwitchIrcSource(["a"], oauth_token="tok")  # no login
    with pytest.raises(ValueError):
        TwitchIrcSource(["bad channel"])
    assert TwitchIrcSource(["#NymN", "nymn"]).channels == ("nymn",)
