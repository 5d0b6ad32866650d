"""The lexicon backend's shared vocabulary: constants, token flags and the data classes.

What the other modules of :mod:`scorer.backends.lexicon` pass between them: an entry of the
lexicon (:class:`_Entry`), a unit of a message (:class:`_Unit`), a token's cached reading
(:class:`_Token`, :class:`_ToxToken`) and the loaded lexicon (:class:`_Lexicon`).  No logic here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scorer.backends.base import EMOTIONS

#: Bump when the scoring rules of this package change (the data files are hashed separately).
ENGINE_VERSION = "2"

#: |compound| at or below this is neutral: VADER's recommended threshold (vaderSentiment README,
#: "compound score >= 0.05 positive, <= -0.05 negative").
NEUTRAL_BAND = 0.05

#: The emotion columns this backend estimates; the other three of EMOTIONS stay None.
ESTIMATED_EMOTIONS: tuple[str, ...] = (
    "anger",
    "anticipation",
    "disgust",
    "fear",
    "joy",
    "love",
    "sadness",
    "surprise",
)
_B_INCR = 0.293  # vaderSentiment.B_INCR: mean intensity increase of a booster word
_C_INCR = 0.733  # vaderSentiment.C_INCR: mean increase for an ALL-CAPS word among lower case
_N_SCALAR = -0.74  # vaderSentiment.N_SCALAR: negation flips and dampens

# Emotion evidence of one item: its tag weight times this, raised when the item is emphasised
# (caps, elongation, a booster) and divided by its repeat count like its valence; a message's
# intensity is 1 - exp(-sum of evidence): 0 without evidence, ~0.5 for one plain emote, towards
# (never at) 1 as evidence piles up.
_EMOTION_BASE = 0.8
_EMOTION_EMPHASIS = 1.3
_EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}
_ESTIMATED_INDEX = tuple(_EMOTION_INDEX[name] for name in ESTIMATED_EMOTIONS)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What the lexicon says about one item."""

    valence: float | None  # None: not a sentiment item (VADER's "not in lexicon")
    emotions: tuple[tuple[int, float], ...] = ()
    sarcasm: bool = False
    booster: float = 0.0
    negator: bool = False


# The per-token classes below are shared through the caches and must never be changed after
# construction; they are not ``frozen`` dataclasses only because a frozen dataclass's __init__
# (object.__setattr__ per field) costs several times a plain one, paid for every new token.
@dataclass(slots=True, eq=False)
class _Unit:
    """One item of a message as the rules see it (compared by identity: units are cached)."""

    key: str  # lower-case canonical form: repeats, phrases and VADER's named words use it
    valence: float | None
    emotions: tuple[tuple[int, float], ...]
    sarcasm: bool
    booster: float
    negator: bool
    word: bool  # counts for the ALL-CAPS differential (emotes and emoji do not)
    upper: bool  # written in capitals
    emphasis: bool  # capitals are emphasis here (a lower-case lexicon word written in caps)
    elongated: bool
    special: bool  # a word VADER's neighbour rules react to
    value: float | None  # valence with the elongation increment: the value when no rule applies
    evidence: tuple[tuple[int, float], ...]  # (EMOTIONS index, evidence) for one plain use
    laugh: bool  # laughter (LUL, KEKW, lol, 😂): joy, or mockery next to a put-down
    banter: bool  # laughter, affection (<3) or irony: what makes a mild insult teasing
    flags: int = 0  # the token flags this unit sets apart from its key's (see tokens._unit_flags)


# _Token.flags bits
_PHRASE = 1  # a unit may start a phrase
_SPECIAL = 2  # a unit VADER's neighbour rules react to ("not", "so", "but", boosters...)
_SARCASM = 4
_TOXIC = 8  # the token matters to toxicity on its own (it holds a term)
_LAUGHTER = 16  # a laughter unit
_BANTERING = 32  # a banter marker (see _Unit.banter)
_CLAP = 64  # a clap (sarcastic right after praise)
_SINGLE = 128  # a single letter: three in a row may spell a term ("f u c k")

# Cheap exact prechecks: a phrase can only match where its first and second words both occur,
# so the phrase passes run only when a message has a token of each kind (see loading._build_prechecks).
_TOX_HEAD = 256  # first word of a toxicity phrase that adds toxicity (not allow/interjection)
_TOX_NEXT = 512  # second word of such a phrase
_TOX_PAIR = _TOX_HEAD | _TOX_NEXT
_PHRASE_NEXT = 1024  # second word of a sentiment phrase
_TOX_START = 2048  # first word of any toxicity phrase (allow and interjection included)
_TARGETED = 4096  # second person or an @mention (see _ToxToken.target)
_UPPER_WORD = 8192  # a word (see _Unit.word) in capitals
_LOWER_WORD = 16384  # a word not in capitals
_VALUED = 32768  # a sentiment item (a unit with a valence): without one, the sentiment is 0.0
_BUT = 65536  # a unit keyed "but" (VADER's contrast rule)

