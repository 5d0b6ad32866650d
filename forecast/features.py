"""Forecast features, labels, the time split and the evaluation: pure functions, no I/O.

The forecast works on the detector's hops (``step_s``, 5 s).  At the end of hop ``h`` — time
``(h + 1) * step_s``, when every message of hop ``h`` is in — it sees hops ``<= h`` only and
asks: will a hype moment *peak* in the next ``horizon_s`` seconds?  Its features describe the
recent past against the channel's own baseline (the median of the trailing
``baseline_window_s``, cut at the last offline gap and ending ``recent_s`` before ``h``, so the
rise being judged is not in its own baseline):

* rate: the last 10 s and the last 30 s against the baseline (log2 ratios);
* rate acceleration: the last 10 s against the 60 s before the last 30 s, the last hop against
  the one before;
* chatter surge: distinct chatters (``chat.chatter_key``) of the last 10 s against their
  baseline and against the 60 s before, and chatters per message (a crowd, not a few spammers);
* emote onset: messages with emotes in the last 10 s against their baseline; the top emote's
  share of the last 10 s;
* sentiment swing: the mean sentiment of the last 30 s minus the baseline's (0 when unscored);
* the channel's size (log2 of its baseline rate).

A hop's label is 1 when a detected moment's ``peak_at`` lies in ``[t, t + horizon_s)`` with
``t = (h + 1) * step_s``: a warning at ``t`` is ``peak_at - t`` seconds early.  Hops after a
moment's peak and before its end are *masked*: the moment is already here, so a warning there
is neither right nor wrong (not trained on, not counted).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from statistics import median

__all__ = [
    "FEATURE_NAMES",
    "Counts",
    "ForecastConfig",
    "ForecastScore",
    "Moment",
    "Split",
    "baseline_rule",
    "features",
    "labels",
    "score_warnings",
    "time_split",
]

FEATURE_NAMES = (
    "rate_10s",
    "rate_30s",
    "accel_10s_vs_60s",
    "accel_hop",
    "chatters_10s",
    "chatters_accel",
    "chatters_per_message",
    "emotes_10s",
    "top_emote_share",
    "sentiment_swing",
    "baseline_size",
)


@dataclass(frozen=True, slots=True)
class ForecastConfig:
    """The forecast's horizon and baseline (defaults match the detector's)."""

    step_s: int = 5
    horizon_s: int = 60
    baseline_window_s: int = 1800
    offline_gap_s: int = 900
    recent_s: int = 90
    min_history_s: int = 180
    threshold: float = 0.5
    min_moments: int = 5

    def hops(self, seconds: float) -> int:
        return max(0, round(seconds / self.step_s))


@dataclass(slots=True)
class Counts:
    """One channel's per-hop counts from absolute hop ``start`` on (dense lists).

    ``emote_messages``: messages with an emote (per emote, summed); ``top_emote``: the most
    used emote's messages; ``sentiment``: mean sentiment of the hop's scored messages (None:
    none scored).
    """

    start: int
    messages: list[int]
    chatters: list[int]
    emote_messages: list[int] = field(default_factory=list)
    top_emote: list[int] = field(default_factory=list)
    sentiment: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.messages)
        if len(self.chatters) != n:
            raise ValueError("chatters and messages differ in length")
        self.emote_messages = self.emote_messages or [0] * n
        self.top_emote = self.top_emote or [0] * n
        self.sentiment = self.sentiment or [None] * n
        if not len(self.emote_messages) == len(self.top_emote) == len(self.sentiment) == n:
            raise ValueError("every per-hop list must have one entry per hop")

    @property
    def end(self) -> int:
        return self.start + len(self.messages)


@dataclass(frozen=True, slots=True)
class Moment:
    """A detected hype moment in absolute hops (``end_hop`` exclusive)."""

    start_hop: int
    peak_hop: int
    end_hop: int


class _Sorted:
    """``sorted(values[lo:hi])`` for bounds that never move back."""

    def __init__(self, values: Sequence[int]) -> None:
        self._v, self._lo, self._hi, self.s = values, 0, 0, list[int]()

    def move(self, lo: int, hi: int) -> list[int]:
        lo = min(lo, hi)
        if lo >= self._hi:
            self.s = sorted(self._v[lo:hi])
        else:
            for j in range(self._lo, lo):
                del self.s[bisect_left(self.s, self._v[j])]
            for j in range(self._hi, hi):
                insort(self.s, self._v[j])
        self._lo, self._hi = lo, hi
        return self.s


def _median(s: Sequence[int]) -> float:
    if not s:
        return 0.0
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _lr(a: float, b: float) -> float:
    """log2 ratio with a +0.5 floor (a rate of zero is not minus infinity)."""
    return math.log2((a + 0.5) / (b + 0.5))


def _sessions(messages: Sequence[int], gap: int) -> list[int]:
    starts, current, zeros = [], 0, gap
    for i, c in enumerate(messages):
        if c > 0:
            if zeros >= gap:
                current = i
            zeros = 0
        else:
            zeros += 1
        starts.append(current)
    return starts


def features(counts: Counts, config: ForecastConfig) -> list[list[float] | None]:
    """One feature vector per hop of ``counts`` (None: not enough history to judge).

    Entry ``i`` uses ``counts`` hops ``<= i`` only: appending hops never changes it.
    """
    n = len(counts.messages)
    msgs, chat = counts.messages, counts.chatters
    emo, top, sent = counts.emote_messages, counts.top_emote, counts.sentiment
    pm = [0, *accumulate(msgs)]
    pc = [0, *accumulate(chat)]
    pe = [0, *accumulate(emo)]
    pt = [0, *accumulate(top)]
    ps = [0.0, *accumulate(s if s is not None else 0.0 for s in sent)]
    pn = [0, *accumulate(1 if s is not None else 0 for s in sent)]
    sessions = _sessions(msgs, config.hops(config.offline_gap_s))
    window, recent = config.hops(config.baseline_window_s), config.hops(config.recent_s)
    min_hist = config.hops(config.min_history_s)
    sm, sc = _Sorted(msgs), _Sorted(chat)

    def total(prefix: Sequence[float], lo: int, hi: int) -> float:
        lo, hi = max(lo, 0), max(hi, 0)
        return prefix[hi] - prefix[lo] if hi > lo else 0.0

    out: list[list[float] | None] = []
    for i in range(n):
        hi = i + 1 - recent
        lo = max(sessions[i], hi - window)
        if hi - lo < min_hist:
            out.append(None)
            continue
        base = _median(sm.move(lo, hi))
        base_c = _median(sc.move(lo, hi))
        base_e = total(pe, lo, hi) / (hi - lo)
        r10 = total(pm, i - 1, i + 1) / 2
        r30 = total(pm, i - 5, i + 1) / 6
        r_prev = total(pm, i - 17, i - 5) / 12
        c10 = total(pc, i - 1, i + 1) / 2
        c_prev = total(pc, i - 17, i - 5) / 12
        e10 = total(pe, i - 1, i + 1) / 2
        t10 = total(pt, i - 1, i + 1)
        n30, nb = total(pn, i - 5, i + 1), total(pn, lo, hi)
        swing = (
            total(ps, i - 5, i + 1) / n30 - total(ps, lo, hi) / nb if n30 >= 3 and nb >= 10 else 0.0
        )
        out.append(
            [
                _lr(r10, base),
                _lr(r30, base),
                _lr(r10, r_prev),
                _lr(msgs[i], msgs[i - 1] if i else 0),
                _lr(c10, base_c),
                _lr(c10, c_prev),
                c10 / max(r10, 0.5),
                _lr(e10, base_e),
                t10 / max(2 * r10, 1.0),
                swing,
                math.log2(base + 1.0),
            ]
        )
    return out


def labels(counts: Counts, moments: Sequence[Moment], config: ForecastConfig) -> list[int | None]:
    """Per hop: 1 when a moment peaks within the horizon after the hop's end, 0 when none
    does, None (masked) after a moment's peak and before its end."""
    n, start = len(counts.messages), counts.start
    horizon = config.hops(config.horizon_s)
    out: list[int | None] = [0] * n
    for m in moments:
        # Hop h ends at h + 1: the peak's hop is ahead by 0 .. horizon - 1 hops.
        for h in range(m.peak_hop - horizon, m.peak_hop):
            if 0 <= h - start < n and out[h - start] is not None:
                out[h - start] = 1
    for m in moments:
        for h in range(m.peak_hop, m.end_hop):
            if 0 <= h - start < n:
                out[h - start] = None
    return out


