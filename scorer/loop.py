"""The scoring loop: claim unscored messages, score them in batches, write ``message_scores``.

Any number of workers (processes, hosts) may run this loop on one database at once.  Each
message gets exactly one score row per model; none is scored twice and none is skipped, also
when its transaction commits long after newer messages were scored (gap fill, spool replay,
a slow replay).  The protocol, and the race it avoids:

**Why not a cursor on ``ingest_seq``.**  ``chat.messages.ingest_seq`` comes from a sequence when a
row is *inserted*; the row becomes visible when its transaction *commits*.  Transaction A can take
seq 100 and commit after transaction B took seq 101 and committed; a worker that saw 101 and moved
a seq cursor past it would never see 100.  Even "only rows of finished transactions" is not
enough for a seq cursor: B may have an *older* xid than A (it started writing earlier) and still
take a *larger* seq, so a settled row can sit above an unsettled one.

**The settled prefix.**  Every row also records ``ingest_xid`` (``pg_current_xact_id()`` of its
inserting transaction).  In any snapshot, ``xmin = pg_snapshot_xmin(pg_current_snapshot())`` is the
oldest transaction still running: every transaction with an xid below it has finished, so its
rows are visible now (committed) or never will be (rolled back).  Ordered by
``(ingest_xid, ingest_seq)``, the rows with ``ingest_xid < xmin`` therefore form a prefix that only
ever grows at its end.  Each model keeps a cursor in that order (``chat.scorer_progress``), and a
worker only ever hands out rows that lie between the cursor and ``xmin``; rows of transactions
still in flight are invisible now and lie above the cursor forever, so they are picked up once they
commit.  Index: ``messages_ingest_xid_idx`` on ``(ingest_xid, ingest_seq)`` (sql/0005_scorer.sql).

**Claims.**  Claiming is one short transaction: lock the model's progress row
(``SELECT … FOR UPDATE``, which serialises claimers of one model for a few milliseconds), read the
next ``batch_size`` settled rows after the cursor, move the cursor to the last of them, insert a
``chat.scoring_claims`` row for the range ``(old cursor, new cursor]`` and take a *session*
advisory lock on it, then commit.  Scoring happens outside any transaction (no xid is held, so a
slow model does not hold back ``xmin`` for everybody).  The scores, any failure rows and the
deletion of the claim are then written in one transaction (``ON CONFLICT DO NOTHING`` on the
scores' unique key makes even a repeated write harmless), and the advisory lock is released
*after* that commit.

**Dead workers.**  A worker that dies (SIGKILL, crash, lost connection) loses its session and with
it the advisory lock; its claim row stays.  Before claiming new rows, a worker tries the advisory
lock of each claim of its model (``pg_try_advisory_lock``, no waiting) and, when it gets one,
re-reads the claim row: if the claim is still there it adopts it (``attempts + 1``) and scores the
rows of its range that have neither a score nor a failure yet; if the row is gone, the owner
finished between the two reads (it deletes before it unlocks) and the lock is dropped.  A claim
adopted more than ``max_attempts`` times (a message that kills the worker, e.g. a native crash)
has its remaining messages recorded as failures (``worker-crash``) instead of being retried
forever.  Caveats: a hung worker that keeps its connection keeps its claim; a network partition
frees it only when the server notices (TCP keepalive); session advisory locks need a direct
connection or session pooling (not PgBouncer's transaction mode).

**Bad input.**  A batch whose ``backend.score`` raises is bisected until each bad message is
alone; a message that still fails, or gets an invalid score (NaN, out of range), is written to
``chat.scoring_failures`` with its reason instead of a score row.  When a whole batch fails one by
one, a canary text is scored: if that fails too, the backend itself is broken and
:class:`~scorer.backends.BackendError` is raised (the worker stops; its claim is adopted later)
rather than marking good messages as failed.

**Costs.**  A write transaction that stays open (anywhere in the cluster: xids are cluster-wide)
holds ``xmin`` back, so rows committed after it started wait until it ends: scoring is delayed,
never lost; the lag metric shows it.  A row is settled only once ``xmin`` passes it, so a model
that starts on an existing database backfills every old message first (cursor starts at 0).

**Aggregates.**  On plain PostgreSQL the loop calls :func:`chatpulse.core.aggregates.refresh_pending`
every ``refresh_interval_s`` while it writes, at idle, and at exit (at most one worker refreshes at
a time; the others skip instead of waiting).  On TimescaleDB the refresh policies cover the last
7 days; scores of older messages get :func:`chatpulse.core.aggregates.refresh_range` for their range.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import class_row, scalar_row

from chatpulse.core.aggregates import backend_of, refresh_pending, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings
from chatpulse.core.waiting import wait_or_stop
from scorer.backends import EMOTIONS, BackendError, Score, ScoringBackend
from scorer.metrics import ScorerMetrics

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_PROGRESS_INTERVAL_S",
    "DEFAULT_REFRESH_INTERVAL_S",
    "LoopConfig",
    "ScorerStats",
    "loop_config",
    "run_scorer",
    "score_rows",
]

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_REFRESH_INTERVAL_S = 5.0
DEFAULT_PROGRESS_INTERVAL_S = 10.0
DEFAULT_MAX_ATTEMPTS = 3

#: Key space of the claims' session advisory locks (two-int form; key 2 is the claim id).
LOCK_NAMESPACE = int.from_bytes(hashlib.sha256(b"chatpulse.scorer.claim").digest()[:4], "big") - (
    1 << 31
)
_Q = load_queries("scorer")  # sql/queries/scorer.sql
#: TimescaleDB's refresh policies (sql/0003_aggregates.timescaledb.sql) cover the last 7 days;
#: older scores need an explicit refresh.  One hour of margin for the policy's schedule.
_POLICY_WINDOW = timedelta(days=7) - timedelta(hours=1)
#: Scored when a whole batch fails message by message, to tell a broken backend from bad input.
_CANARY = "ok"
_LABELS = frozenset({"negative", "neutral", "positive"})


@dataclass(frozen=True, slots=True)
class LoopConfig:
    """How the loop runs.  Build it from settings with :func:`loop_config`."""

    batch_size: int = 256
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    refresh_interval_s: float = DEFAULT_REFRESH_INTERVAL_S
    progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def loop_config(settings: Settings) -> LoopConfig:
    """The loop's settings."""
    return LoopConfig(
        batch_size=settings.scorer_batch_size,
        poll_interval_s=settings.scorer_poll_interval_s,
        refresh_interval_s=settings.scorer_refresh_interval_s,
        progress_interval_s=settings.scorer_progress_interval_s,
        max_attempts=settings.scorer_max_attempts,
    )


