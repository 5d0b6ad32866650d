"""The ``lexicon`` backend itself: one walk over a message's tokens for both scores."""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Mapping, Sequence

from scorer.backends.base import BackendError, Score
from scorer.backends.lexicon import model
from scorer.backends.lexicon.loading import _lexicon
from scorer.backends.lexicon.model import (
    _BANTERING,
    _CLAP,
    _NO_EMOTIONS,
    _PHRASE_PAIR,
    _SARCASM,
    _SINGLE,
    _SPECIAL,
    _TOX_HEAD,
    _TOX_PAIR,
    _TOXIC,
    _VALUED,
    CATEGORIES,
    NEUTRAL_BAND,
    _Token,
    _Unit,
)
from scorer.backends.lexicon.sentiment import (
    _NO_EMOTION_MAP,
    _SENTIMENT_FIELDS,
    _analyse,
    _emotion_map,
    _sarcastic_claps,
    _sentiment_fields,
)
from scorer.backends.lexicon.text import _APOSTROPHES, _PUNCT
from scorer.backends.lexicon.tokens import (
    _KNOWN_UNITS,
    _TOKENS,
    _make_token,
    _merge_phrases,
    _token,
    _unit,
)
from scorer.backends.lexicon.toxicity import (
    _QUOTE_START,
    _TOX_READINGS,
    _quoted_tokens,
    _spelled_out,
    _tox_token,
    _toxicity,
)

# Scores by (sentiment, emotion intensities, toxicity): immutable, so messages share them.
_SCORES: dict[tuple[float, tuple[float, ...], float], Score] = {}


def clear_caches() -> None:
    """Forget every cached token reading and score (benchmarks use it to measure never-seen text)."""
    _SCORES.clear()
    _TOKENS.clear()
    _KNOWN_UNITS.clear()
    _TOX_READINGS.clear()
    _SENTIMENT_FIELDS.clear()
    _emotion_map.cache_clear()


