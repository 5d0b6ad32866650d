"""Sentiment and emotions: VADER's rules over a message's units, and the probabilities."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType

from scorer.backends.base import EMOTIONS, Label
from scorer.backends.lexicon import model
from scorer.backends.lexicon.model import (
    _BUT,
    _C_INCR,
    _CAPS_MIX,
    _CLAP_KEYS,
    _EMOTION_EMPHASIS,
    _ESTIMATED_INDEX,
    _LAUGHTER,
    _N_SCALAR,
    _NO_EMOTIONS,
    _SARCASM,
    _SPECIAL,
    ESTIMATED_EMOTIONS,
    NEUTRAL_BAND,
    _Entry,
    _Unit,
)
from scorer.backends.lexicon.tokens import _elongate, _unit

# Slope K of the compound -> probability softmax.  K = 10 minimised the mean log-loss of the
# true label's probability on tests/fixtures/labelled-chat/chat_sentiment.csv (0.39 nats; tried
# K = 2, 3, 4, 5, 6, 8, 10, 12, 15, 20) with the neutral band fixed.  A small, self-written set:
# refit when a larger labelled set exists.  See compound_to_probabilities.
_PROB_SLOPE = 10.0

# VADER's normalisation constant ("alpha approximates the max expected value").
_ALPHA = 15.0

# Keep |sentiment| strictly below 1 even where float rounding of x / sqrt(x^2 + alpha) would not.
_MAX_COMPOUND = 0.9999
_SARCASM_POSITIVE = -0.5
_SARCASM_NEGATIVE = 0.5

# A clap after these is celebration ("EZ Clap", "GG Clap"), after other praise it is sarcasm.
_CELEBRATION = frozenset({"gg", "ggs", "ggwp", "wp", "ez", "ezpz", "w", "dub", "lets go"})

# Mocking laughter: laughter in a message that also carries a put-down this negative or worse
# ("what a joke LUL", "SO BAD OMEGALUL") laughs *at* something: it reads as contempt, not joy.
_MOCK_JUDGEMENT = -1.5
_MOCK_SCALE = -0.5  # the laughter's valence times this


def _modified_valence(units: list[_Unit], i: int, cap_diff: bool) -> float:
    """VADER's ``sentiment_valence`` for item ``i`` (whose valence is not None)."""
    unit = units[i]
    base = unit.valence
    assert base is not None
    value = base
    n = len(units)
    if unit.key == "no" and i + 1 < n and units[i + 1].valence is not None:
        value = 0.0  # "no" negates the next item instead of being negative itself
    if (
        (i > 0 and units[i - 1].key == "no")
        or (i > 1 and units[i - 2].key == "no")
        or (i > 2 and units[i - 3].key == "no" and units[i - 1].key in ("or", "nor"))
    ):
        value = base * _N_SCALAR
    if unit.emphasis and cap_diff:
        value += _C_INCR if value > 0 else -_C_INCR
    if unit.elongated:
        value = _elongate(value) or 0.0
    for start in range(3):
        if i <= start:
            break
        before = units[i - start - 1]
        if before.valence is not None:
            continue  # VADER: only words outside the lexicon modify their neighbours
        scalar = before.booster
        if scalar:
            if value < 0:
                scalar = -scalar
            if before.upper and cap_diff:
                scalar += _C_INCR if value > 0 else -_C_INCR
            value += scalar * (1.0, 0.95, 0.9)[start]
        value = _negation(units, i, start, value)
    if (
        i > 0
        and units[i - 1].valence is None
        and units[i - 1].key == "least"
        and (i == 1 or units[i - 2].key not in ("at", "very"))
    ):
        value *= _N_SCALAR  # "least good" flips; "at least good" and "very least" do not
    return value


def _negation(units: list[_Unit], i: int, start: int, value: float) -> float:
    """VADER's ``_negation_check`` for the word ``start + 1`` places before item ``i``."""
    if start == 0:
        return value * _N_SCALAR if units[i - 1].negator else value
    if start == 1:
        two, one = units[i - 2].key, units[i - 1].key
        if two == "never" and one in ("so", "this"):
            return value * 1.25
        if two == "without" and one == "doubt":
            return value
        return value * _N_SCALAR if units[i - 2].negator else value
    three, two, one = units[i - 3].key, units[i - 2].key, units[i - 1].key
    if (three == "never" and two in ("so", "this")) or one in ("so", "this"):
        return value * 1.25
    if three == "without" and (two == "doubt" or one == "doubt"):
        return value
    return value * _N_SCALAR if units[i - 3].negator else value