@dataclass(slots=True)
class ScorerStats:
    """What one :func:`run_scorer` call did.

    ``attempted`` score rows were sent to the database, ``written`` of them were new (the rest
    already existed: ``attempted - written`` is work that ``ON CONFLICT`` absorbed);
    ``backend_messages`` counts texts passed to ``backend.score`` (more than ``attempted`` only
    when batches were bisected).
    """

    model: str
    attempted: int = 0
    written: int = 0
    failed: int = 0
    claims: int = 0
    adopted: int = 0
    backend_messages: int = 0
    refreshes: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Score rows written per second of the run."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Row:
    """A message to score, at its place ``(xid, seq)`` in the cursor order."""

    xid: str
    seq: int
    sent_at: datetime
    channel_id: int
    message_id: str
    text: str
    channel: str


@dataclass(frozen=True, slots=True)
class _Cursor:
    """A place in the cursor order ``(ingest_xid, ingest_seq)``."""

    xid: str
    seq: int


@dataclass(frozen=True, slots=True)
class _Claim:
    """The range ``(lo, hi]`` of the cursor order that one worker scores."""

    id: int
    lo_xid: str
    lo_seq: int
    hi_xid: str
    hi_seq: int
    attempts: int
    rows: list[_Row] | None = None  # None: read the range (adopted claims)

    def bounds(self) -> dict[str, Any]:
        """The range as the parameters of ``unscored_rows``."""
        return {
            "lo_xid": self.lo_xid,
            "lo_seq": self.lo_seq,
            "hi_xid": self.hi_xid,
            "hi_seq": self.hi_seq,
        }


@dataclass(frozen=True, slots=True)
class _Failure:
    row: _Row
    reason: str
    detail: str


def _lock_key(claim_id: int) -> dict[str, int]:
    """The parameters of the claim's session advisory lock (two-int form)."""
    # The claim id folded into int4 (ids 2**32 apart never coexist).
    return {"namespace": LOCK_NAMESPACE, "key": (claim_id & 0xFFFFFFFF) - (1 << 31)}


