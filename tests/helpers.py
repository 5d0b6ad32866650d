"""Small helpers the tests share: one copy of each (a free TCP port, polling for a condition)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], object], what: str = "the condition", timeout: float = 20.0
) -> None:
    """Poll ``condition`` every 50 ms until it is true; AssertionError naming ``what`` after
    ``timeout`` seconds.  For conditions on another process or thread (a row, a file)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
