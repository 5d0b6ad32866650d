"""Unit tests for the scoring-backend interface and the ``lexicon`` backend."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gc
import math
from importlib import resources
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import (
    B_INCR,
    C_INCR,
    N_SCALAR,
    SentimentIntensityAnalyzer,
)

from chatpulse.core.errors import ChatpulseError
from scorer.backends import EMOTIONS, BackendError, Score, ScoringBackend, lexicon, load_backend
from scorer.backends.lexicon import (
    CATEGORIES,
    ESTIMATED_EMOTIONS,
    NEUTRAL_BAND,
    LexiconBackend,
    compound_to_probabilities,
    lexicon_version,
    loading,
    model,
)
from tests.paths import LABELLED_CHAT

LABELLED = LABELLED_CHAT
MACRO_F1_FLOOR = 0.75


@pytest.fixture(scope="module")
def backend() -> LexiconBackend:
    return LexiconBackend()


def one(backend: LexiconBackend, text: str, channel: str | None = None) -> Score:
    return backend.score([text], None if channel is None else [channel])[0]


def emo(score: Score, name: str) -> float:
    """An estimated emotion's intensity (fails the test if the backend left it None)."""
    value = score.emotions[name]
    assert value is not None, name
    return value


# --- interface ------------------------------------------------------------------------------


def test_emotions_are_the_eleven_message_scores_columns_in_order() -> None:
    assert EMOTIONS == (
        "anger",
        "anticipation",
        "disgust",
        "fear",
        "joy",
        "love",
        "optimism",
        "pessimism",
        "sadness",
        "surprise",
        "trust",
    )


def test_load_backend_gives_a_lexicon_backend_that_satisfies_the_protocol() -> None:
    loaded = load_backend("lexicon")
    assert isinstance(loaded, LexiconBackend)
    protocol_user: ScoringBackend = loaded  # static check: the class satisfies the protocol
    assert protocol_user.model.startswith("lexicon@")


def test_onnx_backend_without_an_export_raises_backend_error() -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(BackendError):
        load_backend("onnx", model_dir=Path("/nonexistent/chatpulse-test/models"))


def test_unknown_backend_name_raises_backend_error_naming_it() -> None:
    with pytest.raises(BackendError, match="'vader2'"):
        load_backend("vader2")
    assert issubclass(BackendError, ChatpulseError)


def test_load_backend_rejects_options_the_backend_does_not_take() -> None:
    with pytest.raises(BackendError, match="bad options"):
        load_backend("lexicon", model_dir="/nowhere")


def test_categories_constant_matches_the_categories_file() -> None:
    assert set(CATEGORIES) == set(loading._lexicon().categories)


def test_score_is_frozen() -> None:
    score = one(LexiconBackend(), "KEKW")
    with pytest.raises(dataclasses.FrozenInstanceError):
        score.sentiment = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        score.emotions["joy"] = 1.0  # type: ignore[index]


# --- clear cases ----------------------------------------------------------------------------


def test_pogchamp_lets_go_is_positive_with_surprise_and_joy(backend: LexiconBackend) -> None:
    score = one(backend, "PogChamp LETS GOOO")
    assert score.label == "positive" and score.sentiment > 0.5
    assert emo(score, "surprise") > 0.2 and emo(score, "joy") > 0.3
    assert emo(score, "anticipation") > 0.3


def test_sadge_is_negative_sadness(backend: LexiconBackend) -> None:
    score = one(backend, "Sadge")
    assert score.label == "negative"
    assert emo(score, "sadness") > 0.3 and emo(score, "joy") == 0.0


def test_kekw_is_positive_joy(backend: LexiconBackend) -> None:
    score = one(backend, "KEKW")
    assert score.label == "positive" and emo(score, "joy") > 0.3


def test_boredom_emote_and_words_are_negative(backend: LexiconBackend) -> None:
    assert one(backend, "this is so boring ResidentSleeper").sentiment < -0.5


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("W", "positive"),
        ("L streamer", "negative"),
        ("huge W", "positive"),
        ("massive L", "negative"),
        ("W streamer", "positive"),
        ("w", "positive"),
    ],
)
def test_w_and_l_are_wins_and_losses(backend: LexiconBackend, text: str, label: str) -> None:
    assert one(backend, text).label == label


def test_booster_strengthens_w_and_l(backend: LexiconBackend) -> None:
    assert one(backend, "huge W").sentiment > one(backend, "W").sentiment
    assert one(backend, "massive L").sentiment < one(backend, "L").sentiment


