"""Pure functions (no I/O, no numpy): tokens, distinctive terms, class-based TF-IDF, fusion.

Distinctive terms follow Monroe, Colaresi and Quinn (2008), "Fightin' Words", section 3.5: the
log-odds ratio of a term in one window against the rest of the channel's chat, with an
informative Dirichlet prior taken from the channel's chat as a whole, divided by its standard
error (a z-score).  It needs no model and is robust for small counts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Term",
    "class_tfidf",
    "distinctive_terms",
    "rrf",
    "text_weight",
    "tokens",
]

_SPLIT = re.compile(r"\s+")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$", re.UNICODE)


def text_weight(count: int) -> float:
    """Weight of a distinct text sent ``count`` times in a window: 1 + ln(count).

    Chat repeats itself (one emote line hundreds of times); the repeats count, sub-linearly,
    so that a flood does not drown the few lines that say what is happening.
    """
    return 1.0 + math.log(max(count, 1))


def tokens(text: str, emotes: frozenset[str] = frozenset()) -> list[str]:
    """Distinct terms of one message, in order: emote names as they are, other words in lower
    case with punctuation trimmed from their ends; mentions, links and 1-letter words dropped."""
    seen: dict[str, None] = {}
    for raw in _SPLIT.split(text.strip()):
        if not raw or raw.startswith("@") or "://" in raw:
            continue
        if raw in emotes:
            seen.setdefault(raw, None)
            continue
        word = _EDGE.sub("", raw).lower()
        if len(word) < 2 or word.isdigit():
            continue
        seen.setdefault(word, None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class Term:
    term: str
    count: int
    zscore: float


def distinctive_terms(
    window: Mapping[str, int],
    background: Mapping[str, int],
    *,
    prior_weight: float = 500.0,
    top: int = 10,
    min_count: int = 2,
    min_z: float = 1.96,
) -> list[Term]:
    """Terms over-represented in ``window`` against ``background`` (which contains the window).

    ``prior_weight`` is α0, the prior's total pseudo-count (at most a tenth of the background's
    count, so that on little chat the prior does not drown the data); each term's α is α0 times
    its share of the background.  The comparison is window against background minus window.
    """
    n_bg = sum(background.values())
    prior_weight = min(prior_weight, n_bg / 10)
    n_i = sum(window.values())
    n_j = n_bg - n_i
    if n_i == 0 or n_j <= 0:
        return []
    out: list[Term] = []
    for term, y_i in window.items():
        if y_i < min_count:
            continue
        total = background.get(term, y_i)
        y_j = max(total - y_i, 0)
        alpha = prior_weight * total / n_bg
        a_i = n_i + prior_weight - y_i - alpha
        a_j = n_j + prior_weight - y_j - alpha
        if a_i <= 0 or a_j <= 0:
            continue
        delta = math.log((y_i + alpha) / a_i) - math.log((y_j + alpha) / a_j)
        variance = 1.0 / (y_i + alpha) + 1.0 / (y_j + alpha)
        z = delta / math.sqrt(variance)
        if z >= min_z:
            out.append(Term(term, y_i, z))
    out.sort(key=lambda t: (-t.zscore, t.term))
    return out[:top]


def class_tfidf(
    classes: Mapping[int, Mapping[str, float]], top: int = 8
) -> dict[int, list[tuple[str, float]]]:
    """Class-based TF-IDF (Grootendorst 2022, BERTopic): per class c and term t,
    ``tf(t, c) * log(1 + A / f(t))`` with ``tf`` the term's share of the class's counts, ``A``
    the average count per class and ``f(t)`` the term's count over all classes."""
    totals: Counter[str] = Counter()
    for counts in classes.values():
        totals.update(counts)
    if not classes:
        return {}
    average = sum(totals.values()) / len(classes)
    ranked: dict[int, list[tuple[str, float]]] = {}
    for c, counts in classes.items():
        size = sum(counts.values()) or 1.0
        scores = [
            (t, (n / size) * math.log(1.0 + average / totals[t])) for t, n in counts.items() if n
        ]
        scores.sort(key=lambda s: (-s[1], s[0]))
        ranked[c] = scores[:top]
    return ranked


def rrf(
    rankings: Sequence[Iterable[tuple[int, object]]], k: int = 60
) -> list[tuple[float, tuple[int, object]]]:
    """Reciprocal-rank fusion (Cormack et al. 2009): sum of 1/(k + rank) over the lists each
    key appears in (ranks from 1).  Returns (score, key) best first; ties by key order."""
    scores: dict[tuple[int, object], float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(((s, key) for key, s in scores.items()), key=lambda x: -x[0])
