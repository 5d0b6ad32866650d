"""Pure string folding for the lexicon backend: runs of a letter, leetspeak, look-alikes.

Text in, text out; no lexicon, no state.
"""

from __future__ import annotations

import re
import string
import unicodedata

# Characters that carry no meaning in a token: variation selectors, skin-tone modifiers, ZWJ and
# zero-width spaces, and the tag block (U+E0000..E007F; Chatterino/7TV append U+E0000 to dodge
# Twitch's duplicate-message filter -- 128 of the 798 #nymn sample messages carry it).
_IGNORABLE = frozenset(
    [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0x1F3FB, 0x1F400)]
    + ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u034f"]
    + [chr(c) for c in range(0xE0000, 0xE0080)]
)
_RUN3 = re.compile(r"(.)\1{2,}")
_RUN2 = re.compile(r"(.)\1+")
# Whether a run of two (three) exists: without the open repeat, a search stops at the first pair
# instead of extending the run (about half the time of _RUN2.search/_RUN3.search per word).
_DOUBLE = re.compile(r"(.)\1")
_TRIPLE = re.compile(r"(.)\1\1")
_PUNCT = string.punctuation + "\u201c\u201d\u00ab\u00bb\u201e\u2026"


def _bare_emoji(text: str) -> str:
    return "".join(ch for ch in text if ch not in _IGNORABLE)


def _collapse(text: str) -> str:
    """Every run of a repeated character down to one ("idiooot" -> "idiot")."""
    # A function replacement: re's string templates are several times slower per match.
    return _RUN2.sub(_first_group, text) if _DOUBLE.search(text) else text


def _first_group(match: re.Match[str]) -> str:
    return match[1]


def _first_group_twice(match: re.Match[str]) -> str:
    return match[1] * 2


def _collapse_to_two(text: str) -> str:
    """Runs of three or more down to two ("POGGGERS" -> "POGGERS")."""
    return _RUN3.sub(_first_group_twice, text) if _TRIPLE.search(text) else text


def _runs(text: str) -> tuple[str, tuple[int, ...]]:
    if _DOUBLE.search(text) is None:
        return text, (1,) * len(text)
    letters: list[str] = []
    counts: list[int] = []
    for ch in text:
        if letters and letters[-1] == ch:
            counts[-1] += 1
        else:
            letters.append(ch)
            counts.append(1)
    return "".join(letters), tuple(counts)


_LEET_I = str.maketrans(
    {"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_L = str.maketrans({"1": "l"})

# Latin look-alikes from Cyrillic and Greek, the common homoglyph trick.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ѕ": "s",
        "ј": "j",
        "к": "k",
        "м": "m",
        "т": "t",
        "н": "h",
        "в": "b",
        "ο": "o",
        "α": "a",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "τ": "t",
        "υ": "u",
    }
)
_NON_LETTERS = re.compile(r"[^a-z]+")

# _fold_word of ASCII text in one translate: lower case, _LEET_I, then only a-z kept (and the same
# with "1" read as "l" for the second reading).
_FOLD_ASCII: dict[int, str | None] = {
    code: folded if folded.isalpha() else None
    for code, folded in ((code, chr(code).lower().translate(_LEET_I)) for code in range(128))
}
_FOLD_ASCII_L = {**_FOLD_ASCII, ord("1"): "l"}


def _fold_word(token: str) -> tuple[str, ...]:
    """Letters-only lower-case readings of a token (two when a "1" may be an i or an l)."""
    if token.isascii():
        if token.isalpha():
            return (token.lower(),)  # the common case: nothing to fold
        if "1" not in token:
            return (token.translate(_FOLD_ASCII),)
        return token.translate(_FOLD_ASCII), token.translate(_FOLD_ASCII_L)
    text = token.lower()
    if not text.isascii():  # (the look-alikes are all outside ASCII)
        text = text.translate(_HOMOGLYPHS)
    if not text.isascii():
        text = "".join(
            ch
            for ch in unicodedata.normalize("NFKD", text)
            if not unicodedata.combining(ch) and unicodedata.category(ch) != "Cf"
        ).lower()
    first = _NON_LETTERS.sub("", text.translate(_LEET_I))
    if "1" not in text:
        return (first,)
    return first, _NON_LETTERS.sub("", text.translate(_LEET_L).translate(_LEET_I))


# Apostrophe look-alikes typed by phones and IMEs; VADER's negation list spells "can't".
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})