def test_negation_turns_bad_positive(backend: LexiconBackend) -> None:
    assert one(backend, "not bad at all").label == "positive"
    assert one(backend, "not good").label == "negative"


def test_negated_emotion_word_gives_no_emotion(backend: LexiconBackend) -> None:
    assert emo(one(backend, "happy"), "joy") > 0.3
    assert emo(one(backend, "not happy"), "joy") == 0.0


def test_kappa_sarcasm_turns_praise_down(backend: LexiconBackend) -> None:
    plain = one(backend, "best game ever").sentiment
    sarcastic = one(backend, "Kappa best game ever").sentiment
    assert plain > 0.3
    assert sarcastic < 0 < plain


def test_sarcasm_marker_alone_is_neutral(backend: LexiconBackend) -> None:
    assert one(backend, "Kappa").label == "neutral"


def test_skull_emoji_is_laughter_not_death(backend: LexiconBackend) -> None:
    score = one(backend, "💀💀💀")
    assert score.label == "positive"
    assert emo(score, "joy") > 0.3
    assert emo(score, "sadness") == 0.0 and emo(score, "fear") == 0.0


def test_loudly_crying_emoji_reads_mostly_as_laughter(backend: LexiconBackend) -> None:
    score = one(backend, "😭😭 im dead")
    assert score.label == "positive"
    assert emo(score, "joy") > emo(score, "sadness") > 0.0


def test_emoji_glued_to_words_and_variation_selectors_are_read(backend: LexiconBackend) -> None:
    assert one(backend, "lol😂").sentiment > one(backend, "lol").sentiment
    assert emo(one(backend, "❤️"), "love") > 0.3  # U+2764 U+FE0F
    assert one(backend, "👏🏽").label == "positive"  # skin-tone modifier stripped


def test_duplicate_bypass_tag_character_is_ignored(backend: LexiconBackend) -> None:
    # Chatterino/7TV append U+E0000 to repeated messages (seen in the #nymn sample).
    assert one(backend, "KEKW \U000e0000").sentiment == one(backend, "KEKW").sentiment


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("monkaS", "fear"),
        ("WutFace", "disgust"),
        ("DansGame", "disgust"),
        ("Madge", "anger"),
        ("peepoLove", "love"),
        ("widepeepoHappy", "joy"),
        ("BibleThump", "sadness"),
        ("PauseChamp", "anticipation"),
        ("😱", "surprise"),
    ],
)
def test_emotes_carry_their_emotion(backend: LexiconBackend, text: str, emotion: str) -> None:
    score = one(backend, text)
    strongest = max((v, k) for k, v in score.emotions.items() if v is not None)
    assert strongest[1] == emotion and strongest[0] > 0.2


def test_unestimated_emotions_are_none_and_estimated_ones_are_in_range(
    backend: LexiconBackend,
) -> None:
    for score in backend.score(["", "KEKW", "hello", "monkaS 😡 ❤️ PogChamp"]):
        assert set(score.emotions) == set(EMOTIONS)
        for name in ("optimism", "pessimism", "trust"):
            assert score.emotions[name] is None
        for name in ESTIMATED_EMOTIONS:
            value = score.emotions[name]
            assert value is not None and 0.0 <= value < 1.0


def test_plain_chatter_is_neutral(backend: LexiconBackend) -> None:
    for text in ("what rank is he", "he changed the keybinds", "!uptime", "modCheck", ""):
        score = one(backend, text)
        assert score.label == "neutral" and score.sentiment == 0.0
        assert all(v in (0.0, None) for v in score.emotions.values())


# --- elongation and spam --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stretched", "base"),
    [
        ("LULLLL", "LUL"),
        ("KEKWWW", "KEKW"),
        ("yesssss", "yes"),
        ("noooooo", "no"),
        ("POGGGGERS", "POGGERS"),
        ("Sadgeeee", "Sadge"),
        ("lmaooooo", "lmao"),
    ],
)
def test_elongation_reads_as_the_base_token_with_more_intensity(
    backend: LexiconBackend, stretched: str, base: str
) -> None:
    long, short = one(backend, stretched), one(backend, base)
    assert long.label == short.label != "neutral"
    assert abs(long.sentiment) >= abs(short.sentiment)
    assert abs(long.sentiment) > abs(short.sentiment) or stretched.endswith("ERS")


def test_lets_go_phrase_survives_elongation(backend: LexiconBackend) -> None:
    assert one(backend, "lets goooooo").sentiment >= one(backend, "lets go").sentiment > 0.5


