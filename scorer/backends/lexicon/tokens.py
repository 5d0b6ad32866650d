"""Tokens: one whitespace-separated token read into units (words, emotes, emoji), cached.

A token's reading (:class:`_Token`) holds its sentiment units, its toxicity reading and the flags
that tell a message which passes it needs; readings are cached by token text in bounded dicts.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from scorer.backends.lexicon import model
from scorer.backends.lexicon.model import (
    _B_INCR,
    _BANTERING,
    _EMOTION_BASE,
    _EMOTION_EMPHASIS,
    _JOY,
    _LAUGHTER,
    _LOVE,
    _LOWER_WORD,
    _NO_ENTRY,
    _RULE_WORDS,
    _SARCASM,
    _SPECIAL,
    _UNNAMED,
    _UPPER_WORD,
    _VALUED,
    _Entry,
    _Lexicon,
    _Prechecks,
    _Token,
    _ToxToken,
    _Unit,
)
from scorer.backends.lexicon.text import (
    _DOUBLE,
    _FOLD_ASCII,
    _IGNORABLE,
    _PUNCT,
    _RUN2,
    _TRIPLE,
    _collapse,
    _collapse_to_two,
    _first_group,
)
from scorer.backends.lexicon.toxicity import _TOX_READINGS, _UNNAMED_TOX, _read_tox, _tox_token

_LAUGH = re.compile(r"^(?:(?:[hj][aeiou]){2,}[hj]?|a?(?:ha){2,}h?|(?:lo)+l|(?:ke)+k)$")
_LAUGH_FIRST = frozenset("hjalk")  # every match of _LAUGH starts with one of these

# Laughter written as words (the laughter regex reduces hahaha/lololol/kekeke to these keys).
_LAUGH_WORDS = frozenset(
    {"lol", "lul", "lmao", "lmfao", "rofl", "haha", "hehe", "kek", "kekw", "xd"}
)


def _unit(
    key: str, entry: _Entry | None, *, word: bool, upper: bool, from_lower: bool, elongated: bool
) -> _Unit:
    negator = "n't" in key
    if entry is None or entry is _NO_ENTRY:
        # Most new tokens (names, words outside every table): nothing but the key to read.
        # Positional: a dataclass __init__ with keywords costs about three times as much.
        unit = _Unit(
            key,  # key
            None,  # valence
            (),  # emotions
            False,  # sarcasm
            0.0,  # booster
            negator,  # negator
            word,  # word
            upper,  # upper
            False,  # emphasis
            elongated,  # elongated
            negator or key in _RULE_WORDS,  # special
            None,  # value
            (),  # evidence
            False,  # laugh
            False,  # banter
        )
        unit.flags = _unit_flags(unit)
        return unit
    valence = entry.valence
    emotions = entry.emotions
    laugh = _is_laugh(key, entry, word)
    unit = _Unit(
        key,  # key
        valence,  # valence
        emotions,  # emotions
        entry.sarcasm,  # sarcasm
        entry.booster,  # booster
        entry.negator or negator,  # negator
        word,  # word
        upper,  # upper
        upper and from_lower and valence is not None,  # emphasis
        elongated,  # elongated
        bool(entry.booster) or entry.negator or negator or key in _RULE_WORDS,  # special
        _elongate(valence) if elongated else valence,  # value
        tuple(
            (index, weight * _EMOTION_BASE * (_EMOTION_EMPHASIS if elongated else 1.0))
            for index, weight in emotions
        )
        if emotions
        else (),  # evidence
        laugh,  # laugh
        entry.sarcasm
        or laugh
        or (bool(emotions) and any(i == _LOVE and w >= 0.8 for i, w in emotions)),  # banter
    )
    unit.flags = _unit_flags(unit)
    return unit


# Units of lexicon entries by (key, id(entry), word, upper, from_lower, elongated): "lol", "LOL"
# and "lol!" share one.  Only for entries of the loaded tables, which live as long as the process.
_KNOWN_UNITS: dict[tuple[str, int, bool, bool, bool, bool], _Unit] = {}


def _known_unit(
    key: str, entry: _Entry, word: bool, upper: bool, from_lower: bool, elongated: bool
) -> _Unit:
    """``_unit`` for an entry of the lexicon's tables, cached."""
    cache_key = (key, id(entry), word, upper, from_lower, elongated)
    unit = _KNOWN_UNITS.get(cache_key)
    if unit is None:
        unit = _unit(key, entry, word=word, upper=upper, from_lower=from_lower, elongated=elongated)
        if len(_KNOWN_UNITS) >= model._TOKEN_CACHE_SIZE:
            _KNOWN_UNITS.clear()
        _KNOWN_UNITS[cache_key] = unit
    return unit


