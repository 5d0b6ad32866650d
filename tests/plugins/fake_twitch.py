"""The fake Twitch plugin: an IRC-over-WebSocket server, real local sockets, scripted faults.

::

    async with FakeTwitchServer(script=[["@id=...;... PRIVMSG #a :hi"]]) as server:
        source = TwitchIrcSource(["a"], url=server.url)
        ...
        await server.wait_for_join("a")
        await server.send(line1, line2)      # one frame per line, to every client
        await server.send_frame(line1, line2)  # one frame holding both lines
        await server.drop()                   # abort the TCP connections, no close frame
        await server.send_reconnect()         # ``:tmi.twitch.tv RECONNECT``
        server.go_silent()                    # answer nothing any more, not even PING

It answers like Twitch ([IRC] "Login", "Capabilities"): CAP ACK, the 001-376 welcome
(or ``NOTICE * :Login authentication failed`` and a close with ``auth_fail=True``), for each
JOINed channel our own JOIN echo, NAMES and a ROOMSTATE, and PONG to PING.  Everything the
clients send is recorded in :attr:`FakeTwitchServer.received` (one entry per IRC line).

Fixture: ``fake_twitch``, a started server with no script (async tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType

import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from collector.irc import IrcParseError, parse_line, split_frame

__all__ = ["DROP", "LOGGER", "FakeTwitchServer", "fake_twitch"]

#: The fake peer's own log (it logs what clients send, secrets included: it plays Twitch).
LOGGER = logging.getLogger("tests.fake_twitch")

#: In a ``script``: abort the connection at this point (like :meth:`FakeTwitchServer.drop`).
DROP = "\x00drop"

_WELCOME = (
    ":tmi.twitch.tv 001 {nick} :Welcome, GLHF!",
    ":tmi.twitch.tv 002 {nick} :Your host is tmi.twitch.tv",
    ":tmi.twitch.tv 003 {nick} :This server is rather new",
    ":tmi.twitch.tv 004 {nick} :-",
    ":tmi.twitch.tv 375 {nick} :-",
    ":tmi.twitch.tv 372 {nick} :You are in a maze of twisty passages, all alike.",
    ":tmi.twitch.tv 376 {nick} :>",
)


class FakeTwitchServer:
    """A local WebSocket peer speaking enough Twitch IRC for the collector's source.

    ``script[i]`` is what the i-th accepted connection (0-based) receives right after its first
    JOIN is answered: WebSocket frames, each one or more CR LF separated lines, or :data:`DROP`
    to abort that connection there.  ``auth_fail=True`` rejects every login the way Twitch
    does.  Use it as an async context manager; :attr:`url` is valid inside.
    """

    def __init__(self, *, script: Sequence[Sequence[str]] = (), auth_fail: bool = False) -> None:
        self.script = [list(frames) for frames in script]
        self.auth_fail = auth_fail
        #: Every line a client sent, in arrival order.
        self.received: list[str] = []
        #: ``(time.monotonic(), line)`` for every line in :attr:`received`.
        self.received_at: list[tuple[float, str]] = []
        #: How many connections were accepted so far.
        self.connections = 0
        #: How many times each channel's JOIN was answered (over all connections).
        self.joins: Counter[str] = Counter()
        self.silent = False
        self._server: Server | None = None
        self._clients: set[ServerConnection] = set()
        self._changed = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTwitchServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, ping_interval=None, logger=LOGGER)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("use FakeTwitchServer as an async context manager")
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # -- what the test does ---------------------------------------------------------------

    async def send(self, *lines: str) -> None:
        """Send each line as its own frame to every connected client."""
        for line in lines:
            await self._broadcast(line + "\r\n")

    async def send_frame(self, *lines: str) -> None:
        """Send all lines in one frame (CR LF separated, as Twitch batches them)."""
        await self._broadcast("".join(line + "\r\n" for line in lines))

    async def send_reconnect(self) -> None:
        """Tell every client the server is going away (Twitch's ``RECONNECT``)."""
        await self.send(":tmi.twitch.tv RECONNECT")

    async def drop(self) -> None:
        """Abort every client's TCP connection without a WebSocket close frame."""
        for conn in list(self._clients):
            conn.transport.abort()
        await asyncio.sleep(0)

    def go_silent(self) -> None:
        """Stop answering anything (welcome, JOIN, PING); lines are still recorded."""
        self.silent = True

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked whenever the server's state changes.

        Raises :class:`TimeoutError` after ``within`` seconds.
        """
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    async def wait_for_join(self, channel: str, n: int = 1, within: float = 5.0) -> None:
        """Wait until the JOIN of ``channel`` (login, without ``#``) was answered ``n`` times."""
        await self.wait_for(lambda: self.joins[channel] >= n, within)

    async def wait_for_line(self, line: str, n: int = 1, within: float = 5.0) -> None:
        """Wait until a client sent exactly ``line`` ``n`` times in all."""
        await self.wait_for(lambda: self.received.count(line) >= n, within)

    # -- the peer -------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _broadcast(self, frame: str) -> None:
        for conn in list(self._clients):
            with contextlib.suppress(ConnectionClosed):
                await conn.send(frame)

    async def _reply(self, conn: ServerConnection, *lines: str) -> None:
        if not self.silent and lines:
            await conn.send("".join(line + "\r\n" for line in lines))

    async def _handle(self, conn: ServerConnection) -> None:
        index = self.connections
        self.connections += 1
        self._clients.add(conn)
        self._notify()
        state: dict[str, str] = {"nick": "*"}
        scripted = False
        try:
            async for frame in conn:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                for line in split_frame(text):
                    self.received.append(line)
                    self.received_at.append((time.monotonic(), line))
                    joined = await self._answer(conn, line, state)
                    self._notify()
                    if joined and not scripted and not self.silent:
                        scripted = True
                        await self._play(conn, index)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(conn)
            self._notify()

    async def _play(self, conn: ServerConnection, index: int) -> None:
        if index >= len(self.script):
            return
        for frame in self.script[index]:
            if frame == DROP:
                conn.transport.abort()
                return
            await conn.send(frame if frame.endswith("\n") else frame + "\r\n")

    async def _answer(self, conn: ServerConnection, line: str, state: dict[str, str]) -> bool:
        """Answer one client line like Twitch; return whether it was a JOIN we answered."""
        try:
            msg = parse_line(line)
        except IrcParseError:
            return False
        nick = state["nick"]
        if msg.command == "CAP" and msg.params[:1] == ("REQ",):
            await self._reply(conn, f":tmi.twitch.tv CAP * ACK :{msg.trailing}")
        elif msg.command == "PASS":
            state["pass"] = msg.trailing
        elif msg.command == "NICK":
            nick = state["nick"] = msg.trailing.lower()
            if self.auth_fail:
                await self._reply(conn, ":tmi.twitch.tv NOTICE * :Login authentication failed")
                if not self.silent:
                    await conn.close()
            else:
                await self._reply(conn, *(w.format(nick=nick) for w in _WELCOME))
        elif msg.command == "PING":
            await self._reply(conn, f":tmi.twitch.tv PONG tmi.twitch.tv :{msg.trailing}")
        elif msg.command == "JOIN" and msg.params:
            channels = [c.removeprefix("#").lower() for c in msg.params[0].split(",") if c]
            for channel in channels:
                await self._reply(
                    conn,
                    f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN #{channel}",
                    f":{nick}.tmi.twitch.tv 353 {nick} = #{channel} :{nick}",
                    f":{nick}.tmi.twitch.tv 366 {nick} #{channel} :End of /NAMES list",
                    "@emote-only=0;followers-only=-1;r9k=0;room-id=1;slow=0;subs-only=0 "
                    f":tmi.twitch.tv ROOMSTATE #{channel}",
                )
                if not self.silent:
                    self.joins[channel] += 1
            return bool(channels) and not self.silent
        elif msg.command == "PART" and msg.params:
            for channel in msg.params[0].split(","):
                await self._reply(conn, f":{nick}!{nick}@{nick}.tmi.twitch.tv PART {channel}")
        return False


@pytest_asyncio.fixture
async def fake_twitch() -> AsyncIterator[FakeTwitchServer]:
    """A started :class:`FakeTwitchServer` without a script, closed after the test."""
    async with FakeTwitchServer() as server:
        yield server
