"""``chatpulse.app.commands.score.cmd_models_export``: the handler of ``chatpulse models export``, in-process."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="exporting models needs the ml extra (torch)")
pytest.importorskip("onnxruntime", reason="exporting models needs the ml extra (onnxruntime)")

from chatpulse.app.commands.score import cmd_models_export
from chatpulse.core.settings import Settings
from scorer.backends.onnx_backend import OnnxBackend
from scorer.export import default_export_dir


def test_export_from_model_dir_to_the_default_directory(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(model_dir=models, data_dir=tmp_path)
    assert cmd_models_export(settings, argparse.Namespace(out=None)) == 0
    out = default_export_dir(settings)
    assert out == tmp_path / "models" / "onnx"
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["roles"]) == ["emotion", "offensive", "sentiment"]
    printed = capsys.readouterr().out
    assert "sentiment: sentiment@" in printed and "int8" in printed
    (score,) = OnnxBackend(out).score(["PogChamp"])
    assert score.toxicity is not None


def test_export_without_models_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(model_dir=tmp_path / "empty", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    assert cmd_models_export(settings, argparse.Namespace(out=str(tmp_path / "out"))) == 1
    assert "no sentiment/ subdirectory" in capsys.readouterr().err
    assert not (tmp_path / "out" / "manifest.json").exists()