@dataclass(frozen=True, slots=True)
class Split:
    """A time split: train on hops ``[start, train_end)``, test on ``[test_start, end)``.

    Training hops are cut ``horizon`` before ``test_start`` (an embargo), so no training label
    looks at a test-period peak.
    """

    train_end: int
    test_start: int
    by: str  # "stream" or "time"


def time_split(counts: Counts, config: ForecastConfig, train_share: float = 0.6) -> Split:
    """Split at a stream start when the channel has several streams (the first stream that
    begins after ``train_share`` of the chat), else at ``train_share`` of the hops with chat.
    Never random: every training hop is before every test hop."""
    if not 0 < train_share < 1:
        raise ValueError("train_share must be between 0 and 1")
    msgs = counts.messages
    active = [i for i, c in enumerate(msgs) if c > 0]
    if not active:
        raise ValueError("no chat to split")
    cut = active[min(len(active) - 1, int(len(active) * train_share))]
    sessions = _sessions(msgs, config.hops(config.offline_gap_s))
    starts = sorted({sessions[i] for i in active})
    later = [s for s in starts if s >= cut and s > starts[0]]
    test_start, by = (later[0], "stream") if later else (cut, "time")
    horizon = config.hops(config.horizon_s)
    return Split(counts.start + test_start - horizon, counts.start + test_start, by)


