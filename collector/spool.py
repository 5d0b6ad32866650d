"""An append-only, fsynced, bounded on-disk spool of event batches.

While the database is unreachable the writer appends each batch here and counts it as written
only once :meth:`Spool.append` has returned (the record is then fsynced).  When the database is
back, the writer replays the spool oldest first: :meth:`Spool.peek`, write to the database,
:meth:`Spool.ack`.  This survives restarts and ``kill -9``.

On disk, in ``directory``:

``00000000000000000042.spool``
    Segment files, named by the sequence number of their first record, so that sorting the
    names sorts the records.  Each holds records back to back::

        magic b"CPS\\x01" (4) | payload length u32 | crc32 u32 | seq u64 | appended_at u64 (µs)
        | payload

    little-endian; the CRC covers seq, appended_at and the payload.  The last magic byte is the
    record format version.
``acked``
    The ack journal: 16-byte entries ``b"CPA\\x01" | seq u64 | crc32(seq) u32``, one appended
    and fsynced per :meth:`Spool.ack`.  The highest valid seq is the last acknowledged record;
    every record up to it is done.  One fsync per ack (a rewrite-and-rename file would need
    three), so after a crash at most the record whose ack was in flight is replayed again, and
    the database drops that duplicate.  The journal is rewritten atomically (tmp, fsync,
    rename, directory fsync) on open and when it grows past 64 KiB.
``corrupt/``
    Segments found corrupt (a bad record with intact records after it, or any bad record in a
    segment older than the last) are moved here whole, never deleted, and logged as errors.
``.lock``
    ``flock``-ed while a :class:`Spool` is open: two collectors must never share a spool.

A segment is deleted once every record in it is acknowledged.  On open, a torn record at the end
of the last segment (cut short, or a bad CRC with nothing valid after it) is truncated away with
a warning: :meth:`Spool.append` had not returned for it, so nobody counted it as spooled.

Not thread-safe: one task uses it (except the gauges' properties, which do no I/O and may be
read from a metrics thread).  Every call is short and blocking (``append`` waits for an fsync),
so call it through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from chatpulse.core.errors import ChatpulseError

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "HEADER_SIZE",
    "RecordId",
    "Spool",
    "SpoolError",
    "SpoolFullError",
    "SpoolLockedError",
]

log = logging.getLogger(__name__)

#: Default size at which a new segment file is started.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024

_MAGIC = b"CPS\x01"
_HEADER = struct.Struct("<4sIIQQ")  # magic, payload length, crc32, seq, appended_at (µs)
_CRC_START = 12  # the CRC covers the header from seq on, then the payload
_CRC_FIELDS = struct.Struct("<QQ")
#: Bytes of header in front of every payload; a record takes ``HEADER_SIZE + len(payload)``.
HEADER_SIZE = _HEADER.size
_MAX_PAYLOAD = 0xFFFFFFFF

_ACK_MAGIC = b"CPA\x01"
_ACK = struct.Struct("<4sQI")
_ACK_SEQ = struct.Struct("<Q")
_ACK_FILE = "acked"
_ACK_COMPACT_BYTES = 64 * 1024
_LOCK_FILE = ".lock"
_CORRUPT_DIR = "corrupt"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.spool$")
_LEVELS = (50, 80)  # percent of max_bytes; 100 means an append was refused


class SpoolError(ChatpulseError):
    """The spool cannot do what was asked (closed, locked by another process, full)."""


class SpoolFullError(SpoolError):
    """Appending would take the spool past ``max_bytes``.  Nothing was written.

    The caller applies backpressure (stop reading from the sources) and retries after acks free
    space; no event is dropped.
    """


class SpoolLockedError(SpoolError):
    """Another open :class:`Spool` (this process or another) holds the directory."""


class RecordId(NamedTuple):
    """Where a record is: its sequence number (what :meth:`Spool.append` returned) and place."""

    seq: int
    segment: int
    offset: int
    size: int


@dataclass(slots=True)
class _Segment:
    base: int  # seq of the first record, the file name
    path: Path
    size: int  # bytes of intact records (the file's size)
    head: int  # offset of the oldest un-acked record; == size when none
    head_seq: int  # seq expected at ``head``
    end_seq: int  # seq the next record appended to this segment would have
    pending: int  # un-acked records


@dataclass(slots=True)
class _Scan:
    end: int  # offset just past the last intact record
    records: int
    last_seq: int | None
    head: int
    head_seq: int | None
    pending: int
    bad_at: int | None  # offset of the first bad record, None when intact to the end
    max_seq_after_bad: int | None  # highest seq of an intact record after it, if any


def _crc(seq: int, appended_us: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_CRC_FIELDS.pack(seq, appended_us)))


def _check_record(view: memoryview, off: int) -> tuple[int, int, int] | None:
    """Return (seq, record size, appended_at µs) of an intact record at ``off``, else None."""
    if len(view) - off < HEADER_SIZE:
        return None
    magic, length, crc, seq, appended = _HEADER.unpack_from(view, off)
    end = off + HEADER_SIZE + length
    if magic != _MAGIC or end > len(view):
        return None
    if zlib.crc32(view[off + _CRC_START : end]) != crc:
        return None
    return seq, HEADER_SIZE + length, appended


def _max_seq_after(mm: mmap.mmap, view: memoryview, start: int) -> int | None:
    """The highest seq of an intact record found anywhere from ``start`` on, or None."""
    # Tells a torn tail (garbage to the end of file: None) from corruption in the middle
    # (intact records follow), and keeps the seqs of those records from being handed out again.
    best: int | None = None
    pos = mm.find(_MAGIC, start)
    while pos != -1:
        rec = _check_record(view, pos)
        if rec is not None:
            best = rec[0] if best is None else max(best, rec[0])
        pos = mm.find(_MAGIC, pos + 1)
    return best


def _scan_segment(path: Path, base: int, acked: int) -> _Scan:
    """Read one segment and check every record (magic, length, CRC, consecutive seq)."""
    with (
        open(path, "rb") as f,
        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm,
        memoryview(mm) as view,
    ):
        off = records = pending = 0
        expected = base
        last_seq: int | None = None
        head: int | None = None
        head_seq: int | None = None
        while off < len(view):
            rec = _check_record(view, off)
            if rec is None or rec[0] != expected:
                return _Scan(
                    end=off,
                    records=records,
                    last_seq=last_seq,
                    head=off if head is None else head,
                    head_seq=head_seq,
                    pending=pending,
                    bad_at=off,
                    max_seq_after_bad=_max_seq_after(mm, view, off + 1),
                )
            seq, size, _ = rec
            if seq > acked:
                pending += 1
                if head is None:
                    head, head_seq = off, seq
            records += 1
            last_seq = seq
            expected = seq + 1
            off += size
        return _Scan(
            end=off,
            records=records,
            last_seq=last_seq,
            head=off if head is None else head,
            head_seq=head_seq,
            pending=pending,
            bad_at=None,
            max_seq_after_bad=None,
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_acked(path: Path) -> int:
    """The highest seq in the ack journal with a valid entry, or -1."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return -1
    acked = -1
    for off in range(0, len(data) - _ACK.size + 1, _ACK.size):
        magic, seq, crc = _ACK.unpack_from(data, off)
        # A torn last entry (crash mid-ack) fails its CRC and is skipped: that record is
        # replayed once more, which the database's unique keys absorb.
        if magic == _ACK_MAGIC and crc == zlib.crc32(_ACK_SEQ.pack(seq)):
            acked = max(acked, seq)
    return acked


