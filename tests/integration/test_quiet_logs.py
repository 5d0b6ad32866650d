"""Logs a new user reads: quiet when idle, no colour codes in JSON, an error said once."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
import uvicorn

from chatpulse.core.logs import configure_logging
from scorer.backends import load_backend
from scorer.loop import LoopConfig, run_scorer
from tests.e2e.cli import run_cli
from tests.helpers import free_port


class _Progress(logging.Handler):
    def __init__(self, wanted: int) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.enough = asyncio.Event()
        self.wanted = wanted

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "scoring progress":
            self.records.append(record)
            if len(self.records) >= self.wanted:
                self.enough.set()


async def test_idle_scorer_logs_no_progress_at_info(db_url: str) -> None:
    logger = logging.getLogger("scorer.loop")
    handler, level = _Progress(wanted=3), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    stop = asyncio.Event()
    config = LoopConfig(poll_interval_s=0.01, progress_interval_s=0.02, refresh_interval_s=60)
    task = asyncio.create_task(
        run_scorer(db_url, load_backend("lexicon"), config=config, stop=stop)
    )
    try:
        await asyncio.wait_for(handler.enough.wait(), 60)  # three idle windows went by
    finally:
        stop.set()
        await task
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert {r.levelno for r in handler.records} == {logging.DEBUG}


async def test_uvicorn_lines_in_json_logs_carry_no_colour_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    configure_logging("info", "json")

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        return None

    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    config.load()  # what Server.serve() does before startup()
    server.lifespan = config.lifespan_class(config)
    await server.startup()  # logs "Uvicorn running on ..." with a coloured copy of the message
    await server.shutdown()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(line["logger"].startswith("uvicorn") for line in lines), lines
    assert "\x1b" not in out.getvalue() and "\\u001b" not in out.getvalue()
    assert not any("color_message" in line for line in lines)
    logging.getLogger().handlers.clear()


def test_a_database_error_is_printed_once(tmp_path: object) -> None:
    done = run_cli(
        "score",
        "--until-idle",
        env={
            "CHATPULSE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "CHATPULSE_METRICS_PORT": "0",
        },
    )
    assert done.returncode == 1
    assert done.stderr.count("cannot connect") == 1, done.stderr
    assert done.stderr.startswith("chatpulse: cannot connect"), done.stderr