def _punctuation_emphasis(text: str) -> float:
    # VADER's _amplify_ep / _amplify_qm: up to four "!" add 0.292 each; two or three "?" add
    # 0.18 each, more add 0.96.
    bangs = min(text.count("!"), 4) * 0.292
    questions = text.count("?")
    if questions <= 1:
        return bangs
    return bangs + (questions * 0.18 if questions <= 3 else 0.96)


def _analyse(units: list[_Unit], flags: int, text: str) -> tuple[float, tuple[float, ...]]:
    """Return (compound, emotion intensities in ESTIMATED_EMOTIONS order) for one message."""
    cap_diff = flags & _CAPS_MIX == _CAPS_MIX  # VADER's allcap_differential, over words only
    evidence = [0.0] * len(EMOTIONS)
    seen: dict[str, int] = {}
    any_emotion = False
    total = 0.0
    mocking = bool(flags & _LAUGHTER) and any(
        u.valence is not None and u.valence <= _MOCK_JUDGEMENT and not u.laugh for u in units
    )
    if not flags & (_SPECIAL | _SARCASM) and not cap_diff and not mocking:
        # Fast path: no neighbour rule can fire, so each item counts as its own value.
        for unit in [unit for unit in units if unit.valence is not None]:
            value = unit.value
            assert value is not None  # (a valence gives a value)
            key = unit.key
            repeat = seen[key] = seen.get(key, 0) + 1
            total += value / repeat
            if unit.evidence:
                any_emotion = True
                for index, amount in unit.evidence:
                    evidence[index] += amount / repeat
    else:
        total, any_emotion = _analyse_rules(
            units, cap_diff, bool(flags & _SARCASM), mocking, bool(flags & _BUT), seen, evidence
        )
    if total:
        emphasis = _punctuation_emphasis(text)
        total += emphasis if total > 0 else -emphasis
    compound = total / math.sqrt(total * total + _ALPHA)
    compound = max(-_MAX_COMPOUND, min(_MAX_COMPOUND, compound))
    if not any_emotion:
        return compound, _NO_EMOTIONS
    return compound, tuple([1.0 - math.exp(-evidence[i]) for i in _ESTIMATED_INDEX])


def _analyse_rules(
    units: list[_Unit],
    cap_diff: bool,
    sarcasm: bool,
    mocking: bool,
    but: bool,
    seen: dict[str, int],
    evidence: list[float],
) -> tuple[float, bool]:
    """The full rule pass; returns (sum of valences, whether any emotion evidence was added).

    ``mocking``: the message laughs and holds a put-down; it is mockery when the put-down is
    still one after negation ("SO BAD OMEGALUL", not "not bad LUL"), and then its laughter
    counts as contempt (``_MOCK_SCALE``), without joy.  ``but``: a unit may be a "but".
    """
    # Each sentiment item with its value after the neighbour rules (the other units only count
    # as neighbours, and as a 0.0 in the sum, below).
    items: list[tuple[_Unit, float]] = []
    for i in [i for i, unit in enumerate(units) if unit.valence is not None]:
        unit = units[i]
        value = unit.valence
        assert value is not None
        if (
            unit.key == "no"
            or (i > 0 and units[i - 1].special)
            or (i > 1 and units[i - 2].special)
            or (i > 2 and units[i - 3].special)
        ):
            items.append((unit, _modified_valence(units, i, cap_diff)))
        else:
            # No rule word, booster or negator within three items before: only the item's own
            # emphasis applies (what _modified_valence computes in this case).
            if unit.emphasis and cap_diff:
                value += _C_INCR if value > 0 else -_C_INCR
            if unit.elongated:
                value = _elongate(value) or 0.0
            items.append((unit, value))
    before_but = -1  # how many sentiment items precede the first "but"
    if but:
        for i, unit in enumerate(units):
            if unit.key == "but" and unit.valence is None:
                before_but = sum(1 for before in units[:i] if before.valence is not None)
                break
    plain = len(items) < len(units)  # a non-sentiment item is there (its 0.0 joins the sum)
    if mocking:
        mocking = any(v <= _MOCK_JUDGEMENT and not u.laugh for u, v in items)
    sentiments: list[float] = []
    any_emotion = False
    for unit, value in items:
        base = unit.valence
        assert base is not None
        if mocking and unit.laugh:
            value = abs(value) * _MOCK_SCALE
        repeat = seen[unit.key] = seen.get(unit.key, 0) + 1
        if sarcasm and not unit.sarcasm:
            value *= _SARCASM_POSITIVE if value > 0 else _SARCASM_NEGATIVE
        sentiments.append(value / repeat)
        # Emotions count unless negation or sarcasm turned the item around ("not happy").
        if unit.evidence and (base == 0 or value * base > 0 or unit.sarcasm):
            any_emotion = True
            plain_value = unit.value or 0.0
            scale = _EMOTION_EMPHASIS if abs(value) > abs(plain_value) + 1e-9 else 1.0
            for index, amount in unit.evidence:
                evidence[index] += amount * scale / repeat
    if before_but >= 0:
        # VADER's "but" rule: what follows the contrast dominates.
        sentiments = [v * 0.5 for v in sentiments[:before_but]] + [
            v * 1.5 for v in sentiments[before_but:]
        ]
    if plain:
        sentiments.append(0.0)  # (the sum is exact: only the sign of a zero sum can depend on it)
    return math.fsum(sentiments), any_emotion


