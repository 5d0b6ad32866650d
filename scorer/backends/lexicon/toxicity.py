"""Toxicity: a token's reading (terms, leetspeak, targets) and a message's score.

See the header of ``lexicon_data/toxicity.tsv`` for the weighting rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from scorer.backends.lexicon import model
from scorer.backends.lexicon.model import (
    _SINGLE,
    _TARGETED,
    _TARGETS,
    _TOX_HEAD,
    _TOX_NEXT,
    _TOX_START,
    _TOXIC,
    _UNNAMED,
    _Lexicon,
    _Prechecks,
    _ToxToken,
)
from scorer.backends.lexicon.text import (
    _DOUBLE,
    _RUN2,
    _collapse,
    _collapse_to_two,
    _first_group,
    _fold_word,
    _runs,
)


def _tox_flags(
    pre: _Prechecks, hits: tuple[object, ...], c1: str, single: str, target: bool
) -> int:
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


def _term_hits(lex: _Lexicon, form: str) -> list[tuple[float, str]]:
    return _term_hits_c1(lex, form)[0]


def _term_hits_c1(lex: _Lexicon, form: str) -> tuple[list[tuple[float, str]], str]:
    """``_term_hits`` and the collapsed form (``_collapse(form)``) it computes on the way."""
    hits: list[tuple[float, str]] = []
    if not form:
        return hits, form
    doubled = _DOUBLE.search(form) is not None
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
    """A token's toxicity reading; ``lex`` is the process's lexicon (the cache assumes one)."""
    if token[0] == "@" and len(token) > 1:
        return _ToxToken((), "", "", True, _TARGETED)  # a mention: a target, never an insult
    # The reading depends on the folded forms only: "you", "YOU" and "you!" share one (cached
    # by the form itself when there is one, else by the tuple of forms).
    key: str | tuple[str, ...]
    forms: tuple[str, ...]
    if token.isalpha() and token.isascii():
        key = token.lower()
        forms = (key,)  # (what _fold_word returns, without the call)
    else:
        forms = _fold_word(token)
        key = forms[0] if len(forms) == 1 else forms
    found = _TOX_READINGS.get(key)
    if found is not None:
        return found
    return _read_tox(lex, key, forms)


# The shared toxicity readings of letters that no toxicity rule names and of no letters at all.
_UNNAMED_TOX = _ToxToken((), _UNNAMED, "", False, 0)
_NO_LETTERS = _ToxToken((), "", "", False, 0)


def _read_tox(lex: _Lexicon, key: str | tuple[str, ...], forms: tuple[str, ...]) -> _ToxToken:
    """The toxicity reading of folded ``forms`` not in the cache yet, cached under ``key`` (the
    two shared readings below are returned uncached: the checks that find them are cheap)."""
    form = forms[0]
    pre = lex.pre
    if len(forms) == 1 and form not in pre.tox_named and pre.marked.search(form) is None:
        # Not a term, a toxicity phrase word, a target or a single letter, no doubled letter (the
        # collapsed form is the form) nor substring term: no hit, no flag, and the rules compare
        # the letters with names only, so any such letters read alike (see model._UNNAMED).
        return _UNNAMED_TOX if form else _NO_LETTERS
    hits, c1 = _term_hits_c1(lex, form)
    for other in forms[1:]:
        hits += _term_hits(lex, other)
    unique = tuple(dict.fromkeys(hits)) if hits else ()  # (each hit once, first seen first)
    single = forms[0] if len(forms[0]) == 1 else ""
    target = c1 in _TARGETS
    found = _ToxToken(unique, c1, single, target, _tox_flags(lex.pre, unique, c1, single, target))
    if len(_TOX_READINGS) >= model._TOKEN_CACHE_SIZE:
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
    # (_TOX_START in known flags: some token starts a phrase; unknown flags (-1): look.)
    if flags & _TOX_START and (
        flags != -1 or not lex.tox_phrase_starts.isdisjoint([info.c1 for info in merged])
    ):
        # Phrases run over the tokens that have letters (emoji and punctuation are skipped).
        words = [info.c1 for info in merged if info.c1]
        positions: list[int] = []  # the token index of each word, once a phrase matches
        phrases = lex.tox_phrases
        starts = lex.tox_phrase_starts
        for at in [at for at, c1 in enumerate(words) if c1 in starts]:
            for phrase, severity, kind in phrases[words[at]]:
                size = len(phrase)
                if tuple(words[at : at + size]) != phrase:
                    continue
                if not positions:
                    positions = [k for k, info in enumerate(merged) if info.c1]
                k = positions[at]
                where = positions[at : at + size]
                if kind == "allow":
                    cleared.update(where)
                elif kind == "interjection":
                    exclaimed.update(where)
                else:
                    quoted_here = inside[k] and kind != "slur"
                    remaining *= 1.0 - severity * (_QUOTED if quoted_here else 1.0)
                break
    mentioned = False  # an @mention close by
    # Where the second-person words and @mentions stand (none unless the flags say so).
    targets = [k for k, info in enumerate(merged) if info.target] if flags & _TARGETED else []
    for position in [position for position, info in enumerate(merged) if info.hits]:
        if position in cleared:
            continue
        info = merged[position]
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
                if near is None and not targets:
                    near = mentioned = False  # no "you" and no @mention in the message
                elif near is None:
                    # The window: four tokens before and two after (this one's other
                    # occurrences, the same reading, aside).
                    close = [merged[k] for k in targets if position - 4 <= k < position + 3]
                    near = any(w.c1 for w in close if w is not info)
                    mentioned = any(not w.c1 for w in close)
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


def _spelled_out(infos: list[_ToxToken]) -> bool:
    """Whether three single letters stand in a row ("f u c k", "i d i o t")."""
    run = 0
    for info in infos:
        run = run + 1 if info.single else 0
        if run == 3:
            return True
    return False