# VADER's allcap_differential (some words in capitals, not all) is both bits together.
_CAPS_MIX = _UPPER_WORD | _LOWER_WORD
_PHRASE_PAIR = _PHRASE | _PHRASE_NEXT
_JOY = _EMOTION_INDEX["joy"]
_LOVE = _EMOTION_INDEX["love"]

# A clap: approval, or sarcasm right after praise (see sentiment._sarcastic_claps).
_CLAP_KEYS = frozenset({"clap", "\U0001f44f"})

# The key of a word that no table, rule or phrase reads by name, and the letters of a toxicity
# reading that no toxicity rule reads by name (see tokens._UNNAMED_UPPER, toxicity._UNNAMED_TOX):
# whitespace, so never the key or letters of a token, a phrase or a toxicity phrase word, and not
# empty: the toxicity phrase pass skips tokens without letters.
_UNNAMED = " "

# Words whose presence changes how neighbours are read (VADER's rules look for them by name).
_RULE_WORDS = frozenset(
    {"no", "least", "so", "this", "never", "without", "doubt", "or", "nor", "at", "very", "but"}
)

# Second person: what makes an insult aimed (see toxicity._toxicity).
_TARGETS = frozenset({"you", "u", "ur", "your", "youre", "yourself", "ure", "ya"})


@dataclass(slots=True, eq=False)
class _Token:
    """Everything about one whitespace-separated token, cached by its text."""

    units: tuple[_Unit, ...]
    flags: int
    tox: _ToxToken


@dataclass(frozen=True, slots=True)
class _Term:
    counts: tuple[int, ...]  # minimum run length of each letter of the collapsed term
    severity: float
    kind: str


@dataclass(slots=True)
class _ToxToken:
    hits: tuple[tuple[float, str], ...]
    c1: str  # letters only, repeats collapsed (first leetspeak reading)
    single: str  # the letter when the token is a single letter, else ""
    target: bool  # second person (you, u, ur...) or an @mention
    flags: int = (
        0  # the token flags this reading sets (_TOXIC, _TOX_HEAD...: see toxicity._tox_flags)
    )


@dataclass(slots=True)
class _Lexicon:
    exact: dict[str, _Entry]
    lower: dict[str, _Entry]
    emoji: dict[str, _Entry]
    phrases: dict[tuple[str, ...], _Entry]
    phrase_starts: frozenset[str]
    categories: dict[str, _Entry]
    suffixes: list[tuple[int, dict[str, _Entry]]]  # by affix length, longest first
    prefixes: list[tuple[int, dict[str, _Entry]]]
    terms: dict[str, list[_Term]]
    substrings: list[tuple[str, float, str]]
    allowed: list[str]
    tox_phrases: dict[str, list[tuple[tuple[str, ...], float, str]]]  # by first word
    tox_phrase_starts: frozenset[str]
    version: str
    pre: _Prechecks


_NO_ENTRY = _Entry(valence=None)

# Entries per cache of readings (tokens, known units, toxicity readings, sentiment fields): each is
# emptied when full.  The other modules read it as ``model._TOKEN_CACHE_SIZE`` (tests lower it).
_TOKEN_CACHE_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class _Prechecks:
    """Word sets behind the _TOX_HEAD/_TOX_NEXT/_PHRASE_NEXT token flags."""

    tox_heads: frozenset[str]
    tox_nexts: frozenset[str]
    phrase_nexts: frozenset[str]
    substrings: re.Pattern[str]  # any substring term or allowed substring
    key_flags: dict[str, int]  # unit key -> _PHRASE, _PHRASE_NEXT, _CLAP, _BUT (one lookup a unit)
    tox_starts: frozenset[str]  # first words of every toxicity phrase
    # For the shared reading of an unnamed plain word (see tokens._token): a superset of the
    # lower-case words that some table, rule or phrase reads by name, and a search that finds a
    # doubled letter (possible elongation) or any substring term or allowed substring.
    named: frozenset[str]
    marked: re.Pattern[str]
    # The part of ``named`` the toxicity rules read (see toxicity._read_tox): terms and their
    # plurals, toxicity phrase words, second-person targets, single letters.
    tox_named: frozenset[str]


_NO_EMOTIONS: tuple[float, ...] = (0.0,) * len(ESTIMATED_EMOTIONS)

#: The categories a per-channel emote may be given (rows of lexicon_data/categories.tsv).
CATEGORIES: tuple[str, ...] = (
    "laugh",
    "hype",
    "happy",
    "love",
    "dance",
    "approval",
    "sad",
    "disgust",
    "cringe",
    "fear",
    "anger",
    "surprise",
    "confused",
    "boredom",
    "sarcasm",
    "neutral",
)
