"""The ``lexicon`` scoring backend: VADER's rules plus a Twitch-aware lexicon of our own.

No model download, no GPU.  Token readings are cached (plain dicts of up to 65,536 tokens, emptied
when full; :func:`clear_caches` empties them), as are whole messages per backend instance;
``bench/score.py`` prints messages per second cold (every text distinct, every cache cleared),
warm and cached, each beside plain VADER on the same texts.  A new token costs about 5-10 us (its
sentiment and toxicity readings), a message with known tokens about 15-25 us; the phrase and
toxicity passes run only when a message holds what they could match (exact prechecks).
What it fills in a ``chat.message_scores`` row:

* ``sentiment``: VADER's compound score (Hutto & Gilbert 2014, "VADER: A Parsimonious Rule-based
  Model for Sentiment Analysis of Social Media Text", ICWSM-14) in -1..1, strictly inside the
  bounds.  The word valences and VADER's constants come from the MIT-licensed ``vaderSentiment``
  package (``vader_lexicon.txt``, ``BOOSTER_DICT``, ``NEGATE``, ``B_INCR``, ``C_INCR``,
  ``N_SCALAR``).  Its rules -- negation within three words, "no" before a sentiment word,
  boosters/dampeners with distance decay, ALL-CAPS emphasis when only some words are capitals,
  "least", the "but" shift (x0.5 before, x1.5 after), "!"/"?" emphasis, normalisation with
  alpha = 15 -- are re-implemented here over our own tokens rather than called through
  ``SentimentIntensityAnalyzer.polarity_scores``, because that method (checked against
  vaderSentiment 3.3.2) replaces every emoji by its English description before scoring (so 😭
  becomes "loudly crying face", negative, where chat means laughter), treats all-caps emote codes
  (LUL, KEKW, EZ) as shouting, knows nothing of elongation, and re-lowercases the whole sentence
  for each word, which is too slow for backfills.  Deliberate differences from the reference:
  booster words never carry a valence of their own; VADER's special-case idioms ("the shit",
  "yeah right") are read as phrases; its "but" rule is applied to every item (the reference's
  ``list.index`` lookup misplaces repeated values).
* ``p_negative``/``p_neutral``/``p_positive`` and ``label``: see
  :func:`compound_to_probabilities`.
* emotions: ``anger``, ``anticipation``, ``disgust``, ``fear``, ``joy``, ``love``, ``sadness``
  and ``surprise`` as 0..1 intensities (0.0 = no evidence); ``optimism``, ``pessimism`` and
  ``trust`` stay ``None``: no chat token is honest evidence of them.
* ``toxicity``: 0..1 from the word list in ``lexicon_data/toxicity.tsv``, see that file's
  header for the weighting (offensive on its own vs only when aimed at someone, quoting, banter,
  emphasis) and the obfuscation-resistant matching.  The product counts ``>= 0.5`` as toxic.

Twitch additions (data files under ``scorer/lexicon_data/``, each documenting its sources):
emote codes (``emotes.tsv``), emoji (``emoji.tsv``), chat slang and phrases (``slang.tsv``),
per-channel emotes given as categories (``categories.tsv``), and an emote-suffix heuristic
(``affixes.tsv``: an unknown ``nymnLUL`` reads as ``LUL``).  Elongation (``LULLLL``, ``noooo``)
reads as the base token plus VADER's booster increment; a repeated item counts 1, 1/2, 1/3, ...
(harmonic decay), so emote spam grows stronger but saturates.  Sarcasm markers (Kappa, 4Head,
Clueless, COPIUM, /s) turn the rest of the message's positive valence into half as much negative
and halve its negative valence: praise next to Kappa is usually mockery, a complaint next to it is
usually half a joke.  "sure buddy", "/s" and a Clap right after praise ("great play Clap") are
sarcasm markers too.  Laughter next to a put-down ("what a joke LUL", "SO BAD OMEGALUL") is
mockery: it counts negative (``_MOCK_SCALE``) and brings no joy.  Curly apostrophes are read as
straight ones, so "can’t" negates.

``model`` is ``lexicon@<ENGINE_VERSION>.<hash>``, the hash covering every data file, the
installed vaderSentiment version and :data:`ENGINE_VERSION` (bump that when the rules change), so
that a lexicon edit gives a new model name and re-scored rows never mix with old ones.  Per-channel
emote mappings are configuration and are *not* part of the model name.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import importlib.metadata
import math
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from scorer.backends.base import EMOTIONS, BackendError, Label, Score

__all__ = [
    "CATEGORIES",
    "ENGINE_VERSION",
    "ESTIMATED_EMOTIONS",
    "NEUTRAL_BAND",
    "LexiconBackend",
    "clear_caches",
    "compound_to_probabilities",
    "lexicon_version",
]

#: Bump when the scoring rules in this module change (the data files are hashed separately).
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

# Slope K of the compound -> probability softmax.  K = 10 minimised the mean log-loss of the
# true label's probability on tests/fixtures/labelled-chat/chat_sentiment.csv (0.39 nats; tried
# K = 2, 3, 4, 5, 6, 8, 10, 12, 15, 20) with the neutral band fixed.  A small, self-written set:
# refit when a larger labelled set exists.  See compound_to_probabilities.
_PROB_SLOPE = 10.0

_B_INCR = 0.293  # vaderSentiment.B_INCR: mean intensity increase of a booster word
_C_INCR = 0.733  # vaderSentiment.C_INCR: mean increase for an ALL-CAPS word among lower case
_N_SCALAR = -0.74  # vaderSentiment.N_SCALAR: negation flips and dampens
# VADER's normalisation constant ("alpha approximates the max expected value").
_ALPHA = 15.0
# Keep |sentiment| strictly below 1 even where float rounding of x / sqrt(x^2 + alpha) would not.
_MAX_COMPOUND = 0.9999

_SARCASM_POSITIVE = -0.5
_SARCASM_NEGATIVE = 0.5

# Emotion evidence of one item: its tag weight times this, raised when the item is emphasised
# (caps, elongation, a booster) and divided by its repeat count like its valence; a message's
# intensity is 1 - exp(-sum of evidence): 0 without evidence, ~0.5 for one plain emote, towards
# (never at) 1 as evidence piles up.
_EMOTION_BASE = 0.8
_EMOTION_EMPHASIS = 1.3

_DATA_FILES = (
    "categories.tsv",
    "affixes.tsv",
    "emotes.tsv",
    "emoji.tsv",
    "slang.tsv",
    "toxicity.tsv",
)

_EMOTION_INDEX = {name: i for i, name in enumerate(EMOTIONS)}
_ESTIMATED_INDEX = tuple(_EMOTION_INDEX[name] for name in ESTIMATED_EMOTIONS)

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
_LAUGH = re.compile(r"^(?:(?:[hj][aeiou]){2,}[hj]?|a?(?:ha){2,}h?|(?:lo)+l|(?:ke)+k)$")
_LAUGH_FIRST = frozenset("hjalk")  # every match of _LAUGH starts with one of these
_PUNCT = string.punctuation + "\u201c\u201d\u00ab\u00bb\u201e\u2026"

# Words whose presence changes how neighbours are read (VADER's rules look for them by name).
_RULE_WORDS = frozenset(
    {"no", "least", "so", "this", "never", "without", "doubt", "or", "nor", "at", "very", "but"}
)


# ------------------------------------------------------------------------------------------
# Data model
# ------------------------------------------------------------------------------------------


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
    flags: int = 0  # the token flags this unit sets apart from its key's (see _unit_flags)


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
# so the phrase passes run only when a message has a token of each kind (see _Prechecks).
_TOX_HEAD = 256  # first word of a toxicity phrase that adds toxicity (not allow/interjection)
_TOX_NEXT = 512  # second word of such a phrase
_TOX_PAIR = _TOX_HEAD | _TOX_NEXT
_PHRASE_NEXT = 1024  # second word of a sentiment phrase
_TOX_START = 2048  # first word of any toxicity phrase (allow and interjection included)
_TARGETED = 4096  # second person or an @mention (see _ToxToken.target)
_UPPER_WORD = 8192  # a word (see _Unit.word) in capitals
_LOWER_WORD = 16384  # a word not in capitals
# VADER's allcap_differential (some words in capitals, not all) is both bits together.
_CAPS_MIX = _UPPER_WORD | _LOWER_WORD
_PHRASE_PAIR = _PHRASE | _PHRASE_NEXT

# Laughter written as words (the laughter regex reduces hahaha/lololol/kekeke to these keys).
_LAUGH_WORDS = frozenset(
    {"lol", "lul", "lmao", "lmfao", "rofl", "haha", "hehe", "kek", "kekw", "xd"}
)
_JOY = _EMOTION_INDEX["joy"]
_LOVE = _EMOTION_INDEX["love"]
# A clap after these is celebration ("EZ Clap", "GG Clap"), after other praise it is sarcasm.
_CLAP_KEYS = frozenset({"clap", "\U0001f44f"})
_CELEBRATION = frozenset({"gg", "ggs", "ggwp", "wp", "ez", "ezpz", "w", "dub", "lets go"})
# Mocking laughter: laughter in a message that also carries a put-down this negative or worse
# ("what a joke LUL", "SO BAD OMEGALUL") laughs *at* something: it reads as contempt, not joy.
_MOCK_JUDGEMENT = -1.5
_MOCK_SCALE = -0.5  # the laughter's valence times this


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
    flags: int = 0  # the token flags this reading sets (_TOXIC, _TOX_HEAD...: see _tox_flags)


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


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------


def _rows(name: str, text: str) -> Iterable[tuple[int, list[str]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        yield number, [field.strip() for field in line.split("\t")]


def _parse_emotions(field: str, where: str) -> tuple[tuple[int, float], ...]:
    if field in ("", "-"):
        return ()
    out = []
    for part in field.split(","):
        name, _, weight = part.strip().partition(":")
        if name not in _EMOTION_INDEX:
            raise BackendError(f"{where}: unknown emotion {name!r}")
        value = float(weight) if weight else 1.0
        if not 0.0 <= value <= 1.0:
            raise BackendError(f"{where}: emotion weight {value} outside 0..1")
        out.append((_EMOTION_INDEX[name], value))
    return tuple(out)


def _field(fields: list[str], i: int) -> str:
    return fields[i] if i < len(fields) else ""


def _entry(
    fields: list[str], where: str, categories: Mapping[str, _Entry], base: _Entry | None = None
) -> _Entry:
    """Parse ``valence-or-category, emotions, flags`` (fields[1:4]) into an entry."""
    value, emotions, flags = _field(fields, 1), _field(fields, 2), _field(fields, 3).split(",")
    unknown = {f for f in flags if f} - {"sarcasm", "booster", "negator"}
    if unknown:
        raise BackendError(f"{where}: unknown flag(s) {sorted(unknown)}")
    template = base
    valence: float | None
    if value in categories:
        template = categories[value]
        valence = template.valence
    elif value == "":
        valence = base.valence if base is not None else None
    else:
        try:
            valence = float(value)
        except ValueError:
            raise BackendError(f"{where}: {value!r} is neither a number nor a category") from None
        if not -4.0 <= valence <= 4.0 and "booster" not in flags:
            raise BackendError(f"{where}: valence {valence} outside -4..4")
    parsed = _parse_emotions(emotions, where) if emotions else None
    if parsed is None:
        parsed = template.emotions if template is not None else ()
    if "booster" in flags:
        return _Entry(valence=None, booster=valence or 0.0)
    return _Entry(
        valence=valence,
        emotions=parsed,
        sarcasm="sarcasm" in flags or (template is not None and template.sarcasm),
        negator="negator" in flags,
    )


def _bare_emoji(text: str) -> str:
    return "".join(ch for ch in text if ch not in _IGNORABLE)


def _needs_alias(code: str) -> bool:
    # KEKW, PogChamp, 4Head: the lower-case spelling is chat's, not an English word.
    return any(ch.isupper() for ch in code[1:]) or any(ch.isdigit() for ch in code)


def _collapse(text: str) -> str:
    """Every run of a repeated character down to one ("idiooot" -> "idiot")."""
    # A function replacement: re's string templates are several times slower per match.
    return _RUN2.sub(_first_group, text) if _RUN2.search(text) else text


def _first_group(match: re.Match[str]) -> str:
    return match[1]


def _first_group_twice(match: re.Match[str]) -> str:
    return match[1] * 2


def _collapse_to_two(text: str) -> str:
    """Runs of three or more down to two ("POGGGERS" -> "POGGERS")."""
    return _RUN3.sub(_first_group_twice, text) if _RUN3.search(text) else text


def _runs(text: str) -> tuple[str, tuple[int, ...]]:
    if _RUN2.search(text) is None:
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


def _load_vader() -> tuple[dict[str, float], dict[str, float], frozenset[str], str]:
    try:
        from vaderSentiment import vaderSentiment as vader
    except ImportError as exc:  # pragma: no cover - a packaging error, not a runtime state
        raise BackendError(f"the lexicon backend needs the vaderSentiment package: {exc}") from exc
    analyzer = vader.SentimentIntensityAnalyzer()
    try:
        version = importlib.metadata.version("vaderSentiment")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        version = "unknown"
    boosters = {k: float(v) for k, v in vader.BOOSTER_DICT.items()}
    return dict(analyzer.lexicon), boosters, frozenset(vader.NEGATE), version


@functools.cache
def _lexicon() -> _Lexicon:
    """Load and index every data file once per process.  Raises BackendError on bad data."""
    folder = resources.files("scorer").joinpath("lexicon_data")
    texts: dict[str, str] = {}
    for name in _DATA_FILES:
        try:
            texts[name] = folder.joinpath(name).read_text("utf-8")
        except OSError as exc:
            raise BackendError(f"lexicon data file {name} cannot be read: {exc}") from exc
    vader_lexicon, vader_boosters, negate, vader_version = _load_vader()

    digest = hashlib.sha256(f"engine={ENGINE_VERSION};vader={vader_version}".encode())
    for name in _DATA_FILES:
        digest.update(b"\0" + name.encode() + b"\0" + texts[name].encode("utf-8"))
    version = f"{ENGINE_VERSION}.{digest.hexdigest()[:10]}"

    categories: dict[str, _Entry] = {}
    for n, fields in _rows("categories.tsv", texts["categories.tsv"]):
        categories[fields[0]] = _entry(fields, f"categories.tsv:{n}", {})

    affixes: dict[str, dict[int, dict[str, _Entry]]] = {"suffix": {}, "prefix": {}}
    for n, fields in _rows("affixes.tsv", texts["affixes.tsv"]):
        kind, affix, category = [*fields, "", "", ""][:3]
        if kind not in affixes or category not in categories or not affix:
            raise BackendError(f"affixes.tsv:{n}: expected suffix|prefix, affix, category")
        affixes[kind].setdefault(len(affix), {})[affix] = categories[category]
    suffixes = sorted(affixes["suffix"].items(), reverse=True)
    prefixes = sorted(affixes["prefix"].items(), reverse=True)

    # Lower-case table, lowest precedence first: VADER's words, its boosters and negators, then
    # lower-case aliases of emote codes, then our slang (which overrides VADER where chat differs).
    lower: dict[str, _Entry] = {w: _Entry(valence=v) for w, v in vader_lexicon.items()}
    for word, scalar in vader_boosters.items():
        if " " not in word:
            lower[word] = _Entry(valence=None, booster=scalar)
    for word in negate:
        lower[word] = _Entry(valence=None, negator=True)
    exact: dict[str, _Entry] = {}
    for n, fields in _rows("emotes.tsv", texts["emotes.tsv"]):
        code = fields[0]
        if code in exact:
            raise BackendError(f"emotes.tsv:{n}: duplicate emote {code!r}")
        exact[code] = _entry(fields, f"emotes.tsv:{n}", categories)
        if _needs_alias(code) and code.lower() not in vader_lexicon:
            lower[code.lower()] = exact[code]

    emoji: dict[str, _Entry] = {}
    for n, fields in _rows("emoji.tsv", texts["emoji.tsv"]):
        char = _bare_emoji(fields[0])
        if len(char) != 1 or char in emoji:
            raise BackendError(f"emoji.tsv:{n}: {fields[0]!r} is not one new emoji code point")
        emoji[char] = _entry(fields, f"emoji.tsv:{n}", categories)

    phrases: dict[tuple[str, ...], _Entry] = {}
    for idiom, value in _vader_idioms().items():
        phrases[tuple(idiom.split())] = _Entry(valence=value)
    for word, scalar in vader_boosters.items():
        if " " in word:
            phrases[tuple(word.split())] = _Entry(valence=None, booster=scalar)
    seen: set[str] = set()
    for n, fields in _rows("slang.tsv", texts["slang.tsv"]):
        token, where = fields[0], f"slang.tsv:{n}"
        if token in seen:
            raise BackendError(f"{where}: duplicate slang entry {token!r}")
        seen.add(token)
        if " " in token:
            words = tuple(token.lower().split())
            if len(words) > 3:
                raise BackendError(f"{where}: phrases have at most three words")
            phrases[words] = _entry(fields, where, categories)
        elif token != token.lower():
            exact[token] = _entry(fields, where, categories, exact.get(token))
        else:
            lower[token] = _entry(fields, where, categories, lower.get(token))

    terms, substrings, allowed, tox_phrases = _load_toxicity(texts["toxicity.tsv"])
    return _Lexicon(
        exact=exact,
        lower=lower,
        emoji=emoji,
        phrases=phrases,
        phrase_starts=frozenset(p[0] for p in phrases),
        categories=categories,
        suffixes=suffixes,
        prefixes=prefixes,
        terms=terms,
        substrings=substrings,
        allowed=allowed,
        tox_phrases=tox_phrases,
        tox_phrase_starts=frozenset(tox_phrases),
        version=version,
        pre=_build_prechecks(phrases, tox_phrases, substrings, allowed),
    )


def _vader_idioms() -> dict[str, float]:
    from vaderSentiment import vaderSentiment as vader

    return {k: float(v) for k, v in vader.SPECIAL_CASES.items()}


_TOX_KINDS = frozenset(
    {"slur", "threat", "harassment", "insult", "profanity", "interjection", "allow"}
)


def _load_toxicity(
    text: str,
) -> tuple[
    dict[str, list[_Term]],
    list[tuple[str, float, str]],
    list[str],
    dict[str, list[tuple[tuple[str, ...], float, str]]],
]:
    terms: dict[str, list[_Term]] = {}
    substrings: list[tuple[str, float, str]] = []
    allowed: list[str] = []
    phrases: dict[str, list[tuple[tuple[str, ...], float, str]]] = {}
    for n, fields in _rows("toxicity.tsv", text):
        where = f"toxicity.tsv:{n}"
        raw, severity_text, kind, match, encoding = [*fields, "", "", "", "", ""][:5]
        if encoding == "rot13":
            raw = codecs.decode(raw, "rot13")
        elif encoding != "plain":
            raise BackendError(f"{where}: encoding must be plain or rot13")
        try:
            severity = float(severity_text)
        except ValueError:
            raise BackendError(f"{where}: severity {severity_text!r} is not a number") from None
        if kind not in _TOX_KINDS or not 0.0 <= severity <= 1.0:
            raise BackendError(f"{where}: bad kind {kind!r} or severity {severity}")
        if kind == "interjection" and match != "phrase":
            raise BackendError(f"{where}: an interjection is a phrase")
        words = [_fold_word(w)[0] for w in raw.split()]
        if match == "phrase":
            key = tuple(_collapse(w) for w in words)
            phrases.setdefault(key[0], []).append((key, severity, kind))
        elif match == "substring" and kind == "allow":
            allowed.append(_collapse_to_two(words[0]))
        elif match == "substring":
            substrings.append((_collapse_to_two(words[0]), severity, kind))
            c1, counts = _runs(words[0])  # the stem on its own is a token too ("fuck")
            terms.setdefault(c1, []).append(_Term(counts, severity, kind))
        elif match == "token":
            c1, counts = _runs(words[0])
            terms.setdefault(c1, []).append(_Term(counts, severity, kind))
        else:
            raise BackendError(f"{where}: match must be token, substring or phrase")
    for entries in phrases.values():
        entries.sort(key=lambda entry: -len(entry[0]))  # longest phrase first
    return terms, substrings, allowed, phrases


def lexicon_version() -> str:
    """Return the version part of the backend's model name (``<ENGINE_VERSION>.<hash>``).

    Deterministic for a given code, data files and vaderSentiment version.  Raises
    :class:`BackendError` when the data files cannot be loaded.
    """
    return _lexicon().version


# ------------------------------------------------------------------------------------------
# Tokens
# ------------------------------------------------------------------------------------------


_NO_ENTRY = _Entry(valence=None)


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
        if len(_KNOWN_UNITS) >= _TOKEN_CACHE_SIZE:
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
    entry = exact.get(stripped)
    if entry is not None:
        return _known_unit(stripped.lower(), entry, False, upper, False, False)
    low = stripped.lower()
    entry = lower.get(low)
    if entry is not None:
        return _known_unit(low, entry, True, upper, True, False)
    elongated = False
    if _RUN2.search(stripped) is not None:  # no repeated letter: no elongation to undo
        elongated = _RUN3.search(stripped) is not None
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
_TOKEN_CACHE_SIZE = 1 << 16
_TOKENS: dict[str, _Token] = {}


def _token(token: str) -> _Token:
    """Everything about one whitespace-separated token, read and cached (chat repeats tokens).

    The caller has looked in ``_TOKENS`` already (``_TOKENS.get(token) or _token(token)``).
    """
    lex = _lexicon()
    if token.isascii():  # (what _units does, without the call)
        unit = _word(lex, token)
        units: tuple[_Unit, ...] = () if unit is None else (unit,)
    else:
        units = _units(lex, token)
    found = _make_token(lex, units, _tox_token(lex, token))
    if len(_TOKENS) >= _TOKEN_CACHE_SIZE:
        _TOKENS.clear()
    _TOKENS[token] = found
    return found


def clear_caches() -> None:
    """Forget every cached token reading (benchmarks use it to measure never-seen text)."""
    _TOKENS.clear()
    _KNOWN_UNITS.clear()
    _TOX_READINGS.clear()
    _SENTIMENT_FIELDS.clear()
    _emotion_map.cache_clear()


@dataclass(frozen=True, slots=True)
class _Prechecks:
    """Word sets behind the _TOX_HEAD/_TOX_NEXT/_PHRASE_NEXT token flags."""

    tox_heads: frozenset[str]
    tox_nexts: frozenset[str]
    phrase_nexts: frozenset[str]
    substrings: re.Pattern[str]  # any substring term or allowed substring
    key_flags: dict[str, int]  # unit key -> _PHRASE | _PHRASE_NEXT | _CLAP (one lookup per unit)
    tox_starts: frozenset[str]  # first words of every toxicity phrase


def _prechecks(lex: _Lexicon) -> _Prechecks:
    return lex.pre


def _build_prechecks(
    phrases: Mapping[tuple[str, ...], _Entry],
    tox_phrases: Mapping[str, list[tuple[tuple[str, ...], float, str]]],
    substrings: Sequence[tuple[str, float, str]],
    allowed: Sequence[str],
) -> _Prechecks:
    heads: set[str] = set()
    nexts: set[str] = set()
    for start, entries in tox_phrases.items():
        for phrase, _, kind in entries:
            if kind in ("allow", "interjection"):
                continue  # these only change how the terms of a message count
            heads.add(start)
            # A one-word phrase needs no second word: its head sets both flags.
            nexts.add(phrase[1] if len(phrase) > 1 else start)
    phrase_nexts = frozenset(p[1] for p in phrases if len(p) > 1)
    key_flags: dict[str, int] = {}
    for keys, flag in (
        ({p[0] for p in phrases}, _PHRASE),
        (phrase_nexts, _PHRASE_NEXT),
        (_CLAP_KEYS, _CLAP),
    ):
        for key in keys:
            key_flags[key] = key_flags.get(key, 0) | flag
    return _Prechecks(
        frozenset(heads),
        frozenset(nexts),
        phrase_nexts,
        re.compile(
            "|".join(
                re.escape(needle)
                for needle in sorted({n for n, _, _ in substrings} | set(allowed))
            )
            or "(?!)"
        ),
        key_flags,
        frozenset(tox_phrases),
    )


def _make_token(lex: _Lexicon, units: tuple[_Unit, ...], tox: _ToxToken) -> _Token:
    flags = tox.flags
    key_flags = lex.pre.key_flags
    for unit in units:
        flags |= unit.flags | key_flags.get(unit.key, 0)
    return _Token(units, flags, tox)


def _tox_flags(pre: _Prechecks, hits: tuple[object, ...], c1: str, single: str, target: bool) -> int:
    """The token flags a toxicity reading sets (see _ToxToken.flags)."""
    flags = _TOXIC if hits else 0
    if c1:  # (no phrase word is empty: see test_prechecks_cover_every_phrase)
        if c1 in pre.tox_heads:
            flags |= _TOX_HEAD
        if c1 in pre.tox_nexts:
            flags |= _TOX_NEXT
        if c1 in pre.tox_starts:
            flags |= _TOX_START
        if single:
            flags |= _SINGLE
    if target:
        flags |= _TARGETED
    return flags


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
    out: list[_Unit] = []
    keys = [unit.key for unit in units]
    i, n = 0, len(units)
    while i < n:
        unit = units[i]
        if unit.key in lex.phrase_starts:
            for size in (3, 2):
                if i + size <= n:
                    key = tuple(keys[i : i + size])
                    entry = lex.phrases.get(key)
                    if entry is not None:
                        parts = units[i : i + size]
                        upper = all(u.upper for u in parts)
                        merged = _unit(
                            " ".join(key),
                            entry,
                            word=True,
                            upper=upper,
                            from_lower=True,
                            elongated=False,
                        )
                        if any(u.elongated for u in parts):
                            merged = _with_elongation(merged)
                        out.append(merged)
                        i += size
                        break
            else:
                out.append(unit)
                i += 1
            continue
        out.append(unit)
        i += 1
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


# ------------------------------------------------------------------------------------------
# Sentiment and emotions
# ------------------------------------------------------------------------------------------


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


def _analyse(
    units: list[_Unit], flags: int, text: str
) -> tuple[float, tuple[float, ...]]:
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
        for unit in units:
            value = unit.value
            if value is None:
                continue
            repeat = seen[unit.key] = seen.get(unit.key, 0) + 1
            total += value / repeat
            if unit.evidence:
                any_emotion = True
                for index, amount in unit.evidence:
                    evidence[index] += amount / repeat
    else:
        total, any_emotion = _analyse_rules(
            units, cap_diff, bool(flags & _SARCASM), mocking, seen, evidence
        )
    if total:
        emphasis = _punctuation_emphasis(text)
        total += emphasis if total > 0 else -emphasis
    compound = total / math.sqrt(total * total + _ALPHA)
    compound = max(-_MAX_COMPOUND, min(_MAX_COMPOUND, compound))
    if not any_emotion:
        return compound, _NO_EMOTIONS
    return compound, tuple(1.0 - math.exp(-evidence[i]) for i in _ESTIMATED_INDEX)


def _analyse_rules(
    units: list[_Unit],
    cap_diff: bool,
    sarcasm: bool,
    mocking: bool,
    seen: dict[str, int],
    evidence: list[float],
) -> tuple[float, bool]:
    """The full rule pass; returns (sum of valences, whether any emotion evidence was added).

    ``mocking``: the message laughs and holds a put-down; it is mockery when the put-down is
    still one after negation ("SO BAD OMEGALUL", not "not bad LUL"), and then its laughter
    counts as contempt (``_MOCK_SCALE``), without joy.
    """
    # One walk over the items: each sentiment item with its value after the neighbour rules.
    items: list[tuple[_Unit, float]] = []
    before_but = -1  # how many sentiment items precede the first "but"
    plain = False  # a non-sentiment item is there (its 0.0 joins the sum, as in VADER)
    for i, unit in enumerate(units):
        value = unit.valence
        if value is None:
            plain = True
            if before_but < 0 and unit.key == "but":
                before_but = len(items)
        elif (
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


_NO_EMOTIONS: tuple[float, ...] = (0.0,) * len(ESTIMATED_EMOTIONS)


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
    if len(_SENTIMENT_FIELDS) >= _TOKEN_CACHE_SIZE:
        _SENTIMENT_FIELDS.clear()
    _SENTIMENT_FIELDS[compound] = fields
    return fields


def _label(compound: float) -> Label:
    if compound > NEUTRAL_BAND:
        return "positive"
    if compound < -NEUTRAL_BAND:
        return "negative"
    return "neutral"


# ------------------------------------------------------------------------------------------
# Toxicity
# ------------------------------------------------------------------------------------------

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
_TARGETS = frozenset({"you", "u", "ur", "your", "youre", "yourself", "ure", "ya"})


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


def _term_hits(lex: _Lexicon, form: str) -> list[tuple[float, str]]:
    return _term_hits_c1(lex, form)[0]


def _term_hits_c1(lex: _Lexicon, form: str) -> tuple[list[tuple[float, str]], str]:
    """``_term_hits`` and the collapsed form (``_collapse(form)``) it computes on the way."""
    hits: list[tuple[float, str]] = []
    if not form:
        return hits, form
    doubled = _RUN2.search(form) is not None
    c1 = _RUN2.sub(_first_group, form) if doubled else form  # (_collapse)
    terms = lex.terms
    plural = len(c1) > 3 and c1[-1] == "s"
    if c1 in terms or (plural and c1[:-1] in terms):
        counts = _runs(form)[1] if doubled else (1,) * len(form)
        readings = [(c1, counts)]
        if plural:
            readings.append((c1[:-1], counts[:-1]))
        for key, have in readings:
            for term in terms.get(key, ()):
                # The term's own double letters must be there: keeps "niger" (and "as") apart.
                if all(h >= t for h, t in zip(have, term.counts, strict=True)):
                    hits.append((term.severity, term.kind))
    if len(form) >= 5 and lex.substrings:
        two = _collapse_to_two(form) if doubled else form
        one = c1  # elongated stems: "motherfuuuckers"
        anywhere = lex.pre.substrings.search
        if anywhere(two) is None and (one == two or anywhere(one) is None):
            return hits, c1  # no needle and no allowed word: the loops below add nothing
        for benign in lex.allowed:
            if benign in two:
                two = two.replace(benign, "")
                one = _collapse(two)
        for needle, severity, kind in lex.substrings:
            if (needle in two or needle in one) and (severity, kind) not in hits:
                hits.append((severity, kind))
    return hits, c1


def _tox_token(lex: _Lexicon, token: str) -> _ToxToken:
    if token[0] == "@" and len(token) > 1:
        return _ToxToken((), "", "", True, _TARGETED)  # a mention: a target, never an insult
    # The reading depends on the folded forms only: "you", "YOU" and "you!" share one (cached
    # by the form itself when there is one, else by the tuple of forms).
    key: str | tuple[str, ...]
    if token.isalpha() and token.isascii():
        key = token.lower()
        forms = (key,)  # (what _fold_word returns, without the call)
    else:
        forms = _fold_word(token)
        key = forms[0] if len(forms) == 1 else forms
    shared = lex is _lexicon()
    found = _TOX_READINGS.get(key) if shared else None
    if found is not None:
        return found
    hits, c1 = _term_hits_c1(lex, forms[0])
    for form in forms[1:]:
        hits += _term_hits(lex, form)
    unique = tuple(dict.fromkeys(hits)) if hits else ()  # (each hit once, first seen first)
    single = forms[0] if len(forms[0]) == 1 else ""
    target = c1 in _TARGETS
    found = _ToxToken(unique, c1, single, target, _tox_flags(lex.pre, unique, c1, single, target))
    if shared:
        if len(_TOX_READINGS) >= _TOKEN_CACHE_SIZE:
            _TOX_READINGS.clear()
        _TOX_READINGS[key] = found
    return found


# Toxicity readings by folded forms (see _tox_token), for the process's lexicon.
_TOX_READINGS: dict[str | tuple[str, ...], _ToxToken] = {}


# Toxicity weights (toxicity.tsv's header explains each rule).
_TARGET_GAIN = 0.5  # an aimed insult/profanity: s + (1 - s) * gain
_QUOTED = 0.3  # reported speech inside quotation marks
_BANTER = 0.5  # a mild insult among laughter or affection
_BANTER_MAX = 0.5  # "mild": severity below this
_CHEER = 0.4  # unaimed profanity in a positive message
_INTERJECTION = 0.3  # profanity inside an exclamation ("holy shit")

# Quotation marks, after curly apostrophes were normalised to "'".
_QUOTE_OPEN = frozenset("\"'\u201c\u00ab\u2018")
_QUOTE_CLOSE = frozenset("\"'\u201d\u00bb\u2019")
_QUOTE_CHARS = frozenset(_QUOTE_OPEN | _QUOTE_CLOSE)
# A quotation span starts at a token that starts with an opening mark: without one, none.
_QUOTE_START = re.compile("(?:^|\\s)[" + re.escape("".join(sorted(_QUOTE_OPEN))) + "]")
_TRAILING = ".,!?;:)]"
_REPOST = re.compile(r"^.@\w+:")


def _quoted_tokens(tokens: Sequence[str]) -> list[bool] | None:
    """Which tokens stand inside a closed pair of quotation marks; None when none do.

    A span opens at a token that starts with a quotation mark and closes at the first token that
    ends with one (trailing punctuation aside); a span never closed is not a quotation (an
    apostrophe such as "'em" or "goin'").  A span that starts with ``@name:`` is a repost
    (Twitter's manual retweet, ``"@name: text"``), which publishes the text again: not reported
    speech.
    """
    flags = [False] * len(tokens)
    found = False
    start = -1
    for i, token in enumerate(tokens):
        core = token.rstrip(_TRAILING)
        if start < 0:
            if len(core) > 1 and core[0] in _QUOTE_OPEN:
                start = i
                if len(core) > 2 and core[-1] in _QUOTE_CLOSE:
                    flags[i] = found = True
                    start = -1
        elif core and core[-1] in _QUOTE_CLOSE:
            if not _REPOST.match(tokens[start]):
                for j in range(start, i + 1):
                    flags[j] = True
                found = True
            start = -1
    return flags if found else None


def _toxicity(
    lex: _Lexicon,
    infos: list[_ToxToken],
    quoted: list[bool] | None = None,
    *,
    banter: bool = False,
    cheer: bool = False,
    flags: int = -1,
) -> float:
    """Toxicity of a message from its tokens' readings (see toxicity.tsv's header).

    ``quoted``: per token, inside quotation marks; ``banter``: the message laughs or shows
    affection; ``cheer``: its sentiment is positive; ``flags``: the tokens' flags or-ed together
    (-1, every bit, when unknown): passes that their bits rule out are skipped.
    """
    # Join runs of three or more single letters: "f u c k", "i d i o t".
    merged: list[_ToxToken] = []
    inside: list[bool] = []
    i = 0
    n = len(infos)
    if not flags & _SINGLE or not _spelled_out(infos):  # the common case: nothing to join
        merged = infos
        inside = quoted if quoted else [False] * n
        i = n
    else:
        flags = -1  # joined letters are new tokens: their bits are unknown
    while i < n:
        j = i
        while j < n and infos[j].single:
            j += 1
        if j - i >= 3:
            word = "".join(info.single for info in infos[i:j])
            hits = tuple(_term_hits(lex, word))
            c1 = _collapse(word)
            merged.append(_ToxToken(hits, c1, "", c1 in _TARGETS))
            inside.append(quoted[i] if quoted else False)
            i = j
        else:
            merged.append(infos[i])
            inside.append(quoted[i] if quoted else False)
            i += 1
    remaining = 1.0
    cleared: set[int] = set()
    exclaimed: set[int] = set()
    if flags & _TOX_START and not lex.tox_phrase_starts.isdisjoint([info.c1 for info in merged]):
        # Phrases run over the tokens that have letters (emoji and punctuation are skipped).
        seq = [(k, info.c1) for k, info in enumerate(merged) if info.c1]
        words = [c1 for _, c1 in seq]
        for at, (k, c1) in enumerate(seq):
            for phrase, severity, kind in lex.tox_phrases.get(c1, ()):
                size = len(phrase)
                if tuple(words[at : at + size]) != phrase:
                    continue
                where = [seq[at + m][0] for m in range(size)]
                if kind == "allow":
                    cleared.update(where)
                elif kind == "interjection":
                    exclaimed.update(where)
                else:
                    quoted_here = inside[k] and kind != "slur"
                    remaining *= 1.0 - severity * (_QUOTED if quoted_here else 1.0)
                break
    mentioned = False  # an @mention close by
    targeted = bool(flags & _TARGETED)
    for position, info in enumerate(merged):
        if not info.hits or position in cleared:
            continue
        in_quote = inside[position]
        near: bool | None = None  # "you/u/ur..." close by
        for severity, kind in info.hits:
            if kind == "slur":
                weight = severity
            elif in_quote:
                weight = severity * _QUOTED
            elif kind in ("threat", "harassment"):
                weight = severity
            else:
                if near is None and not targeted:
                    near = mentioned = False  # no "you" and no @mention in the message
                elif near is None:
                    window = merged[max(0, position - 4) : position + 3]
                    near = any(w.target and w.c1 for w in window if w is not info)
                    mentioned = any(w.target and not w.c1 for w in window)
                if banter and kind == "insult" and severity < _BANTER_MAX:
                    weight = severity * _BANTER
                elif kind == "profanity" and not near and position in exclaimed:
                    weight = severity * _INTERJECTION
                elif kind == "profanity" and not near and cheer:
                    weight = severity * _CHEER
                elif near or mentioned:
                    weight = severity + (1.0 - severity) * _TARGET_GAIN
                else:
                    weight = severity
            remaining *= 1.0 - weight
    return min(1.0, max(0.0, 1.0 - remaining))


# ------------------------------------------------------------------------------------------
# The backend
# ------------------------------------------------------------------------------------------

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


class LexiconBackend:
    """VADER plus a Twitch-aware lexicon; see the module docstring for what each column means.

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
        """Score each text; one :class:`Score` per text, same order (see ScoringBackend)."""
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
        if table is None:
            read = [cached(text_token) or _token(text_token) for text_token in tokens]
        else:
            read = [
                table.get(text_token)
                or table.get(text_token.strip(_PUNCT))
                or cached(text_token)
                or _token(text_token)
                for text_token in tokens
            ]
        for token in read:
            units += token.units
            flags |= token.flags
        if flags & _PHRASE_PAIR == _PHRASE_PAIR:
            units = _merge_phrases(lex, units)
            for unit in units:  # a phrase may be a booster ("kind of") or sarcasm ("yeah right")
                if unit.special:
                    flags |= _SPECIAL
                if unit.sarcasm:
                    flags |= _SARCASM
        if flags & _CLAP and _sarcastic_claps(units):
            flags |= _SARCASM
        compound, emotions = _analyse(units, flags, text) if units else (0.0, _NO_EMOTIONS)
        toxicity = 0.0
        if flags & (_TOXIC | _TOX_HEAD | _SINGLE):
            toxic = [token.tox for token in read]
            if (
                flags & _TOXIC
                or flags & _TOX_PAIR == _TOX_PAIR
                or (flags & _SINGLE and _spelled_out(toxic))
            ):
                toxicity = _toxicity(
                    lex,
                    toxic,
                    _quoted_tokens(tokens) if _QUOTE_START.search(text) else None,
                    banter=bool(flags & _BANTERING),
                    cheer=compound > NEUTRAL_BAND,
                    flags=flags,
                )
        fields = _SENTIMENT_FIELDS.get(compound)
        if fields is None:
            fields = _sentiment_fields(compound)
        # Positional, in Score's field order: keywords cost a frozen dataclass a third more.
        return Score(
            compound,  # sentiment
            *fields,  # label, p_negative, p_neutral, p_positive
            _emotion_map(emotions),  # emotions
            toxicity,  # toxicity
        )


def _spelled_out(infos: list[_ToxToken]) -> bool:
    """Whether three single letters stand in a row ("f u c k", "i d i o t")."""
    run = 0
    for info in infos:
        run = run + 1 if info.single else 0
        if run == 3:
            return True
    return False


# Apostrophe look-alikes typed by phones and IMEs; VADER's negation list spells "can't".
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'"})


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
    # Read-only, so that cached Scores can be shared between callers safely.
    filled: dict[str, float | None] = dict.fromkeys(EMOTIONS)
    for name, value in zip(ESTIMATED_EMOTIONS, values, strict=True):
        filled[name] = value
    return MappingProxyType(filled)
