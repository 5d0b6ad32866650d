"""Streaming a chat log: chunks (gzip or plain), lines, and UTF-8 text lines.

A chat log (:data:`ChatLog`) is a file's path or the file's whole content as bytes: every
reader takes either, so the parsing is tested on literal bytes and the path is the thin case
that opens a file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from collector.events import (
    Malformed,
)
from collector.formats.common import FormatError, Progress

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
    log: ChatLog, chunk_size: int, on_progress: Progress | None, name: str | None = None
) -> Iterator[bytes]:
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


def _iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending: list[bytes] = []
    for chunk in chunks:
        begin = 0
        while (nl := chunk.find(b"\n", begin)) >= 0:
            pending.append(chunk[begin:nl])
            yield b"".join(pending)
            pending.clear()
            begin = nl + 1
        if begin < len(chunk):
            pending.append(chunk[begin:])
    if pending:
        yield b"".join(pending)


def _text_lines(chunks: Iterator[bytes], name: str) -> Iterator[tuple[int, str | Malformed]]:
    """(line number, text) per non-blank line; undecodable lines come back as Malformed."""
    for number, line in enumerate(_iter_lines(chunks), 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        line = line.rstrip(b"\r")
        if not line.strip():
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
