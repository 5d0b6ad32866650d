"""Tests for collector.deadletter on a real filesystem (tmp_path): lines, rotation, count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.deadletter import DeadLetters, read
from collector.events import Malformed

AT = datetime(2024, 1, 6, 16, 19, 44, 95000, tzinfo=UTC)


def test_lines_keep_raw_input_exactly(tmp_path: Path) -> None:
    path = tmp_path / "dead" / "letters.jsonl"
    raws = [
        "@badge-info= :tmi.twitch.tv PRIVMSG\r\n",
        'quote " backslash \\ tab \t nul \x00',
        "line\nbreak \u2028 emoji 🎉 ÄÖÜ",
        "lone surrogate \ud800 from a JSON source",
        "",
    ]
    with DeadLetters(path) as dl:
        for i, raw in enumerate(raws):
            dl.write(Malformed(raw=raw, reason=f"r{i}", source_name="twitch:nymn"), received_at=AT)
        assert dl.count == len(raws)

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends with a newline ...
    assert len(lines) == len(raws) + 1  # ... and holds none inside
    path.read_bytes().decode("utf-8")  # valid UTF-8 throughout, lone surrogate included
    records = list(read(path))
    assert [r["raw"] for r in records] == raws
    assert records[0] == {
        "at": "2024-01-06T16:19:44.095000+00:00",
        "source": "twitch:nymn",
        "reason": "r0",
        "raw": raws[0],
    }
    for line in lines[:-1]:
        json.loads(line.decode("utf-8"))  # each line alone is a JSON document


def test_at_defaults_to_now_and_keeps_the_given_offset(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    before = datetime.now(UTC)
    with DeadLetters(path) as dl:
        dl.write(Malformed(raw="x", reason="y"))
        dl.write(
            Malformed(raw="x", reason="y"), received_at=AT.astimezone(timezone(timedelta(hours=2)))
        )
        with pytest.raises(ValueError, match="timezone-aware"):
            dl.write(Malformed(raw="x", reason="y"), received_at=datetime(2024, 1, 1))
        assert dl.count == 2
    first, second = read(path)
    assert before <= datetime.fromisoformat(first["at"]) <= datetime.now(UTC)
    assert first["source"] == ""
    assert datetime.fromisoformat(second["at"]) == AT
    assert second["at"].endswith("+02:00")


def test_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    one = Malformed(raw="x" * 50, reason="bad")
    line_len = (
        len(
            json.dumps(
                {"at": AT.isoformat(), "source": "", "reason": "bad", "raw": one.raw},
                separators=(",", ":"),
            )
        )
        + 1
    )
    with DeadLetters(path, max_bytes=3 * line_len, keep=2) as dl:
        for i in range(10):
            dl.write(Malformed(raw=f"{i:02d}" + "x" * 48, reason="bad"), received_at=AT)
        assert dl.count == 10

    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl.jsonl", "dl.jsonl.1", "dl.jsonl.2"]
    assert all(p.stat().st_size <= 3 * line_len for p in tmp_path.iterdir())
    # 10 lines, 3 per file: 09 | 06 07 08 | 03 04 05, and 00 01 02 rotated out.
    assert [r["raw"][:2] for r in read(path)] == ["09"]
    assert [r["raw"][:2] for r in read(tmp_path / "dl.jsonl.1")] == ["06", "07", "08"]
    assert [r["raw"][:2] for r in read(tmp_path / "dl.jsonl.2")] == ["03", "04", "05"]


def test_reopen_appends_and_counts_the_existing_size(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    with DeadLetters(path) as dl:
        dl.write(Malformed(raw="a", reason="r"), received_at=AT)
    size = path.stat().st_size
    with DeadLetters(path, max_bytes=size + 10) as dl:
        assert dl.count == 0
        dl.write(Malformed(raw="b", reason="r"), received_at=AT)  # over the limit: rotates
        assert dl.count == 1
    assert [r["raw"] for r in read(path)] == ["b"]
    assert [r["raw"] for r in read(tmp_path / "dl.jsonl.1")] == ["a"]


def test_a_line_longer_than_the_limit_is_still_written(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    with DeadLetters(path, max_bytes=10, keep=1, fsync=True) as dl:
        dl.write(Malformed(raw="long" * 10, reason="r"), received_at=AT)
        dl.write(Malformed(raw="again" * 10, reason="r"), received_at=AT)
    assert [r["raw"] for r in read(path)] == ["again" * 10]
    assert [r["raw"] for r in read(tmp_path / "dl.jsonl.1")] == ["long" * 10]


def test_read_rejects_a_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    path.write_text('{"raw": "ok"}\n[1, 2]\n', encoding="utf-8")
    records = read(path)
    assert next(records) == {"raw": "ok"}
    with pytest.raises(ValueError, match="not a JSON object"):
        next(records)
