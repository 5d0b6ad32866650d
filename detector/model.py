"""Burst and hype detection as pure functions over count series (no I/O, no clock).

The detector works on *hops* (``step_s`` seconds, 5 s by default) and judges sliding windows of
``span`` hops (10 s by default), so a spike is judged at most one hop after it happened.  For each
channel it sees, per hop: messages, chatters, and per emote the messages containing it and its
uses.  For every window it asks: how unusual is this count given *this channel's own* recent
past?

* **Baseline**: the trailing ``baseline_window_s`` (30 min) of the same channel, cut at the last
  offline gap (``offline_gap_s`` of silence starts a new session, so a stream start is not
  judged against yesterday's zeros).  Channel rates use the median (robust to earlier spikes);
  sparse emote counts use a mean shrunk toward a prior share of the channel's messages.
* **Threshold**: the negative-binomial upper tail ``P(X >= x)`` with the baseline as mean and
  a variance of at least ``mean + mean^2/k`` (chat is over-dispersed) or the window's robust
  (IQR) variance, whichever is larger.  The score is ``-log10`` of that tail, so it means the
  same in a 5-message and in a 5000-message chat: small channels count as much as big ones.
  A window must also pass a minimum count and a minimum ratio to the baseline.
* **Hype**: the crowd reacting — rate and distinct chatters significant together, chatters
  up by ``hype_min_chatter_ratio``, sudden against the onset window before; scored by log2 of
  the rate and chatter ratios (an emote burst adds at most ``hype_emote_weight``).
* **Events**: flagged windows closer than a merge gap (for hype also: with chat between them
  staying ``hype_sustain_ratio`` above the baseline) form one event with start, peak, end.

Everything a window's verdict depends on lies in the ``context_hops`` before it, so a live run
that sees the data in pieces and a history run that sees it at once give the same events
(:func:`detect` over any series that starts ``context_hops`` before ``from_hop``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

__all__ = [
    "BurstEvent",
    "ChannelSeries",
    "Detection",
    "DetectorConfig",
    "HypeEvent",
    "detect",
    "nb_tail_score",
    "series_from_counts",
]


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Every threshold of the detector; the defaults' reasoning is in the settings' docs."""

    step_s: int = 5
    span_hops: int = 2
    baseline_window_s: int = 1800
    offline_gap_s: int = 900
    min_history_s: int = 180
    dispersion: float = 4.0
    emote_threshold: float = 3.5
    emote_min_messages: int = 5
    emote_min_ratio: float = 3.0
    emote_prior_share: float = 0.05
    emote_prior_weight_s: int = 60
    emote_merge_gap_s: int = 10
    hype_threshold: float = 4.0
    hype_min_messages: int = 8
    hype_min_ratio: float = 2.0
    hype_min_chatter_ratio: float = 1.5
    hype_min_onset_ratio: float = 2.0
    hype_onset_window_s: int = 60
    hype_chatter_weight: float = 1.0
    hype_emote_weight: float = 0.25
    hype_merge_gap_s: int = 30
    hype_sustain_ratio: float = 1.5

    def hops(self, seconds: float) -> int:
        """``seconds`` in whole hops (at least 0)."""
        return max(0, round(seconds / self.step_s))

    @property
    def context_hops(self) -> int:
        """Hops before a window that its verdict may depend on (baseline + offline gap)."""
        return self.hops(self.baseline_window_s) + self.hops(self.offline_gap_s) + self.span_hops


@dataclass(slots=True)
class ChannelSeries:
    """One channel's per-hop counts from hop ``start`` (an absolute hop number) on.

    ``messages`` and ``chatters`` are dense (one entry per hop); ``emote_messages`` and
    ``emote_uses`` map an emote name to ``{absolute hop: count}`` (sparse).
    """

    start: int
    messages: list[int]
    chatters: list[int]
    emote_messages: dict[str, dict[int, int]] = field(default_factory=dict)
    emote_uses: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """The first hop after the series."""
        return self.start + len(self.messages)


@dataclass(frozen=True, slots=True)
class BurstEvent:
    """An emote burst; hops are absolute, ``end_hop`` exclusive."""

    emote: str
    start_hop: int
    peak_hop: int
    end_hop: int
    peak_messages: int
    peak_uses: int
    baseline_messages: float
    baseline_uses: float
    score: float
    total_uses: int
    open: bool


@dataclass(frozen=True, slots=True)
class HypeEvent:
    """A hype moment; ``peak_messages`` and ``baseline_messages`` are per window (span)."""

    start_hop: int
    peak_hop: int
    end_hop: int
    peak_messages: int
    baseline_messages: float
    score: float
    open: bool
    rate_ratio: float = 0.0
    chatter_ratio: float = 0.0
    peak_chatters: int = 0


