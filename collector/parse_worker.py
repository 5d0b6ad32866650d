"""The replay's parse workers: child processes read and parse one file, the parent reads their
batches.

Parsing is a replay's costliest step; in child processes it runs beside the writer and
PostgreSQL (docs/architecture.md, "The flow of one chat message").  :func:`parse_in_worker`
starts the children (:func:`collector.parse_child.run_worker`, one per span of a large
line-format file, else one), each a fresh interpreter that imports only the parse side, and
yields what they send.

The protocol, one message per ``send_bytes`` on a one-way pipe, a tag byte then the body:
``b"E" + events`` (:func:`collector.codec.pack_events`, up to :data:`BATCH` events),
``b"P" + "done total"`` progress in bytes, ``b"K" + note`` the clock a VOD comment file was
placed by, ``b"D"`` done, and three that end the file with an error: ``b"X" + text`` an
unexpected error, ``b"C" + text`` an option the user must give, ``b"F" + text`` a file that
is not the format named.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path

from chatpulse.core.errors import ChatpulseError, ConfigError
from collector.codec import unpack_events
from collector.events import ChatEvent
from collector.formats import SPAN_FORMATS, Span, split_log
from collector.parse_child import BATCH

__all__ = ["BATCH", "SPLIT_BYTES", "Clock", "Progress", "parse_in_worker"]

# What each child runs: the parent's import path (as multiprocessing's spawn gives it), then
# only the parse side (collector.parse_child).  Not multiprocessing's spawn: its child imports
# the parent's __main__ first, which for ``chatpulse`` is the whole command line (about 0.4 s
# of CPU a child, as much as parsing 4,000 lines).
_CHILD = (
    "import sys, json; args = json.loads(sys.argv[1]); sys.path[:] = args.pop('sys_path');"
    " from collector.parse_child import child_main; child_main(args)"
)
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


def _spans(path: Path, fmt: str, workers: int) -> list[Span | None]:
    """The spans to parse apart (``[None]``: the whole file in one child)."""
    if workers > 1 and fmt in SPAN_FORMATS and path.stat().st_size >= SPLIT_BYTES:
        return list(split_log(path, workers))
    return [None]


def _start_child(args: dict[str, object]) -> tuple[Connection, subprocess.Popen[bytes]]:
    """Start one child parsing as ``args`` say (:func:`~collector.parse_child.run_worker`'s
    arguments but its pipe); the read end of its pipe, and the child."""
    read_fd, write_fd = os.pipe()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                json.dumps({**args, "sys_path": sys.path, "fd": write_fd}),
            ],
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return Connection(read_fd, writable=False), child


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
    readers: list[Connection] = []
    children: list[subprocess.Popen[bytes]] = []
    try:
        for span in spans:
            reader, child = _start_child(
                {
                    "path": str(path),
                    "fmt": fmt,
                    "channel": channel,
                    "platform": platform,
                    "start": None if start is None else start.isoformat(),
                    "max_message_chars": max_message_chars,
                    "span": span,
                }
            )
            readers.append(reader)
            children.append(child)
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
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
