"""The replay's parse workers as child processes: what they send, and a child that dies."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

import collector.parse_worker
from chatpulse.core.errors import ChatpulseError, ConfigError
from collector.events import ChatEvent
from collector.formats import read_events
from collector.parse_worker import Progress, parse_in_worker
from tests.helpers import write_irc_log


def parsed(path: Path, fmt: str, workers: int) -> list[object]:
    async def run() -> list[object]:
        got: list[object] = []
        gen = parse_in_worker(
            path,
            fmt,
            channel=None,
            platform=None,
            start=None,
            max_message_chars=None,
            workers=workers,
        )
        async with contextlib.aclosing(gen):
            async for item in gen:
                if isinstance(item, list):
                    got.extend(item)
                else:
                    got.append(item)
        return got

    return asyncio.run(run())


def test_children_send_the_events_of_an_in_process_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_irc_log(tmp_path / "nymn.log")
    with log.open("a") as f:
        f.write("PRIVMSG\n")  # one malformed line: the children send it too
    expected: list[ChatEvent] = list(read_events(log, "irc"))
    one = parsed(log, "irc", workers=1)
    assert [e for e in one if not isinstance(e, Progress)] == expected
    monkeypatch.setattr(collector.parse_worker, "SPLIT_BYTES", 1)  # three spans, three children
    three = [e for e in parsed(log, "irc", workers=3) if not isinstance(e, Progress)]
    assert sorted(map(repr, three)) == sorted(map(repr, expected))
    assert len(three) == len(expected) > 800


def test_a_child_that_dies_is_an_error_and_a_bad_file_names_its_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_irc_log(tmp_path / "nymn.log")
    monkeypatch.setattr(collector.parse_worker, "_CHILD", "import os; os._exit(3)")
    with pytest.raises(ChatpulseError, match=r"the parser of .* died"):
        parsed(log, "irc", workers=1)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="replay: "):
        parsed(log, "twitchdownloader", workers=1)