class LexiconBackend:
    """VADER plus a Twitch-aware lexicon; see the package docstring for what each column means.

    ``channel_emotes`` maps a channel login to ``{emote code: category}`` (a name from
    :data:`CATEGORIES`) for that channel's own emotes (``nymnCorn``, ``forsenE``): they take
    precedence over every table and heuristic for messages of that channel.  ``cache_size``
    messages are remembered (an LRU keyed by text and channel; 0 disables it) because chat repeats
    itself.  Raises :class:`BackendError` for an unknown category or unreadable lexicon data.
    Thread-safe for concurrent ``score`` calls (the message cache is a ``functools.lru_cache``;
    the token caches are dicts, whose single reads and writes are atomic).
    """

    def __init__(
        self,
        channel_emotes: Mapping[str, Mapping[str, str]] | None = None,
        *,
        cache_size: int = 1 << 16,
    ) -> None:
        self._lex = _lexicon()
        self.model: str = f"lexicon@{self._lex.version}"
        self._channels: dict[str, dict[str, _Token]] = {}
        for channel, emotes in (channel_emotes or {}).items():
            table: dict[str, _Token] = {}
            for code, category in emotes.items():
                entry = self._lex.categories.get(category)
                if entry is None:
                    raise BackendError(
                        f"channel {channel!r} emote {code!r}: unknown category {category!r} "
                        f"(choose from {', '.join(CATEGORIES)})"
                    )
                unit = _unit(
                    code.lower(),
                    entry,
                    word=False,
                    upper=code.isupper(),
                    from_lower=False,
                    elongated=False,
                )
                table[code] = _make_token(self._lex, (unit,), _tox_token(self._lex, code))
            self._channels[channel.lower().lstrip("#")] = table
        self._score_one = (
            functools.lru_cache(maxsize=cache_size)(self._score_text)
            if cache_size > 0
            else self._score_text
        )

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        """Score each text; one :class:`Score` per text, same order (see ScoringBackend).

        The cyclic garbage collector is paused for the batch (and resumed after, if it was on):
        new text creates cached token readings, which hold no reference cycles, and the
        allocations would otherwise trigger many collections that each walk every cached reading
        (a tenth of the time on never-seen text, measured with ``gc.callbacks``).  The batch's
        new objects are examined once when it ends, at the next allocation.
        """
        enabled = gc.isenabled()
        if enabled:
            gc.disable()
        try:
            return self._score_batch(texts, channels)
        finally:
            if enabled:
                gc.enable()

    def _score_batch(self, texts: Sequence[str], channels: Sequence[str] | None) -> list[Score]:
        if channels is None:
            return [self._score_one(text, "") for text in texts]
        if len(channels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(channels)} channels")
        known = self._channels
        out = []
        for text, channel in zip(texts, channels, strict=True):
            key = channel.lower().lstrip("#") if channel else ""
            out.append(self._score_one(text, key if key in known else ""))
        return out

    def _score_text(self, text: str, channel: str) -> Score:
        lex = self._lex
        table = self._channels.get(channel) if channel else None
        units: list[_Unit] = []
        flags = 0
        if not text.isascii():
            text = text.translate(_APOSTROPHES)  # "can’t" negates like "can't"
        tokens = text.split()
        cached = _TOKENS.get
        read: list[_Token] = []
        if table is None:
            for text_token in tokens:
                token = cached(text_token) or _token(lex, text_token)
                read.append(token)
                units += token.units
                flags |= token.flags
        else:
            for text_token in tokens:
                token = (
                    table.get(text_token)
                    or table.get(text_token.strip(_PUNCT))
                    or cached(text_token)
                    or _token(lex, text_token)
                )
                read.append(token)
                units += token.units
                flags |= token.flags
        if (
            flags & _PHRASE_PAIR == _PHRASE_PAIR
            and (merged := _merge_phrases(lex, units)) is not units
        ):
            # A phrase may be a booster ("kind of") or sarcasm ("yeah right"); the other units'
            # bits are in the token flags already.
            units = merged
            for unit in units:
                if unit.special:
                    flags |= _SPECIAL
                if unit.sarcasm:
                    flags |= _SARCASM
                if unit.valence is not None:
                    flags |= _VALUED
        if flags & _CLAP and _sarcastic_claps(units):
            flags |= _SARCASM
        # Without a sentiment item every rule adds nothing: the sentiment is 0.0, no emotions.
        compound, emotions = (
            _analyse(units, flags, text) if flags & _VALUED else (0.0, _NO_EMOTIONS)
        )
        toxicity = 0.0
        if flags & (_TOXIC | _TOX_HEAD | _SINGLE):
            toxic = [token.tox for token in read]
            if flags & _SINGLE and not _spelled_out(toxic):
                flags &= ~_SINGLE  # single letters, but no three in a row: nothing to join
            if flags & (_TOXIC | _SINGLE) or flags & _TOX_PAIR == _TOX_PAIR:
                toxicity = _toxicity(
                    lex,
                    toxic,
                    _quoted_tokens(tokens) if _QUOTE_START.search(text) else None,
                    banter=bool(flags & _BANTERING),
                    cheer=compound > NEUTRAL_BAND,
                    flags=flags,
                )
        # Messages share scores (every neutral one, one emote): a Score costs a frozen
        # dataclass's __init__, about ten dict lookups.  A sentiment of -0.0 (rare) equals 0.0 as
        # a key but is written "-0.0": it gets a Score of its own.
        key = (compound, emotions, toxicity)
        shared = compound != 0.0 or math.copysign(1.0, compound) > 0
        score = _SCORES.get(key) if shared else None
        if score is None:
            fields = _SENTIMENT_FIELDS.get(compound)
            if fields is None:
                fields = _sentiment_fields(compound)
            # Positional, in Score's field order: keywords cost a frozen dataclass a third more.
            score = Score(
                compound,  # sentiment
                *fields,  # label, p_negative, p_neutral, p_positive
                _NO_EMOTION_MAP if emotions is _NO_EMOTIONS else _emotion_map(emotions),
                toxicity,  # toxicity
            )
            if shared:
                if len(_SCORES) >= model._TOKEN_CACHE_SIZE:
                    _SCORES.clear()
                _SCORES[key] = score
        return score
