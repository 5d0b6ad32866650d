"""Small helpers the tests share: one copy of each (a free TCP port, polling for a condition)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.paths import nymn_irc_lines


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
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


def closed_port_url(scheme: str = "http") -> str:
    """``scheme://127.0.0.1:PORT`` where nothing listens (connections are refused)."""
    return f"{scheme}://127.0.0.1:{free_port()}"


async def until(what: str, check: Callable[[], object], within: float = 30.0) -> float:
    """Poll ``check`` (sync, or returning an awaitable) every 50 ms until it is true, without
    blocking the event loop; returns the seconds it took.  AssertionError naming ``what`` after
    ``within`` seconds.  The async counterpart of :func:`wait_until`, for async tests."""
    start = time.monotonic()
    while True:
        ok = check()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)


def write_irc_log(path: Path, lines: Sequence[str] | None = None) -> Path:
    """A raw IRC log at ``path``, one line each (``chatpulse replay`` reads it as ``irc``):
    ``lines``, or the real #nymn lines (:func:`tests.paths.nymn_irc_lines`).  Returns ``path``."""
    if lines is None:
        lines = nymn_irc_lines()
    path.write_text("\n".join(lines) + "\n")
    return path
