"""The forecast's database runner: ``chatpulse forecast`` and ``chatpulse eval forecast``.

Per channel with at least ``min_moments`` detected moments: train on the channel's whole
history up to where the detector has judged it (``chat.detector_state.processed_until``: a
moment peaking later is not known yet, so no hop whose horizon reaches past it is a training
row), retrain when the channel's moment count changes, and write one row per complete hop to
``chat.hype_forecasts``: from the hop after the last one written (at first: the last hour),
up to the last complete hop with chat.  SQL lives in ``sql/queries/forecast.sql``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from chatpulse.core.queries import load_queries
from chatpulse.core.waiting import wait_or_stop
from forecast.features import (
    Counts,
    ForecastConfig,
    ForecastScore,
    Moment,
    features,
    time_split,
)
from forecast.model import Evaluation, Model, evaluate_split, train

__all__ = [
    "ChannelEvaluation",
    "ForecastSummary",
    "Forecaster",
    "evaluate_channels",
    "load_counts",
    "load_moments",
    "run_forecast",
]

log = logging.getLogger(__name__)

_FIRST_LOOKBACK_S = 3600  # a channel's first forecast pass predicts its last hour of chat


_Q = load_queries("forecast")


def _hop(ts: datetime, step: int) -> int:
    return int(ts.timestamp() // step)


def _at(hop: int, step: int) -> datetime:
    return datetime.fromtimestamp(hop * step, UTC)


async def load_counts(
    conn: psycopg.AsyncConnection[Any], channel_id: int, lo: int, hi: int, step: int
) -> Counts:
    """The channel's per-hop counts over hops ``[lo, hi)``."""
    n = max(0, hi - lo)
    msgs, chat, emo, top = [0] * n, [0] * n, [0] * n, [0] * n
    sent: list[float | None] = [None] * n
    cur = await conn.execute(
        _Q["hops"], {"channel": channel_id, "lo": _at(lo, step), "hi": _at(hi, step), "step": step}
    )
    for hop, m, c, e, t, s in await cur.fetchall():
        i = int(hop) - lo
        if 0 <= i < n:
            msgs[i], chat[i], emo[i], top[i] = int(m), int(c), int(e), int(t)
            sent[i] = None if s is None else float(s)
    return Counts(lo, msgs, chat, emo, top, sent)


async def load_moments(
    conn: psycopg.AsyncConnection[Any], channel_id: int, step: int
) -> list[Moment]:
    cur = await conn.execute(_Q["moments"], {"channel": channel_id})
    return [
        Moment(_hop(s, step), _hop(p, step), max(_hop(e, step), _hop(p, step) + 1))
        for s, p, e in await cur.fetchall()
    ]


@dataclass(slots=True)
class _Extent:
    first: datetime | None
    last: datetime | None
    processed: datetime | None
    forecast_until: datetime | None
    now: datetime


async def _extent(conn: psycopg.AsyncConnection[Any], channel_id: int) -> _Extent:
    cur = await conn.execute(_Q["extent"], {"channel": channel_id})
    row = await cur.fetchone()
    assert row is not None
    return _Extent(*row)


async def _channels(
    conn: psycopg.AsyncConnection[Any], channel: str | None
) -> list[tuple[int, str]]:
    cur = await conn.execute(_Q["channels"], {"channel": channel})
    return [(int(i), str(n)) for i, n in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class ChannelEvaluation:
    """One channel's time-split evaluation, or why there is none (``skipped``)."""

    channel: str
    evaluation: Evaluation | None = None
    skipped: str | None = None

    def as_dict(self, step: int) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel}
        if self.evaluation is None:
            out["skipped"] = self.skipped
            return out
        ev = self.evaluation
        out.update(ev.forecast.as_dict())
        out["split_by"] = ev.split.by
        out["train_until"] = _at(ev.split.train_end, step).isoformat()
        out["test_from"] = _at(ev.split.test_start, step).isoformat()
        out["train_moments"] = ev.model.trained_moments
        out["baseline"] = ev.baseline.as_dict()
        return out


async def evaluate_channels(
    conn: psycopg.AsyncConnection[Any], config: ForecastConfig, channel: str | None = None
) -> list[ChannelEvaluation]:
    """Time-split evaluation of every channel (or one): train on its earlier streams (or
    hours), test on the later ones.  Needs scikit-learn."""
    step = config.step_s
    out = []
    found = await _channels(conn, channel)
    if channel is not None and not found:
        out.append(ChannelEvaluation(channel.lower(), skipped="no such channel"))
    for cid, name in found:
        ext = await _extent(conn, cid)
        if ext.first is None or ext.last is None:
            out.append(ChannelEvaluation(name, skipped="no chat"))
            continue
        end = _hop(ext.last, step) + 1
        if ext.processed is not None:
            end = min(end, _hop(ext.processed, step))
        counts = await load_counts(conn, cid, _hop(ext.first, step), end, step)
        moments = await load_moments(conn, cid, step)
        if not any(counts.messages):
            out.append(ChannelEvaluation(name, skipped="no chat the detector has judged"))
            continue
        split = time_split(counts, config)
        before = sum(1 for m in moments if m.peak_hop < split.train_end)
        after = sum(1 for m in moments if m.peak_hop > split.test_start)
        if before < config.min_moments or after == 0:
            out.append(
                ChannelEvaluation(
                    name,
                    skipped=f"{before} moments to train on (needs {config.min_moments}) and "
                    f"{after} to test on (needs 1)",
                )
            )
            continue
        try:
            ev = evaluate_split(counts, moments, config, split)
        except ValueError as exc:
            out.append(ChannelEvaluation(name, skipped=str(exc)))
            continue
        out.append(ChannelEvaluation(name, ev))
    return out