def test_laughter_strings_normalise(backend: LexiconBackend) -> None:
    for text in ("hahahahaha", "HAHAHA", "lolololol", "xdddd", "kekekek"):
        score = one(backend, text)
        assert score.label == "positive" and emo(score, "joy") > 0.3, text


def test_emote_spam_saturates_below_one(backend: LexiconBackend) -> None:
    values = [one(backend, " ".join(["LUL"] * n)).sentiment for n in (1, 2, 4, 30, 3000)]
    assert values == sorted(values)  # more spam, stronger
    assert values[-1] < 1.0
    # diminishing returns: doubling from 2 to 4 adds less than going from 1 to 2
    assert values[2] - values[1] < values[1] - values[0]
    joy = one(backend, " ".join(["LUL"] * 3000)).emotions["joy"]
    assert joy is not None and joy < 1.0


# --- per-channel emotes and the suffix heuristic --------------------------------------------


def test_channel_emote_mapping_applies_only_to_its_channel() -> None:
    scorer = LexiconBackend(channel_emotes={"nymn": {"nymnCorn": "laugh", "nymnS": "fear"}})
    texts = ["nymnCorn", "nymnCorn", "nymnS"]
    in_nymn, elsewhere, fear = scorer.score(texts, ["nymn", "forsen", "#NymN"])
    assert in_nymn.label == "positive" and emo(in_nymn, "joy") > 0.3
    assert elsewhere.label == "neutral"
    assert emo(fear, "fear") > 0.3  # channel names are matched case-insensitively, '#' off


def test_channel_mapping_wins_over_tables_and_heuristic() -> None:
    scorer = LexiconBackend(channel_emotes={"forsen": {"forsenLUL": "sad", "LUL": "neutral"}})
    assert one(scorer, "forsenLUL", "forsen").label == "negative"
    assert one(scorer, "LUL", "forsen").label == "neutral"
    assert one(scorer, "LUL", "nymn").label == "positive"


def test_unknown_category_is_rejected_with_the_names() -> None:
    with pytest.raises(BackendError, match="'hilarious'"):
        LexiconBackend(channel_emotes={"nymn": {"nymnX": "hilarious"}})
    assert "laugh" in CATEGORIES and "sarcasm" in CATEGORIES


@pytest.mark.parametrize(
    ("emote", "emotion", "label"),
    [
        ("nymnLUL", "joy", "positive"),
        ("forsenKEKW", "joy", "positive"),
        ("xqcPog", "surprise", "positive"),
        ("nymnSadge", "sadness", "negative"),
        ("peepoLoveYou", None, "neutral"),
        ("forsenLove", "love", "positive"),
        ("nymnHype", "anticipation", "positive"),
        ("monkaTOS", "fear", "negative"),
    ],
)
def test_unknown_emote_inherits_category_of_known_suffix(
    backend: LexiconBackend, emote: str, emotion: str | None, label: str
) -> None:
    score = one(backend, emote)
    assert score.label == label
    if emotion is not None:
        assert emo(score, emotion) > 0.2


def test_suffix_heuristic_needs_a_camelcase_seam(backend: LexiconBackend) -> None:
    # All lower case or all capitals has no seam: "soul"/"consul" do not end in LUL, "LULU" is no
    # "<prefix>LUL"; "overhyped" is a word, not "<prefix>Hype".
    for text in ("soul", "consul", "overhyped", "LULU", "SOUL"):
        assert one(backend, text).label == "neutral", text


# --- toxicity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant", ["idiot", "1d10t", "i d i o t", "i.d.i.o.t", "idiooooot", "IDIOT", "ídíót", "іdіоt"]
)
def test_obfuscated_insult_is_detected(backend: LexiconBackend, variant: str) -> None:
    plain = one(backend, "idiot").toxicity
    toxicity = one(backend, variant).toxicity
    assert plain is not None and toxicity is not None
    assert toxicity == pytest.approx(plain) and toxicity > 0.25, variant


def test_insult_aimed_at_someone_weighs_more(backend: LexiconBackend) -> None:
    alone = one(backend, "idiot").toxicity
    aimed = one(backend, "you are an idiot").toxicity
    mentioned = one(backend, "@someone idiot").toxicity
    assert alone is not None and aimed is not None and mentioned is not None
    assert aimed > alone and mentioned > alone
    assert aimed >= 0.5


