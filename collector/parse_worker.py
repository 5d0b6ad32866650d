"""The replay's parse workers: child processes read and parse one file, the parent reads their
batches.

Parsing is a replay's costliest step; in child processes it runs beside the writer and
PostgreSQL (docs/architecture.md, "The flow of one chat message").  :func:`parse_in_worker`
starts the children (:func:`run_worker`, one per span of a large line-format file, else one)
and yields what they send.

The protocol, one message per ``send_bytes`` on a one-way pipe, a tag byte then the body:
``b"E" + events`` (:func:`collector.codec.pack_events`, up to :data:`BATCH` events),
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
from multiprocessing.connection import Connection, wait
from pathlib import Path

from chatpulse.core.errors import ChatpulseError, ConfigError
from chatpulse.core.heap import bulk_gc
from collector.codec import pack_events, unpack_events
from collector.events import ChatEvent
from collector.formats import (
    SPAN_FORMATS,
    FormatError,
    MissingInputError,
    Span,
    read_events,
    split_log,
)

__all__ = ["BATCH", "SPLIT_BYTES", "Clock", "Progress", "parse_in_worker", "run_worker"]

#: Events per batch sent through the pipe.
BATCH = 1024
#: Files smaller than this are parsed by one child (starting another costs more than it saves).
SPLIT_BYTES = 8 << 20


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
    span: Span | None = None,
) -> None:
    """The child process: read and parse one file (or its ``span``), send it on ``conn`` (see
    the module docstring for the messages); closes ``conn``.  Never raises: errors are sent."""
    last = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            conn.send_bytes(b"P" + f"{done} {total}".encode())

    try:
        # The child only parses: the collector's bulk policy (chatpulse.core.heap).
        with bulk_gc():
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
                span=span,
            ):
                batch.append(event)
                if len(batch) >= BATCH:
                    conn.send_bytes(b"E" + pack_events(batch))
                    batch = []
            if batch:
                conn.send_bytes(b"E" + pack_events(batch))
            conn.send_bytes(b"D")
    except MissingInputError as exc:
        conn.send_bytes(b"C" + str(exc).encode())
    except FormatError as exc:
        conn.send_bytes(b"F" + str(exc).encode())
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        conn.close()


def _spans(path: Path, fmt: str, workers: int) -> list[Span | None]:
    """The spans to parse apart (``[None]``: the whole file in one child)."""
    if workers > 1 and fmt in SPAN_FORMATS and path.stat().st_size >= SPLIT_BYTES:
        return list(split_log(path, workers))
    return [None]


async def parse_in_worker(
    path: Path,
    fmt: str,
    *,
    channel: str | None,
    platform: str | None,
    start: datetime | None,
    max_message_chars: int | None,
    workers: int = 1,
) -> AsyncGenerator[list[ChatEvent] | Progress | Clock, None]:
    """Parse ``path`` in child processes; yield their event batches, progress and clock notes
    as they come.

    A plain file of a line format (:data:`~collector.formats.SPAN_FORMATS`) of at least
    :data:`SPLIT_BYTES` is cut into up to ``workers`` spans of whole lines, each parsed by a
    child of its own: batches then come in file order within a span, interleaved between spans
    (the writer needs no order: the unique keys decide, and it sorts each batch by key).
    Progress counts the bytes of the whole file.  Any other file is parsed by one child, its
    batches in file order.

    Raises :class:`ConfigError` for an option the user must give or a file that is not
    ``fmt``, :class:`ChatpulseError` for any other error of the parser or its death.  Use it
    in ``contextlib.aclosing`` (or run it to the end): closing it stops the children.
    """
    spans = await asyncio.to_thread(_spans, path, fmt, workers)
    ctx = multiprocessing.get_context("spawn")
    readers: list[Connection] = []
    children: list[multiprocessing.process.BaseProcess] = []
    try:
        for span in spans:
            parent, child = ctx.Pipe(duplex=False)
            readers.append(parent)
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
                    span,
                ),
                name="chatpulse-parse",
                daemon=True,
            )
            worker.start()
            children.append(worker)
            child.close()
        done: dict[Connection, int] = {}
        totals: dict[Connection, int] = {}
        open_ = list(readers)
        while open_:
            ready = await asyncio.to_thread(wait, open_)
            for conn in ready:
                assert isinstance(conn, Connection)
                try:
                    data = conn.recv_bytes()
                except EOFError:
                    raise ChatpulseError(f"replay: the parser of {path} died") from None
                tag, body = data[:1], data[1:]
                if tag == b"E":
                    yield unpack_events(body)
                elif tag == b"P":
                    done[conn], totals[conn] = (int(x) for x in body.split())
                    if len(totals) == len(readers):
                        yield Progress(sum(done.values()), sum(totals.values()))
                elif tag == b"K":
                    yield Clock(body.decode(errors="replace"))
                elif tag == b"D":
                    open_.remove(conn)
                elif tag == b"C":
                    raise ConfigError(f"replay: {body.decode(errors='replace')}")
                elif tag == b"X":
                    raise ChatpulseError(f"replay: {path}: {body.decode(errors='replace')}")
                elif tag == b"F":
                    raise ConfigError(f"replay: {body.decode(errors='replace')}")
    finally:
        for conn in readers:
            conn.close()
        for proc in children:
            await asyncio.to_thread(proc.join, 10)
            if proc.is_alive():
                proc.kill()
