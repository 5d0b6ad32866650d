"""The ``onnx`` backend on tiny RoBERTa models exported here, compared with the torch backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the onnx backend needs the ml extra (onnxruntime)")
pytest.importorskip("torch", reason="exporting models needs the ml extra (torch)")
pytest.importorskip("transformers", reason="exporting models needs the ml extra (transformers)")

from transformers import AutoTokenizer

from scorer.backends import BackendError, load_backend
from scorer.backends.base import EMOTIONS
from scorer.backends.onnx_backend import OnnxBackend
from scorer.backends.transformers_backend import TransformersBackend
from tests.integration.test_transformers_backend import ODD_TEXTS
from tests.tiny_models import CHAT_LINES

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [*CHAT_LINES, *ODD_TEXTS, "@streamer " + "long message " * 40]


@pytest.fixture(scope="session")
def torch_backend(models: Path) -> TransformersBackend:
    return TransformersBackend(model_dir=models, batch_size=16)


def test_export_writes_every_role_with_a_manifest(export: Path) -> None:
    manifest = json.loads((export / "manifest.json").read_text())
    assert set(manifest["roles"]) == {"sentiment", "emotion", "offensive"}
    for role in manifest["roles"]:
        for name in ("model.onnx", "model.int8.onnx", "config.json", "tokenizer.json"):
            assert (export / role / name).is_file(), (role, name)
        # int8 weights: about a quarter of the fp32 file for the weight-dominated parts.
        assert (export / role / "model.int8.onnx").stat().st_size < (
            export / role / "model.onnx"
        ).stat().st_size
        assert manifest["roles"][role]["max_abs_logit_diff"]["fp32"] < 1e-3


def test_fp32_onnx_matches_torch(export: Path, torch_backend: TransformersBackend) -> None:
    onnx = load_backend("onnx", model_dir=export, precision="fp32", batch_size=16)
    expected = torch_backend.score(TEXTS)
    got = onnx.score(TEXTS)
    assert len(got) == len(TEXTS)
    for a, b in zip(got, expected, strict=True):
        assert a.sentiment == pytest.approx(b.sentiment, abs=1e-4)
        assert (a.p_negative, a.p_neutral, a.p_positive) == pytest.approx(
            (b.p_negative, b.p_neutral, b.p_positive), abs=1e-4
        )
        for name in EMOTIONS:
            assert a.emotions[name] == pytest.approx(b.emotions[name], abs=1e-4)
        assert a.toxicity == pytest.approx(b.toxicity, abs=1e-4)
        if (
            abs(
                max(a.p_negative, a.p_neutral, a.p_positive)
                - sorted((a.p_negative, a.p_neutral, a.p_positive))[1]
            )
            > 1e-3
        ):
            assert a.label == b.label


def test_int8_onnx_is_close_to_torch(export: Path, torch_backend: TransformersBackend) -> None:
    onnx = OnnxBackend(export)  # int8 is the default
    expected = torch_backend.score(TEXTS)
    got = onnx.score(TEXTS)
    sentiment_err = [abs(a.sentiment - b.sentiment) for a, b in zip(got, expected, strict=True)]
    tox_err = [
        abs((a.toxicity or 0) - (b.toxicity or 0)) for a, b in zip(got, expected, strict=True)
    ]
    same_label = sum(a.label == b.label for a, b in zip(got, expected, strict=True))
    # Random wide weights quantise worse than trained ones; these bounds still catch a broken
    # graph or a label mix-up, which give errors near 1 and about a third of labels equal.
    assert sum(sentiment_err) / len(sentiment_err) < 0.05
    assert max(sentiment_err) < 0.4
    assert sum(tox_err) / len(tox_err) < 0.05
    assert same_label >= 0.9 * len(TEXTS)


def test_model_names_differ_by_precision_and_are_stable(export: Path) -> None:
    int8, fp32 = OnnxBackend(export), OnnxBackend(export, precision="fp32")
    assert int8.model.startswith("onnx-int8:sentiment@")
    assert fp32.model.startswith("onnx-fp32:sentiment@")
    assert OnnxBackend(export).model == int8.model
    assert OnnxBackend(export, max_length=32).model != int8.model


def test_tokens_equal_the_transformers_tokenizer(export: Path, models: Path) -> None:
    # The onnx backend tokenises with the tokenizers library alone; ids must be transformers'.
    onnx = OnnxBackend(export, precision="fp32")
    session = onnx._sessions["sentiment"]
    reference = AutoTokenizer.from_pretrained(models / "sentiment")
    texts = TEXTS[:20] + TEXTS[-3:]
    ref = reference(texts, padding=True, truncation=True, max_length=64)
    encs = session.tokenizer.encode_batch(texts)
    assert [e.ids for e in encs] == ref["input_ids"]
    assert [e.attention_mask for e in encs] == ref["attention_mask"]


def test_scoring_imports_no_torch(export: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from scorer.backends import load_backend
        backend = load_backend("onnx", model_dir={str(export)!r})
        scores = backend.score(["PogChamp", "Sadge", ""])
        assert len(scores) == 3, scores
        loaded = sorted(m for m in ("torch", "transformers") if m in sys.modules)
        print("loaded:", loaded)
        sys.exit(1 if loaded else 0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_directory_without_export_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="chatpulse models export --out"):
        load_backend("onnx", model_dir=tmp_path)
    with pytest.raises(BackendError, match="precision"):
        OnnxBackend(tmp_path, precision="int4")  # type: ignore[arg-type]