@pytest.mark.parametrize("text", ["kys", "k y s", "KYS", "kill yourself", "k1ll yourself"])
def test_self_harm_incitement_is_highly_toxic(backend: LexiconBackend, text: str) -> None:
    toxicity = one(backend, text).toxicity
    assert toxicity is not None and toxicity > 0.8, text


def test_profanity_as_emphasis_scores_low(backend: LexiconBackend) -> None:
    for text in ("holy shit that was sick", "what the fuck was that play", "damn that was clean"):
        toxicity = one(backend, text).toxicity
        assert toxicity is not None and toxicity < 0.2, text
    aimed = one(backend, "fuck you").toxicity
    assert aimed is not None and aimed > 0.5


def test_clean_text_has_no_toxicity(backend: LexiconBackend) -> None:
    for text in (
        "what a nice day",
        "PogChamp LETS GOOO",
        "as I said",
        "he is in class",
        "Niger and Nigeria are countries",
        "assassin build",
        "",
    ):
        assert one(backend, text).toxicity == 0.0, text


def test_slur_list_is_stored_rot13_and_decoded(backend: LexiconBackend) -> None:
    data = resources.files("scorer").joinpath("lexicon_data", "toxicity.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in data.splitlines() if line and not line.startswith("#")]
    slurs = [row for row in rows if row[2] == "slur"]
    assert slurs and all(row[4] == "rot13" for row in slurs)
    word = codecs.decode(slurs[0][0], "rot13")
    toxicity = one(backend, word).toxicity
    assert toxicity is not None and toxicity > 0.8
    spaced = one(backend, " ".join(word)).toxicity  # spaced-out letters
    assert spaced is not None and spaced > 0.8


# --- toxicity at the product's threshold (toxic when toxicity >= 0.5) ------------------------

THRESHOLD = 0.5


def tox(backend: LexiconBackend, text: str) -> float:
    value = one(backend, text).toxicity
    assert value is not None, text
    return value


@pytest.mark.parametrize(
    "text",
    [
        "ur so dumb",
        "you suck",
        "fucking idiot",
        "you are an idiot",
        "u r trash",
        "@someone you clown",
        "stfu",
        "this bitch",
        "motherfuuuckers",
        "you fucking idiot lol",  # strong abuse gets no banter discount
    ],
)
def test_insults_and_vulgarity_reach_the_threshold(backend: LexiconBackend, text: str) -> None:
    assert tox(backend, text) >= THRESHOLD, text


@pytest.mark.parametrize(
    "text",
    [
        "ur so dumb LUL",
        "you suck KEKW",
        "LUL you're so bad at this game KEKW",
        "ur trash <3",
        "you're so stupid Kappa",
    ],
)
def test_banter_among_laughter_is_not_abuse(backend: LexiconBackend, text: str) -> None:
    assert tox(backend, text) < THRESHOLD, text


def test_banter_discount_needs_the_laughter(backend: LexiconBackend) -> None:
    assert tox(backend, "ur so dumb") >= THRESHOLD > tox(backend, "ur so dumb LUL")


@pytest.mark.parametrize(
    "text",
    [
        "he said 'you idiot' lol",
        "he said \u201cyou idiot\u201d lol",
        'chat keeps typing "fuck you" at him',
        "she called him a 'fucking idiot' on stream",
    ],
)
def test_quoted_abuse_is_reported_speech(backend: LexiconBackend, text: str) -> None:
    assert tox(backend, text) < THRESHOLD, text


def test_quoting_does_not_launder_slurs_and_needs_both_marks(backend: LexiconBackend) -> None:
    slur = codecs.decode("snttbg", "rot13")
    assert tox(backend, f"he said '{slur}' lol") > 0.8
    # An apostrophe is not a quotation: "goin'" opens nothing, the insult stays aimed.
    assert tox(backend, "goin' home you idiot") >= THRESHOLD
    # A repost ('"@name: ...') publishes the text again: not reported speech.
    assert tox(backend, '"@bob: you fucking idiot" lol') >= THRESHOLD


def test_unaimed_mild_words_and_exclamations_stay_below(backend: LexiconBackend) -> None:
    for text in (
        "this game sucks",
        "that was stupid",
        "that was fucking sick",
        "@streamer that was fucking sick",
        "holy fuck",
        "what a trash can",
        "maine coon cats are the best",
    ):
        assert tox(backend, text) < THRESHOLD, text


# --- sentiment error groups of labelled chat --------------------------------------------------


@pytest.mark.parametrize(
    "text", ["what a joke LUL", "SO BAD OMEGALUL", "this is trash KEKW", "what a joke 😂"]
)
def test_mocking_laughter_is_negative(backend: LexiconBackend, text: str) -> None:
    score = one(backend, text)
    assert score.label == "negative", (text, score.sentiment)
    assert emo(score, "joy") == 0.0  # laughing at something is not joy


def test_laughter_without_a_put_down_stays_joy(backend: LexiconBackend) -> None:
    for text in ("LUL", "OMEGALUL he actually missed", "not bad LUL"):
        score = one(backend, text)
        assert score.label == "positive", text


def test_pog_alone_is_neutral_surprise_but_pogchamp_is_hype(backend: LexiconBackend) -> None:
    for text in ("Pog", "POG", "pog"):
        score = one(backend, text)
        assert score.label == "neutral" and emo(score, "surprise") > 0.3, text
    assert one(backend, "PogChamp").label == "positive"
    assert one(backend, "Pog that was insane").label == "positive"


@pytest.mark.parametrize("apostrophe", ["\u2019", "\u2018", "\u02bc"])
def test_curly_apostrophe_negates_like_a_straight_one(
    backend: LexiconBackend, apostrophe: str
) -> None:
    straight = one(backend, "You can't win")
    curly = one(backend, f"You can{apostrophe}t win")
    assert curly.label == "negative"
    assert curly.sentiment == pytest.approx(straight.sentiment)


@pytest.mark.parametrize(
    "text", ["great play Clap", "nice job /s", "sure buddy", "wow amazing strategy Clap"]
)
def test_sarcasm_markers_turn_praise_negative(backend: LexiconBackend, text: str) -> None:
    assert one(backend, text).label == "negative", text


def test_clap_after_a_celebration_stays_positive(backend: LexiconBackend) -> None:
    for text in ("EZ Clap", "GG Clap", "Clap"):
        assert one(backend, text).label == "positive", text


# --- probabilities, labels, model version ---------------------------------------------------


@pytest.mark.parametrize("compound", [-0.9999, -0.5, -0.06, -0.05, 0.0, 0.03, 0.05, 0.2, 0.9999])
def test_probabilities_sum_to_one_and_argmax_matches_the_neutral_band(compound: float) -> None:
    p = compound_to_probabilities(compound)
    assert math.isclose(sum(p), 1.0, abs_tol=1e-12) and all(0.0 < x < 1.0 for x in p)
    expected = 2 if compound > NEUTRAL_BAND else 0 if compound < -NEUTRAL_BAND else 1
    # The most probable class (at exactly +-NEUTRAL_BAND neutral ties, and the label is neutral).
    assert p[expected] == max(p)
    assert sorted(p)[1] < max(p) or abs(compound) == NEUTRAL_BAND


def test_scores_are_consistent(backend: LexiconBackend) -> None:
    texts = [row["text"] for row in _labelled()]
    for score in backend.score(texts):
        probabilities = (score.p_negative, score.p_neutral, score.p_positive)
        assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-9)
        assert -1.0 < score.sentiment < 1.0
        names = ("negative", "neutral", "positive")
        assert probabilities[names.index(score.label)] == max(probabilities)
        if score.label == "positive":
            assert score.sentiment > NEUTRAL_BAND
        elif score.label == "negative":
            assert score.sentiment < -NEUTRAL_BAND
        else:
            assert abs(score.sentiment) <= NEUTRAL_BAND
        assert score.toxicity is not None and 0.0 <= score.toxicity <= 1.0


