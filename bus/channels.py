"""``chatpulse channels add|remove|list``: the channel list the bus collectors share.

A change takes effect at the collectors' next lease scan (within ``lease_ttl_s / 3``): an added
channel is leased and joined by one of them, a removed one is left by its owner.  No restart.
"""

from __future__ import annotations

import json
import re
import time

from bus.common import connect
from bus.leases import Lease, list_channels
from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings

__all__ = ["edit_channels", "normalize_channel"]

_LOGIN = re.compile(r"[a-z0-9_]{1,25}")


def normalize_channel(name: str) -> str:
    """A channel login as the list keeps it (``#NymN`` -> ``nymn``); ConfigError when not one."""
    login = name.strip().lstrip("#").lower()
    if not _LOGIN.fullmatch(login):
        raise ConfigError(f"channel {name!r}: not a channel login (letters, digits, _; 1-25)")
    return login


async def edit_channels(settings: Settings, action: str, names: list[str]) -> list[str]:
    """Apply ``action`` (add, remove, list) to the shared channel list; the lines to print."""
    from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

    bus = await connect(settings, name="chatpulse-channels")
    try:
        await bus.ensure_buckets()
        assert bus.channels is not None and bus.leases is not None
        lines: list[str] = []
        if action == "add":
            for name in names:
                try:
                    await bus.channels.create(name, json.dumps({"added_at": time.time()}).encode())
                    lines.append(f"added {name}")
                except KeyWrongLastSequenceError:
                    lines.append(f"{name} is already listed")
        elif action == "remove":
            for name in names:
                try:
                    await bus.channels.get(name)
                except KeyNotFoundError:
                    lines.append(f"{name} is not listed")
                    continue
                await bus.channels.delete(name)
                lines.append(f"removed {name}")
        else:
            for name in await list_channels(bus.channels):
                try:
                    entry = await bus.leases.get("lease." + name)
                    lease = Lease.decode(entry.value)
                    owner = "(released)" if lease.released else lease.owner
                except KeyNotFoundError:
                    owner = "(no owner yet)"
                lines.append(f"{name}\t{owner}")
        return lines
    finally:
        await bus.close()
