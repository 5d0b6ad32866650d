"""The models plugin: the tiny RoBERTa classifiers of :mod:`tests.tiny_models`, built once per run.

Fixtures (session): ``models`` (the ``model_dir`` layout: sentiment, emotion, offensive) and
``export`` (those models exported to ONNX by ``scorer.models.export_models``).  Both need torch,
transformers and tokenizers: a module that uses them skips without (``pytest.importorskip``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_models import tiny_export_dir, tiny_models_dir

__all__ = ["export", "models"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models' directory (see :func:`tests.tiny_models.build_tiny_models`)."""
    return tiny_models_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models exported to ONNX (int8 and fp32), a ``model_dir`` for the onnx backend."""
    return tiny_export_dir(tmp_path_factory)
