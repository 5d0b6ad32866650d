"""The pure parts the transformers and onnx backends share: preprocessing, labels, score rows."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy", reason="the ml backends need numpy (the ml extra)")

from scorer.backends.base import EMOTIONS, BackendError  # noqa: E402
from scorer.backends.hf import (  # noqa: E402
    LabelMaps,
    build_scores,
    length_batches,
    model_name,
    preprocess,
    read_label_maps,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@nymn that was insane", "@user that was insane"),
        ("check https://twitch.tv/x now", "check http now"),
        ("@ alone stays", "@ alone stays"),
        ("two  spaces kept", "two  spaces kept"),
        ("KEKW \U000e0000", "KEKW "),
        ("", ""),
    ],
)
def test_preprocess_follows_cardiffnlp(text: str, expected: str) -> None:
    assert preprocess(text) == expected


def test_sentiment_labels_are_read_from_id2label_in_any_order() -> None:
    config = {"id2label": {"0": "Positive", "1": "negative", "2": "neutral"}}
    assert read_label_maps("sentiment", config, "m").sentiment == (1, 2, 0)


def test_unnamed_labels_use_cardiffnlp_order() -> None:
    assert read_label_maps(
        "sentiment", {"id2label": {str(i): f"LABEL_{i}" for i in range(3)}}, "m"
    ).sentiment == (0, 1, 2)
    assert read_label_maps("offensive", {}, "m").offensive == 1  # transformers' default labels
    emo = read_label_maps("emotion", {"id2label": {str(i): f"LABEL_{i}" for i in range(11)}}, "m")
    assert emo.emotions is not None and list(emo.emotions) == list(EMOTIONS)


def test_offensive_label_is_the_one_not_negated() -> None:
    config = {"id2label": {"0": "offensive", "1": "non-offensive"}}
    assert read_label_maps("offensive", config, "m").offensive == 0


@pytest.mark.parametrize(
    ("role", "config", "message"),
    [
        ("sentiment", {"id2label": {"0": "neg", "1": "pos"}}, "needs 3 labels"),
        ("sentiment", {"id2label": {"0": "bad", "1": "meh", "2": "good"}}, "negative, neutral"),
        ("emotion", {"id2label": {"0": "joy", "1": "boredom"}}, "boredom"),
        ("offensive", {"id2label": {"0": "hate", "1": "offensive"}}, "non-offensive"),
    ],
)
def test_labels_that_do_not_fit_the_role_are_refused(
    role: str, config: dict[str, object], message: str
) -> None:
    with pytest.raises(BackendError, match=message):
        read_label_maps(role, config, "the model")


def test_build_scores_maps_probabilities_to_a_row() -> None:
    maps = {
        "sentiment": LabelMaps(sentiment=(2, 0, 1)),  # output order: neutral, positive, negative
        "emotion": LabelMaps(emotions={"joy": 0, "anger": 1}),
        "offensive": LabelMaps(offensive=1),
    }
    sentiment = np.log(np.array([[0.2, 0.7, 0.1]]))
    emotions = np.array([[0.0, 100.0]])
    offensive = np.log(np.array([[0.9, 0.1]]))
    (score,) = build_scores(sentiment, emotions, offensive, maps)
    assert score.label == "positive"
    assert (score.p_negative, score.p_neutral, score.p_positive) == pytest.approx((0.1, 0.2, 0.7))
    assert score.sentiment == pytest.approx(0.6)
    assert score.emotions["joy"] == pytest.approx(0.5)
    assert score.emotions["anger"] == pytest.approx(1.0)
    assert score.emotions["trust"] is None  # not a label of this model
    assert score.toxicity == pytest.approx(0.1)


def test_build_scores_without_emotion_and_offensive_models_leaves_them_null() -> None:
    (score,) = build_scores(np.zeros((1, 3)), None, None, {"sentiment": LabelMaps((0, 1, 2))})
    assert score.toxicity is None
    assert set(score.emotions) == set(EMOTIONS)
    assert all(v is None for v in score.emotions.values())


def test_length_batches_cover_every_index_once_and_group_by_length() -> None:
    texts = ["a" * n for n in (5, 1, 9, 3, 7)]
    batches = length_batches(texts, 2)
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert batches == [[1, 3], [0, 4], [2]]


def test_model_name_changes_with_any_part_and_is_stable() -> None:
    a = model_name("onnx-int8", "twitter-roberta", ["sentiment=abc", "max_length=128"])
    assert a == model_name("onnx-int8", "twitter-roberta", ["sentiment=abc", "max_length=128"])
    assert a != model_name("onnx-int8", "twitter-roberta", ["sentiment=abd", "max_length=128"])
    assert a.startswith("onnx-int8:twitter-roberta@") and len(a.rsplit("@", 1)[1]) == 12