def _ack_entry(seq: int) -> bytes:
    return _ACK.pack(_ACK_MAGIC, seq, zlib.crc32(_ACK_SEQ.pack(seq)))


class Spool:
    """An append-only spool of byte batches in ``directory`` (created if missing).

    ``max_bytes`` bounds the un-acknowledged bytes (headers included, see :attr:`size_bytes`);
    disk use can exceed it by the acknowledged front of the oldest segment, which is freed when
    that segment is fully acknowledged.  ``segment_bytes`` is the size past which a new segment
    file is started (a single larger batch gets a segment of its own).  ``clock`` gives the
    append time stored in each record (seconds since the epoch).

    Opening scans every segment, truncates a torn tail, quarantines corrupt segments (see the
    module docstring) and takes an exclusive lock: raises :class:`SpoolLockedError` when another
    open spool holds the directory, and :class:`OSError` when the directory is unusable.  Use it
    as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes <= HEADER_SIZE:
            raise ValueError(f"max_bytes must exceed {HEADER_SIZE}, got {max_bytes}")
        if segment_bytes <= 0:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        #: Segments moved to ``corrupt/`` since this spool was opened.
        self.corrupt_segments = 0
        #: Torn records truncated away when this spool was opened.
        self.torn_records = 0
        self._clock = clock
        self._segments: deque[_Segment] = deque()
        self._size = 0
        self._pending = 0
        self._acked = -1
        self._next_seq = 0
        self._write_fd: int | None = None  # the newest segment, opened for append
        self._write_dirty = False  # a failed append left bytes that must be truncated first
        self._read_fd: int | None = None
        self._read_base: int | None = None
        self._peeked: tuple[RecordId, bytes] | None = None
        self._oldest_us: int | None = None
        self._level = 0
        self._journal_fd: int | None = None
        self._journal_size = 0
        self._journal_dirty = False
        self._closed = False

        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = os.open(
            self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            self._closed = True
            raise SpoolLockedError(f"spool {self.directory} is open elsewhere") from None
        try:
            self._recover()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------ open

    def _recover(self) -> None:
        self._acked = _read_acked(self.directory / _ACK_FILE)
        next_seq = self._acked + 1
        names = sorted(
            (int(m.group(1)), p)
            for p in self.directory.iterdir()
            if (m := _SEGMENT_NAME.match(p.name)) and p.is_file()
        )
        changed = False
        found: list[tuple[int, Path]] = []
        for base, path in names:
            if path.stat().st_size == 0:
                # Created, then the process died before its first record was fsynced.
                path.unlink()
                changed = True
            else:
                found.append((base, path))
        for i, (base, path) in enumerate(found):
            is_last = i == len(found) - 1
            next_seq = max(next_seq, base + 1)
            scan = _scan_segment(path, base, self._acked)
            for seen in (scan.last_seq, scan.max_seq_after_bad):
                if seen is not None:
                    next_seq = max(next_seq, seen + 1)
            if scan.bad_at is not None:
                if is_last and scan.max_seq_after_bad is None:
                    self._truncate_torn(path, scan.bad_at)
                else:
                    self._quarantine(path, scan.bad_at, "bad record on open")
                    changed = True
                    continue
            if scan.pending == 0:
                # Fully acknowledged; the unlink after the last ack did not reach the disk.
                path.unlink()
                changed = True
                continue
            assert scan.head_seq is not None
            assert scan.last_seq is not None
            seg = _Segment(
                base, path, scan.end, scan.head, scan.head_seq, scan.last_seq + 1, scan.pending
            )
            self._segments.append(seg)
            self._size += seg.size - seg.head
            self._pending += seg.pending
        self._next_seq = next_seq
        with contextlib.suppress(FileNotFoundError):
            (self.directory / (_ACK_FILE + ".tmp")).unlink()
        if changed:
            _fsync_dir(self.directory)
        self._rewrite_journal()
        self._refresh_oldest()
        self._level = self._level_for(self._size)
        if self._pending:
            log.info(
                "spool opened with records to replay",
                extra={
                    "spool_dir": str(self.directory),
                    "spool_records": self._pending,
                    "spool_bytes": self._size,
                    "spool_segments": len(self._segments),
                },
            )

    def _truncate_torn(self, path: Path, at: int) -> None:
        size = path.stat().st_size
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, at)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.torn_records += 1
        log.warning(
            "spool: truncated a torn record at the end of the last segment",
            extra={
                "spool_dir": str(self.directory),
                "segment": path.name,
                "offset": at,
                "dropped_bytes": size - at,
            },
        )

    def _quarantine(self, path: Path, offset: int, why: str) -> None:
        corrupt = self.directory / _CORRUPT_DIR
        corrupt.mkdir(exist_ok=True)
        target = corrupt / path.name
        n = 0
        while target.exists():
            n += 1
            target = corrupt / f"{path.name}.{n}"
        os.replace(path, target)
        _fsync_dir(corrupt)
        _fsync_dir(self.directory)
        self.corrupt_segments += 1
        log.error(
            "spool: corrupt segment moved aside; its un-acked records are not replayed",
            extra={
                "spool_dir": str(self.directory),
                "segment": path.name,
                "offset": offset,
                "moved_to": str(target),
                "reason": why,
            },
        )

    # ----------------------------------------------------------------------------- public API

    @property
    def size_bytes(self) -> int:
        """Bytes of un-acknowledged records on disk, headers included."""
        return self._size

    @property
    def pending_records(self) -> int:
        """How many records are appended and not yet acknowledged."""
        return self._pending

    def __len__(self) -> int:
        return self._pending

    @property
    def oldest_appended_at(self) -> datetime | None:
        """When the oldest un-acknowledged record was appended (UTC), or None when empty.

        This, :meth:`oldest_age_s`, :attr:`size_bytes` and :attr:`pending_records` read
        attributes only (no I/O), so a metrics thread may call them at any time.
        """
        us = self._oldest_us
        return None if us is None else datetime.fromtimestamp(us / 1e6, UTC)

    def oldest_age_s(self, now: float | None = None) -> float:
        """Seconds since the oldest un-acknowledged record was appended; 0.0 when empty.

        ``now`` is seconds since the epoch (default: the spool's clock).  No I/O.
        """
        us = self._oldest_us
        if us is None:
            return 0.0
        return max(0.0, (self._clock() if now is None else now) - us / 1e6)

    def append(self, batch: bytes) -> int:
        """Write ``batch`` as one record, fsynced, and return its sequence number.

        When this returns, the record survives a crash.  Raises :class:`SpoolFullError` (nothing
        written) when it would take :attr:`size_bytes` past ``max_bytes``, :class:`ValueError`
        for a batch that could never fit (over ``max_bytes`` or 4 GiB), and :class:`OSError`
        when the disk fails (nothing counted; the partial write is undone).
        """
        self._check_open()
        size = HEADER_SIZE + len(batch)
        if len(batch) > _MAX_PAYLOAD or size > self.max_bytes:
            raise ValueError(
                f"a batch of {len(batch)} bytes can never fit a spool of {self.max_bytes} bytes"
            )
        if self._size + size > self.max_bytes:
            self._set_level(100)
            raise SpoolFullError(
                f"spool {self.directory} is full: {self._size} of {self.max_bytes} bytes used, "
                f"the batch needs {size}"
            )
        if self._write_dirty and self._write_fd is not None:
            # Before anything else: a torn record must not stay behind in a segment that is no
            # longer the last one (on open that would read as corruption).
            os.ftruncate(self._write_fd, self._segments[-1].size)
            self._write_dirty = False
        seg, fd = self._tail_for(size)
        seq = self._next_seq
        appended_us = int(self._clock() * 1_000_000)
        header = _HEADER.pack(_MAGIC, len(batch), _crc(seq, appended_us, batch), seq, appended_us)
        try:
            _write_all(fd, header + batch)
            # fsync, not fdatasync: the file grew, and the size must be durable with the data.
            os.fsync(fd)
        except BaseException:
            # Undo the partial record so the next append starts on a record boundary.  After a
            # failed fsync the page cache cannot be trusted either (Linux drops the dirty pages).
            try:
                os.ftruncate(fd, seg.size)
            except OSError:
                self._write_dirty = True
            raise
        seg.size += size
        seg.pending += 1
        seg.end_seq = seq + 1
        self._size += size
        self._pending += 1
        self._next_seq = seq + 1
        if self._pending == 1:
            self._oldest_us = appended_us
        self._set_level(self._level_for(self._size))
        return seq

    def peek(self) -> tuple[RecordId, bytes] | None:
        """Return the oldest un-acknowledged record and its payload, or None when empty.

        Calling it again without :meth:`ack` returns the same record.  A record found corrupt
        here (the file changed since open) quarantines its segment and moves on.
        """
        self._check_open()
        if self._peeked is not None:
            return self._peeked
        while self._segments:
            seg = self._segments[0]
            if seg.pending == 0:
                return None  # only an empty newest segment is left
            fd = self._reader(seg)
            header = os.pread(fd, HEADER_SIZE, seg.head)
            if len(header) == HEADER_SIZE:
                magic, length, crc, seq, appended_us = _HEADER.unpack(header)
                payload = os.pread(fd, length, seg.head + HEADER_SIZE)
                if (
                    magic == _MAGIC
                    and seq == seg.head_seq
                    and len(payload) == length
                    and _crc(seq, appended_us, payload) == crc
                ):
                    rid = RecordId(seq, seg.base, seg.head, HEADER_SIZE + length)
                    self._peeked = (rid, payload)
                    self._oldest_us = appended_us
                    return self._peeked
            self._drop_head_segment(quarantine_at=seg.head)
        return None

    def ack(self, record_id: RecordId) -> None:
        """Mark the oldest record done (it is in the database); durable when this returns.

        ``record_id`` must be the one :meth:`peek` returns now (acks go in order): raises
        :class:`ValueError` otherwise, and :class:`OSError` when the ack cannot be written (the
        record then stays the oldest).  A segment whose records are all acknowledged is deleted.
        """
        self._check_open()
        head = self.peek()
        if head is None or head[0] != record_id:
            raise ValueError(f"{record_id} is not the oldest un-acknowledged record")
        self._write_ack(record_id.seq)
        seg = self._segments[0]
        seg.head += record_id.size
        seg.head_seq += 1
        seg.pending -= 1
        self._size -= record_id.size
        self._pending -= 1
        self._acked = record_id.seq
        self._peeked = None
        if seg.pending == 0 and seg.head == seg.size:
            self._drop_head_segment(quarantine_at=None)
        else:
            self._refresh_oldest()
        self._set_level(self._level_for(self._size))

    def close(self) -> None:
        """Close the files and release the lock.  Idempotent; everything is already durable."""
        for fd in (self._write_fd, self._read_fd, self._journal_fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._write_fd = self._read_fd = self._journal_fd = self._lock_fd = None
        self._read_base = None
        self._closed = True

    def rewrite(self, transform: Callable[[bytes], bytes]) -> int:
        """Pass every record's payload, acknowledged ones too, through ``transform``.

        Returns how many records changed.  A segment with a changed record is written anew
        beside itself (same seqs and append times, new CRCs), fsynced and renamed over the old
        one, then the directory is fsynced: after a crash every segment is whole, old or new,
        and a second run finishes the job.  The spool then reopens its segments, so it stays
        usable.  ``chatpulse forget`` uses this to take a user out of a spool no collector has
        open.
        """
        self._check_open()
        changed = 0
        for stale in self.directory.glob("*.spool.tmp"):
            stale.unlink()
        for seg in list(self._segments):
            with open(seg.path, "rb") as f:
                data = f.read(seg.size)
            out = bytearray()
            view = memoryview(data)
            off = seg_changed = 0
            while off < len(data):
                rec = _check_record(view, off)
                if rec is None:  # checked on open; a file changed under us is left alone
                    raise SpoolError(f"spool segment {seg.path} changed while open")
                seq, size, appended_us = rec
                payload = bytes(view[off + HEADER_SIZE : off + size])
                new = transform(payload)
                if new != payload:
                    seg_changed += 1
                out += _HEADER.pack(_MAGIC, len(new), _crc(seq, appended_us, new), seq, appended_us)
                out += new
                off += size
            view.release()
            if not seg_changed:
                continue
            tmp = seg.path.with_name(seg.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, bytes(out))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, seg.path)
            _fsync_dir(self.directory)
            changed += seg_changed
        if changed:
            self._reopen()
        return changed

    def _reopen(self) -> None:
        """Forget the in-memory state and scan the segments again (after :meth:`rewrite`)."""
        for fd in (self._write_fd, self._read_fd, self._journal_fd):
            if fd is not None:
                os.close(fd)
        self._write_fd = self._read_fd = self._journal_fd = None
        self._read_base = None
        self._write_dirty = False
        self._peeked = None
        self._segments.clear()
        self._size = self._pending = 0
        self._recover()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -------------------------------------------------------------------------------- helpers

    def _check_open(self) -> None:
        if self._closed:
            raise SpoolError(f"spool {self.directory} is closed")

    def _tail_for(self, size: int) -> tuple[_Segment, int]:
        tail = self._segments[-1] if self._segments else None
        # Records in a segment have consecutive seqs (checked on open), so a tail left behind by
        # a quarantined newer segment is not appended to.
        if (
            tail is not None
            and tail.end_seq == self._next_seq
            and (tail.size == 0 or tail.size + size <= self.segment_bytes)
        ):
            if self._write_fd is None:
                self._write_fd = os.open(tail.path, os.O_WRONLY | os.O_APPEND)
            return tail, self._write_fd
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
            self._write_dirty = False
        base = self._next_seq
        path = self.directory / f"{base:020d}.spool"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            # The new name must survive a crash, or its records would vanish with it.
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            path.unlink()
            raise
        self._write_fd = fd
        seg = _Segment(base, path, size=0, head=0, head_seq=base, end_seq=base, pending=0)
        self._segments.append(seg)
        return seg, fd

    def _reader(self, seg: _Segment) -> int:
        if self._read_base != seg.base or self._read_fd is None:
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None
            self._read_fd = os.open(seg.path, os.O_RDONLY)
            self._read_base = seg.base
        return self._read_fd

    def _drop_head_segment(self, *, quarantine_at: int | None) -> None:
        """Remove the oldest segment: deleted when done, moved to corrupt/ when not."""
        seg = self._segments.popleft()
        if self._read_base == seg.base and self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = self._read_base = None
        if not self._segments and self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
            self._write_dirty = False
        self._size -= seg.size - seg.head
        self._pending -= seg.pending
        self._peeked = None
        if quarantine_at is None:
            seg.path.unlink()
            # Without this a crash could bring the file back; the ack journal would still
            # skip its records, but only after a full rescan.
            _fsync_dir(self.directory)
        else:
            self._quarantine(seg.path, quarantine_at, "bad record on read")
        self._refresh_oldest()

    def _refresh_oldest(self) -> None:
        # Kept up to date eagerly (one 28-byte read per ack) so that the gauges read a plain
        # attribute: a metrics scrape thread may ask while the writer's thread appends.
        self._oldest_us = None
        for seg in self._segments:
            if seg.pending:
                with contextlib.suppress(OSError):
                    header = os.pread(self._reader(seg), HEADER_SIZE, seg.head)
                    if len(header) == HEADER_SIZE:
                        magic, _, _, _, appended_us = _HEADER.unpack(header)
                        if magic == _MAGIC:
                            self._oldest_us = appended_us
                return

    def _write_ack(self, seq: int) -> None:
        if self._journal_dirty or self._journal_size >= _ACK_COMPACT_BYTES:
            self._rewrite_journal(seq)
            return
        assert self._journal_fd is not None
        try:
            _write_all(self._journal_fd, _ack_entry(seq))
            os.fsync(self._journal_fd)
        except BaseException:
            try:
                os.ftruncate(self._journal_fd, self._journal_size)
            except OSError:
                # Entries must stay aligned; a rewrite at the next ack puts that right.
                self._journal_dirty = True
            raise
        self._journal_size += _ACK.size

    def _rewrite_journal(self, seq: int | None = None) -> None:
        """Replace the ack journal by one entry (``seq``, default the current ack) atomically."""
        acked = self._acked if seq is None else seq
        path = self.directory / _ACK_FILE
        tmp = self.directory / (_ACK_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, _ack_entry(acked) if acked >= 0 else b"")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self.directory)
        if self._journal_fd is not None:
            os.close(self._journal_fd)
        self._journal_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._journal_size = _ACK.size if acked >= 0 else 0
        self._journal_dirty = False

    def _level_for(self, size: int) -> int:
        percent = size * 100 / self.max_bytes
        return max((lvl for lvl in _LEVELS if percent >= lvl), default=0)

    def _set_level(self, level: int) -> None:
        if level == self._level:
            return
        extra = {
            "spool_dir": str(self.directory),
            "spool_bytes": self._size,
            "spool_max_bytes": self.max_bytes,
            "spool_records": self._pending,
            "spool_level_percent": level,
        }
        if level == 100:
            log.error("spool full: appends refused until the database takes records", extra=extra)
        elif level > self._level:
            log.warning("spool is %d %% full", level, extra=extra)
        else:
            log.info("spool down to under %d %%", max(self._level, 50), extra=extra)
        self._level = level