def _invalid(score: Score) -> str | None:
    """Why ``score`` cannot be a ``message_scores`` row, or None when it can."""
    values = {
        "sentiment": score.sentiment,
        "p_negative": score.p_negative,
        "p_neutral": score.p_neutral,
        "p_positive": score.p_positive,
    }
    for name, value in values.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{name} is {value!r}"
    if not -1.0 <= score.sentiment <= 1.0:
        return f"sentiment {score.sentiment} outside -1..1"
    if score.label not in _LABELS:
        return f"label {score.label!r}"
    if score.toxicity is not None and not (
        math.isfinite(score.toxicity) and 0.0 <= score.toxicity <= 1.0
    ):
        return f"toxicity {score.toxicity!r} outside 0..1"
    for name in EMOTIONS:
        emotion = score.emotions.get(name)
        if emotion is not None and not math.isfinite(emotion):
            return f"{name} is {emotion!r}"
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


def _call(
    backend: ScoringBackend, rows: Sequence[_Row], counter: list[int]
) -> list[Score] | BaseException:
    counter[0] += len(rows)
    try:
        scores = backend.score([r.text for r in rows], [r.channel for r in rows])
    except Exception as exc:  # any backend failure is isolated by bisection
        return exc
    if len(scores) != len(rows):
        return BackendError(f"backend returned {len(scores)} scores for {len(rows)} texts")
    return scores


def score_rows(
    backend: ScoringBackend, rows: Sequence[_Row], counter: list[int] | None = None
) -> tuple[list[tuple[_Row, Score]], list[_Failure]]:
    """Score ``rows``; return (row, score) pairs and the rows that could not be scored.

    A failing batch is bisected so that only the messages that fail alone are failures.
    Raises :class:`BackendError` when every message of a batch of two or more fails alone and a
    canary text fails too (the backend, not the input, is broken).  ``counter[0]`` is increased
    by the number of texts passed to the backend.  Runs synchronously (call it in a thread).
    """
    calls = counter if counter is not None else [0]
    scored: list[tuple[_Row, Score]] = []
    failures: list[_Failure] = []

    def walk(part: Sequence[_Row]) -> None:
        result = _call(backend, part, calls)
        if isinstance(result, BaseException):
            if len(part) == 1:
                failures.append(_Failure(part[0], "backend-error", _describe(result)))
                return
            mid = len(part) // 2
            walk(part[:mid])
            walk(part[mid:])
            return
        for row, score in zip(part, result, strict=True):
            problem = _invalid(score)
            if problem is None:
                scored.append((row, score))
            else:
                failures.append(_Failure(row, "invalid-score", problem))

    walk(rows)
    backend_errors = [f for f in failures if f.reason == "backend-error"]
    if len(rows) >= 2 and len(backend_errors) == len(rows):
        canary = _call(backend, [_Row("0", 0, datetime.now(UTC), 0, "", _CANARY, "")], calls)
        if isinstance(canary, BaseException):
            raise BackendError(
                f"scoring backend fails on every message ({backend_errors[0].detail})"
            ) from canary
    return scored, failures


def _score_params(model: str, pairs: Sequence[tuple[_Row, Score]]) -> dict[str, Any]:
    """The parameters of ``insert_scores``: one array per column."""
    params: dict[str, Any] = {
        "model": model,
        "sent_at": [r.sent_at for r, _ in pairs],
        "channel_id": [r.channel_id for r, _ in pairs],
        "message_id": [r.message_id for r, _ in pairs],
        "sentiment": [s.sentiment for _, s in pairs],
        "label": [s.label for _, s in pairs],
        "p_negative": [s.p_negative for _, s in pairs],
        "p_neutral": [s.p_neutral for _, s in pairs],
        "p_positive": [s.p_positive for _, s in pairs],
    }
    params.update({e: [s.emotions.get(e) for _, s in pairs] for e in EMOTIONS})
    params["toxicity"] = [s.toxicity for _, s in pairs]
    return params


