"""Channel leases in a JetStream key-value bucket: N collectors, disjoint channel sets.

The shared channel list is the channels bucket (one key per channel login, ``chatpulse channels
add``).  In the leases bucket, ``lease.<channel>`` holds its owner and ``member.<collector>``
says a collector is alive.  Every ``ttl/3`` seconds each collector (:meth:`LeaseTable.scan`):

* renews its member key and its leases with compare-and-set on the revision it last wrote (a
  failed renewal means someone took the lease over: the channel is dropped at once);
* judges every other key *by its own clock*: a key whose revision has not changed for ``ttl``
  seconds since this collector first saw that revision is expired (no clocks are compared
  across hosts);
* claims channels until it holds its fair share ``ceil(channels / live members)``: a channel
  with no lease, a released lease, or an expired one (a **takeover**: compare-and-set on the
  expired revision, so exactly one collector wins); and releases the channels over its share while
  it holds more than its share and a live member holds less (it keeps collecting the channel
  until another collector owns it: two owners for a moment are harmless, the unique key).

So a dead collector's channels are owned again within ``ttl + ttl/3`` of its last renewal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

__all__ = ["Lease", "LeaseTable", "ScanResult", "collector_key", "list_channels"]

log = logging.getLogger(__name__)

_LEASE = "lease."
_MEMBER = "member."


def collector_key(collector_id: str) -> str:
    """A key-safe form of a collector id (``host:pid``)."""
    return re.sub(r"[^A-Za-z0-9_=-]", "_", collector_id)


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease's value: who holds it, when it was last renewed (holder's clock, epoch s), and
    for a released lease when its holder stopped collecting (None: still collecting)."""

    owner: str
    renewed_at: float
    released: bool = False
    stopped_at: float | None = None

    def encode(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "renewed_at": self.renewed_at,
                "released": self.released,
                "stopped_at": self.stopped_at,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Lease:
        try:
            d = json.loads(data or b"{}")
            return cls(
                str(d.get("owner", "")),
                float(d.get("renewed_at", 0.0)),
                bool(d.get("released", False)),
                None if d.get("stopped_at") is None else float(d["stopped_at"]),
            )
        except (ValueError, TypeError, AttributeError):
            return cls("", 0.0, released=True)


@dataclass(slots=True)
class ScanResult:
    #: channel -> the expired or released lease it was taken from (None: it had none)
    acquired: dict[str, Lease | None] = field(default_factory=dict)
    #: channels to stop collecting (taken over by another, removed from the list, handed over)
    dropped: list[str] = field(default_factory=list)
    #: channels of the list with no live owner after this scan
    orphaned: int = 0
    channels: int = 0
    members: int = 0


async def list_channels(kv: KeyValue) -> list[str]:
    """The shared channel list (sorted)."""
    from nats.js.errors import NoKeysError

    try:
        return sorted(await kv.keys())
    except NoKeysError:
        return []


class LeaseTable:
    """This collector's view of the leases; see the module docstring."""

    def __init__(
        self,
        channels: KeyValue,
        leases: KeyValue,
        collector_id: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._channels = channels
        self._leases = leases
        self.collector_id = collector_id
        self._member = _MEMBER + collector_key(collector_id)
        self._ttl = ttl_s
        self._clock = clock
        self._wall = wall
        #: channel -> revision of our own lease
        self.owned: dict[str, int] = {}
        #: channels released by us and still collected until someone else owns them
        self.handing_over: set[str] = set()
        self._member_rev = 0
        # key -> (revision, when this collector first saw that revision)
        self._seen: dict[str, tuple[int, float]] = {}

    def _expired(self, key: str, revision: int) -> bool:
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None or seen[0] != revision:
            self._seen[key] = (revision, now)
            return False
        return now - seen[1] >= self._ttl

    async def _entries(self) -> dict[str, Any]:
        from nats.js.errors import KeyNotFoundError, NoKeysError

        try:
            keys = await self._leases.keys()
        except NoKeysError:
            keys = []
        out: dict[str, Any] = {}
        for key in keys:
            try:
                out[key] = await self._leases.get(key)
            except KeyNotFoundError:
                continue
        return out

    async def _renew_member(self) -> None:
        self._member_rev = await self._leases.put(
            self._member, json.dumps({"renewed_at": self._wall()}).encode()
        )

    async def scan(self) -> ScanResult:
        """Renew, judge, claim and release once; returns what changed for this collector."""
        from nats.js.errors import KeyWrongLastSequenceError

        result = ScanResult()
        wanted = await list_channels(self._channels)
        result.channels = len(wanted)
        await self._renew_member()
        now = self._wall()
        # Our own leases first: renew (compare-and-set) or learn that we lost them.
        for channel, rev in list(self.owned.items()):
            key = _LEASE + channel
            if channel not in wanted:
                del self.owned[channel]
                self.handing_over.discard(channel)
                result.dropped.append(channel)
                with contextlib.suppress(KeyWrongLastSequenceError):
                    await self._leases.delete(key, last=rev)
                continue
            try:
                self.owned[channel] = await self._leases.update(
                    key, Lease(self.collector_id, now).encode(), last=rev
                )
            except KeyWrongLastSequenceError:
                log.warning("lease lost to another collector", extra={"channel": channel})
                del self.owned[channel]
                result.dropped.append(channel)
        entries = await self._entries()
        members = {self._member}
        counts: dict[str, int] = {collector_key(self.collector_id): len(self.owned)}
        live_owner: dict[str, str] = {}
        for key, entry in entries.items():
            if key.startswith(_MEMBER):
                if key == self._member or not self._expired(key, entry.revision):
                    members.add(key)
            elif key.startswith(_LEASE):
                channel = key[len(_LEASE) :]
                lease = Lease.decode(entry.value)
                if channel in self.owned:
                    live_owner[channel] = self.collector_id
                elif not lease.released and not self._expired(key, entry.revision):
                    live_owner[channel] = lease.owner
                    who = collector_key(lease.owner)
                    counts[who] = counts.get(who, 0) + 1
        result.members = len(members)
        share = math.ceil(len(wanted) / len(members)) if wanted else 0
        # A channel we handed over is dropped once another collector owns it.
        for channel in list(self.handing_over):
            owner = live_owner.get(channel)
            if channel not in wanted or (owner and owner != self.collector_id):
                self.handing_over.discard(channel)
                result.dropped.append(channel)
        # Claim up to the fair share, the oldest-orphaned first (the list order otherwise).
        for channel in wanted:
            if len(self.owned) >= share:
                break
            if channel in self.owned or channel in live_owner:
                continue
            key = _LEASE + channel
            entry = entries.get(key)
            value = Lease(self.collector_id, now).encode()
            try:
                if entry is None:
                    rev = await self._leases.create(key, value)
                    previous: Lease | None = None
                else:
                    rev = await self._leases.update(key, value, last=entry.revision)
                    previous = Lease.decode(entry.value)
            except KeyWrongLastSequenceError:
                continue  # another collector was faster
            self.owned[channel] = rev
            live_owner[channel] = self.collector_id
            if channel in self.handing_over:
                self.handing_over.discard(channel)  # ours again: keep collecting
            else:
                result.acquired[channel] = previous
        # Over the share while a live member is under it: hand the extra channels over.
        mine = sorted(self.owned)
        under = any(counts.get(m[len(_MEMBER) :], 0) < share for m in members if m != self._member)
        for channel in mine[share:] if under else []:
            try:
                await self._leases.update(
                    _LEASE + channel,
                    Lease(self.collector_id, now, released=True).encode(),
                    last=self.owned[channel],
                )
                self.handing_over.add(channel)
                log.info("lease released for a less loaded collector", extra={"channel": channel})
            except KeyWrongLastSequenceError:
                result.dropped.append(channel)
            del self.owned[channel]
        result.orphaned = sum(1 for c in wanted if c not in live_owner)
        return result

    async def release_all(self) -> None:
        """At a clean stop: release every lease (stopped now), so others take over at once."""
        from nats.js.errors import KeyWrongLastSequenceError

        now = self._wall()
        for channel, rev in list(self.owned.items()):
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._leases.update(
                    _LEASE + channel,
                    Lease(self.collector_id, now, released=True, stopped_at=now).encode(),
                    last=rev,
                )
        self.owned.clear()
        from nats.js.errors import KeyNotFoundError

        with contextlib.suppress(KeyNotFoundError):
            await self._leases.delete(self._member)
