"""The scorer's Prometheus metrics, declared once.

Each process makes one :class:`ScorerMetrics` on its registry (tests pass a fresh
``CollectorRegistry``).  Lag and pending claims are read from the database at scrape time by
:class:`ScorerLagCollector`, so they are right even while the loop is busy or stuck.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import NamedTuple

import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg.rows import class_row

from chatpulse.core.queries import load_queries

__all__ = ["ScorerLagCollector", "ScorerMetrics"]

log = logging.getLogger(__name__)

_Q = load_queries("scorer")  # sql/queries/scorer.sql


class _Lag(NamedTuple):
    lag_s: float | None  # None: nothing waits
    claims: int


class ScorerLagCollector(Collector):
    """Scrape-time gauges from the database for one model.

    ``chatpulse_scorer_lag_seconds{model}``: how long the oldest unscored message has waited
    (0 when none waits); ``chatpulse_scorer_claims_pending{model}``: claims being scored or
    abandoned.  A scrape that cannot reach the database yields neither (the scrape itself still
    succeeds, so the other metrics stay visible).
    """

    def __init__(self, url: str, model: str, *, timeout_s: float = 3.0) -> None:
        self._url = url
        self._model = model
        self._timeout_s = timeout_s

    def read(self) -> tuple[float, int]:
        """Return (lag seconds, pending claims); raises ``psycopg.Error``."""
        with psycopg.connect(
            self._url,
            connect_timeout=max(1, int(self._timeout_s)),
            application_name="chatpulse-scorer-metrics",
            options=f"-c statement_timeout={int(self._timeout_s * 1000)}",
        ) as conn:
            cur = conn.cursor(row_factory=class_row(_Lag))
            row = cur.execute(_Q["lag"], {"model": self._model}).fetchone()
        assert row is not None
        lag = max(0.0, float(row.lag_s)) if row.lag_s is not None else 0.0
        return lag, int(row.claims)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lag, pending = self.read()
        except psycopg.Error as exc:
            log.warning("scorer lag not measured", extra={"error": str(exc)})
            return
        gauge = GaugeMetricFamily(
            "chatpulse_scorer_lag_seconds",
            "Seconds the oldest unscored message has waited (0: caught up)",
            labels=["model"],
        )
        gauge.add_metric([self._model], lag)
        yield gauge
        claims = GaugeMetricFamily(
            "chatpulse_scorer_claims_pending",
            "Claimed message ranges not written yet (in progress or abandoned)",
            labels=["model"],
        )
        claims.add_metric([self._model], pending)
        yield claims


class ScorerMetrics:
    """Counters named ``chatpulse_scorer_*``: scorer lag and throughput (README, "Collecting chat").

    With ``url`` and ``model``, also registers a :class:`ScorerLagCollector`.
    """

    def __init__(
        self, registry: CollectorRegistry, *, url: str | None = None, model: str | None = None
    ) -> None:
        self.scored = Counter(
            "chatpulse_scorer_messages_scored",
            "Score rows newly written to chat.message_scores",
            ["model"],
            registry=registry,
        )
        self.duplicates = Counter(
            "chatpulse_scorer_duplicates",
            "Score rows that already existed (absorbed by ON CONFLICT)",
            ["model"],
            registry=registry,
        )
        self.failures = Counter(
            "chatpulse_scorer_failures",
            "Messages recorded in chat.scoring_failures instead of scored",
            ["model", "reason"],
            registry=registry,
        )
        self.adopted = Counter(
            "chatpulse_scorer_claims_adopted",
            "Claims taken over from a worker that died",
            ["model"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "chatpulse_scorer_batch_seconds",
            "Time the backend took to score one claimed batch",
            ["model"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        if url is not None and model is not None:
            registry.register(ScorerLagCollector(url, model))
