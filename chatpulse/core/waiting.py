"""Waiting in a service loop: one helper for "sleep, but wake up when asked to stop"."""

from __future__ import annotations

import asyncio

__all__ = ["wait_or_stop"]


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first; True when stopped.

    ``seconds <= 0`` only yields to the event loop once (tests set every wait to zero)."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