class _Worker:
    """One worker's connections and state; see the module docstring for the protocol."""

    def __init__(
        self,
        url: str,
        backend: ScoringBackend,
        config: LoopConfig,
        metrics: ScorerMetrics | None,
    ) -> None:
        self.url = url
        self.backend = backend
        self.model = backend.model
        self.config = config
        self.metrics = metrics
        self.stats = ScorerStats(model=self.model)
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.refresh_conn: psycopg.AsyncConnection[Any] | None = None  # plain PG, lazily
        self.database_kind = "postgres"  # or "timescaledb": what the schema was migrated for
        self.dirty = False  # scores written since the last refresh
        self.old_range: tuple[datetime, datetime] | None = None  # TimescaleDB: outside policies
        self.last_refresh = time.monotonic()

    @property
    def c(self) -> psycopg.AsyncConnection[Any]:
        assert self.conn is not None, "worker not started"
        return self.conn

    async def start(self) -> None:
        self.conn = await connect(self.url, autocommit=True)
        self.database_kind = await backend_of(self.conn)
        await self.c.execute(_Q["add_model"], {"model": self.model})

    async def close(self) -> None:
        if self.refresh_conn is not None:
            await self.refresh_conn.close()
        if self.conn is not None:
            await self.conn.close()  # also frees any advisory lock still held

    # -- claiming --------------------------------------------------------------------------

    async def adopt(self) -> _Claim | None:
        """Take over a claim whose owner is gone; None when there is none."""
        ids = await self.c.cursor(row_factory=scalar_row).execute(
            _Q["claim_ids"], {"model": self.model}
        )
        for claim_id in await ids.fetchall():
            locked = await self.c.cursor(row_factory=scalar_row).execute(
                _Q["try_lock_claim"], _lock_key(claim_id)
            )
            if not await locked.fetchone():
                continue  # its owner is alive
            # Re-read under the lock: the owner deletes the claim before it unlocks, so a
            # claim still here now is really abandoned.
            adopted = await self.c.cursor(row_factory=class_row(_Claim)).execute(
                _Q["adopt_claim"], {"worker": self.config.worker, "id": claim_id}
            )
            claim = await adopted.fetchone()
            if claim is None:
                await self._unlock(claim_id)
                continue
            log.warning(
                "adopting an abandoned claim",
                extra={"model": self.model, "claim": claim_id, "attempts": claim.attempts},
            )
            self.stats.adopted += 1
            if self.metrics:
                self.metrics.adopted.labels(self.model).inc()
            return claim
        return None

    async def claim(self) -> _Claim | None:
        """Hand out the next settled rows after the cursor to this worker; None if none."""
        conn = self.c
        async with conn.transaction():
            cur = await conn.cursor(row_factory=class_row(_Cursor)).execute(
                _Q["lock_cursor"], {"model": self.model}
            )
            lo = await cur.fetchone()
            assert lo is not None, "progress row created at start"
            # A fresh statement, so its snapshot (and xmin) is taken after the lock.
            settled = await conn.cursor(row_factory=class_row(_Row)).execute(
                _Q["settled_rows"],
                {"xid": lo.xid, "seq": lo.seq, "limit": self.config.batch_size},
            )
            rows = await settled.fetchall()
            if not rows:
                return None  # leaves the transaction: nothing written
            hi = rows[-1]
            await conn.execute(
                _Q["advance_cursor"], {"xid": hi.xid, "seq": hi.seq, "model": self.model}
            )
            inserted = await conn.cursor(row_factory=scalar_row).execute(
                _Q["insert_claim"],
                {
                    "model": self.model,
                    "lo_xid": lo.xid,
                    "lo_seq": lo.seq,
                    "hi_xid": hi.xid,
                    "hi_seq": hi.seq,
                    "messages": len(rows),
                    "worker": self.config.worker,
                },
            )
            claim_id = await inserted.fetchone()
            assert claim_id is not None
            # Locked before commit: nobody can see the claim yet, so this never waits, and
            # nobody can adopt it between the commit and the lock.
            await conn.execute(_Q["lock_claim"], _lock_key(claim_id))
        self.stats.claims += 1
        return _Claim(claim_id, lo.xid, lo.seq, hi.xid, hi.seq, 1, rows)

    async def _unlock(self, claim_id: int) -> None:
        await self.c.execute(_Q["unlock_claim"], _lock_key(claim_id))

    # -- scoring and writing ---------------------------------------------------------------

    async def _range_rows(self, claim: _Claim) -> list[_Row]:
        cur = await self.c.cursor(row_factory=class_row(_Row)).execute(
            _Q["unscored_rows"], {**claim.bounds(), "model": self.model}
        )
        return await cur.fetchall()

    async def process(self, claim: _Claim) -> None:
        """Score the claim's rows and write them with the claim's deletion; then unlock."""
        try:
            rows = claim.rows if claim.rows is not None else await self._range_rows(claim)
            if claim.attempts > self.config.max_attempts:
                scored: list[tuple[_Row, Score]] = []
                failures = [
                    _Failure(
                        r,
                        "worker-crash",
                        f"claim {claim.id} abandoned {claim.attempts - 1} times",
                    )
                    for r in rows
                ]
            else:
                counter = [0]
                started = time.monotonic()
                try:
                    scored, failures = await asyncio.to_thread(
                        score_rows, self.backend, rows, counter
                    )
                finally:
                    self.stats.backend_messages += counter[0]
                if self.metrics:
                    self.metrics.batch_seconds.labels(self.model).observe(
                        time.monotonic() - started
                    )
            await self._write(claim, scored, failures)
        finally:
            if not self.c.closed:
                await self._unlock(claim.id)

    async def _write(
        self, claim: _Claim, scored: list[tuple[_Row, Score]], failures: list[_Failure]
    ) -> None:
        try:
            written = await self._write_tx(claim, scored, failures)
        except (pg_errors.DataError, pg_errors.IntegrityError) as exc:
            # A value the database refuses: write row by row, so only that row fails.
            log.warning(
                "batch write refused; writing row by row",
                extra={"model": self.model, "claim": claim.id, "error": _describe(exc)},
            )
            written = await self._write_rows(claim, scored, failures)
        self.stats.attempted += len(scored)
        self.stats.written += written
        self.stats.failed += len(failures)
        if self.metrics:
            self.metrics.scored.labels(self.model).inc(written)
            self.metrics.duplicates.labels(self.model).inc(len(scored) - written)
            for failure in failures:
                self.metrics.failures.labels(self.model, failure.reason).inc()
        for failure in failures:
            log.warning(
                "message not scored",
                extra={
                    "model": self.model,
                    "message_id": failure.row.message_id,
                    "reason": failure.reason,
                    "detail": failure.detail,
                },
            )
        if written:
            self.dirty = True
            self._note_old(scored)

    async def _write_tx(
        self, claim: _Claim, scored: list[tuple[_Row, Score]], failures: list[_Failure]
    ) -> int:
        written = 0
        async with self.c.transaction():
            if scored:
                cur = await self.c.execute(_Q["insert_scores"], _score_params(self.model, scored))
                written = max(cur.rowcount, 0)
            await self._insert_failures(failures)
            await self._delete_claim(claim)
        return written

    async def _write_rows(
        self, claim: _Claim, scored: list[tuple[_Row, Score]], failures: list[_Failure]
    ) -> int:
        written = 0
        async with self.c.transaction():
            for row, score in scored:
                try:
                    async with self.c.transaction():  # a savepoint per row
                        cur = await self.c.execute(
                            _Q["insert_scores"], _score_params(self.model, [(row, score)])
                        )
                        written += max(cur.rowcount, 0)
                except (pg_errors.DataError, pg_errors.IntegrityError) as exc:
                    failures.append(_Failure(row, "write-error", _describe(exc)))
            await self._insert_failures(failures)
            await self._delete_claim(claim)
        scored[:] = [p for p in scored if p[0] not in {f.row for f in failures}]
        return written

    async def _insert_failures(self, failures: Sequence[_Failure]) -> None:
        if not failures:
            return
        async with self.c.cursor() as cur:
            await cur.executemany(
                _Q["insert_failure"],
                [
                    {
                        "sent_at": f.row.sent_at,
                        "channel_id": f.row.channel_id,
                        "message_id": f.row.message_id,
                        "model": self.model,
                        "reason": f.reason,
                        "detail": f.detail,
                    }
                    for f in failures
                ],
            )

    async def _delete_claim(self, claim: _Claim) -> None:
        cur = await self.c.execute(_Q["delete_claim"], {"id": claim.id})
        if cur.rowcount != 1:
            log.warning("claim vanished while held", extra={"claim": claim.id})

    # -- aggregates ------------------------------------------------------------------------

    def _note_old(self, scored: Sequence[tuple[_Row, Score]]) -> None:
        if self.database_kind != "timescaledb":
            return
        horizon = datetime.now(UTC) - _POLICY_WINDOW
        old = [r.sent_at for r, _ in scored if r.sent_at < horizon]
        if not old:
            return
        lo, hi = min(old), max(old)
        if self.old_range is not None:
            lo, hi = min(lo, self.old_range[0]), max(hi, self.old_range[1])
        self.old_range = (lo, hi)

    async def refresh(self, *, wait: bool) -> None:
        """Bring the aggregates up to date with what this worker wrote.

        ``wait=False``: skip when another worker is refreshing right now (plain PostgreSQL).
        """
        if not self.dirty and self.old_range is None:
            return
        self.last_refresh = time.monotonic()
        if self.database_kind == "timescaledb":
            if self.old_range is not None:
                lo, hi = self.old_range
                await refresh_range(self.c, lo, hi + timedelta(seconds=1))
                self.old_range = None
                self.stats.refreshes += 1
            self.dirty = False
            return
        if self.refresh_conn is None or self.refresh_conn.closed:
            self.refresh_conn = await connect(self.url)
        conn = self.refresh_conn
        if not wait:
            # The key chat.refresh_aggregates() takes, so that a worker can skip, not wait.
            locked = await conn.cursor(row_factory=scalar_row).execute(_Q["try_refresh_lock"])
            if not await locked.fetchone():
                await conn.rollback()
                return
        pieces = await refresh_pending(conn)  # commits, releasing the lock
        self.dirty = False
        self.stats.refreshes += 1
        log.debug("aggregates refreshed", extra={"pieces": pieces})

    async def backlog_visible(self) -> bool:
        """True when committed messages lie after the cursor (settled or not yet)."""
        cur = await self.c.cursor(row_factory=scalar_row).execute(
            _Q["backlog_visible"], {"model": self.model}
        )
        return bool(await cur.fetchone())


