"""Signal handling, in the application layer only.

Services never install signal handlers: they take a stop event (``stop: asyncio.Event``) and
return once it is set, flushing what they hold.  A command handler turns SIGTERM and SIGINT
into that event with :func:`stop_on_signals`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

#: The signals that ask a running command to stop cleanly (a supervisor's stop, Ctrl-C).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event | None = None) -> Iterator[asyncio.Event]:
    """Set ``stop`` (a new event when None) on SIGTERM/SIGINT while inside the block.

    Must be entered with the event loop running (inside a coroutine).  Yields the event; on
    exit the handlers are removed.  Where the loop cannot handle signals (not the main thread,
    Windows) nothing is installed and the event is only set by its owner.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield stop
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