def test_model_version_is_deterministic_and_names_the_lexicon() -> None:
    first, second = LexiconBackend(), LexiconBackend(channel_emotes={"x": {"xLUL": "laugh"}})
    assert first.model == second.model == f"lexicon@{lexicon_version()}"
    assert first.model.startswith(f"lexicon@{lexicon.ENGINE_VERSION}.")


# --- batch contract and robustness ----------------------------------------------------------


def test_one_score_per_text_in_order(backend: LexiconBackend) -> None:
    texts = ["KEKW", "Sadge", "", "hello", "KEKW"]
    scores = backend.score(texts)
    assert len(scores) == len(texts)
    assert [s.label for s in scores] == ["positive", "negative", "neutral", "neutral", "positive"]
    assert backend.score([]) == []


def test_channels_of_the_wrong_length_are_a_caller_error(backend: LexiconBackend) -> None:
    with pytest.raises(ValueError, match="2 texts but 1 channels"):
        backend.score(["a", "b"], ["nymn"])


def test_odd_and_huge_input_does_not_crash(backend: LexiconBackend) -> None:
    texts = [
        "",
        " ",
        "\n\t",
        "\u200b",
        "\U000e0000",
        "🏳️‍🌈👨‍👩‍👧",
        "!!!!!!!!",
        "????",
        "@",
        "<3 " * 10,
        "a" * 100_000,
        "LUL " * 50_000,
        "x" * 500 + "😂" * 500,
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "Ｆｕｌｌｗｉｄｔｈ ＬＵＬ",
        "https://example.com/?q=idiot",
        "@@@ ### $$$ 1111",
    ]
    scores = backend.score(texts)
    assert len(scores) == len(texts)
    for score in scores:
        assert -1.0 < score.sentiment < 1.0
        assert score.toxicity is not None and 0.0 <= score.toxicity <= 1.0


