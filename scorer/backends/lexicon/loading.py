"""Reading and indexing the lexicon's data files and VADER's tables, once per process.

:func:`_lexicon` raises :class:`~scorer.backends.base.BackendError` on bad data, naming the file
and line.  See ``scorer/lexicon_data/README.md`` for the files.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import importlib.metadata
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from scorer.backends.base import BackendError
from scorer.backends.lexicon.model import (
    _BUT,
    _CLAP,
    _CLAP_KEYS,
    _EMOTION_INDEX,
    _PHRASE,
    _PHRASE_NEXT,
    _RULE_WORDS,
    _TARGETS,
    ENGINE_VERSION,
    _Entry,
    _Lexicon,
    _Prechecks,
    _Term,
)
from scorer.backends.lexicon.text import _bare_emoji, _collapse, _collapse_to_two, _fold_word, _runs

_DATA_FILES = (
    "categories.tsv",
    "affixes.tsv",
    "emotes.tsv",
    "emoji.tsv",
    "slang.tsv",
    "toxicity.tsv",
)


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


def _needs_alias(code: str) -> bool:
    # KEKW, PogChamp, 4Head: the lower-case spelling is chat's, not an English word.
    return any(ch.isupper() for ch in code[1:]) or any(ch.isdigit() for ch in code)


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
        pre=_build_prechecks(phrases, tox_phrases, substrings, allowed, exact, lower, terms),
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


def _prechecks(lex: _Lexicon) -> _Prechecks:
    return lex.pre


def _build_prechecks(
    phrases: Mapping[tuple[str, ...], _Entry],
    tox_phrases: Mapping[str, list[tuple[tuple[str, ...], float, str]]],
    substrings: Sequence[tuple[str, float, str]],
    allowed: Sequence[str],
    exact: Mapping[str, _Entry],
    lower: Mapping[str, _Entry],
    terms: Mapping[str, list[_Term]],
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
        ({"but"}, _BUT),
    ):
        for key in keys:
            key_flags[key] = key_flags.get(key, 0) | flag
    needles = "|".join(
        re.escape(needle) for needle in sorted({n for n, _, _ in substrings} | set(allowed))
    )
    # Every lower-case word read by name somewhere: a table entry (exact ones in any case), a word
    # of a phrase or a toxicity phrase at any position, a term (and its plural, see
    # toxicity._term_hits_c1), a rule word, a clap, a second-person target, and every single
    # letter (three in a row may spell a term).
    tox_named = {word for entries in tox_phrases.values() for p, _, _ in entries for word in p}
    tox_named.update(terms)
    tox_named.update(term + "s" for term in terms)
    tox_named.update(_TARGETS)
    tox_named.update(string.ascii_lowercase)
    named = {code.lower() for code in exact} | set(lower) | set(key_flags) | tox_named
    named.update(word for phrase in phrases for word in phrase)
    named.update(_RULE_WORDS | _CLAP_KEYS)
    return _Prechecks(
        frozenset(heads),
        frozenset(nexts),
        phrase_nexts,
        re.compile(needles or "(?!)"),
        key_flags,
        frozenset(tox_phrases),
        frozenset(named),
        re.compile(r"(.)\1|" + needles if needles else r"(.)\1"),
        frozenset(tox_named),
    )
