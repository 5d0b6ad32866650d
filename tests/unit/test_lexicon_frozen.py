"""Frozen scores: the lexicon backend's results on a fixed real corpus never change by accident.

Speed work on the backend (token caches, cheap prechecks that skip passes) must leave every score
exactly as it was; see ``tests/lexicon_frozen.py`` for the corpus and how to regenerate the
expectation after a deliberate change.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from scorer.backends import lexicon
from scorer.backends.lexicon import LexiconBackend, loading, model, text, tokens, toxicity
from tests import lexicon_frozen


@pytest.fixture(scope="module")
def expected() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(lexicon_frozen.EXPECTED.read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return lexicon_frozen.corpus()


def _first_differences(texts: list[str], want: object, have: list[str]) -> list[str]:
    assert isinstance(want, list)
    return [text for text, a, b in zip(texts, want, have, strict=True) if a != b][:5]


def test_corpus_and_model_are_the_frozen_ones(
    expected: dict[str, object], texts: list[str]
) -> None:
    assert expected["texts"] == len(texts) > 3000
    assert expected["corpus"] == lexicon_frozen.digest("\n".join(texts))
    assert expected["model"] == LexiconBackend(cache_size=0).model, (
        "lexicon data or ENGINE_VERSION changed: regenerate with tests/lexicon_frozen.py"
    )


@pytest.mark.parametrize("channel", [None, "#nymn"])
def test_every_score_equals_the_frozen_one_cold_and_warm(
    expected: dict[str, object], texts: list[str], channel: str | None
) -> None:
    want = expected["channel" if channel else "plain"]
    lexicon.clear_caches()
    cold = lexicon_frozen.score_digests(texts, channel)
    assert cold == want, _first_differences(texts, want, cold)
    warm = lexicon_frozen.score_digests(texts, channel)  # token caches filled now
    assert warm == want, _first_differences(texts, want, warm)


def test_token_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    lexicon.clear_caches()
    monkeypatch.setattr(model, "_TOKEN_CACHE_SIZE", 50)
    backend = LexiconBackend(cache_size=0)
    words = [f"word{i} LUL{'L' * (i % 7)}" for i in range(400)]
    first = backend.score(words)
    caches = (tokens._TOKENS, tokens._KNOWN_UNITS, toxicity._TOX_READINGS)
    assert all(0 < len(cache) <= 50 for cache in caches)
    assert backend.score(words) == first  # re-read after eviction: same results
    lexicon.clear_caches()
    assert not any(caches)


def test_prechecks_cover_every_phrase() -> None:
    # The phrase passes are skipped unless a message holds a phrase's first and second word:
    # every phrase that adds toxicity, and every sentiment phrase, must be covered.
    lex = loading._lexicon()
    pre = loading._prechecks(lex)
    for start, entries in lex.tox_phrases.items():
        for phrase, _, kind in entries:
            if kind not in ("allow", "interjection"):
                assert start in pre.tox_heads and phrase[min(1, len(phrase) - 1)] in pre.tox_nexts
    for phrase in lex.phrases:  # (_merge_phrases reads phrases of two and three words only)
        assert len(phrase) < 2 or phrase[1] in pre.phrase_nexts
    assert not any(code.isascii() for code in lex.emoji)  # _units reads ASCII as word text


@pytest.mark.parametrize(
    ("text", "toxic"),
    [
        ("i hope you die", True),  # a threat phrase without any toxic term
        ("go die", True),
        ("hope you win", False),
        ("you can go now", False),
        ('he said "shut up" lol', True),
    ],
)
def test_phrase_toxicity_still_found(text: str, toxic: bool) -> None:
    lexicon.clear_caches()
    score = LexiconBackend(cache_size=0).score([text])[0]
    assert score.toxicity is not None and (score.toxicity > 0) is toxic, score.toxicity


def _fields(reading: tokens._Token, **unnamed: object) -> tuple[object, ...]:
    """A reading by value; ``unnamed`` replaces fields of its (single) unit and toxicity reading."""

    def values(item: object) -> tuple[object, ...]:
        fields = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}  # type: ignore[arg-type]
        return tuple({**fields, **{k: v for k, v in unnamed.items() if k in fields}}.values())

    return tuple(values(unit) for unit in reading.units), reading.flags, values(reading.tox)


def test_unnamed_words_share_a_reading_that_differs_from_their_own_only_by_name(
    texts: list[str],
) -> None:
    # A plain word that no table, rule or phrase names gets one shared reading (tokens._token);
    # its own reading, built the long way, differs only in names no rule compares with (and in
    # elongation, which only sentiment items and phrase words read).
    lex = loading._lexicon()
    lexicon.clear_caches()
    words = sorted({t for text in texts for t in text.split() if t.isascii() and t.isalpha()})
    shared = [w for w in words if tokens._token(lex, w).units[0].key == tokens._UNNAMED]
    assert len(shared) > 3000
    for word in shared:
        low = word.lower()
        hits, c1 = toxicity._term_hits_c1(lex, low)  # (the toxicity reading, without shortcut)
        unit = tokens._bare_word(lex, word, low, word.isupper())
        own = tokens._Token((unit,), 0, toxicity._ToxToken(tuple(hits), c1, "", False))
        assert own.units[0].key not in lex.pre.named and own.tox.c1 not in lex.pre.named, word
        assert not own.tox.hits, word
        own.flags = own.units[0].flags  # (no toxicity flag: c1 is not named, no hit)
        name = {"key": tokens._UNNAMED, "c1": tokens._UNNAMED, "elongated": False}
        assert _fields(own, **name) == _fields(tokens._token(lex, word)), word


def test_unnamed_letters_share_a_toxicity_reading(texts: list[str]) -> None:
    # toxicity._read_tox shares one reading for letters no toxicity rule names; the long way
    # finds no hit and no flag for them, and letters that no rule compares with a name.
    lex = loading._lexicon()
    shared = 0
    for form in sorted({text._fold_word(t)[0] for line in texts for t in line.split()}):
        reading = toxicity._read_tox(lex, form, (form,))
        if reading not in (toxicity._UNNAMED_TOX, toxicity._NO_LETTERS):
            continue
        shared += 1
        hits, c1 = toxicity._term_hits_c1(lex, form)
        assert not hits and c1 == form and len(form) != 1, form
        assert toxicity._tox_flags(lex.pre, (), c1, "", c1 in model._TARGETS) == 0, form
        assert c1 not in lex.pre.tox_named and (c1 == "") == (reading is toxicity._NO_LETTERS)
    assert shared > 3000


def test_punctuated_words_read_as_the_bare_word(texts: list[str]) -> None:
    lex = loading._lexicon()
    lexicon.clear_caches()
    punctuated = sorted(
        {t for text in texts for t in text.split() if t.isascii() and not t.isalnum()}
    )
    aliased = 0
    for token in punctuated:
        reading = tokens._token(lex, token)
        if tokens._punctuated_token(lex, token) is not None:
            aliased += 1
            word = token.strip(text._PUNCT)
            assert reading is tokens._TOKENS[word], token
            own = tokens._ascii_token(lex, token)  # built the long way, as the bare word's
            assert _fields(own) == _fields(tokens._plain_token(lex, word, word.lower())), token
    assert aliased > 1000


def test_a_capitalised_word_has_no_emote_seam() -> None:
    # tokens._token reads "Hello" without tokens._affix: every suffix holds a capital, which the
    # lower-case tail of such a word lacks (prefixes need a capital right after them).
    lex = loading._lexicon()
    assert not any(suffix.islower() for _, table in lex.suffixes for suffix in table)


def test_messages_with_equal_scores_share_one_score_until_the_caches_are_cleared() -> None:
    lexicon.clear_caches()
    backend = LexiconBackend(cache_size=0)  # (no message cache: two texts, two readings)
    first, second, other = backend.score(["hello there", "where is the bus", "great play"])
    assert first is second and first.sentiment == 0.0 and other.sentiment > 0.0
    lexicon.clear_caches()
    (again,) = backend.score(["hello there"])
    assert again == first and again is not first
