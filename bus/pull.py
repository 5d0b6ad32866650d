"""Batches from a durable pull consumer, filled by the server: one pull request per batch.

nats-py's ``fetch`` returns whatever the stream holds at the moment of the request (often a
few dozen messages while collectors publish) and hands each message over through a task of its
own.  A bus writer wants the opposite: database writes as large as the backlog allows, and no
per-message overhead beyond decoding.  So each lane sends the JetStream pull request itself
(``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` with ``batch`` and ``expires``, the protocol
nats-py's ``fetch`` speaks too) from an inbox subscription of its own: the server delivers up
to ``batch`` messages as they become available and ends the request when the batch is full, or
with a ``408`` status when ``expires`` has passed (``404``/``409`` end it early: no messages,
a limit, a leadership change).  A full backlog thus gives full batches at once; a trickle gives
whatever arrived within ``max_wait_s``, the writer's latency bound.

Messages are only collected here; acknowledging them (after the database commit) is the
caller's business, through :func:`ack_all` and friends, which publish the JetStream ack
bodies directly (one buffered publish each, flushed once per batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["ACK", "NAK", "PROGRESS", "TERM", "PullBatches", "delivery_count", "reply_all"]

#: JetStream acknowledgement bodies (the same bytes as ``nats.aio.msg.Msg.Ack``).
ACK = b"+ACK"
NAK = b"-NAK"
TERM = b"+TERM"
PROGRESS = b"+WPI"

#: A pull request whose end the server never announced (the connection dropped with it) is
#: given up this long after its ``expires``; a new one is sent.
_GRACE_S = 2.0


def delivery_count(reply: str) -> int:
    """How many times the message with JetStream ack subject ``reply`` has been delivered.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`` (9 tokens), or
    with domain and account hash after ``ACK`` (12 tokens, 11 from older servers); 0 for a
    subject of another form.  The same reading as ``Msg.metadata`` without building it.
    """
    tokens = reply.split(".", 8)
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return 0
    field = tokens[4] if "." not in tokens[8] else tokens[6]
    return int(field) if field.isdigit() else 0


async def reply_all(nc: Client, msgs: list[Msg], body: bytes) -> None:
    """Send ``body`` (:data:`ACK`, :data:`NAK`, ...) for each of ``msgs``; buffered, not flushed."""
    publish = nc.publish
    for msg in msgs:
        await publish(msg.reply, body)


class PullBatches:
    """One lane's pull requests on its own inbox; :meth:`next_batch` returns the next batch.

    Call :meth:`open` before the first batch and :meth:`close` at the end.  Messages the lane
    will not write (it is stopping with the database down) go back through :meth:`give_back`;
    :meth:`close` returns them to the server (NAK) with any received and not handed out, after
    the open pull request has ended: a NAKed message goes at once to a waiting request, and
    one of our own, still open, would take it into an inbox about to be closed, where it would
    wait for the ack wait to pass.
    """

    def __init__(
        self, nc: Client, stream: str, consumer: str, *, batch: int, max_wait_s: float
    ) -> None:
        self._nc = nc
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._batch = batch
        self._max_wait_s = max_wait_s
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._got: list[Msg] = []
        self._returned: list[Msg] = []
        self._wanted = 0
        self._over = asyncio.Event()
        self._over.set()  # no request open
        #: The status that ended the last request when it was not the normal end (``408``
        #: expired, or full): ``"409 Exceeded MaxRequestBatch"``, ``"409 Consumer Deleted"``...
        self.refused: str | None = None

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    def give_back(self, msgs: list[Msg]) -> None:
        """``msgs`` will not be written here: :meth:`close` returns them to the server."""
        self._returned.extend(msgs)

    async def close(self) -> int:
        """Wait for the open request to end (at most ``max_wait_s`` and a grace), unsubscribe,
        and NAK what was given back or never handed out; returns how many were."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._over.wait(), self._max_wait_s + _GRACE_S)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        left = self._returned + self._got
        self._returned, self._got = [], []
        if left:
            with contextlib.suppress(Exception):  # the connection is gone: the ack wait does it
                await reply_all(self._nc, left, NAK)
                await self._nc.flush(timeout=2)
        return len(left)

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:  # a stream message: its reply subject is its ack subject
            self._got.append(msg)
            self._wanted -= 1
            if self._wanted <= 0:
                self._over.set()
            return
        # A status without a reply subject: 100 is an idle heartbeat (we ask for none); any
        # other (404 no messages, 408 expired, 409 a limit or the consumer gone) ends the request.
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if status == "100":
            return
        if status not in ("404", "408"):
            self.refused = f"{status} {headers.get('Description', '')}".strip()
        self._over.set()

    async def next_batch(self, stop: asyncio.Event) -> list[Msg]:
        """Up to ``batch`` messages (more only when a lost request delivered late): at once
        when the stream holds that many, else what arrived within ``max_wait_s``; [] when
        nothing did.  When ``stop`` is set meanwhile, what arrived so far (the request may
        still be open: :meth:`close` waits for it).  Raises what publishing the request raises
        (the connection closed)."""
        self.refused = None
        if len(self._got) < self._batch and not stop.is_set():
            self._wanted = self._batch - len(self._got)
            self._over.clear()
            request = {"batch": self._wanted, "expires": int(self._max_wait_s * 1e9)}
            try:
                await self._nc.publish(self._subject, json.dumps(request).encode(), self._inbox)
            except BaseException:
                self._over.set()
                raise
            over = asyncio.ensure_future(self._over.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    (over, stopping),
                    timeout=self._max_wait_s + _GRACE_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                over.cancel()
                stopping.cancel()
            if not stop.is_set():
                # Ended, or never answered (the connection dropped with it): not open any more.
                self._over.set()
        batch, self._got = self._got, []
        return batch
