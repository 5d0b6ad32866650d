"""The ``transformers`` backend on tiny RoBERTa models built here (no download possible)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the transformers backend needs the ml extra (torch)")
pytest.importorskip("transformers", reason="the transformers backend needs the ml extra")

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from scorer.backends import BackendError, Score, load_backend
from scorer.backends.base import EMOTIONS
from scorer.backends.hf import preprocess
from scorer.backends.transformers_backend import TransformersBackend
from tests.tiny_models import CHAT_LINES

ODD_TEXTS = [
    "",
    "   ",
    "KEKW KEKW KEKW",
    "😭😭😭🔥",
    "x" * 600,
    "ok\x00\x07\x1b[31m\r\nbye",
    "Ελληνικά русский 中文 日本語 한국어 العربية עברית हिन्दी ไทย",
    "\U000e0000",
]


@pytest.fixture(scope="session")
def backend(models: Path) -> TransformersBackend:
    backend = load_backend("transformers", model_dir=models, batch_size=16)
    assert isinstance(backend, TransformersBackend)
    return backend


def _valid(score: Score) -> None:
    assert -1.0 <= score.sentiment <= 1.0
    assert math.isclose(score.p_negative + score.p_neutral + score.p_positive, 1.0, abs_tol=1e-9)
    probs = {"negative": score.p_negative, "neutral": score.p_neutral, "positive": score.p_positive}
    assert score.label == max(probs, key=probs.__getitem__)
    assert set(score.emotions) == set(EMOTIONS)
    assert all(v is not None and 0.0 <= v <= 1.0 for v in score.emotions.values())
    assert score.toxicity is not None and 0.0 <= score.toxicity <= 1.0


def _numbers(score: Score) -> list[float | None]:
    """Every number of a score, emotions in EMOTIONS order."""
    return [
        score.sentiment, score.p_negative, score.p_neutral, score.p_positive, score.toxicity,
        *(score.emotions[name] for name in EMOTIONS),
    ]  # fmt: skip


def test_scores_equal_the_models_own_outputs_mapped_by_id2label(
    backend: TransformersBackend, models: Path
) -> None:
    texts = ["@someone PogChamp LETS GOOO https://clips.twitch.tv/x", "Sadge", "ok"]
    scores = backend.score(texts)
    clean = [preprocess(t) for t in texts]
    assert clean[0] == "@user PogChamp LETS GOOO http"

    def probs(role: str) -> torch.Tensor:
        tok = AutoTokenizer.from_pretrained(models / role)
        model = AutoModelForSequenceClassification.from_pretrained(models / role).eval()
        with torch.no_grad():
            logits = model(**tok(clean, padding=True, return_tensors="pt")).logits
        return logits.sigmoid() if role == "emotion" else logits.softmax(-1)

    sentiment, emotion, offensive = probs("sentiment"), probs("emotion"), probs("offensive")
    for i, score in enumerate(scores):
        # The tiny sentiment model's id2label is positive, negative, neutral (tests/tiny_models).
        expected = (sentiment[i, 1], sentiment[i, 2], sentiment[i, 0])
        assert (score.p_negative, score.p_neutral, score.p_positive) == pytest.approx(
            [float(v) for v in expected], abs=1e-6
        )
        assert score.sentiment == pytest.approx(float(sentiment[i, 0] - sentiment[i, 1]), abs=1e-6)
        for j, name in enumerate(EMOTIONS):
            assert score.emotions[name] == pytest.approx(float(emotion[i, j]), abs=1e-6)
        assert score.toxicity == pytest.approx(float(offensive[i, 1]), abs=1e-6)


def test_batch_size_and_batch_neighbours_do_not_change_scores(
    backend: TransformersBackend, models: Path
) -> None:
    one_by_one = TransformersBackend(model_dir=models, batch_size=1)
    texts = CHAT_LINES[:12]
    batched = backend.score(texts)
    single = one_by_one.score(texts)
    assert one_by_one.model == backend.model
    for a, b in zip(batched, single, strict=True):
        assert a.sentiment == pytest.approx(b.sentiment, abs=1e-5)
        assert a.label == b.label or abs(a.sentiment - b.sentiment) < 1e-5
        assert a.toxicity == pytest.approx(b.toxicity, abs=1e-5)


def test_long_text_is_truncated_to_max_length(backend: TransformersBackend) -> None:
    # The tiny models take 64 tokens: whatever follows the first ~60 single-byte tokens is cut.
    head = "a " * 100
    first, second = backend.score([head + "PogChamp", head + "Sadge NotLikeThis"])
    # Equal up to float noise: two rows of one batch may take different CPU kernel paths.
    assert first.label == second.label
    assert _numbers(first) == pytest.approx(_numbers(second), abs=1e-6)


def test_odd_text_gets_a_valid_score(backend: TransformersBackend) -> None:
    scores = backend.score(ODD_TEXTS, channels=["nymn"] * len(ODD_TEXTS))
    assert len(scores) == len(ODD_TEXTS)
    for score in scores:
        _valid(score)
    assert backend.score([]) == []
    with pytest.raises(ValueError, match="same length"):
        backend.score(["a", "b"], channels=["nymn"])


def test_model_name_is_stable_and_changes_with_the_weights(
    backend: TransformersBackend, models: Path, tmp_path: Path
) -> None:
    assert backend.model.startswith("transformers:sentiment@")
    assert TransformersBackend(model_dir=models).model == backend.model
    assert TransformersBackend(model_dir=models, max_length=32).model != backend.model
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    model = AutoModelForSequenceClassification.from_pretrained(copy / "offensive")
    with torch.no_grad():
        model.classifier.out_proj.bias += 1.0
    model.save_pretrained(copy / "offensive")
    assert TransformersBackend(model_dir=copy).model != backend.model


def test_roles_can_be_named_one_by_one_and_left_out(models: Path) -> None:
    only = TransformersBackend(str(models / "sentiment"), emotion="", offensive=None)
    (score,) = only.score(["PogChamp"])
    assert score.toxicity is None
    assert all(v is None for v in score.emotions.values())
    assert only.model != TransformersBackend(model_dir=models).model


def test_missing_hub_model_offline_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(
        BackendError, match=r"sentiment model chatpulse-test/no-such-model.*OFFLINE"
    ):
        load_backend("transformers", sentiment="chatpulse-test/no-such-model")


def test_missing_local_directory_and_wrong_labels_are_clear_errors(
    models: Path, tmp_path: Path
) -> None:
    with pytest.raises(BackendError, match="no such directory"):
        TransformersBackend(str(tmp_path / "nothing" / "here" / "x"))
    with pytest.raises(BackendError, match="no sentiment/ subdirectory"):
        TransformersBackend(model_dir=tmp_path)
    # The emotion model given as the sentiment model: 11 labels, not 3.
    with pytest.raises(BackendError, match="needs 3 labels"):
        TransformersBackend(str(models / "emotion"), emotion="", offensive="")


def test_cuda_device_without_cuda_is_refused(models: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(BackendError, match="CUDA is not available"):
        TransformersBackend(model_dir=models, device="cuda")