def test_cache_does_not_change_results() -> None:
    cached, uncached = LexiconBackend(), LexiconBackend(cache_size=0)
    texts = ["KEKW", "not bad at all", "you idiot", "KEKW"]
    assert cached.score(texts) == uncached.score(texts) == cached.score(texts)


# --- the VADER rules ------------------------------------------------------------------------


def test_vader_constants_match_the_installed_package() -> None:
    assert (model._B_INCR, model._C_INCR, model._N_SCALAR) == (B_INCR, C_INCR, N_SCALAR)


@pytest.mark.parametrize(
    "sentence",
    [
        "VADER is smart, handsome, and funny.",
        "VADER is VERY SMART, handsome, and FUNNY!!!",
        "VADER is not smart, handsome, nor funny.",
        "At least it isn't a horrible book.",
        "The book was only kind of good.",
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        "Today SUX!",
        "Make sure you :) or :D today!",
        "Sentiment analysis has never been this good!",
        "With VADER, sentiment analysis is the shit!",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "no problems at all",
        "I don't like it",
    ],
)
def test_plain_english_scores_like_the_vader_reference(
    backend: LexiconBackend, sentence: str
) -> None:
    # On text without chat tokens the re-implemented rules give the reference implementation's
    # compound (vaderSentiment's own demo sentences).
    reference = SentimentIntensityAnalyzer().polarity_scores(sentence)["compound"]
    assert one(backend, sentence).sentiment == pytest.approx(reference, abs=5e-4)


# --- the labelled set -----------------------------------------------------------------------


def _labelled() -> list[dict[str, str]]:
    with LABELLED.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_macro_f1_on_the_hand_labelled_chat_set(backend: LexiconBackend) -> None:
    # The floor: chance is ~0.33 and plain VADER scores 0.49 on this set; the lexicon scored
    # 0.92 when the set was written.  The set is small and written by the lexicon's author, so
    # the floor leaves room for lexicon edits while catching a real regression.
    rows = _labelled()
    assert len(rows) >= 150
    predicted = [s.label for s in backend.score([row["text"] for row in rows])]
    f1s = []
    for label in ("negative", "neutral", "positive"):
        tp = sum(p == label == row["label"] for p, row in zip(predicted, rows, strict=True))
        fp = sum(p == label != row["label"] for p, row in zip(predicted, rows, strict=True))
        fn = sum(row["label"] == label != p for p, row in zip(predicted, rows, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    assert sum(f1s) / 3 > MACRO_F1_FLOOR


# --- the data files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["categories.tsv", "affixes.tsv", "emotes.tsv", "emoji.tsv", "slang.tsv", "toxicity.tsv"],
)
def test_data_files_document_their_sources(name: str) -> None:
    text = resources.files("scorer").joinpath("lexicon_data", name).read_text("utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "Source:" in header and "chatpulse" in header


def test_lexicon_has_hundreds_of_emotes_and_emoji() -> None:
    lex = loading._lexicon()
    assert len(lex.exact) >= 250 and len(lex.emoji) >= 200


def test_score_leaves_the_garbage_collector_as_it_found_it(backend: LexiconBackend) -> None:
    assert gc.isenabled()
    backend.score(["never seen before qzxv", "@someone LUL"])
    assert gc.isenabled()
    gc.disable()
    try:
        backend.score(["another new text qzxw"])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_every_ascii_mention_reads_as_the_same_targeted_item(backend: LexiconBackend) -> None:
    # Mentions share one reading: the name never changes the scores.
    first = one(backend, "@someone idiot")
    assert one(backend, "@SomeoneElse_42 idiot") == first
    assert one(backend, "@x idiot") == first
