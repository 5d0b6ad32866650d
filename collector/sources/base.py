"""The one small protocol every chat source implements.

A source connects somewhere (a WebSocket, a file), turns what it receives into
:mod:`collector.events` and hands them to a :class:`SourceListener`.  It reports the life of
its connection (up, down with a reason) so the collector can record gaps in ``chat.gaps`` and
fill them.  Sources own their reconnect loop; the *policy* (which errors retry, how long to
wait) is a :class:`ReconnectPolicy` value passed in, so tests can set the waits to zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import tenacity

from chatpulse.core.backoff import wait_seconds
from collector.events import ChatEvent

__all__ = ["ChatSource", "ReconnectPolicy", "SourceListener", "reconnect_wait"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Jittered, capped exponential backoff that resets after a connection that worked.

    The wait before attempt ``n`` (0-based, counted since the last healthy connection) is a
    random value in ``[0, min(max_s, initial_s * 2**n)]`` (tenacity's
    ``wait_random_exponential``: "full jitter").  A connection counts as healthy once it stayed
    up ``healthy_after_s`` seconds.
    """

    initial_s: float = 1.0
    max_s: float = 60.0
    healthy_after_s: float = 30.0


def reconnect_wait(policy: ReconnectPolicy, attempt: int) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0-based, counted since the last
    healthy connection): uniform in ``[0, min(policy.max_s, policy.initial_s * 2**attempt)]``.

    This is tenacity's ``wait_random_exponential`` ("full jitter"), as :class:`ReconnectPolicy`
    documents.  Every source reconnects with it (Twitch asks clients for exponential
    backoff, [IRC] "Keepalive and reconnection").  Raises :class:`ValueError` for a
    negative ``attempt``.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    wait = tenacity.wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)
    return wait_seconds(wait, attempt + 1)  # tenacity counts attempts from 1


class SourceListener(Protocol):
    """What a source calls.  All methods may block (backpressure) and must be awaited."""

    async def on_event(self, event: ChatEvent) -> None:
        """One parsed event (message, moderation, control, or Malformed)."""

    async def on_connected(self, channels: Sequence[str], at: datetime) -> None:
        """The connection is up and ``channels`` (logins) are joined (called after each join)."""

    async def on_disconnected(self, channels: Sequence[str], at: datetime, reason: str) -> None:
        """The connection was lost (or the server asked us to reconnect): a gap starts at ``at``."""


class ChatSource(Protocol):
    """A live chat source.  ``run`` returns only when ``stop`` is set (or raises on a fatal
    error such as rejected credentials, with a message saying what to fix)."""

    name: str

    async def run(self, listener: SourceListener, stop: asyncio.Event) -> None: ...
