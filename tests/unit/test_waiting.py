"""chatpulse.core.waiting.wait_or_stop: returns at once when stopped, after the time otherwise."""

from __future__ import annotations

import asyncio
import time

from chatpulse.core.waiting import wait_or_stop


async def test_wait_or_stop_wakes_up_when_stop_is_set() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)
    started = time.monotonic()
    assert await wait_or_stop(stop, 30.0) is True
    assert time.monotonic() - started < 5.0


async def test_wait_or_stop_times_out_without_stop() -> None:
    stop = asyncio.Event()
    assert await wait_or_stop(stop, 0.01) is False
    assert not stop.is_set()


async def test_wait_or_stop_with_zero_seconds_reports_the_event() -> None:
    stop = asyncio.Event()
    assert await wait_or_stop(stop, 0) is False
    stop.set()
    assert await wait_or_stop(stop, 0) is True
