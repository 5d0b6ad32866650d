"""The child side of the replay's parse workers (:mod:`collector.parse_worker`): read and parse
one file, or one span of its lines, and send what it holds on a pipe.

A module of its own, light to import: the parent starts each child as a fresh interpreter that
imports only this (and the parsers), not the command line the parent runs, nor asyncio.  See
:mod:`collector.parse_worker` for the protocol.
"""

from __future__ import annotations

import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chatpulse.core.heap import bulk_gc
from collector.codec import pack_events
from collector.events import ChatEvent
from collector.formats import FormatError, MissingInputError, Span, read_events

__all__ = ["BATCH", "child_main", "run_worker"]

#: Events per batch sent through the pipe.
BATCH = 1024


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
    # The file read through: said after the last batch is sent, so that the parent's count of
    # events on that progress line is the file's.
    final: list[bytes] = []

    def on_progress(done: int, total: int) -> None:
        if done >= total:
            final[:] = [b"P" + f"{done} {total}".encode()]
            return
        now = time.monotonic()
        if now - last[0] >= 0.5:
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
            for note in final:
                conn.send_bytes(note)
            conn.send_bytes(b"D")
    except MissingInputError as exc:
        conn.send_bytes(b"C" + str(exc).encode())
    except FormatError as exc:
        conn.send_bytes(b"F" + str(exc).encode())
    except Exception as exc:  # reported to the parent, which raises it there
        conn.send_bytes(b"X" + f"{type(exc).__name__}: {exc}".encode())
    finally:
        conn.close()


def child_main(args: dict[str, Any]) -> None:
    """The child process's entry, given :func:`run_worker`'s arguments as
    :func:`collector.parse_worker.parse_in_worker` sends them (JSON): ``fd`` is the write end
    of the pipe, inherited, and ``span`` a list."""
    span = args.pop("span")
    conn = Connection(args.pop("fd"), readable=False)
    run_worker(**args, conn=conn, span=None if span is None else (span[0], span[1]))