@dataclass(slots=True)
class Detection:
    """What :func:`detect` found."""

    bursts: list[BurstEvent]
    hypes: list[HypeEvent]


def nb_tail_score(x: int, mean: float, var: float) -> float:
    """Return ``-log10 P(X >= x)`` for a negative binomial with this mean and variance.

    ``var <= mean`` means Poisson.  Counts at or below the mean score 0 (not unusual).
    """
    if x <= mean or x <= 0:
        return 0.0
    mean = max(mean, 1e-6)
    if var <= mean * (1 + 1e-9):
        log_pmf = x * math.log(mean) - mean - math.lgamma(x + 1)

        def ratio(k: int) -> float:
            return mean / (k + 1)
    else:
        p = mean / var
        r = mean * p / (1 - p)
        log_pmf = (
            math.lgamma(x + r)
            - math.lgamma(r)
            - math.lgamma(x + 1)
            + r * math.log(p)
            + x * math.log1p(-p)
        )
        q = 1 - p

        def ratio(k: int) -> float:
            return (k + r) / (k + 1) * q

    # Sum the tail from x upward relative to pmf(x); above the mode the terms shrink
    # geometrically, so the remainder is bounded by term * rho / (1 - rho).
    total, term, k = 1.0, 1.0, x
    for _ in range(100_000):
        rho = ratio(k)
        term *= rho
        total += term
        k += 1
        if rho < 1 and term * rho / (1 - rho) < 1e-9 * total:
            break
    return max(0.0, -(log_pmf + math.log(total)) / math.log(10))


def _windows(counts: Sequence[int], span: int) -> list[int]:
    """Sliding sums: entry i is the sum of counts[i-span+1 .. i] (fewer at the start)."""
    # Prefix differences run in C (accumulate, zip); this is the detector's innermost loop.
    prefix = [0, *accumulate(counts)]
    lagged = [0] * (span - 1) + prefix[: len(counts) + 1 - span]
    return [a - b for a, b in zip(prefix[1:], lagged, strict=False)]


class _SortedWindow:
    """``sorted(values[lo:hi])`` for bounds that only move forward, kept up to date by
    insertion and removal instead of sorting each window's baseline afresh."""

    __slots__ = ("_hi", "_lo", "_sorted", "_values")

    def __init__(self, values: Sequence[int]) -> None:
        self._values = values
        self._lo = self._hi = 0
        self._sorted: list[int] = []

    def get(self, lo: int, hi: int) -> list[int]:
        """The sorted slice; ``lo`` and ``hi`` must not decrease between calls."""
        lo = min(lo, hi)
        v, s = self._values, self._sorted
        if lo >= self._hi or (lo - self._lo) + (hi - self._hi) > hi - lo:
            self._sorted = s = sorted(v[lo:hi])
        else:
            for j in range(self._lo, lo):
                del s[bisect_left(s, v[j])]
            for j in range(self._hi, hi):
                insort(s, v[j])
        self._lo, self._hi = lo, hi
        return s


def _session_starts(messages: Sequence[int], gap: int) -> list[int]:
    """For each hop, the first hop of its session (after the last silence of >= gap hops)."""
    starts, current, zeros = [], 0, gap  # the series is treated as preceded by silence
    for i, c in enumerate(messages):
        if c > 0:
            if zeros >= gap:
                current = i
            zeros = 0
        else:
            zeros += 1
        starts.append(current)
    return starts


def _robust_var(values: Sequence[int]) -> float:
    return _sorted_robust_var(sorted(values))


