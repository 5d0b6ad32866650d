"""Pure parts of the scorer: evaluation figures, label variants, bisection of bad batches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from chatpulse.core.errors import ConfigError
from scorer.backends import BackendError, Score
from scorer.backends.lexicon import LexiconBackend
from scorer.evaluate import (
    TOXICITY_LABELS,
    evaluate,
    normalise_labels,
    normalise_toxicity_labels,
    report_json,
)
from scorer.loop import _Row, score_rows


def test_evaluate_matches_hand_computed_figures() -> None:
    gold = ["negative"] * 4 + ["neutral"] * 3 + ["positive"] * 3
    pred = ["negative", "negative", "negative", "neutral", "neutral", "positive", "neutral"]
    pred += ["positive", "positive", "negative"]
    result = evaluate(gold, pred)  # type: ignore[arg-type]
    assert result.confusion == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert result.accuracy == pytest.approx(0.7)
    # precision 3/4, 2/3, 2/3; recall 3/4, 2/3, 2/3 -> f1 equal to them
    assert result.macro_f1 == pytest.approx((0.75 + 2 / 3 + 2 / 3) / 3)
    assert result.macro_recall == pytest.approx((0.75 + 2 / 3 + 2 / 3) / 3)
    assert result.per_class["negative"].support == 4


def test_a_class_never_predicted_counts_zero() -> None:
    result = evaluate(["positive", "negative"], ["positive", "positive"])
    assert result.per_class["negative"].f1 == 0.0
    assert result.per_class["neutral"].f1 == 0.0
    assert result.macro_f1 == pytest.approx((2 / 3) / 3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["Negative", " neg ", "-1", "-"], ["negative"] * 4),
        (["neutral", "NEU", "0", "neut"], ["neutral"] * 4),
        (["positive", "pos", "1", "+1", "+"], ["positive"] * 5),
        (["0", "1", "2"], ["negative", "neutral", "positive"]),  # TweetEval convention
        (["-1", "0", "1"], ["negative", "neutral", "positive"]),
    ],
)
def test_label_variants(raw: list[str], expected: list[str]) -> None:
    assert normalise_labels(raw, "label") == expected


def test_unknown_label_names_column_and_line() -> None:
    with pytest.raises(ConfigError, match=r"label column 'y', line 3: unknown label 'meh'"):
        normalise_labels(["pos", "meh"], "y")


def _rows(texts: Sequence[str]) -> list[_Row]:
    now = datetime.now(UTC)
    return [_Row("1", i, now, 1, str(i), t, "chan") for i, t in enumerate(texts)]


class _Picky:
    model = "picky@1"

    def __init__(self, bad: set[str], broken: bool = False) -> None:
        self.inner = LexiconBackend()
        self.bad = bad
        self.broken = broken

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        if self.broken or self.bad.intersection(texts):
            raise RuntimeError("cannot")
        return self.inner.score(texts, channels)


def test_bisection_isolates_exactly_the_bad_messages() -> None:
    texts = [f"t{i}" for i in range(37)]
    counter = [0]
    scored, failures = score_rows(_Picky({"t5", "t30"}), _rows(texts), counter)
    assert sorted(f.row.text for f in failures) == ["t30", "t5"]
    assert {f.reason for f in failures} == {"backend-error"}
    assert len(scored) == 35
    assert counter[0] < 37 * 8


def test_invalid_scores_are_failures_not_rows() -> None:
    class NaN:
        model = "nan@1"

        def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
            s = LexiconBackend().score(texts)
            return [
                Score(math.inf, x.label, x.p_negative, x.p_neutral, x.p_positive, x.emotions, 2.0)
                for x in s
            ]

    scored, failures = score_rows(NaN(), _rows(["a", "b"]))
    assert scored == [] and [f.reason for f in failures] == ["invalid-score", "invalid-score"]


def test_a_backend_failing_on_everything_raises() -> None:
    with pytest.raises(BackendError, match="every message"):
        score_rows(_Picky(set(), broken=True), _rows(["a", "b", "c"]))
    # ...but a batch of genuinely bad messages is recorded when the backend still works.
    scored, failures = score_rows(_Picky({"x", "y"}), _rows(["x", "y"]))
    assert scored == [] and len(failures) == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["0", "1", "2", "1"], ["toxic", "toxic", "clean", "toxic"]),  # Davidson's class
        (["0", "1", "1"], ["clean", "toxic", "toxic"]),  # binary 0/1
        (["OFF", "NOT", "Offensive", "neither"], ["toxic", "clean", "toxic", "clean"]),
        (["hate", "toxic", "clean", "non-toxic", "Not Offensive"], ["toxic"] * 2 + ["clean"] * 3),
    ],
)
def test_toxicity_label_variants(raw: list[str], expected: list[str]) -> None:
    assert normalise_toxicity_labels(raw, "label") == expected


def test_unknown_toxicity_label_names_column_and_line() -> None:
    with pytest.raises(ConfigError, match=r"label column 'y', line 2: unknown label 'meh'"):
        normalise_toxicity_labels(["meh"], "y")


def test_binary_evaluation_and_json_report() -> None:
    gold = ["toxic", "toxic", "clean", "clean"]
    result = evaluate(gold, ["toxic", "clean", "clean", "clean"], TOXICITY_LABELS)
    assert result.confusion == [[2, 0], [1, 1]]
    report = report_json(result, "m@1", "f.csv", "toxicity", threshold=0.5)
    assert report["threshold"] == 0.5 and report["accuracy"] == pytest.approx(0.75)
    # clean: p 2/3 r 1 f1 0.8; toxic: p 1 r 1/2 f1 2/3
    assert report["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert report["macro_recall"] == pytest.approx(0.75)
