"""The dead-letter file: every line the collector could not understand, kept for a human.

One JSON object per line::

    {"at": "2024-01-06T16:19:44.095000+00:00", "source": "twitch:nymn",
     "reason": "no command", "raw": "@bad line\\r\\n"}

``raw`` is the input exactly as received; JSON escaping keeps newlines, quotes and control
characters inside it from breaking the one-object-per-line framing.  Text that is not valid
Unicode (a lone surrogate, which a JSON source can produce) is written ``\\udXXX``-escaped
rather than as invalid UTF-8, so every line stays readable by ``jq`` and by :func:`read`.

Each line is flushed to the operating system, not fsynced: a dead letter is a diagnostic, not
data the exactly-once promise covers, and a flood of garbage input must not turn into a flood
of disk syncs that stall the collector.  A crash of the process loses nothing; a crash of the
machine can lose the last few lines (pass ``fsync=True`` to trade speed for that).

The file rotates past ``max_bytes``: ``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``
and so on, and the file beyond ``keep`` is deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from collector.events import Malformed

__all__ = ["DEFAULT_KEEP", "DEFAULT_MAX_BYTES", "DeadLetters", "read"]

#: Size past which the file is rotated.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
#: How many rotated files are kept beside the current one.
DEFAULT_KEEP = 5

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def _encode_line(record: dict[str, str]) -> bytes:
    try:
        return (_compact.encode(record) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: escape everything rather than write bytes that are not UTF-8.
        return (_ascii.encode(record) + "\n").encode("ascii")


class DeadLetters:
    """Appends malformed input to ``path`` (parent directories created), rotating by size.

    ``count`` is how many lines this instance wrote.  Not thread-safe; one task uses it.  Use
    it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        fsync: bool = False,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if keep < 0:
            raise ValueError(f"keep must not be negative, got {keep}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.fsync = fsync
        #: Lines written by this instance.
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self._size = 0

    def write(self, malformed: Malformed, *, received_at: datetime | None = None) -> None:
        """Append one line for ``malformed``, flushed before this returns.

        ``received_at`` (timezone-aware; default now, UTC) is the ``at`` field.  Raises
        :class:`ValueError` for a naive ``received_at`` and :class:`OSError` when the disk
        fails; the caller counts and logs that and goes on (a dead letter never stops the
        collector).
        """
        if received_at is None:
            received_at = datetime.now(UTC)
        elif received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        line = _encode_line(
            {
                "at": received_at.isoformat(),
                "source": malformed.source_name,
                "reason": malformed.reason,
                "raw": malformed.raw,
            }
        )
        f = self._open()
        if self._size > 0 and self._size + len(line) > self.max_bytes:
            self._rotate()
            f = self._open()
        f.write(line)
        f.flush()
        if self.fsync:
            os.fsync(f.fileno())
        self._size += len(line)
        self.count += 1

    def close(self) -> None:
        """Close the file.  Idempotent; a later :meth:`write` opens it again."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DeadLetters:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> BinaryIO:
        if self._file is None:
            # Append mode: lines from an earlier run stay, and each write lands at the end.
            self._file = open(self.path, "ab")  # noqa: SIM115 - held open across writes
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        self.close()
        for i in range(self.keep, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if i == self.keep:
                older.unlink(missing_ok=True)
                continue
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.keep > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._size = 0


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of one dead-letter file, oldest first (for tests and tools).

    Raises :class:`ValueError` for a line that is not a JSON object (a torn last line after a
    machine crash included).
    """
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            yield record
