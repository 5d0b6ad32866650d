"""Tests for collector.spool on a real filesystem (tmp_path; no database).

What they guard: records come back in order and exactly as appended, across segment files,
reopen, torn writes, a real ``kill -9`` of a writing process, a full spool and corruption.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector import spool as spool_module
from collector.spool import (
    HEADER_SIZE,
    RecordId,
    Spool,
    SpoolFullError,
    SpoolLockedError,
)

ROOT = Path(__file__).resolve().parent.parent.parent


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def _drain(spool: Spool) -> list[tuple[int, bytes]]:
    """Replay the spool as the writer does: peek, (write), ack, until empty."""
    out: list[tuple[int, bytes]] = []
    while (head := spool.peek()) is not None:
        rid, payload = head
        out.append((rid.seq, payload))
        spool.ack(rid)
    return out


def _payload(i: int, size: int = 100) -> bytes:
    return (f"batch {i}:".encode() + bytes([i % 251]) * size)[:size]


@pytest.fixture
def fake_clock() -> Iterator[list[float]]:
    now = [1_700_000_000.0]
    yield now


def _clock(now: list[float]) -> Callable[[], float]:
    return lambda: now[0]


def test_records_come_back_in_order_across_segment_rollover(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000, segment_bytes=3 * (HEADER_SIZE + 100)) as sp:
        seqs = [sp.append(_payload(i, 100)) for i in range(10)]
        assert seqs == list(range(10))
        assert len(_segments(tmp_path)) == 4  # 3 + 3 + 3 + 1 records
        assert [p.name for p in _segments(tmp_path)][:2] == [
            "00000000000000000000.spool",
            "00000000000000000003.spool",
        ]
        assert len(sp) == sp.pending_records == 10
        assert sp.size_bytes == 10 * (HEADER_SIZE + 100)

        drained = _drain(sp)

        assert drained == [(i, _payload(i, 100)) for i in range(10)]
        assert len(sp) == 0
        assert sp.size_bytes == 0
        assert _segments(tmp_path) == []  # every segment fully acked, so deleted
        assert sp.peek() is None


def test_peek_is_stable_until_ack_and_ack_must_be_the_oldest(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        sp.append(b"one")
        sp.append(b"two")
        first = sp.peek()
        assert first is not None and first == sp.peek()
        assert first[1] == b"one"
        with pytest.raises(ValueError, match="not the oldest"):
            sp.ack(RecordId(1, 0, first[0].size, first[0].size))
        sp.ack(first[0])
        with pytest.raises(ValueError, match="not the oldest"):
            sp.ack(first[0])  # acked twice
        second = sp.peek()
        assert second is not None and second[1] == b"two"


def test_appends_while_replaying_the_same_segment(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        sp.append(b"a")
        head = sp.peek()
        assert head is not None
        sp.append(b"b")
        sp.ack(head[0])
        sp.append(b"c")
        assert [p for _, p in _drain(sp)] == [b"b", b"c"]
        assert sp.append(b"d") == 3  # seqs keep counting after the spool emptied
        assert [p for _, p in _drain(sp)] == [b"d"]


def test_reopen_keeps_unacked_records_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000, segment_bytes=2 * (HEADER_SIZE + 50)) as sp:
        for i in range(7):
            sp.append(_payload(i, 50))
        for _ in range(3):
            head = sp.peek()
            assert head is not None
            sp.ack(head[0])

    with Spool(tmp_path, max_bytes=1_000_000, segment_bytes=2 * (HEADER_SIZE + 50)) as sp:
        assert len(sp) == 4
        assert sp.size_bytes == 4 * (HEADER_SIZE + 50)
        assert sp.append(_payload(7, 50)) == 7  # numbering goes on from where it was
        assert _drain(sp) == [(i, _payload(i, 50)) for i in range(3, 8)]

    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        assert len(sp) == 0
        assert sp.append(b"x") == 8
    assert [p.name for p in _segments(tmp_path)] == ["00000000000000000008.spool"]


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        sp.append(b"x")
        with pytest.raises(SpoolLockedError):
            Spool(tmp_path, max_bytes=1_000_000)
    with Spool(tmp_path, max_bytes=1_000_000) as again:
        assert len(again) == 1


def _fill(directory: Path, n: int, size: int = 100, segment_bytes: int = 1 << 20) -> None:
    with Spool(directory, max_bytes=1_000_000, segment_bytes=segment_bytes) as sp:
        for i in range(n):
            sp.append(_payload(i, size))


@pytest.mark.parametrize(
    "tear",
    ["cut_in_payload", "cut_in_header", "garbage_appended", "last_crc_bad", "zeros_appended"],
)
def test_torn_last_record_is_truncated_on_reopen(
    tmp_path: Path, tear: str, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(tmp_path, 5)
    (last,) = _segments(tmp_path)
    data = last.read_bytes()
    record = HEADER_SIZE + 100
    intact = 5
    if tear == "cut_in_payload":
        last.write_bytes(data[: 4 * record + HEADER_SIZE + 30])
        intact = 4
    elif tear == "cut_in_header":
        last.write_bytes(data[: 4 * record + 7])
        intact = 4
    elif tear == "garbage_appended":
        last.write_bytes(data + b"CPS\x01\xff\xff garbage")
    elif tear == "last_crc_bad":
        last.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
        intact = 4
    else:
        last.write_bytes(data + bytes(4096))

    with caplog.at_level(logging.WARNING, logger="collector.spool"):
        sp = Spool(tmp_path, max_bytes=1_000_000)
    with sp:
        assert sp.torn_records == 1
        assert sp.corrupt_segments == 0
        assert any("torn" in r.getMessage() for r in caplog.records)
        assert last.stat().st_size == intact * record
        assert sp.append(b"after") == intact  # the torn record's seq was never handed out
        assert _drain(sp) == [(i, _payload(i)) for i in range(intact)] + [(intact, b"after")]


def test_crc_bad_in_the_middle_of_the_last_segment_is_corruption_not_a_tear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(tmp_path, 5)
    (last,) = _segments(tmp_path)
    data = bytearray(last.read_bytes())
    data[2 * (HEADER_SIZE + 100) + HEADER_SIZE + 5] ^= 0xFF
    last.write_bytes(bytes(data))

    with caplog.at_level(logging.ERROR, logger="collector.spool"):
        sp = Spool(tmp_path, max_bytes=1_000_000)
    with sp:
        # Truncating here would lose records 3 and 4, which append had acknowledged.
        assert sp.corrupt_segments == 1
        assert sp.torn_records == 0
        assert (tmp_path / "corrupt" / last.name).read_bytes() == bytes(data)
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        assert len(sp) == 0
        assert sp.append(b"new") == 5  # no seq is reused, even one only seen in corrupt/


def test_corrupt_older_segment_is_quarantined_and_the_rest_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(tmp_path, 9, segment_bytes=3 * (HEADER_SIZE + 100))
    _, middle, _ = _segments(tmp_path)
    data = bytearray(middle.read_bytes())
    data[HEADER_SIZE + 10] ^= 0x01  # first record of the middle segment
    middle.write_bytes(bytes(data))

    with caplog.at_level(logging.ERROR, logger="collector.spool"):
        sp = Spool(tmp_path, max_bytes=1_000_000)
    with sp:
        assert sp.corrupt_segments == 1
        assert (tmp_path / "corrupt" / middle.name).exists()
        assert not middle.exists()
        assert [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(sp) == 6
        assert [seq for seq, _ in _drain(sp)] == [0, 1, 2, 6, 7, 8]


def test_record_corrupted_after_open_is_quarantined_on_peek(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000, segment_bytes=2 * (HEADER_SIZE + 100)) as sp:
        for i in range(4):
            sp.append(_payload(i))
        first = _segments(tmp_path)[0]
        data = bytearray(first.read_bytes())
        data[HEADER_SIZE + 50] ^= 0xFF
        first.write_bytes(bytes(data))

        head = sp.peek()

        assert head is not None and head[0].seq == 2
        assert sp.corrupt_segments == 1
        assert len(sp) == 2
        assert (tmp_path / "corrupt" / first.name).exists()


def test_full_spool_refuses_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record = HEADER_SIZE + 100
    with caplog.at_level(logging.INFO, logger="collector.spool"):
        sp = Spool(tmp_path, max_bytes=10 * record, segment_bytes=4 * record)
        with sp:
            for i in range(10):
                sp.append(_payload(i))
            sizes = [p.stat().st_size for p in _segments(tmp_path)]

            with pytest.raises(SpoolFullError, match="full"):
                sp.append(_payload(10))
            with pytest.raises(SpoolFullError):
                sp.append(b"")

            assert [p.stat().st_size for p in _segments(tmp_path)] == sizes
            assert len(sp) == 10
            assert sp.size_bytes == 10 * record
            with pytest.raises(ValueError, match="never fit"):
                sp.append(bytes(10 * record))

            head = sp.peek()
            assert head is not None
            sp.ack(head[0])
            assert sp.append(_payload(10)) == 10
            assert [seq for seq, _ in _drain(sp)] == list(range(1, 11))

    messages = [(r.levelno, getattr(r, "spool_level_percent", None)) for r in caplog.records]
    assert (logging.WARNING, 50) in messages
    assert (logging.WARNING, 80) in messages
    assert (logging.ERROR, 100) in messages
    # Refused twice, logged once: the log says when the state changes, not every refusal.
    assert sum(1 for _, level in messages if level == 100) == 1


def test_acked_segments_are_deleted_one_by_one(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1_000_000, segment_bytes=2 * (HEADER_SIZE + 100)) as sp:
        for i in range(6):
            sp.append(_payload(i))
        names = [p.name for p in _segments(tmp_path)]
        assert len(names) == 3
        for expected_left in (3, 2, 2, 1, 1, 0):
            head = sp.peek()
            assert head is not None
            sp.ack(head[0])
            assert len(_segments(tmp_path)) == expected_left


def test_size_and_oldest_age(tmp_path: Path, fake_clock: list[float]) -> None:
    with Spool(tmp_path, max_bytes=1_000_000, clock=_clock(fake_clock)) as sp:
        assert sp.size_bytes == 0
        assert sp.oldest_age_s() == 0.0
        assert sp.oldest_appended_at is None
        t0 = fake_clock[0]
        sp.append(b"x" * 10)
        fake_clock[0] += 5
        sp.append(b"y" * 20)
        fake_clock[0] += 5
        assert sp.size_bytes == 2 * HEADER_SIZE + 30
        assert sp.oldest_age_s() == pytest.approx(10.0)
        assert sp.oldest_age_s(now=t0 + 100) == pytest.approx(100.0)
        assert sp.oldest_appended_at == datetime.fromtimestamp(t0, UTC)
        head = sp.peek()
        assert head is not None
        sp.ack(head[0])
        assert sp.size_bytes == HEADER_SIZE + 20
        assert sp.oldest_age_s() == pytest.approx(5.0)

    # The append time is in the record, so the age survives a restart.
    with Spool(tmp_path, max_bytes=1_000_000, clock=_clock(fake_clock)) as sp:
        assert sp.oldest_age_s() == pytest.approx(5.0)
        assert sp.size_bytes == HEADER_SIZE + 20


def test_failed_fsync_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        sp.append(b"kept")
        size = _segments(tmp_path)[0].stat().st_size
        real_fsync = os.fsync

        def failing_fsync(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(OSError):
            sp.append(b"lost")
        monkeypatch.setattr(os, "fsync", real_fsync)

        assert _segments(tmp_path)[0].stat().st_size == size
        assert len(sp) == 1
        assert sp.append(b"next") == 1
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        assert sp.torn_records == 0
        assert [p for _, p in _drain(sp)] == [b"kept", b"next"]


def test_ack_journal_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "_ACK_COMPACT_BYTES", 64)
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        for i in range(20):
            sp.append(_payload(i, 10))
        for _ in range(12):
            head = sp.peek()
            assert head is not None
            sp.ack(head[0])
        assert (tmp_path / "acked").stat().st_size <= 64 + 16
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        assert [seq for seq, _ in _drain(sp)] == list(range(12, 20))


def test_lost_ack_journal_replays_again_rather_than_losing(tmp_path: Path) -> None:
    _fill(tmp_path, 3)
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        head = sp.peek()
        assert head is not None
        sp.ack(head[0])
    (tmp_path / "acked").unlink()
    with Spool(tmp_path, max_bytes=1_000_000) as sp:
        assert [seq for seq, _ in _drain(sp)] == [0, 1, 2]


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from collector.spool import Spool

    sp = Spool(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=256 * 1024)
    i = 0
    while True:
        size = 1000 + (i * 7919) % 60000
        seq = sp.append(str(i).encode().ljust(size, b"."))
        print(seq, flush=True)
        i += 1
    """
)


@pytest.mark.parametrize("kill_after", [30, 111, 257])
def test_kill_9_while_appending_loses_no_acknowledged_record(
    tmp_path: Path, kill_after: int
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert child.stdout is not None
    printed: list[int] = []
    try:
        for line in child.stdout:
            printed.append(int(line))
            if len(printed) >= kill_after:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(printed) >= kill_after

    with Spool(tmp_path, max_bytes=1 << 30) as sp:
        print(f"killed after {len(printed)} printed; torn records truncated: {sp.torn_records}")
        replayed = _drain(sp)
    seqs = [seq for seq, _ in replayed]
    assert seqs == list(range(len(seqs)))  # in order, no gap
    assert set(printed) <= set(seqs)  # every acknowledged append survived
    for seq, payload in replayed:
        assert payload.startswith(str(seq).encode() + b".")
        assert len(payload) == 1000 + (seq * 7919) % 60000