def _is_laugh(key: str, entry: _Entry, word: bool) -> bool:
    if entry.valence is None or entry.valence <= 0:
        return False
    if word:
        return key in _LAUGH_WORDS
    return any(i == _JOY and w >= 0.8 for i, w in entry.emotions)


def _elongate(valence: float | None) -> float | None:
    # Our rule, not VADER's: a stretched word ("LULLLL", "noooo") is as emphatic as a booster.
    if not valence:
        return valence
    return valence + (_B_INCR if valence > 0 else -_B_INCR)


def _affix(lex: _Lexicon, word: str) -> _Entry | None:
    # The camelCase seam of an emote code: the part before a suffix ends in lower case or a
    # digit, the suffix starts with a capital (affixes.tsv header).  Longest affix first.
    if word == word.lower() or word == word.upper():
        return None  # no seam possible
    size = len(word)
    for length, table in lex.suffixes:
        if size - length >= 2:
            entry = table.get(word[-length:])
            if entry is not None and (word[-length - 1].islower() or word[-length - 1].isdigit()):
                return entry
    for length, table in lex.prefixes:
        if size > length and word[length].isupper():
            entry = table.get(word[:length])
            if entry is not None:
                return entry
    return None


def _word(lex: _Lexicon, raw: str) -> _Unit | None:
    """Read one word-like piece (no emoji inside) as a unit; None for noise (punctuation, URLs)."""
    if raw[0] == "@" and len(raw) > 1:
        return _mention()
    if "://" in raw or raw.startswith("www."):
        return None
    stripped = raw.strip(_PUNCT)
    upper = stripped.isupper()
    exact = lex.exact
    lower = lex.lower
    # Emoticons and emote codes with punctuation (<3, :), D:) first, then the stripped word.
    if stripped != raw:
        entry = exact.get(raw)
        if entry is not None:
            return _known_unit(raw.lower(), entry, False, upper, False, False)
        low = raw.lower()
        entry = lower.get(low)
        if entry is not None:
            return _known_unit(low, entry, True, upper, True, False)
        if not stripped:
            return None
    return _bare_word(lex, stripped, stripped.lower(), upper)


def _bare_word(lex: _Lexicon, stripped: str, low: str, upper: bool) -> _Unit:
    """``_word`` of a piece without punctuation around it (``low`` is its lower case)."""
    exact = lex.exact
    lower = lex.lower
    entry = exact.get(stripped)
    if entry is not None:
        return _known_unit(low, entry, False, upper, False, False)
    entry = lower.get(low)
    if entry is not None:
        return _known_unit(low, entry, True, upper, True, False)
    elongated = False
    if _DOUBLE.search(stripped) is not None:  # no repeated letter: no elongation to undo
        elongated = _TRIPLE.search(stripped) is not None
        # Elongation: runs of 3+ down to 2 first (POGGGERS -> POGGERS, goooood -> good), then
        # every run down to 1 (LULLLL -> LUL, noooo -> no, KEKWW -> KEKW).
        candidates = []
        two = _collapse_to_two(stripped) if elongated else stripped
        if two != stripped:
            candidates.append(two)
        one = _collapse(stripped)
        if one != stripped and one != two:
            candidates.append(one)
        for form in candidates:
            entry = exact.get(form)
            if entry is not None:
                return _known_unit(form.lower(), entry, False, upper, False, True)
            entry = lower.get(form.lower())
            if entry is not None:
                return _known_unit(form.lower(), entry, True, upper, True, True)
    if low[0] in _LAUGH_FIRST and _LAUGH.match(low):
        base = "lol" if low.startswith("lo") else "kek" if low.startswith("ke") else "haha"
        return _known_unit(base, lower[base], True, upper, True, len(low) >= 6)
    entry = None if low == stripped or upper else _affix(lex, stripped)
    if entry is not None:
        return _known_unit(low, entry, False, upper, False, False)
    # Unknown: keep a collapsed key so that phrases still match ("lets goooo" -> "lets go").
    key = _collapse(low) if elongated else low
    negator = "n't" in key
    special = negator or key in _RULE_WORDS
    return _Unit(
        key,  # key
        None,  # valence
        (),  # emotions
        False,  # sarcasm
        0.0,  # booster
        negator,  # negator
        True,  # word
        upper,  # upper
        False,  # emphasis
        elongated,  # elongated
        special,  # special
        None,  # value
        (),  # evidence
        False,  # laugh
        False,  # banter
        (_SPECIAL if special else 0) | (_UPPER_WORD if upper else _LOWER_WORD),  # _unit_flags
    )


@functools.cache
def _mention() -> _Unit:
    # An @mention: one shared unit (units are never changed after construction).
    return _unit("@", None, word=False, upper=False, from_lower=False, elongated=False)


