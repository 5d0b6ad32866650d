"""Chat signatures and the distances between them, pure (no numpy).

A signature sums up a channel or one stream: pace (messages per minute), message length, mood,
emote share, the share of first-time chatters and of each audience segment, and the emote and
word distributions.  Two signatures are compared by

- ``emotes`` and ``words``: the Jensen-Shannon divergence (base 2, 0 = same mix, 1 = nothing in
  common) of their distributions;
- ``features``: the mean relative difference ``|a - b| / (|a| + |b|)`` of the numeric features
  (0 = same, 1 = as different as can be);
- ``audience``: the Jaccard index of their chatter keys (shared / either), a similarity;
- ``distance``: the mean of ``emotes``, ``words`` and ``features``, the one number to rank by.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.segments import SEGMENTS

__all__ = [
    "Comparison",
    "Signature",
    "compare",
    "jensen_shannon",
    "relative_difference",
    "words_of",
]

_WORD = re.compile(r"[^\W_][\w'’]*", re.UNICODE)


def words_of(text: str) -> list[str]:
    """The words of a message, lower case (emote names are words too)."""
    return [w.lower() for w in _WORD.findall(text)]


@dataclass(slots=True)
class Signature:
    name: str
    messages: int = 0
    minutes: float = 0.0
    avg_length: float = 0.0
    mood: float | None = None
    emote_share: float = 0.0
    first_time_share: float = 0.0
    segments: dict[str, float] = field(default_factory=dict)
    emotes: Counter[str] = field(default_factory=Counter)
    words: Counter[str] = field(default_factory=Counter)
    chatters: frozenset[str] = frozenset()

    @property
    def pace(self) -> float:
        return self.messages / self.minutes if self.minutes > 0 else 0.0

    def features(self) -> dict[str, float]:
        out = {
            "pace": self.pace,
            "avg_length": self.avg_length,
            "emote_share": self.emote_share,
            "first_time_share": self.first_time_share,
        }
        if self.mood is not None:
            out["mood"] = self.mood
        for seg in SEGMENTS:
            out[f"share {seg}"] = self.segments.get(seg, 0.0)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "messages": self.messages,
            "chatters": len(self.chatters),
            "minutes": round(self.minutes, 1),
            **{k: round(v, 4) for k, v in self.features().items()},
            "top_emotes": [e for e, _ in self.emotes.most_common(5)],
            "top_words": [w for w, _ in self.words.most_common(5)],
        }


def jensen_shannon(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence of two count maps (base 2, in [0, 1]); 0 when both are empty,
    1 when exactly one is."""
    sp, sq = sum(p.values()), sum(q.values())
    if sp <= 0 and sq <= 0:
        return 0.0
    if sp <= 0 or sq <= 0:
        return 1.0
    total = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / sp, q.get(key, 0) / sq
        m = (a + b) / 2
        if a > 0:
            total += a * math.log2(a / m) / 2
        if b > 0:
            total += b * math.log2(b / m) / 2
    return min(1.0, max(0.0, total))


def relative_difference(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Mean of ``|x - y| / (|x| + |y|)`` over the features both have (0 where both are 0)."""
    keys = [k for k in a if k in b]
    if not keys:
        return 0.0
    parts = [
        abs(a[k] - b[k]) / (abs(a[k]) + abs(b[k])) if (abs(a[k]) + abs(b[k])) > 0 else 0.0
        for k in keys
    ]
    return sum(parts) / len(parts)


@dataclass(frozen=True, slots=True)
class Comparison:
    a: str
    b: str
    emotes: float
    words: float
    features: float
    audience: float
    shared_chatters: int

    @property
    def distance(self) -> float:
        return (self.emotes + self.words + self.features) / 3

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "distance": round(self.distance, 4),
            "emotes_jsd": round(self.emotes, 4),
            "words_jsd": round(self.words, 4),
            "features": round(self.features, 4),
            "audience_jaccard": round(self.audience, 4),
            "shared_chatters": self.shared_chatters,
        }


def compare(a: Signature, b: Signature) -> Comparison:
    shared = len(a.chatters & b.chatters)
    either = len(a.chatters | b.chatters)
    return Comparison(
        a.name,
        b.name,
        jensen_shannon(a.emotes, b.emotes),
        jensen_shannon(a.words, b.words),
        relative_difference(a.features(), b.features()),
        shared / either if either else 0.0,
        shared,
    )


def count_words(texts: Iterable[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for text in texts:
        out.update(words_of(text))
    return out
