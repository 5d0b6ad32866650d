"""Several scorer worker processes on one database: no double work, nothing skipped, also for
transactions that commit late, and a killed worker's claim is finished by another.

Each worker is this module run as a process (``python -m tests.integration.test_score_concurrency
URL LOG``): the real loop with the lexicon backend, wrapped to append every text it is asked to
score to LOG, so the test can count the backend's work across processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from scorer.backends import Score
from scorer.backends.lexicon import LexiconBackend
from scorer.loop import LoopConfig, run_scorer
from tests.conftest import ROOT
from tests.helpers import wait_until
from tests.integration.test_replay import count
from tests.integration.test_score_loop import Recording, add_channel, insert, score


class _LoggingBackend:
    """Lexicon scores; every text asked for is appended to a JSON-lines file first."""

    def __init__(self, log: Path, block: bool) -> None:
        self.inner = LexiconBackend()
        self.model = self.inner.model
        self.log = log
        self.block = block

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        with self.log.open("a") as handle:
            handle.write("".join(json.dumps(t) + "\n" for t in texts))
        if self.block:
            time.sleep(3600)  # hold the claim until killed
        return self.inner.score(texts, channels)


async def _worker_main(url: str, log: Path, block: bool, batch: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    config = LoopConfig(batch_size=batch, poll_interval_s=0.02, refresh_interval_s=0.5)
    await run_scorer(url, _LoggingBackend(log, block), config=config, stop=stop)


def start_worker(
    url: str, log: Path, *, block: bool = False, batch: int = 7
) -> subprocess.Popen[str]:
    log.touch()
    args = [
        sys.executable,
        "-m",
        "tests.integration.test_score_concurrency",
        url,
        str(log),
        str(batch),
    ]
    if block:
        args.append("--block")
    with log.with_suffix(".stderr").open("w") as err:  # the child keeps its own descriptor
        return subprocess.Popen(args, cwd=ROOT, text=True, stderr=err)


def read_log(path: Path) -> list[str]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def scored(url: str, pattern: str) -> int:
    return int(
        count(
            url,
            "SELECT count(*) FROM chat.message_scores s JOIN chat.messages m "
            "USING (channel_id, message_id, sent_at) WHERE m.text LIKE %s",
            pattern,
        )
    )


def test_workers_score_every_message_once_with_late_commits(db_url: str, tmp_path: Path) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:  # backlog from before any worker ran
        insert(conn, channel, [f"pre-{i}" for i in range(150)])
    logs = [tmp_path / f"worker{i}.jsonl" for i in range(4)]
    workers = [start_worker(db_url, log) for log in logs]
    opened: list[psycopg.Connection[Any]] = []

    def tx() -> psycopg.Connection[Any]:
        conn = psycopg.connect(db_url)
        opened.append(conn)
        return conn

    try:
        # 1. An open transaction holds back rows committed after it started.
        late1 = tx()
        insert(late1, channel, [f"late1-{i}" for i in range(40)])
        with psycopg.connect(db_url, autocommit=True) as conn:
            for k in range(8):
                insert(conn, channel, [f"mid-{k}-{i}" for i in range(15)])
        wait_until(lambda: scored(db_url, "pre-%") == 150, "the backlog", timeout=60)
        time.sleep(0.3)
        assert scored(db_url, "mid-%") == 0, "rows behind an open transaction were claimed"
        late1.commit()

        # 2. The race a seq cursor loses: an older xid commits rows with larger seqs than
        #    those of a newer, still open transaction; workers score past them.
        early, late2 = tx(), tx()
        insert(early, channel, ["early2-first"])
        insert(late2, channel, [f"late2-{i}" for i in range(40)])
        insert(early, channel, [f"early2-{i}" for i in range(40)])
        early.commit()
        wait_until(
            lambda: scored(db_url, "early2-%") == 41, "the early transaction's rows", timeout=60
        )
        assert scored(db_url, "late2-%") == 0
        rolled = tx()
        insert(rolled, channel, [f"rolledback-{i}" for i in range(10)])
        with psycopg.connect(db_url, autocommit=True) as conn:
            for k in range(10):
                insert(conn, channel, [f"live-{k}-{i}" for i in range(12)])
        time.sleep(0.2)
        late2.commit()
        rolled.rollback()

        messages = count(db_url, "SELECT count(*) FROM chat.messages")
        assert messages == 150 + 40 + 120 + 41 + 40 + 120
        wait_until(
            lambda: count(db_url, "SELECT count(*) FROM chat.message_scores") == messages,
            "every message scored",
            timeout=60,
        )
    finally:
        for conn in opened:
            conn.close()
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in workers]
    assert codes == [0, 0, 0, 0], [log.with_suffix(".stderr").read_text() for log in logs]

    seen = Counter(text for log in logs for text in read_log(log))
    with psycopg.connect(db_url) as conn:
        texts = {r[0] for r in conn.execute("SELECT text FROM chat.messages").fetchall()}
    assert set(seen) == texts  # nothing skipped
    assert [t for t, n in seen.items() if n > 1] == []  # no double work
    assert sum(1 for log in logs if read_log(log)) >= 2  # the work was shared
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0
    assert count(db_url, "SELECT count(*) FROM chat.scoring_failures") == 0
    assert count(db_url, "SELECT sum(scored) FROM chat.sentiment_1m") == messages


def test_a_killed_workers_claim_is_finished_by_another(db_url: str, tmp_path: Path) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, [f"msg-{i}" for i in range(50)])
    log = tmp_path / "killed.jsonl"
    victim = start_worker(db_url, log, block=True, batch=20)
    try:
        wait_until(lambda: len(read_log(log)) == 20, "the victim to hold a claim", timeout=60)
        assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 1
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    rec = Recording()
    stats = score(db_url, rec, config=LoopConfig(batch_size=20, poll_interval_s=0.05))
    assert stats.adopted == 1
    assert stats.written == 50
    assert sorted(rec.seen) == sorted(f"msg-{i}" for i in range(50))  # each once
    assert set(read_log(log)) <= set(rec.seen)
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0
    assert count(db_url, "SELECT count(*) FROM chat.message_scores") == 50


if __name__ == "__main__":
    asyncio.run(
        _worker_main(sys.argv[1], Path(sys.argv[2]), "--block" in sys.argv, int(sys.argv[3]))
    )
