"""Realistic chat histories for tests and benchmarks, built from real lines (pure, seeded).

Real chat samples are short; :func:`retime` spreads real messages over a longer span with a
slowly varying rate (Poisson arrivals on a rate curve that wanders like a stream's audience),
keeping each message's user, text and emotes.  :func:`to_series` turns any timed messages into
the detector's per-hop counts; :func:`inject_burst` adds a burst of known size and time.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from detector.model import ChannelSeries

__all__ = ["SynthMessage", "inject_burst", "retime", "to_series"]


@dataclass(frozen=True, slots=True)
class SynthMessage:
    """A message at ``t`` seconds (epoch); ``emotes`` maps emote name to uses."""

    t: float
    user: str
    text: str
    emotes: tuple[tuple[str, int], ...] = ()


def retime(
    lines: Sequence[SynthMessage],
    *,
    start: float,
    duration_s: float,
    mean_rate: float,
    seed: int = 0,
    wander: float = 0.5,
) -> list[SynthMessage]:
    """Real lines re-timed over ``duration_s`` at about ``mean_rate`` messages per second.

    The rate follows ``mean_rate * exp(wander * w(t))`` where ``w`` is a sum of slow sines
    with random phases (periods 5 to 60 min), normalised, so the chat drifts between quieter
    and busier stretches as real streams do, without sudden spikes.
    """
    rng = random.Random(seed)
    periods = [300.0, 900.0, 1800.0, 3600.0]
    phases = [rng.uniform(0, 2 * math.pi) for _ in periods]

    def rate(t: float) -> float:
        w = sum(math.sin(2 * math.pi * t / p + ph) for p, ph in zip(periods, phases, strict=True))
        return mean_rate * math.exp(wander * w / 2 - wander * wander / 8)

    out: list[SynthMessage] = []
    peak = mean_rate * math.exp(wander * 2)
    t = 0.0
    i = rng.randrange(len(lines))
    while True:
        t += rng.expovariate(peak)  # thinning: candidates at the peak rate, kept by rate(t)
        if t >= duration_s:
            break
        if rng.random() * peak > rate(t):
            continue
        src = lines[i % len(lines)]
        i += 1 + (rng.random() < 0.1) * rng.randrange(len(lines))  # mostly in order, some jumps
        out.append(SynthMessage(start + t, src.user, src.text, src.emotes))
    return out


def inject_burst(
    messages: list[SynthMessage],
    *,
    at: float,
    duration_s: float,
    count: int,
    emote: str,
    seed: int = 0,
) -> list[SynthMessage]:
    """Return ``messages`` plus ``count`` messages using ``emote`` spread over the burst."""
    rng = random.Random(seed)
    extra = [
        SynthMessage(
            at + rng.uniform(0, duration_s), f"burst{k}", f"{emote} {emote}", ((emote, 2),)
        )
        for k in range(count)
    ]
    return sorted([*messages, *extra], key=lambda m: m.t)


def to_series(messages: Sequence[SynthMessage], step_s: int, start_hop: int) -> ChannelSeries:
    """Per-hop counts from hop ``start_hop`` to the last message (emote messages and uses)."""
    end_hop = max(int(m.t // step_s) for m in messages) + 1 if messages else start_hop
    n = max(0, end_hop - start_hop)
    counts = [0] * n
    users: list[set[str]] = [set() for _ in range(n)]
    em: dict[str, dict[int, int]] = defaultdict(dict)
    eu: dict[str, dict[int, int]] = defaultdict(dict)
    for m in messages:
        hop = int(m.t // step_s)
        j = hop - start_hop
        if not 0 <= j < n:
            continue
        counts[j] += 1
        users[j].add(m.user)
        for name, uses in m.emotes:
            em[name][hop] = em[name].get(hop, 0) + 1
            eu[name][hop] = eu[name].get(hop, 0) + uses
    return ChannelSeries(start_hop, counts, [len(u) for u in users], dict(em), dict(eu))
