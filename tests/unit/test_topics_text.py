"""Pure parts of the topics package: tokens, Fightin' Words log-odds, c-TF-IDF, fusion."""

from __future__ import annotations

import math
from collections import Counter

from chatpulse.core.queries import load_queries
from topics.text import class_tfidf, distinctive_terms, rrf, text_weight, tokens


def test_tokens_keep_emote_case_and_drop_mentions_links_and_repeats() -> None:
    got = tokens("KEKW kekw @someone Boss FIGHT!! https://x.y/z boss 7 a", frozenset({"KEKW"}))
    assert got == ["KEKW", "kekw", "boss", "fight"]


def test_distinctive_terms_find_the_windows_own_words() -> None:
    background = Counter({"lol": 500, "the": 400, "boss": 12, "fight": 10, "hi": 50})
    window = Counter({"lol": 10, "the": 8, "boss": 10, "fight": 8})
    terms = distinctive_terms(window, background)
    assert [t.term for t in terms] == ["boss", "fight"]
    assert all(t.zscore > 1.96 for t in terms)


def test_distinctive_terms_match_monroe_formula_by_hand() -> None:
    # One term, numbers small enough to check: alpha0 = 10, background share 0.5 -> alpha 5.
    background = {"x": 100, "y": 100}
    window = {"x": 5, "y": 1}
    [term] = distinctive_terms(window, background, prior_weight=10, min_z=-99, min_count=2)
    y_i, y_j, a, n_i, n_j = 5, 95, 5.0, 6, 194
    delta = math.log((y_i + a) / (n_i + 10 - y_i - a)) - math.log((y_j + a) / (n_j + 10 - y_j - a))
    assert math.isclose(term.zscore, delta / math.sqrt(1 / (y_i + a) + 1 / (y_j + a)))


def test_the_prior_never_outweighs_a_tenth_of_the_data() -> None:
    # 40 terms of background: alpha0 500 would drown the window; capped at 4 it does not.
    background = {"boss": 12, "lol": 28}
    window = {"boss": 10, "lol": 2}
    assert [t.term for t in distinctive_terms(window, background)] == ["boss"]


def test_class_tfidf_ranks_a_class_s_own_terms_first() -> None:
    ranked = class_tfidf({0: {"boss": 5, "gg": 5}, 1: {"shark": 6, "gg": 5}}, top=1)
    assert ranked == {0: [("boss", ranked[0][0][1])], 1: [("shark", ranked[1][0][1])]}


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf([["a", "b"], ["b", "c"]], k=60)  # type: ignore[list-item]
    assert [key for _, key in fused] == ["b", "a", "c"]
    assert math.isclose(fused[0][0], 1 / 62 + 1 / 61)


def test_text_weight_is_sublinear() -> None:
    assert text_weight(1) == 1.0 and text_weight(1000) < 9


def test_topics_named_queries_load_through_the_core_loader() -> None:
    # The loader's own rules are tests/unit/test_queries.py's; here: the file is well formed
    # and holds what the topics code asks for.
    assert {"ask_fulltext", "upsert_window", "insert_topic"} <= set(load_queries("topics"))