def _sorted_robust_var(s: Sequence[int]) -> float:
    n = len(s)
    if n < 8:
        return 0.0
    iqr = s[(3 * n) // 4] - s[n // 4]
    return (iqr / 1.349) ** 2


def _merge(flags: Sequence[tuple[int, float]], gap: int) -> list[list[tuple[int, float]]]:
    """Group (index, score) pairs, sorted by index, whose neighbours are <= gap hops apart."""
    groups: list[list[tuple[int, float]]] = []
    for item in flags:
        if groups and item[0] - groups[-1][-1][0] <= gap + 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def detect(series: ChannelSeries, config: DetectorConfig, from_hop: int) -> Detection:
    """Detect bursts and hype moments whose first flagged window is at or after ``from_hop``.

    The caller passes a series that starts at least ``config.context_hops`` before
    ``from_hop`` (or at a silence: before the channel's first message), and makes sure no event
    is under way at ``from_hop`` (start there or at an event's start).  Hops after the series'
    end are unknown; an event whose last flag is within its merge gap of the end is ``open``.
    """
    span = config.span_hops
    n = len(series.messages)
    first = max(0, from_hop - series.start)
    if first >= n:
        return Detection([], [])
    window = config.hops(config.baseline_window_s)
    sessions = _session_starts(series.messages, config.hops(config.offline_gap_s))
    min_hist = config.hops(config.min_history_s)
    k = config.dispersion
    x_msg = _windows(series.messages, span)
    x_chat = _windows(series.chatters, span)
    msg_prefix = [0, *accumulate(series.messages)]

    # Baseline hops for window i: [lo, hi) with hi = i - span + 1 (the hops before the window).
    def bounds(i: int) -> tuple[int, int]:
        hi = i - span + 1
        lo = max(sessions[i], hi - window)
        return lo, max(lo, hi)

    # -- emote bursts ------------------------------------------------------------------------
    w0 = config.hops(config.emote_prior_weight_s)
    emote_flags: dict[int, float] = {}  # window -> best emote score (for hype)
    bursts: list[BurstEvent] = []
    recent_from = series.start + first - span + 1
    for emote, sparse in series.emote_messages.items():
        # Live passes judge a few windows: an emote too rare there to pass the minimum even
        # summed over all of them is skipped before any per-hop work.
        if sum(c for h, c in sparse.items() if h >= recent_from) < config.emote_min_messages:
            continue
        dense = [0] * n
        for hop, c in sparse.items():
            j = hop - series.start
            if 0 <= j < n:
                dense[j] = c
        x = _windows(dense, span)
        if max(x[first:], default=0) < config.emote_min_messages:
            continue  # can never pass the minimum: skip the rest
        uses_sparse = series.emote_uses.get(emote, {})
        uses = [0] * n
        for hop, c in uses_sparse.items():
            j = hop - series.start
            if 0 <= j < n:
                uses[j] = c
        prefix = [0, *accumulate(dense)]
        uprefix = [0, *accumulate(uses)]
        x_uses = _windows(uses, span)
        flagged: list[tuple[int, float]] = []
        info: dict[int, tuple[float, float]] = {}
        for i in range(first, n):
            xi = x[i]
            if xi < config.emote_min_messages:
                continue
            lo, hi = bounds(i)
            hist = hi - lo
            msgs_per_hop = (msg_prefix[hi] - msg_prefix[lo]) / hist if hist else x_msg[i] / span
            prior = config.emote_prior_share * msgs_per_hop
            mu = span * (prefix[hi] - prefix[lo] + prior * w0) / (hist + w0)
            if xi < config.emote_min_ratio * mu:
                continue
            # Poisson floor: an emote's count is sparse, its spread comes from the window.
            # Before min_history the window's spread means little: trust the prior alone.
            spread = _robust_var(x[lo + span - 1 : hi]) if hist >= min_hist else 0.0
            var = max(mu, spread)
            score = nb_tail_score(xi, mu, var)
            if score >= config.emote_threshold:
                flagged.append((i, score))
                mu_uses = span * (uprefix[hi] - uprefix[lo] + prior * w0) / (hist + w0)
                info[i] = (mu, mu_uses)
                emote_flags[i] = max(emote_flags.get(i, 0.0), score)
        for group in _merge(flagged, config.hops(config.emote_merge_gap_s)):
            peak_i, peak_score = max(group, key=lambda it: (it[1], -it[0]))
            start_i, last_i = group[0][0], group[-1][0]
            start_hop = start_i - span + 1
            bursts.append(
                BurstEvent(
                    emote=emote,
                    start_hop=series.start + start_hop,
                    peak_hop=series.start + peak_i,
                    end_hop=series.start + last_i + 1,
                    peak_messages=x[peak_i],
                    peak_uses=x_uses[peak_i],
                    baseline_messages=info[peak_i][0],
                    baseline_uses=info[peak_i][1],
                    score=max(s for _, s in group),
                    total_uses=sum(uses[max(0, start_hop) : last_i + 1]),
                    open=last_i + config.hops(config.emote_merge_gap_s) + 1 >= n,
                )
            )

    # -- hype moments ---------------------------------------------------------------------------
    # A window is flagged when the crowd reacts: the rate and the distinct chatters are both
    # significant against the channel's own baseline (s_msg + w_c * s_chat >= threshold) and
    # the chatters grew by at least hype_min_chatter_ratio (a few users spamming is an emote
    # burst, not hype).  Its *score* ranks by the crowd's reaction: log2 of the rate ratio plus
    # w_c * log2 of the chatter ratio, and an emote burst adds at most hype_emote_weight.
    hype_flags: list[tuple[int, float]] = []
    hype_info: dict[int, tuple[float, float, float]] = {}
    onsets: set[int] = set()
    sorted_msgs, sorted_chat = _SortedWindow(series.messages), _SortedWindow(series.chatters)
    sorted_xmsg, sorted_xchat = _SortedWindow(x_msg), _SortedWindow(x_chat)
    onset = config.hops(config.hype_onset_window_s)
    for i in range(first, n):
        xm = x_msg[i]
        if xm < config.hype_min_messages:
            continue
        lo, hi = bounds(i)
        if hi - lo < min_hist:
            continue  # a channel's first minutes: no baseline yet
        mu = span * _sorted_median(sorted_msgs.get(lo, hi))
        if xm < config.hype_min_ratio * max(mu, 1e-9):
            continue
        mu_c = span * _sorted_median(sorted_chat.get(lo, hi))
        chat_ratio = x_chat[i] / max(mu_c, 1.0)
        if chat_ratio < config.hype_min_chatter_ratio:
            continue
        # A reaction is sudden: an event must start with a window well above the onset window
        # before it (a slow drift of the audience is not a moment); later windows carry on.
        prev_lo = max(lo, hi - onset)
        sudden = hi <= prev_lo or xm >= config.hype_min_onset_ratio * max(
            span * (msg_prefix[hi] - msg_prefix[prev_lo]) / (hi - prev_lo), 1.0
        )
        var = max(mu + mu * mu / k, _sorted_robust_var(sorted_xmsg.get(lo + span - 1, hi)))
        s_msg = nb_tail_score(xm, mu, var)
        var_c = max(mu_c + mu_c * mu_c / k, _sorted_robust_var(sorted_xchat.get(lo + span - 1, hi)))
        s_chat = nb_tail_score(x_chat[i], mu_c, var_c)
        if s_msg + config.hype_chatter_weight * s_chat >= config.hype_threshold:
            rate_ratio = xm / max(mu, 1.0)
            emote_part = min(1.0, emote_flags.get(i, 0.0) / config.emote_threshold)
            score = (
                math.log2(rate_ratio)
                + config.hype_chatter_weight * math.log2(chat_ratio)
                + config.hype_emote_weight * emote_part
            )
            hype_flags.append((i, score))
            hype_info[i] = (mu, rate_ratio, chat_ratio)
            if sudden:
                onsets.add(i)

    # One event, one moment: flagged windows within the merge gap join, and so do groups
    # whose windows between stay at hype_sustain_ratio times the baseline or more (a lull
    # inside a reaction is not its end); an event lasts while chat stays that high.
    sorted_gap = _SortedWindow(series.messages)
    calm: dict[int, bool] = {}

    def first_calm(after: int) -> int:
        """The first window after ``after`` back near the baseline (``n``: none yet).  Called
        with non-decreasing ``after``, so windows are judged in order (one sorted window)."""
        j = after + 1
        while j < n:
            if j not in calm:
                lo, hi = bounds(j)
                mu = span * _sorted_median(sorted_gap.get(lo, hi))
                calm[j] = x_msg[j] < config.hype_sustain_ratio * max(mu, 1.0)
            if calm[j]:
                return j
            j += 1
        return n

    gap = config.hops(config.hype_merge_gap_s)
    groups: list[list[tuple[int, float]]] = []
    for group in _merge(hype_flags, gap):
        if groups and group[0][0] <= first_calm(groups[-1][-1][0]):
            groups[-1].extend(group)
        else:
            groups.append(group)
    hypes: list[HypeEvent] = []
    for group in groups:
        if not any(i in onsets for i, _ in group):
            continue  # a drift, never a sudden rise
        peak_i, peak_score = max(group, key=lambda it: (it[1], -it[0]))
        start_i, last_i = group[0][0], group[-1][0]
        calm_i = first_calm(last_i)
        hypes.append(
            HypeEvent(
                start_hop=series.start + start_i - span + 1,
                peak_hop=series.start + peak_i,
                end_hop=series.start + calm_i,
                peak_messages=x_msg[peak_i],
                baseline_messages=hype_info[peak_i][0],
                score=peak_score,
                open=last_i + gap + 1 >= n or calm_i >= n,
                rate_ratio=hype_info[peak_i][1],
                chatter_ratio=hype_info[peak_i][2],
                peak_chatters=x_chat[peak_i],
            )
        )
    bursts.sort(key=lambda b: (b.start_hop, b.emote))
    return Detection(bursts, hypes)


def _sorted_median(s: Sequence[int]) -> float:
    if not s:
        return 0.0
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else (s[m - 1] + s[m]) / 2


def series_from_counts(
    start: int,
    messages: Sequence[int],
    chatters: Sequence[int] | None = None,
    emotes: Mapping[str, Mapping[int, int]] | None = None,
) -> ChannelSeries:
    """Build a :class:`ChannelSeries` (emote uses = emote messages) — a helper for tests/bench."""
    em = {name: dict(v) for name, v in (emotes or {}).items()}
    return ChannelSeries(
        start=start,
        messages=list(messages),
        chatters=list(chatters if chatters is not None else messages),
        emote_messages=em,
        emote_uses={name: dict(v) for name, v in em.items()},
    )