async def run_scorer(
    url: str,
    backend: ScoringBackend,
    *,
    config: LoopConfig | None = None,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
    metrics: ScorerMetrics | None = None,
) -> ScorerStats:
    """Score messages with ``backend`` until ``stop`` is set (or, ``until_idle``, none is left).

    "None left" means: no claim of this model can be adopted, and no committed message lies
    after the model's cursor (messages of transactions still open are not waited for; committed
    messages held back by an older open transaction are).  The batch in hand is always written
    before returning.  Raises :class:`~chatpulse.core.errors.DatabaseError` when the database
    cannot be reached, :class:`BackendError` when the backend is broken, ``psycopg.Error`` when
    the database fails mid-run (a claim in hand is then adopted by another worker).
    """
    config = config or LoopConfig()
    stop = stop or asyncio.Event()
    worker = _Worker(url, backend, config, metrics)
    started = time.monotonic()
    await worker.start()
    log.info(
        "scorer started",
        extra={"model": worker.model, "worker": config.worker, "batch_size": config.batch_size},
    )
    window_start, window_written = time.monotonic(), 0
    try:
        while not stop.is_set():
            claim = await worker.adopt() or await worker.claim()
            now = time.monotonic()
            if claim is not None:
                before = worker.stats.written
                await worker.process(claim)
                window_written += worker.stats.written - before
                if now - worker.last_refresh >= config.refresh_interval_s:
                    await worker.refresh(wait=False)
            else:
                await worker.refresh(wait=False)
                if until_idle and not await worker.backlog_visible():
                    break
                await wait_or_stop(stop, config.poll_interval_s)
            if now - window_start >= config.progress_interval_s:
                elapsed = now - window_start
                # Quiet when idle: a window that scored nothing is only worth a debug line.
                log.log(
                    logging.INFO if window_written else logging.DEBUG,
                    "scoring progress",
                    extra={
                        "model": worker.model,
                        "scored": worker.stats.written,
                        "rate": round(window_written / elapsed, 1),
                        "failed": worker.stats.failed,
                    },
                )
                window_start, window_written = now, 0
        await worker.refresh(wait=True)
    finally:
        await worker.close()
    worker.stats.seconds = time.monotonic() - started
    log.info(
        "scorer stopped",
        extra={
            "model": worker.model,
            "scored": worker.stats.written,
            "failed": worker.stats.failed,
            "claims": worker.stats.claims,
            "adopted": worker.stats.adopted,
            "rate": round(worker.stats.rate, 1),
        },
    )
    return worker.stats