# Token readings by token text: a plain dict (a lookup costs less than an lru_cache call), bounded
# by emptying it when full -- refilling costs less than keeping recency order on every hit.
# Thread-safe: dict reads and writes are atomic; two threads may analyse one new token twice.
_TOKENS: dict[str, _Token] = {}


def _token(lex: _Lexicon, token: str) -> _Token:
    """Everything about one whitespace-separated token, read and cached (chat repeats tokens).

    ``lex`` is the process's lexicon (:func:`_lexicon`).  The caller has looked in ``_TOKENS``
    already (``_TOKENS.get(token) or _token(lex, token)``).
    """
    if token.isascii():
        if token.isalpha():
            low = token.lower()
            pre = lex.pre
            if (
                low not in pre.named
                and (token[1:].islower() or token.isupper())
                and not (low[0] in _LAUGH_FIRST and _LAUGH.match(low))
                and (pre.marked.search(low) is None or _unnamed_doubled(pre, low))
            ):
                # Most new tokens: a word nothing reads by name (see _UNNAMED).
                found = _UNNAMED_UPPER if token.isupper() else _UNNAMED_LOWER
            else:
                found = _plain_token(lex, token, low)
        elif token[0] == "@" and len(token) > 1:
            return _mention_token(lex)  # every mention reads alike: one shared reading, not cached
        else:
            found = _punctuated_token(lex, token) or _ascii_token(lex, token)
    else:
        tox = _tox_token(lex, token)
        units = _units(lex, token)
        flags = tox.flags
        key_flags = lex.pre.key_flags
        for unit in units:
            flags |= unit.flags | key_flags.get(unit.key, 0)
        found = _Token(units, flags, tox)
    if len(_TOKENS) >= model._TOKEN_CACHE_SIZE:
        _TOKENS.clear()
    _TOKENS[token] = found
    return found


def _unnamed_doubled(pre: _Prechecks, low: str) -> bool:
    """Whether a word of letters with a doubled letter or a substring (``low``, its lower case,
    otherwise checked as _token does) reads as unnamed: its collapsed forms, which _bare_word and
    toxicity._term_hits_c1 look up, are not named and hold no substring term."""
    if low[0] == low[1]:
        return False  # "Aaron": the capital's run is not the lower case's
    one = _RUN2.sub(_first_group, low)  # (_collapse: a doubled letter or a substring is there)
    two = _collapse_to_two(low)
    named = pre.named
    needle = pre.substrings.search
    return one not in named and two not in named and needle(one) is None and needle(two) is None


def _plain_token(lex: _Lexicon, token: str, low: str) -> _Token:
    """The reading of an ASCII-letters token (``low`` its lower case), not from the caches."""
    # One lower-case form for both readings (what _tox_token and _word do, without the checks).
    tox = _TOX_READINGS.get(low) or _read_tox(lex, low, (low,))
    word = _bare_word(lex, token, low, token.isupper())
    return _Token((word,), tox.flags | word.flags | lex.pre.key_flags.get(word.key, 0), tox)


def _punctuated_token(lex: _Lexicon, token: str) -> _Token | None:
    """The reading of ``word,`` / ``"word`` / ``word?!``: the one of ``word``; None for others.

    An ASCII token that is letters with punctuation around, not an emoticon or URL, and whose
    punctuation folds away in the toxicity reading (no ``@``/``$`` read as a letter): ``_word``
    reads its letters as the bare word, ``_tox_token`` folds it to the word's lower case, so its
    reading equals the bare word's, shared (and cached under both texts).
    """
    stripped = token.strip(_PUNCT)
    if (
        not stripped.isalpha()
        or "://" in token
        or token.startswith("www.")
        or token in lex.exact
        or token.lower() in lex.lower
    ):
        return None
    if token.translate(_FOLD_ASCII) != stripped.lower():  # (_fold_word: no "1" in the token)
        return None
    return _TOKENS.get(stripped) or _token(lex, stripped)


def _ascii_token(lex: _Lexicon, token: str) -> _Token:
    """The reading of any other ASCII token (what _units does for one, without the call)."""
    tox = _tox_token(lex, token)
    unit = _word(lex, token)
    if unit is None:
        return _Token((), tox.flags, tox)
    return _Token((unit,), tox.flags | unit.flags | lex.pre.key_flags.get(unit.key, 0), tox)


