"""Tiny RoBERTa classifiers with the label sets of CardiffNLP's models, built locally for tests.

No model can be downloaded here, so tests build models of the same architecture
(``RobertaForSequenceClassification``, a byte-level BPE tokenizer trained on our chat fixtures)
with random weights, 2 layers of width 32, and run the real transformers and onnx code paths on
them.  :func:`build_tiny_models` writes ``root/sentiment``, ``root/emotion`` and
``root/offensive``, the layout ``model_dir`` expects.  Needs torch, transformers and tokenizers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scorer.backends.base import EMOTIONS
from tests.paths import LABELLED_CHAT

__all__ = ["CHAT_LINES", "LABELS", "build_tiny_models", "tiny_export_dir", "tiny_models_dir"]

_FIXTURE = LABELLED_CHAT


def _chat_lines() -> list[str]:
    with _FIXTURE.open(encoding="utf-8", newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


#: Real chat lines (tests/fixtures/labelled-chat) the tokenizer is trained on and tests score.
CHAT_LINES: list[str] = _chat_lines()

#: id2label of each role, as the CardiffNLP models name them (offensive: unnamed LABEL_i, to cover
#: that path; sentiment in a shuffled order, to prove the backends read id2label).
LABELS: dict[str, dict[int, str]] = {
    "sentiment": {0: "positive", 1: "negative", 2: "neutral"},
    "emotion": dict(enumerate(EMOTIONS)),
    "offensive": {0: "LABEL_0", 1: "LABEL_1"},
}

_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_MAX_POSITIONS = 66  # 64 usable tokens: long texts get truncated in tests


def _tokenizer(dest: Path) -> int:
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        CHAT_LINES * 2,
        vocab_size=400,
        min_frequency=1,
        special_tokens=_SPECIAL,
        show_progress=False,
    )
    tok.post_processor = RobertaProcessing(  # type: ignore[assignment]
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>"))
    )
    dest.mkdir(parents=True, exist_ok=True)
    tok.save_model(str(dest))
    tok.save(str(dest / "tokenizer.json"))
    config = {"tokenizer_class": "RobertaTokenizer", "model_max_length": _MAX_POSITIONS - 2}
    config.update(
        {
            k: v
            for k, v in zip(
                ("bos_token", "pad_token", "eos_token", "unk_token", "mask_token"),
                _SPECIAL,
                strict=True,
            )
        }
    )
    config.update({"sep_token": "</s>", "cls_token": "<s>"})
    (dest / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return int(tok.get_vocab_size())


def build_tiny_models(root: Path) -> Path:
    """Write the three tiny models under ``root`` and return ``root``.  Takes about a second."""
    import torch
    import transformers
    from transformers import RobertaConfig, RobertaForSequenceClassification

    transformers.utils.logging.disable_progress_bar()
    for seed, (role, id2label) in enumerate(LABELS.items()):
        dest = root / role
        vocab = _tokenizer(dest)
        config = RobertaConfig(
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=_MAX_POSITIONS,
            # Wide initial weights: random models then give clearly different outputs per
            # text, so comparisons between backends mean something.
            initializer_range=0.5,
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            problem_type=(
                "multi_label_classification" if role == "emotion" else "single_label_classification"
            ),
        )
        torch.manual_seed(seed)
        RobertaForSequenceClassification(config).eval().save_pretrained(dest)
    return root


_BUILT: dict[str, Path] = {}


def tiny_models_dir(factory: pytest.TempPathFactory) -> Path:
    """The tiny models, built once per test session (for session-scoped fixtures)."""
    if "models" not in _BUILT:
        _BUILT["models"] = build_tiny_models(factory.mktemp("tiny-models"))
    return _BUILT["models"]


def tiny_export_dir(factory: pytest.TempPathFactory) -> Path:
    """The tiny models exported by :func:`scorer.export.export_models`, once per session."""
    if "export" not in _BUILT:
        from scorer.export import export_models

        out = factory.mktemp("tiny-export")
        export_models(out, model_dir=tiny_models_dir(factory))
        _BUILT["export"] = out
    return _BUILT["export"]