@dataclass(frozen=True, slots=True)
class ForecastScore:
    """Warnings (runs of consecutive positive hops) against the moments of a period."""

    warnings: int
    true_warnings: int
    moments: int
    caught: int
    leads_s: tuple[float, ...]

    @property
    def precision(self) -> float:
        return self.true_warnings / self.warnings if self.warnings else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.moments if self.moments else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def lead_mean_s(self) -> float | None:
        return sum(self.leads_s) / len(self.leads_s) if self.leads_s else None

    @property
    def lead_median_s(self) -> float | None:
        return median(self.leads_s) if self.leads_s else None

    def as_dict(self) -> dict[str, float | int | None]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "precision": r(self.precision),
            "recall": r(self.recall),
            "f1": r(self.f1),
            "lead_s_mean": r(self.lead_mean_s),
            "lead_s_median": r(self.lead_median_s),
            "warnings": self.warnings,
            "true_warnings": self.true_warnings,
            "moments": self.moments,
            "caught": self.caught,
        }

    def __add__(self, other: ForecastScore) -> ForecastScore:
        return ForecastScore(
            self.warnings + other.warnings,
            self.true_warnings + other.true_warnings,
            self.moments + other.moments,
            self.caught + other.caught,
            self.leads_s + other.leads_s,
        )


def score_warnings(
    start: int,
    predicted: Sequence[bool],
    moments: Sequence[Moment],
    config: ForecastConfig,
    lo: int,
    hi: int,
) -> ForecastScore:
    """Score per-hop warnings (``predicted[i]`` for hop ``start + i``) over hops ``[lo, hi)``.

    A warning (a run of warned hops, masked hops skipped) is true when one of its hops is
    followed by a peak within the horizon.  A moment whose peak lies in ``(lo, hi]`` is caught
    when a hop warned before it within the horizon; its lead is ``peak_at`` minus the end of
    the first such hop.  Masked hops (inside a moment, after its peak) count for nothing.
    """
    step, horizon = config.step_s, config.hops(config.horizon_s)
    counts = Counts(start, [0] * len(predicted), [0] * len(predicted))
    lab = labels(counts, moments, config)
    warnings = true_warnings = 0
    in_run = run_true = False
    for h in range(max(lo, start), min(hi, start + len(predicted))):
        y = lab[h - start]
        if y is None:
            continue
        if predicted[h - start]:
            if not in_run:
                in_run, run_true = True, False
                warnings += 1
            if y == 1 and not run_true:
                run_true = True
                true_warnings += 1
        else:
            in_run = False
    caught, leads = 0, []
    period = [m for m in moments if lo < m.peak_hop <= hi]
    for m in period:
        warned = [
            h
            for h in range(m.peak_hop - horizon, m.peak_hop)
            if 0 <= h - start < len(predicted)
            and h >= lo
            and predicted[h - start]
            and lab[h - start] == 1
        ]
        if warned:
            caught += 1
            leads.append(float((m.peak_hop - (warned[0] + 1)) * step))
    return ForecastScore(warnings, true_warnings, len(period), caught, tuple(leads))


def baseline_rule(rows: Sequence[Sequence[float] | None], ratio: float = 1.5) -> list[bool]:
    """The trivial forecast: warn whenever the last 10 s run above ``ratio`` x the baseline."""
    limit = math.log2(ratio)
    return [r is not None and r[0] > limit for r in rows]