def pooled(results: list[ChannelEvaluation]) -> tuple[ForecastScore, ForecastScore] | None:
    """The forecast's and the baseline's scores summed over the evaluated channels."""
    evs = [r.evaluation for r in results if r.evaluation is not None]
    if not evs:
        return None
    fc, bl = evs[0].forecast, evs[0].baseline
    for ev in evs[1:]:
        fc, bl = fc + ev.forecast, bl + ev.baseline
    return fc, bl


@dataclass(slots=True)
class ForecastSummary:
    passes: int = 0
    channels: int = 0
    trained: int = 0
    written: int = 0


@dataclass(slots=True)
class _Trained:
    model: Model
    moments: int
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Forecaster:
    """Keeps each channel's model between passes; retrains when its moment count changes."""

    def __init__(self, config: ForecastConfig) -> None:
        self.config = config
        self._models: dict[int, _Trained] = {}

    async def forecast_pass(self, conn: psycopg.AsyncConnection[Any]) -> ForecastSummary:
        summary = ForecastSummary(passes=1)
        for cid, name in await _channels(conn, None):
            try:
                written, trained = await self._channel(conn, cid)
            except ValueError as exc:
                log.info("forecast: channel not trained", extra={"channel": name, "why": str(exc)})
                await conn.rollback()
                continue
            await conn.commit()
            summary.channels += written > 0
            summary.trained += trained
            summary.written += written
        return summary

    async def _channel(self, conn: psycopg.AsyncConnection[Any], cid: int) -> tuple[int, bool]:
        cfg, step = self.config, self.config.step_s
        ext = await _extent(conn, cid)
        if ext.first is None or ext.last is None or ext.processed is None:
            return 0, False
        moments = await load_moments(conn, cid, step)
        if len(moments) < cfg.min_moments:
            return 0, False
        first = _hop(ext.first, step)
        processed = _hop(ext.processed, step)
        trained = False
        known = self._models.get(cid)
        if known is None or known.moments != len(moments):
            counts = await load_counts(conn, cid, first, processed, step)
            model = await asyncio.to_thread(train, counts, moments, cfg, processed)
            known = self._models[cid] = _Trained(model, len(moments))
            trained = True
        end = min(int(ext.now.timestamp() // step), _hop(ext.last, step) + 1)
        if ext.forecast_until is not None:
            start = _hop(ext.forecast_until, step)  # `at` is a hop's end: the next hop
        else:
            start = max(first, end - cfg.hops(_FIRST_LOOKBACK_S))
        if start >= end:
            return 0, trained
        context = cfg.hops(cfg.baseline_window_s + cfg.offline_gap_s + cfg.recent_s) + 1
        counts = await load_counts(conn, cid, start - context, end, step)
        rows = features(counts, cfg)[start - counts.start :]
        probs = known.model.probabilities(rows)
        ats, ps = [], []
        for i, p in enumerate(probs):
            if p is not None:
                ats.append(_at(start + i + 1, step))
                ps.append(p)
        if not ats:
            return 0, trained
        cur = await conn.execute(
            _Q["write"],
            {
                "channel": cid,
                "threshold": known.model.threshold,
                "horizon": cfg.horizon_s,
                "moments": known.model.trained_moments,
                "trained_at": known.at,
                "at": ats,
                "p": ps,
            },
        )
        return cur.rowcount, trained


async def run_forecast(
    conninfo: str,
    config: ForecastConfig,
    *,
    poll_interval_s: float = 5.0,
    until_idle: bool = False,
    stop: asyncio.Event | None = None,
) -> ForecastSummary:
    """Run passes every ``poll_interval_s`` until ``stop`` is set, or (``until_idle``) until a
    pass writes nothing."""
    from chatpulse.core.db import connect

    forecaster = Forecaster(config)
    total = ForecastSummary()
    conn = await connect(conninfo)
    try:
        while True:
            started = time.perf_counter()
            got = await forecaster.forecast_pass(conn)
            total.passes += 1
            total.trained += got.trained
            total.written += got.written
            total.channels = max(total.channels, got.channels)
            if got.written or got.trained:
                log.info(
                    "forecast pass",
                    extra={
                        "channels": got.channels,
                        "trained": got.trained,
                        "written": got.written,
                        "seconds": round(time.perf_counter() - started, 3),
                    },
                )
            if until_idle and got.written == 0:
                return total
            if stop is not None and stop.is_set():
                return total
            if until_idle:
                continue
            if stop is None:
                await asyncio.sleep(poll_interval_s)
            elif await wait_or_stop(stop, poll_interval_s):
                return total
    finally:
        await conn.close()