def compound_to_probabilities(compound: float) -> tuple[float, float, float]:
    """Map a compound score in -1..1 to ``(p_negative, p_neutral, p_positive)``, summing to 1.

    A three-way softmax over the logits ``K * (-c - b)``, ``0`` and ``K * (c - b)`` with
    ``b = NEUTRAL_BAND`` and slope ``K`` (``_PROB_SLOPE``, fitted on the labelled chat set): the
    most probable class changes exactly at ``|c| = NEUTRAL_BAND``, so the label agrees with
    VADER's recommended thresholds, and the probabilities move smoothly with the compound rather
    than jumping to 0/1.
    """
    z_positive = _PROB_SLOPE * (compound - NEUTRAL_BAND)
    z_negative = _PROB_SLOPE * (-compound - NEUTRAL_BAND)
    top = max(z_positive, z_negative, 0.0)
    e_pos = math.exp(z_positive - top)
    e_neg = math.exp(z_negative - top)
    e_neu = math.exp(-top)
    total = e_pos + e_neg + e_neu
    return e_neg / total, e_neu / total, e_pos / total


# label and probabilities by compound score (short messages share a few: one emote, one word).
_SENTIMENT_FIELDS: dict[float, tuple[Label, float, float, float]] = {}


def _sentiment_fields(compound: float) -> tuple[Label, float, float, float]:
    """``(label, p_negative, p_neutral, p_positive)`` of a compound score, cached."""
    fields = (_label(compound), *compound_to_probabilities(compound))
    if len(_SENTIMENT_FIELDS) >= model._TOKEN_CACHE_SIZE:
        _SENTIMENT_FIELDS.clear()
    _SENTIMENT_FIELDS[compound] = fields
    return fields


def _label(compound: float) -> Label:
    if compound > NEUTRAL_BAND:
        return "positive"
    if compound < -NEUTRAL_BAND:
        return "negative"
    return "neutral"


@functools.cache
def _clap_marker() -> _Unit:
    return _unit(
        "clap",
        _Entry(valence=0.0, sarcasm=True),
        word=False,
        upper=False,
        from_lower=False,
        elongated=False,
    )


def _sarcastic_claps(units: list[_Unit]) -> bool:
    """Turn a clap right after praise into a sarcasm marker ("great play Clap"), in place.

    Praise is a positive word up to three items before the clap; a clap after a celebration
    (EZ, GG, W) or an emote stays approval.  Returns whether any clap was turned.
    """
    turned = False
    for i, unit in enumerate(units):
        if unit.key not in _CLAP_KEYS:
            continue
        for before in units[max(0, i - 3) : i]:
            if (
                before.word
                and before.valence is not None
                and before.valence > 0
                and before.key not in _CELEBRATION
            ):
                units[i] = _clap_marker()
                turned = True
                break
    return turned


@functools.lru_cache(maxsize=1 << 12)
def _emotion_map(values: tuple[float, ...]) -> Mapping[str, float | None]:
    """The emotions mapping of a Score from intensities in ESTIMATED_EMOTIONS order (cached)."""
    # Read-only, so that cached Scores can be shared between callers safely.
    filled: dict[str, float | None] = dict.fromkeys(EMOTIONS)
    for name, value in zip(ESTIMATED_EMOTIONS, values, strict=True):
        filled[name] = value
    return MappingProxyType(filled)


# The emotions of every message without emotion evidence (most of them).
_NO_EMOTION_MAP = _emotion_map.__wrapped__(_NO_EMOTIONS)
