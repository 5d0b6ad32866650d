"""The scoring loop against the real PostgreSQL: exactly one score per message and model,
late commits, bad input, failures, adopted claims, aggregates and metrics."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from chatpulse.core.migrate import run_migrations
from scorer.backends import BackendError, Score, load_backend
from scorer.backends.lexicon import LexiconBackend
from scorer.loop import LoopConfig, ScorerStats, run_scorer
from scorer.metrics import ScorerLagCollector, ScorerMetrics
from tests.integration.test_replay import count, nymn_irc_log, replay, settings_for

FAST = LoopConfig(batch_size=64, poll_interval_s=0.05, refresh_interval_s=0.2)


def score(url: str, backend: Any = None, **kw: Any) -> ScorerStats:
    kw.setdefault("until_idle", True)
    return asyncio.run(
        run_scorer(url, backend or load_backend("lexicon"), config=kw.pop("config", FAST), **kw)
    )


class Recording:
    """Wraps a backend: remembers every text it was asked to score; can fail on purpose."""

    def __init__(
        self,
        inner: Any = None,
        *,
        model: str | None = None,
        fail_on: Sequence[str] = (),
        nan_on: Sequence[str] = (),
        broken: bool = False,
    ) -> None:
        self.inner = inner or LexiconBackend()
        self.model = model or self.inner.model
        self.fail_on = set(fail_on)
        self.nan_on = set(nan_on)
        self.broken = broken
        self.seen: list[str] = []

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        self.seen += texts
        if self.broken:
            raise BackendError("model cannot run")
        bad = self.fail_on.intersection(texts)
        if bad:
            raise ValueError(f"cannot score {sorted(bad)}")
        out = self.inner.score(texts, channels)
        return [
            Score(math.nan, s.label, s.p_negative, s.p_neutral, s.p_positive, s.emotions, None)
            if t in self.nan_on
            else s
            for t, s in zip(texts, out, strict=True)
        ]


def add_channel(url: str, name: str = "testchan") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO chat.channels (name) VALUES (%s) "
            "ON CONFLICT (platform, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def insert(
    conn: psycopg.Connection[Any], channel: int, texts: Sequence[str], *, at: datetime | None = None
) -> None:
    base = at or datetime.now(UTC)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, text) VALUES (%s, %s, %s, %s)",
            [
                (base + timedelta(milliseconds=i), channel, f"id-{t}", t)
                for i, t in enumerate(texts)
            ],
        )


def scored_texts(url: str, model: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT m.text FROM chat.message_scores s JOIN chat.messages m USING "
            "(channel_id, message_id, sent_at) WHERE s.model = %s ORDER BY 1",
            (model,),
        ).fetchall()
    return [r[0] for r in rows]


def test_replayed_nymn_gets_one_score_per_message_and_minute_aggregates(
    db_url: str, tmp_path: Path
) -> None:
    replay(settings_for(db_url, tmp_path), db_url, [nymn_irc_log(tmp_path)])
    messages = count(db_url, "SELECT count(*) FROM chat.messages")
    assert messages >= 798
    backend = load_backend("lexicon")
    stats = score(db_url, backend)
    assert (stats.written, stats.attempted, stats.failed) == (messages, messages, 0)
    assert (
        count(
            db_url,
            "SELECT count(*) FROM (SELECT 1 FROM chat.messages m JOIN chat.message_scores s "
            "USING (channel_id, message_id, sent_at) WHERE s.model = %s "
            "GROUP BY channel_id, message_id, sent_at HAVING count(*) = 1) x",
            backend.model,
        )
        == messages
    )
    assert count(db_url, "SELECT count(*) FROM chat.message_scores") == messages
    # sentiment_1m is current without anyone else refreshing it.
    assert (
        count(db_url, "SELECT sum(scored) FROM chat.sentiment_1m WHERE model = %s", backend.model)
        == messages
    )
    assert count(db_url, "SELECT count(*) FROM chat.sentiment_1m") > 1
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0

    again = score(db_url, backend)
    assert (again.attempted, again.backend_messages, again.claims) == (0, 0, 0)


def test_a_new_model_backfills_every_old_message(db_url: str) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, [f"old message {i} PogChamp" for i in range(150)])
    first = score(db_url)
    other = Recording(model="lexicon@other")
    second = score(db_url, other)
    assert first.written == second.written == 150
    assert sorted(other.seen) == sorted(f"old message {i} PogChamp" for i in range(150))
    assert count(db_url, "SELECT count(DISTINCT model) FROM chat.message_scores") == 2


def test_rows_of_an_open_transaction_are_scored_after_it_commits(db_url: str) -> None:
    """The race a seq cursor loses: a settled row with a larger ingest_seq than an open one."""
    channel = add_channel(db_url)
    early = psycopg.connect(db_url)
    late = psycopg.connect(db_url)
    try:
        insert(early, channel, ["early-first"])  # `early` takes the older xid
        insert(late, channel, [f"late-{i}" for i in range(5)])  # smaller seqs, newer xid
        insert(early, channel, [f"early-{i}" for i in range(5)])  # larger seqs, older xid
        early.commit()
        rec = Recording()
        stats = score(db_url, rec)
        assert stats.written == 6
        max_scored_seq = count(
            db_url,
            "SELECT max(ingest_seq) FROM chat.messages JOIN chat.message_scores "
            "USING (channel_id, message_id, sent_at)",
        )
        late.commit()
        assert (
            count(
                db_url,
                "SELECT count(*) FROM chat.messages WHERE text LIKE 'late-%%' AND ingest_seq < %s",
                max_scored_seq,
            )
            == 5
        )
        stats = score(db_url, rec)
        assert stats.written == 5
        assert sorted(rec.seen) == sorted(
            ["early-first", *(f"early-{i}" for i in range(5)), *(f"late-{i}" for i in range(5))]
        )
    finally:
        early.close()
        late.close()


def test_committed_rows_behind_an_open_transaction_wait_for_it(db_url: str) -> None:
    channel = add_channel(db_url)
    holder = psycopg.connect(db_url)
    try:
        insert(holder, channel, ["held-0", "held-1"])  # older xid, still open
        with psycopg.connect(db_url, autocommit=True) as conn:
            insert(conn, channel, ["after-0", "after-1", "after-2"])  # committed, newer xid
        rec = Recording()
        result: list[ScorerStats] = []
        thread = threading.Thread(target=lambda: result.append(score(db_url, rec, until_idle=True)))
        thread.start()
        thread.join(0.8)
        assert thread.is_alive(), "until_idle must wait for committed rows it may not claim yet"
        assert rec.seen == []
        holder.commit()
        thread.join(10)
        assert not thread.is_alive()
        assert result[0].written == 5
    finally:
        holder.close()


def test_bad_input_gets_a_score(db_url: str) -> None:
    channel = add_channel(db_url)
    texts = [
        "",
        " ",
        "KEKW KEKW KEKW OMEGALUL 😂😂",
        "a" * 600,
        "LUL " * 200,
        "ok\x07\x1b[31mred\x1b[0m\ttab\r\nnewline\u200b\u202e",
        "Ελληνικά Русский עברית العربية हिन्दी 中文 日本語 한국어 ไทย ქართული 𝕳𝖊𝖑𝖑𝖔 🏳️‍🌈",
        "\ufffd\U0010ffff\ud7ff",
    ]
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, texts)
    stats = score(db_url)
    assert (stats.written, stats.failed) == (len(texts), 0)
    assert count(
        db_url, "SELECT count(*) FROM chat.message_scores WHERE sentiment BETWEEN -1 AND 1"
    ) == len(texts)


def test_messages_a_backend_cannot_score_are_recorded_not_retried(db_url: str) -> None:
    channel = add_channel(db_url)
    texts = [f"fine {i}" for i in range(60)] + ["boom-a", "boom-b", "nan-me"]
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, texts)
    rec = Recording(fail_on=["boom-a", "boom-b"], nan_on=["nan-me"])
    stats = score(db_url, rec)
    assert (stats.written, stats.failed) == (60, 3)
    with psycopg.connect(db_url) as conn:
        failures = conn.execute(
            "SELECT m.text, f.reason, f.detail FROM chat.scoring_failures f JOIN chat.messages m "
            "USING (channel_id, message_id, sent_at) ORDER BY 1"
        ).fetchall()
    assert [(t, r) for t, r, _ in failures] == [
        ("boom-a", "backend-error"),
        ("boom-b", "backend-error"),
        ("nan-me", "invalid-score"),
    ]
    assert "ValueError" in failures[0][2] and "sentiment is nan" in failures[2][2]
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0
    # Bisection re-scores each level once (n log n at worst), not one call per message per
    # failure.
    assert stats.backend_messages < 4 * len(texts)
    again = score(db_url, rec)
    assert (again.attempted, again.failed, again.backend_messages) == (0, 0, 0)


def test_a_broken_backend_stops_and_its_claim_is_adopted(db_url: str) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, [f"msg {i}" for i in range(10)])
    with pytest.raises(BackendError, match="every message"):
        score(db_url, Recording(broken=True))
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 1
    assert count(db_url, "SELECT count(*) FROM chat.scoring_failures") == 0
    stats = score(db_url)
    assert (stats.adopted, stats.written) == (1, 10)
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0


def test_a_claim_abandoned_too_often_is_recorded_as_failures(db_url: str) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, [f"msg {i}" for i in range(4)])
    for _ in range(3):  # the claim is taken and abandoned three times
        with pytest.raises(BackendError):
            score(db_url, Recording(broken=True))
    stats = score(db_url, config=LoopConfig(batch_size=64, poll_interval_s=0.05, max_attempts=3))
    assert (stats.adopted, stats.written, stats.failed) == (1, 0, 4)
    assert (
        count(db_url, "SELECT count(*) FROM chat.scoring_failures WHERE reason = 'worker-crash'")
        == 4
    )
    assert count(db_url, "SELECT count(*) FROM chat.scoring_claims") == 0


def test_lag_and_throughput_metrics(db_url: str) -> None:
    channel = add_channel(db_url)
    with psycopg.connect(db_url) as conn:
        insert(conn, channel, [f"msg {i}" for i in range(30)])
        conn.execute("UPDATE chat.messages SET received_at = now() - interval '90 seconds'")
    model = LexiconBackend().model
    lag = ScorerLagCollector(db_url, model)
    waited, pending = lag.read()
    assert 85 < waited < 600 and pending == 0
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry, url=db_url, model=model)
    score(db_url, metrics=metrics)
    assert (
        registry.get_sample_value("chatpulse_scorer_messages_scored_total", {"model": model}) == 30
    )
    assert registry.get_sample_value("chatpulse_scorer_lag_seconds", {"model": model}) == 0.0
    assert registry.get_sample_value("chatpulse_scorer_claims_pending", {"model": model}) == 0


def test_timescaledb_scores_old_messages_into_sentiment_1m(
    ts_empty_db_url: str, tmp_path: Path
) -> None:
    url = ts_empty_db_url
    asyncio.run(run_migrations(url, timescaledb="on"))
    replay(settings_for(url, tmp_path), url, [nymn_irc_log(tmp_path)])
    messages = count(url, "SELECT count(*) FROM chat.messages")
    stats = score(url)
    assert stats.written == messages
    # The #nymn sample is older than the 7-day policy window: the loop refreshed its range.
    assert count(url, "SELECT sum(scored) FROM chat.sentiment_1m") == messages
