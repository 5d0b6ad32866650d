"""Streaming a chat log: chunks (gzip or plain), lines, and UTF-8 text lines.

A chat log (:data:`ChatLog`) is a file's path or the file's whole content as bytes: every
reader takes either, so the parsing is tested on literal bytes and the path is the thin case
that opens a file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from collector.events import (
    Malformed,
)
from collector.formats.common import DEFAULT_CHUNK_SIZE, FormatError, Progress

#: A chat log: the path of a file, or a file's whole content (plain or gzip) held in memory.
ChatLog = Path | bytes


def _log_name(log: ChatLog, name: str | None = None) -> str:
    """What errors and :class:`Malformed` name the log by: ``name``, else the path, else
    ``"<data>"``."""
    if name is not None:
        return name
    return str(log) if isinstance(log, Path) else "<data>"


def _open_log(log: ChatLog) -> BinaryIO:
    """The log as a binary stream at its start (the caller closes it)."""
    return log.open("rb") if isinstance(log, Path) else io.BytesIO(log)


def _log_size(log: ChatLog) -> int:
    """Bytes of the log as stored (compressed bytes for gzip)."""
    return log.stat().st_size if isinstance(log, Path) else len(log)


def _maybe_gunzip(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def _read_chunks(
    log: ChatLog,
    chunk_size: int,
    on_progress: Progress | None,
    name: str | None = None,
    span: Span | None = None,
) -> Iterator[bytes]:
    if span is not None:
        yield from _read_span(log, chunk_size, on_progress, span)
        return
    with _open_log(log) as raw:
        total = _log_size(log)
        stream = _maybe_gunzip(raw)
        while True:
            try:
                data = stream.read(chunk_size)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                # A truncated .gz (a logger killed mid-write) ends here; what came before stands.
                raise FormatError(
                    f"{_log_name(log, name)}: corrupt or truncated gzip stream: {exc}"
                ) from exc
            if not data:
                break
            if on_progress is not None:
                on_progress(raw.tell(), total)
            yield data
        if on_progress is not None:
            on_progress(total, total)


#: A part of a plain (not gzip) log: the bytes ``[start, end)``, which begin and end at line
#: boundaries (see :func:`split_log`).
Span = tuple[int, int]


def split_log(path: Path, parts: int) -> list[Span]:
    """Cut a plain (not gzip) log into about ``parts`` spans of whole lines, in file order.

    Each cut is moved forward to just after the next newline, so no line is split; fewer spans
    come back when the file has fewer lines than ``parts``.  A gzip file is one span (its bytes
    cannot be read from the middle).
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        if parts <= 1 or f.read(2) == b"\x1f\x8b":
            return [(0, size)]
        cuts = [0]
        for k in range(1, parts):
            at = max(size * k // parts, cuts[-1])
            f.seek(at)
            while True:
                block = f.read(1 << 16)
                if not block:
                    at = size
                    break
                nl = block.find(b"\n")
                if nl >= 0:
                    at += nl + 1
                    break
                at += len(block)
            if cuts[-1] < at < size:
                cuts.append(at)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def lines_before(path: Path, offset: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """How many newlines the file holds before byte ``offset`` (a span's first line number
    is this plus one)."""
    count = 0
    with path.open("rb") as f:
        left = offset
        while left > 0:
            block = f.read(min(chunk_size, left))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def _read_span(
    log: ChatLog, chunk_size: int, on_progress: Progress | None, span: Span
) -> Iterator[bytes]:
    # Progress counts the span's own bytes, of the span's length: the caller adds up its parts.
    start, end = span
    with _open_log(log) as raw:
        raw.seek(start)
        left = end - start
        while left > 0:
            data = raw.read(min(chunk_size, left))
            if not data:
                break
            left -= len(data)
            if on_progress is not None:
                on_progress(end - start - left, end - start)
            yield data
        if on_progress is not None:
            on_progress(end - start, end - start)


def _iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    # Each chunk split in C at once (not a find per line); the part after its last newline
    # waits for the next chunk.
    pending: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                pending.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending.clear()
        last = lines.pop()
        yield from lines
        if last:
            pending.append(last)
    if pending:
        yield b"".join(pending)


def _text_lines(
    chunks: Iterator[bytes], name: str, first_line: int = 1
) -> Iterator[tuple[int, str | Malformed]]:
    """(line number, text) per non-blank line, numbered from ``first_line``; undecodable lines
    come back as Malformed."""
    for number, line in enumerate(_iter_lines(chunks), first_line):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.rstrip(b"\r")
        if not line or line.isspace():  # not line.strip(), which copies every line
            continue
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield (
                number,
                Malformed(
                    line.decode("utf-8", "replace"), f"line {number}: not UTF-8: {exc.reason}", name
                ),
            )
