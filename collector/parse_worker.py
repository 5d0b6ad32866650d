"""The replay's parse worker: a child process reads and parses one file, the parent reads its batches.

Parsing is a replay's costliest step; in a child process it runs beside the writer and
PostgreSQL (docs/architecture.md, "The flow of one chat message").  :func:`parse_in_worker`
starts the child (:func:`run_worker`) and yields what it sends.

The protocol, one message per ``send_bytes`` on a one-way pipe, a tag byte then the body:
``b"E" + events`` (:func:`collector.codec.encode_events`, up to :data:`BATCH` events),
``b"P" + "done total"`` progress in bytes, ``b"K" + note`` the clock a VOD comment file was
placed by, ``b"D"`` done, and three that end the file with an error: ``b"X" + text`` an
unexpected error, ``b"C" + text`` an option the user must give, ``b"F" + text`` a file that
is not the format named.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from chatpulse.core.errors import ChatpulseError, ConfigError
from collector.codec import decode_events, encode_events
from collector.events import ChatEvent
from collector.formats import FormatError, MissingInputError, read_events

__all__ = ["BATCH", "Clock", "Progress", "parse_in_worker", "run_worker"]

#: Events per batch sent through the pipe.
BATCH = 1024


@dataclass(frozen=True, slots=True)
class Progress:
    """Bytes of the file read so far, of ``total``."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Clock:
    """Which clock placed a VOD comment file's comments, and why (one line)."""

    note: str


def run_worker(
    path: str,
    fmt: str,
    channel: str | None,
    platform: str | None,
    start: str | None,
    max_message_chars: int | None,
    conn: Connection,
) -> None:
    """The child process: read and parse one file, send it on ``conn`` (see the module
    docstring for the messages); closes ``conn``.  Never raises: errors are sent."""
    last = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            conn.send_bytes(b"P" + f"{done} {total}".encode())

    try:
        batch: list[ChatEvent] = []
        for event in read_events(
            Path(path),
            fmt,
            channel=channel,
            platform=platform,
            on_progress=on_progress,
            start=None if start is None else datetime.fromisoformat(start),
            max_message_chars=max_message_chars,
            on_clock=lambda note: conn.send_bytes(b"K" + note.encode()),
        ):
            batch.append(event)
            if len(batch) >= BATCH:
                conn.send_bytes(b"E" + encode_events(batch))
                batch = []
        if batch:
            conn.send_bytes(b"E" + encode_events(batch))
        conn.send_bytes(b"D")
    except MissingInputError as exc:
        conn.send_bytes(b"C" + str(exc).encode())
    except FormatError as exc:
        conn.send_bytes(b"F" + str(exc).encode())
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        conn.close()


async def parse_in_worker(
    path: Path,
    fmt: str,
    *,
    channel: str | None,
    platform: str | None,
    start: datetime | None,
    max_message_chars: int | None,
) -> AsyncGenerator[list[ChatEvent] | Progress | Clock, None]:
    """Parse ``path`` in a child process; yield its event batches (in file order), progress
    and clock notes as they come.

    Raises :class:`ConfigError` for an option the user must give or a file that is not
    ``fmt``, :class:`ChatpulseError` for any other error of the parser or its death.  Use it
    in ``contextlib.aclosing`` (or run it to the end): closing it stops the child.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    worker = ctx.Process(
        target=run_worker,
        args=(
            str(path),
            fmt,
            channel,
            platform,
            None if start is None else start.isoformat(),
            max_message_chars,
            child,
        ),
        name="chatpulse-parse",
        daemon=True,
    )
    worker.start()
    child.close()
    try:
        while True:
            try:
                data = await asyncio.to_thread(parent.recv_bytes)
            except EOFError:
                raise ChatpulseError(f"replay: the parser of {path} died") from None
            tag, body = data[:1], data[1:]
            if tag == b"E":
                yield decode_events(body)
            elif tag == b"P":
                done, total = (int(x) for x in body.split())
                yield Progress(done, total)
            elif tag == b"K":
                yield Clock(body.decode(errors="replace"))
            elif tag == b"D":
                return
            elif tag == b"C":
                raise ConfigError(f"replay: {body.decode(errors='replace')}")
            elif tag == b"X":
                raise ChatpulseError(f"replay: {path}: {body.decode(errors='replace')}")
            elif tag == b"F":
                raise ConfigError(f"replay: {body.decode(errors='replace')}")
    finally:
        parent.close()
        await asyncio.to_thread(worker.join, 10)
        if worker.is_alive():
            worker.kill()
