"""Live Twitch chat over IRC-over-WebSocket.

Thin I/O around the pure parser in :mod:`collector.irc`: this module owns the socket, the
timers (keepalive, join pacing, backoff) and the reconnect loop; every line goes through
:func:`collector.irc.parse_event`; outgoing lines are built by :func:`collector.irc.format_line`
(PING/PONG are spelled out in Twitch's documented form).  Protocol sources cited below as
[IRC] are listed in docs/architecture.md, "Sources".

Life of one connection::

    connect -> CAP REQ, [PASS], NICK -> 001 welcome -> JOIN batches (rate limited)
            -> own JOIN echo per channel: listener.on_connected([channel], at)
            -> frames ... -> lost / RECONNECT / keepalive timeout:
               listener.on_disconnected(joined channels, at, reason) -> wait -> connect again

``on_connected`` is called once per channel per connection, when the server echoes *our* JOIN
for it (the moment messages of that channel start to flow), so it happens again after every
reconnect.  ``on_disconnected`` is called once per connection that reported at least one
channel, with exactly the channels reported connected on it; a connection that never got that
far reports nothing (the gap opened by the previous one is still open).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from chatpulse.core.errors import ChatpulseError
from collector.events import ChatEvent, ControlEvent, Malformed
from collector.irc import format_line, parse_event, split_frame
from collector.sources.base import ReconnectPolicy, SourceListener, reconnect_wait

__all__ = [
    "DEFAULT_URL",
    "TWITCH_CAPABILITIES",
    "TwitchAuthError",
    "TwitchIrcSource",
    "reconnect_wait",
]

log = logging.getLogger(__name__)

#: Twitch's TLS WebSocket endpoint ([IRC] "Endpoints").
DEFAULT_URL = "wss://irc-ws.chat.twitch.tv:443"
#: ``tags`` needs ``commands`` ([IRC] "Capabilities"); ``membership`` gives our own JOIN echo
#: in any case, and other users' JOIN/PART in small rooms.
TWITCH_CAPABILITIES = ("twitch.tv/tags", "twitch.tv/commands", "twitch.tv/membership")

# Connect timeout used by twitch-irc-rs ([IRC] "Rate limits": TIRS config.rs, 20 s).
_OPEN_TIMEOUT_S = 20.0
# How long a clean close may wait for the server's close frame before the socket is aborted;
# short so that ``stop`` returns promptly even when the peer is gone.
_CLOSE_TIMEOUT_S = 1.0
# IRC lines are at most 512 bytes with CR LF (RFC 1459 2.3); keep comma-joined JOINs below.
_MAX_JOIN_LINE = 500
# Spelled with the trailing ``:`` Twitch documents ([IRC] "Keepalive"); format_line would
# omit it for a one-word parameter, which is the same IRC but not the documented form.
_CLIENT_PING = "PING :tmi.twitch.tv"
# Anonymous nicks: tmi.js draws justinfan<1000..80999> ([IRC] "Login", TMI utils.js L27).
_ANON_MIN, _ANON_MAX = 1000, 80999


class TwitchAuthError(ChatpulseError):
    """Twitch rejected the login (``NOTICE * :Login authentication failed`` or
    ``Improperly formatted auth``).  Fatal: retrying with the same credentials cannot help."""


def _normalize_channel(channel: str) -> str:
    login = channel.strip().removeprefix("#").lower()
    if not login or any(ch in login for ch in ", \r\n\x00#"):
        raise ValueError(f"invalid channel login {channel!r}")
    return login


def _utcnow() -> datetime:
    return datetime.now(UTC)


# The PASS argument up to a space, quote or backslash (frames are logged as Python reprs).
_PASS_RE = re.compile(r"PASS\s+[^\s'\"\\]+")


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """Hands websockets a logger that cannot print the token.

    With DEBUG enabled, websockets logs every frame it sends, the ``PASS oauth:...`` line
    included; this adapter formats each record first and masks the token and any PASS
    argument before the record exists.
    """

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        text = _PASS_RE.sub("PASS ***", text.replace(self._secret, "***"))
        kwargs.setdefault("stacklevel", 2)
        self.logger.log(level, "%s", text, **kwargs)


class _JoinLimiter:
    """Sliding window: at most ``limit`` channel joins in any ``per`` seconds.

    One JOIN line naming n channels counts as n attempts ([IRC] "Rate limits": 20 JOIN
    attempts per 10 s per user).  Shared by every connection of a source, because the limit
    is per user, not per connection.
    """

    def __init__(self, limit: int, per: float) -> None:
        if limit < 1 or per < 0:
            raise ValueError("join_rate must be (joins >= 1, seconds >= 0)")
        self._limit = limit
        self._per = per
        self._sent: deque[float] = deque()

    def allowance(self, now: float) -> tuple[int, float]:
        """How many joins may be sent at ``now``; when none, how long until one may."""
        while self._sent and self._sent[0] <= now - self._per:
            self._sent.popleft()
        free = self._limit - len(self._sent)
        if free > 0:
            return free, 0.0
        return 0, self._sent[0] + self._per - now

    def record(self, now: float, count: int) -> None:
        self._sent.extend([now] * count)


def _join_batches(channels: Sequence[str], size: int) -> list[list[str]]:
    """Split ``channels`` into JOIN batches of at most ``size`` channels and one IRC line."""
    batches: list[list[str]] = []
    current: list[str] = []
    length = len("JOIN ")
    for channel in channels:
        extra = len(channel) + 2  # "#" and ","
        if current and (len(current) >= size or length + extra > _MAX_JOIN_LINE):
            batches.append(current)
            current, length = [], len("JOIN ")
        current.append(channel)
        length += extra
    if current:
        batches.append(current)
    return batches


@dataclass(slots=True)
class _Ended:
    """Why one connection ended.  ``at`` starts the gap; ``immediate`` skips the backoff."""

    reason: str
    at: datetime
    immediate: bool = False
    stopped: bool = False


class TwitchIrcSource:
    """Reads the chat of ``channels`` from Twitch IRC over WebSocket, reconnecting forever.

    Without ``oauth_token`` it logs in anonymously (read-only ``justinfan<digits>``); with one
    it sends ``PASS oauth:<token>`` and ``NICK <login>`` (``login`` is then required).  The
    token is never logged.

    ``run`` delivers every parsed line to ``listener.on_event`` (messages, moderation, control
    events such as JOIN/ROOMSTATE/NOTICE/PONG, and :class:`~collector.events.Malformed`),
    except PING (answered with PONG), RECONNECT (reconnects at once, or after the backoff when
    the connection it ended never became healthy and the one before also ended with RECONNECT)
    and a failed-login NOTICE (raises :class:`TwitchAuthError`).  See the module docstring for when ``on_connected`` and
    ``on_disconnected`` are called.  When ``stop`` is set, the WebSocket is closed cleanly,
    ``on_disconnected(..., "stopped")`` is reported for the joined channels, and ``run``
    returns within about a second, also while it waits to reconnect.  A listener call in
    progress is never cancelled; it is awaited first.

    Liveness: when nothing arrives for ``keepalive_s`` seconds the source sends
    ``PING :tmi.twitch.tv``; when nothing at all arrives in the next ``pong_timeout_s`` seconds
    the connection is declared dead (reason ``keepalive timeout``, ``at`` = when the last data
    arrived).  Lost connections are retried with ``policy`` (jittered, capped exponential
    backoff; the attempt count resets after a connection that stayed up
    ``policy.healthy_after_s`` seconds past its welcome).

    For metrics the source exposes ``connected`` (logged in right now), ``reconnects``
    (connection attempts after the first one) and ``last_disconnect_reason``.
    """

    name = "twitch"

    def __init__(
        self,
        channels: Sequence[str],
        *,
        url: str = DEFAULT_URL,
        login: str | None = None,
        oauth_token: str | None = None,
        policy: ReconnectPolicy = ReconnectPolicy(),  # noqa: B008 - frozen value object
        keepalive_s: float = 60.0,
        pong_timeout_s: float = 10.0,
        join_rate: tuple[int, float] = (20, 10.0),
    ) -> None:
        if isinstance(channels, str):
            raise TypeError("channels must be a sequence of logins, not one string")
        normalized = [_normalize_channel(c) for c in channels]
        self.channels: tuple[str, ...] = tuple(dict.fromkeys(normalized))
        if not self.channels:
            raise ValueError("no channels to join")
        # The ``oauth:`` prefix is optional here and always sent ([IRC] "Login").
        token = oauth_token.strip().removeprefix("oauth:") if oauth_token is not None else None
        if oauth_token is not None and not token:
            raise ValueError("oauth_token is empty")
        if token is not None and not (login and login.strip()):
            raise ValueError("an OAuth token needs the login (user name) it belongs to")
        if keepalive_s <= 0 or pong_timeout_s <= 0:
            raise ValueError("keepalive_s and pong_timeout_s must be > 0")
        self._url = url
        self._token = token
        ws_logger = logging.getLogger("websockets.client")
        self._ws_logger: logging.Logger | _RedactingLogger = (
            ws_logger if token is None else _RedactingLogger(ws_logger, token)
        )
        # Anonymous: no PASS at all, as twitch-irc-rs does ([IRC] "Login").
        self._nick = (
            login.strip().lower()
            if token is not None and login
            else f"justinfan{random.randint(_ANON_MIN, _ANON_MAX)}"
        )
        self._policy = policy
        self._keepalive_s = keepalive_s
        self._pong_timeout_s = pong_timeout_s
        self._limiter = _JoinLimiter(*join_rate)
        self._batch_size = join_rate[0]
        self.connected = False
        self.reconnects = 0
        self.last_disconnect_reason: str | None = None

    @property
    def nick(self) -> str:
        """The nick this source logs in with (``justinfan<digits>`` when anonymous)."""
        return self._nick

    def __repr__(self) -> str:
        # Spelled out so that no default repr ever prints the token.
        return f"TwitchIrcSource(nick={self._nick!r}, channels={len(self.channels)})"

    # ----------------------------------------------------------------------------------------
    # The reconnect loop
    # ----------------------------------------------------------------------------------------

    async def run(self, listener: SourceListener, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set.  Raises :class:`TwitchAuthError` when Twitch rejects
        the login, :class:`websockets.exceptions.InvalidURI` for a malformed ``url``, and
        whatever the listener raises; every network failure is retried instead."""
        attempt = 0  # failed attempts since the last healthy connection
        immediate = True  # the first connection, and the one after RECONNECT, do not wait
        repeated = False  # the last connection also ended with RECONNECT, unhealthy
        first = True
        while not stop.is_set():
            if not immediate:
                wait = reconnect_wait(self._policy, attempt)
                attempt += 1
                log.info("twitch: reconnecting in %.2f s (attempt %d)", wait, attempt)
                if await _wait_for_stop(stop, wait):
                    return
            if not first:
                self.reconnects += 1
            first = False
            ended, healthy = await self._connect_once(listener, stop)
            if ended.stopped:
                return
            self.last_disconnect_reason = ended.reason
            if healthy:
                attempt = 0
            # RECONNECT means "come back now" ([IRC] "Keepalive and reconnection"), but a
            # server repeating it on connections that never became healthy gets the backoff.
            immediate = ended.immediate and (healthy or not repeated)
            repeated = ended.immediate and not healthy

    async def _connect_once(
        self, listener: SourceListener, stop: asyncio.Event
    ) -> tuple[_Ended, bool]:
        """One connection from dial to close.  Returns why it ended and whether it was healthy."""
        connecting = asyncio.ensure_future(
            connect(
                self._url,
                open_timeout=_OPEN_TIMEOUT_S,
                # Liveness is checked with IRC PING/PONG, which Twitch documents and which also
                # proves the chat server (not only the WebSocket front end) is alive.
                ping_interval=None,
                close_timeout=_CLOSE_TIMEOUT_S,
                logger=self._ws_logger,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            return _Ended("stopped", _utcnow(), stopped=True), False
        try:
            ws = connecting.result()
        except InvalidURI:
            raise
        except (OSError, TimeoutError, WebSocketException) as exc:
            reason = f"connect failed: {type(exc).__name__}: {exc}"
            log.warning("twitch: %s", reason)
            return _Ended(reason, _utcnow()), False
        log.info("twitch: connected to %s as %s", self._url, self._nick)
        session = _Session(self, ws, listener, stop)
        try:
            ended = await session.serve()
        finally:
            self.connected = False
            await ws.close()
        healthy = (
            session.welcomed_at is not None
            and time.monotonic() - session.welcomed_at >= self._policy.healthy_after_s
        )
        return ended, healthy


class _Session:
    """The state of one WebSocket connection: login, joins, the read loop, keepalive."""

    def __init__(
        self,
        source: TwitchIrcSource,
        ws: ClientConnection,
        listener: SourceListener,
        stop: asyncio.Event,
    ) -> None:
        self._src = source
        self._ws = ws
        self._listener = listener
        self._stop = stop
        self.joined: list[str] = []  # reported to on_connected on this connection, in order
        self.welcomed_at: float | None = None  # monotonic time of 001
        self._last_rx = _utcnow()
        self._tasks: list[asyncio.Task[None]] = []

    async def serve(self) -> _Ended:
        """Log in and read until the connection ends; report the disconnect if needed."""
        self._tasks.append(asyncio.create_task(self._close_on_stop()))
        try:
            try:
                await self._login()
                ended = await self._read_loop()
            except ConnectionClosed as exc:
                ended = self._closed(exc)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.joined:
            await self._listener.on_disconnected(tuple(self.joined), ended.at, ended.reason)
        if not ended.stopped:
            log.warning("twitch: disconnected: %s", ended.reason)
        return ended

    def _closed(self, exc: ConnectionClosed) -> _Ended:
        if self._stop.is_set():
            return _Ended("stopped", _utcnow(), stopped=True)
        return _Ended(f"connection closed: {exc}", _utcnow())

    async def _close_on_stop(self) -> None:
        # Closing the socket wakes the read loop with ConnectionClosed, so stop takes effect
        # without cancelling a listener call that is in progress.
        await self._stop.wait()
        await self._ws.close()

    async def _send(self, line: str) -> None:
        # Log what we send, but never the token (PASS is redacted).
        shown = "PASS oauth:***" if line.startswith("PASS ") else line
        log.debug("twitch > %s", shown)
        await self._ws.send(line + "\r\n")

    async def _login(self) -> None:
        # Order used by twitch-irc-rs and tmi.js: CAP REQ, PASS, NICK ([IRC] "Login"), so the
        # capabilities already apply to the welcome and everything after it.
        await self._send(format_line("CAP", "REQ", " ".join(TWITCH_CAPABILITIES)))
        token = self._src._token
        if token is not None:
            await self._send(format_line("PASS", f"oauth:{token}"))
        await self._send(format_line("NICK", self._src.nick))

    async def _join_all(self) -> None:
        """Send the JOINs for every channel, paced by the source's join limiter."""
        src = self._src
        try:
            for batch in _join_batches(src.channels, src._batch_size):
                pending = batch
                while pending:
                    free, wait = src._limiter.allowance(time.monotonic())
                    if free == 0:
                        await asyncio.sleep(wait)
                        continue
                    now_batch, pending = pending[:free], pending[free:]
                    src._limiter.record(time.monotonic(), len(now_batch))
                    await self._send(format_line("JOIN", ",".join(f"#{c}" for c in now_batch)))
        except ConnectionClosed:
            return  # the read loop sees the same closed connection and reports it

    async def _read_loop(self) -> _Ended:
        ws = self._ws
        ping_sent = False
        while True:
            timeout = self._src._pong_timeout_s if ping_sent else self._src._keepalive_s
            try:
                async with asyncio.timeout(timeout):
                    # Cancelling recv() loses no data (websockets asyncio API contract).
                    data = await ws.recv()
            except TimeoutError:
                if ping_sent:
                    return _Ended("keepalive timeout", self._last_rx)
                await self._send(_CLIENT_PING)
                ping_sent = True
                continue
            ping_sent = False
            now = _utcnow()
            self._last_rx = now
            if isinstance(data, bytes):
                # Twitch sends text frames; a binary one is decoded if it can be.
                try:
                    frame = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raw = data.decode("utf-8", "replace")
                    await self._listener.on_event(Malformed(raw, f"binary frame, not UTF-8: {exc}"))
                    continue
            else:
                frame = data
            for line in split_frame(frame):
                ended = await self._handle(parse_event(line, received_at=now), now)
                if ended is not None:
                    return ended

    async def _handle(self, event: ChatEvent, now: datetime) -> _Ended | None:
        """Act on one event; return why the connection must end, or ``None`` to go on."""
        if isinstance(event, ControlEvent):
            kind = event.kind
            if kind == "ping":
                # Answer at once with the same text ([IRC]: ``PONG :tmi.twitch.tv``).
                await self._send(f"PONG :{event.text or 'tmi.twitch.tv'}")
                return None
            if kind == "reconnect":
                return _Ended("server RECONNECT", now, immediate=True)
            if kind == "auth_failed":
                who = "anonymous login" if self._src._token is None else f"login {self._src.nick!r}"
                raise TwitchAuthError(
                    f"Twitch rejected the {who}: {event.text!r}. Check that the OAuth token is "
                    "valid, has the chat:read scope and belongs to that login."
                )
            if kind == "welcome" and self.welcomed_at is None:
                self.welcomed_at = time.monotonic()
                self._src.connected = True
                log.info(
                    "twitch: logged in as %s, joining %d channels",
                    self._src.nick,
                    len(self._src.channels),
                )
                self._tasks.append(asyncio.create_task(self._join_all()))
            await self._listener.on_event(event)
            if kind == "join" and event.channel is not None:
                login = event.params.get("login", "").lower()
                if (
                    login == self._src.nick
                    and event.channel in self._src.channels
                    and event.channel not in self.joined
                ):
                    self.joined.append(event.channel)
                    await self._listener.on_connected((event.channel,), now)
            return None
        await self._listener.on_event(event)
        return None


async def _wait_for_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; return whether it was set."""
    if seconds <= 0:
        return stop.is_set()
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        return False
    return True
