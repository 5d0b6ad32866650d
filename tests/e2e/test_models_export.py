"""``chatpulse models export`` as a user runs it, on tiny models built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="exporting models needs the ml extra (torch)")
pytest.importorskip("onnxruntime", reason="exporting models needs the ml extra (onnxruntime)")

from scorer.backends import load_backend
from tests.e2e.cli import run_cli
from tests.tiny_models import tiny_models_dir


def test_models_export_writes_an_export_the_onnx_backend_scores_with(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    models = tiny_models_dir(tmp_path_factory)
    out = tmp_path / "onnx"
    done = run_cli(
        "models",
        "export",
        "--out",
        str(out),
        env={"CHATPULSE_MODEL_DIR": str(models), "CHATPULSE_DATA_DIR": str(tmp_path / "data")},
    )
    assert done.returncode == 0, done.stderr
    assert "offensive: offensive@" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["roles"]["sentiment"]["max_abs_logit_diff"]["fp32"] < 1e-3
    scores = load_backend("onnx", model_dir=out).score(["LETS GOOO", "Sadge"])
    assert len(scores) == 2