# Most new tokens are words that no table, rule or phrase names: names, ordinary words.  Every rule
# and phrase compares a key (and a toxicity reading's letters) only with words it names, all of them
# in Prechecks.named, so two such words read alike whatever their letters: they share one of the two
# readings below (in capitals or not) instead of building three objects each.  What _token checks
# before it shares one, for a token of ASCII letters: its lower case is not named; no capital after
# the first letter unless all are (no emote seam, see _affix); not laughter; and no doubled letter
# (no elongation reading, see _bare_word) nor substring term (see toxicity._term_hits_c1) -- or its
# collapsed forms pass the same checks (_unnamed_doubled).  Its key is model._UNNAMED.
def _unnamed(upper: bool) -> _Token:
    flags = _UPPER_WORD if upper else _LOWER_WORD
    unit = _Unit(
        key=_UNNAMED,
        valence=None,
        emotions=(),
        sarcasm=False,
        booster=0.0,
        negator=False,
        word=True,
        upper=upper,
        emphasis=False,
        elongated=False,  # (read for sentiment items and phrase words only)
        special=False,
        value=None,
        evidence=(),
        laugh=False,
        banter=False,
        flags=flags,
    )
    return _Token((unit,), flags, _UNNAMED_TOX)


_UNNAMED_UPPER = _unnamed(True)
_UNNAMED_LOWER = _unnamed(False)


# The one reading of an ASCII @mention token, by id of the lexicon it was made for.
_MENTION_TOKENS: dict[int, _Token] = {}


def _mention_token(lex: _Lexicon) -> _Token:
    """The shared reading of an ASCII ``@name`` token (what _tox_token and _word give it)."""
    found = _MENTION_TOKENS.get(id(lex))
    if found is None:
        found = _MENTION_TOKENS[id(lex)] = _make_token(lex, (_mention(),), _tox_token(lex, "@x"))
    return found


def _make_token(lex: _Lexicon, units: tuple[_Unit, ...], tox: _ToxToken) -> _Token:
    flags = tox.flags
    key_flags = lex.pre.key_flags
    for unit in units:
        flags |= unit.flags | key_flags.get(unit.key, 0)
    return _Token(units, flags, tox)


def _unit_flags(unit: _Unit) -> int:
    """The token flags a unit sets apart from its key's (see _Unit.flags)."""
    flags = 0
    if unit.special:
        flags |= _SPECIAL
    if unit.sarcasm:
        flags |= _SARCASM
    if unit.laugh:
        flags |= _LAUGHTER
    if unit.banter:
        flags |= _BANTERING
    if unit.word:
        flags |= _UPPER_WORD if unit.upper else _LOWER_WORD
    if unit.valence is not None:
        flags |= _VALUED
    return flags


def _units(lex: _Lexicon, token: str) -> tuple[_Unit, ...]:
    """The units of one whitespace-separated token: words, emoticons, emotes and emoji."""
    if token.isascii():
        unit = _word(lex, token)
        return () if unit is None else (unit,)
    out: list[_Unit] = []
    piece: list[str] = []

    def flush() -> None:
        if piece:
            unit = _word(lex, "".join(piece))
            if unit is not None:
                out.append(unit)
            piece.clear()

    for ch in token:
        if ch < "\x80":  # ASCII: never ignorable, an emoji or a symbol
            piece.append(ch)
            continue
        if ch in _IGNORABLE:
            continue
        entry = lex.emoji.get(ch)
        if entry is not None:
            flush()
            out.append(_known_unit(ch, entry, False, False, False, False))
        elif unicodedata.category(ch) == "So":
            flush()  # an emoji or symbol we do not know: a neutral separator
        else:
            piece.append(ch)
    flush()
    return tuple(out)


def _merge_phrases(lex: _Lexicon, units: list[_Unit]) -> list[_Unit]:
    """The units with each phrase's words merged into one unit, longest first, left to right;
    ``units`` itself when no phrase is there (most messages whose flags allow one)."""
    keys = [unit.key for unit in units]
    starts = lex.phrase_starts
    phrases = lex.phrases
    n = len(units)
    out: list[_Unit] | None = None
    done = 0  # units[:done] are in out (or merged into its last unit)
    for i, first in enumerate(keys):
        if i < done or first not in starts:
            continue
        for size in (3, 2):
            if i + size > n:
                continue
            key = tuple(keys[i : i + size])
            entry = phrases.get(key)
            if entry is None:
                continue
            parts = units[i : i + size]
            merged = _unit(
                " ".join(key),
                entry,
                word=True,
                upper=all(u.upper for u in parts),
                from_lower=True,
                elongated=False,
            )
            if any(u.elongated for u in parts):
                merged = _with_elongation(merged)
            if out is None:
                out = []
            out += units[done:i]
            out.append(merged)
            done = i + size
            break
    if out is None:
        return units
    out += units[done:]
    return out


def _with_elongation(unit: _Unit) -> _Unit:
    return _unit(
        unit.key,
        _Entry(unit.valence, unit.emotions, unit.sarcasm, unit.booster, unit.negator),
        word=unit.word,
        upper=unit.upper,
        from_lower=unit.emphasis,
        elongated=True,
    )
