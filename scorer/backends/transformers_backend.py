"""The ``transformers`` scoring backend: CardiffNLP's twitter-roberta models run with torch.

Three sequence classifiers (see :mod:`scorer.backends.hf` for the roles and label mapping):
sentiment, multilabel emotion and offensive, each from a local directory or a hub name
(``org/name`` or ``org/name@revision``).  It runs what a Hugging Face ``text-classification``
pipeline runs -- the model's own tokenizer, the model, softmax/sigmoid -- but calls the
tokenizer and model directly, so that batching, truncation and the mapping to a score row are
exactly those of the ``onnx`` backend, which must give the same scores without torch.

``model`` is ``transformers:<sentiment model name>@<12 hex>``; the hex digests every role's model
version (hub commit, or a digest of a local directory's files), the maximum length and the
preprocessing version.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from scorer.backends.base import BackendError, Score
from scorer.backends.hf import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MODELS,
    ROLES,
    LabelMaps,
    model_name,
    read_config,
    read_label_maps,
    resolve_model,
    role_specs,
    score_texts,
)

__all__ = ["TransformersBackend"]


class _Loaded:
    """One role's tokenizer and model on its device."""

    def __init__(self, role: str, spec: str, device: torch.device, max_length: int) -> None:
        resolved = resolve_model(spec, role)
        where = f"{role} model {spec}"
        self.resolved = resolved
        self.maps: LabelMaps = read_label_maps(role, read_config(resolved.path, where), where)
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(resolved.path)
            model: Any = AutoModelForSequenceClassification.from_pretrained(resolved.path)
        except (OSError, ValueError) as exc:
            raise BackendError(f"{where} cannot be loaded: {exc}") from exc
        self.model: Any = model.to(device).eval()
        # RoBERTa positions start after the padding index: 2 of max_position_embeddings are not
        # usable by tokens.
        positions = int(getattr(model.config, "max_position_embeddings", max_length + 2))
        self.max_length = min(max_length, positions - 2)
        self.device = device

    def logits(self, texts: list[str]) -> npt.NDArray[np.float32]:
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            out = self.model(**enc).logits
        result: npt.NDArray[np.float32] = out.float().cpu().numpy()
        return result


class TransformersBackend:
    """Score chat with CardiffNLP-style roberta classifiers under torch.

    ``sentiment``, ``emotion``, ``offensive``: local directories or hub names (``@revision``
    optional); an empty ``emotion``/``offensive`` leaves those columns NULL.  ``model_dir``, when
    given, replaces the three with its ``sentiment/``, ``emotion/`` and ``offensive/``
    subdirectories.  ``device`` is a torch device (``cpu``, ``cuda``, ``cuda:1``); ``batch_size``
    texts go through a model at once; texts are cut to ``max_length`` tokens.

    Raises :class:`BackendError` when a model is missing (with ``HF_HUB_OFFLINE=1``, a hub model
    that is not cached), its labels do not fit its role, or the device is not available.
    """

    def __init__(
        self,
        sentiment: str | None = DEFAULT_MODELS["sentiment"],
        emotion: str | None = DEFAULT_MODELS["emotion"],
        offensive: str | None = DEFAULT_MODELS["offensive"],
        *,
        model_dir: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        if batch_size < 1 or max_length < 3:
            raise BackendError("transformers backend: batch_size >= 1 and max_length >= 3 needed")
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise BackendError(f"transformers backend: bad device {device!r}: {exc}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"transformers backend: device {device!r} but CUDA is not available")
        # Loading bars on stderr are noise in a service's logs.
        hf_logging: Any = transformers.utils.logging  # untyped
        hf_logging.disable_progress_bar()
        specs = role_specs(sentiment, emotion, offensive, model_dir)
        self._models = {
            role: _Loaded(role, spec, dev, max_length)
            for role, spec in specs.items()
            if spec is not None
        }
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = str(dev)
        parts = [f"max_length={max_length}"] + [
            f"{role}={self._models[role].resolved.version}" if role in self._models else role
            for role in ROLES
        ]
        self.model: str = model_name("transformers", self._models["sentiment"].resolved.name, parts)

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        """Score ``texts`` (see :class:`~scorer.backends.base.ScoringBackend`).

        ``channels`` is checked but unused: these models know no channel emotes.
        """
        try:
            return score_texts(self._models, texts, channels, self.batch_size)
        except ValueError:
            raise
        except RuntimeError as exc:  # torch: out of memory, device lost
            raise BackendError(f"transformers backend failed: {exc}") from exc
