"""The ``onnx`` scoring backend: the transformers backend's models, exported, run by onnxruntime.

Reads a directory written by ``chatpulse models export`` (:func:`scorer.export.export_models`):
``manifest.json`` and one subdirectory per role (``sentiment/``, ``emotion/``, ``offensive/``)
holding ``model.onnx`` (fp32), ``model.int8.onnx`` (dynamically quantised), ``config.json`` and
``tokenizer.json``.  It needs onnxruntime, tokenizers and numpy and never imports torch or
transformers, so a scoring worker stays small.  Preprocessing, batching and the mapping to a
score row are those of the transformers backend (:mod:`scorer.backends.hf`); on the fp32 model
the scores equal the torch ones to float rounding.

``model`` is ``onnx-<precision>:<sentiment model name>@<12 hex>``, the hex digesting each role's
source model version, the bytes of the ONNX file run, the maximum length and the preprocessing
version.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from scorer.backends.base import BackendError, Score
from scorer.backends.hf import (
    DEFAULT_BATCH_SIZE,
    MANIFEST,
    MODEL_FILES,
    ROLES,
    LabelMaps,
    model_name,
    read_config,
    read_label_maps,
    score_texts,
)

__all__ = ["MANIFEST", "MODEL_FILES", "OnnxBackend"]


class _Session:
    """One role: tokenizer, onnxruntime session and label map."""

    def __init__(
        self,
        role: str,
        directory: Path,
        file: str,
        max_length: int,
        options: ort.SessionOptions,
        providers: list[str],
    ) -> None:
        where = f"{role} model in {directory}"
        config = read_config(directory, where)
        self.maps: LabelMaps = read_label_maps(role, config, where)
        path = directory / file
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # tokenizers and onnxruntime raise their own exception types
            raise BackendError(f"{where} cannot be loaded: {exc}") from exc
        with path.open("rb") as f:
            self.digest = hashlib.file_digest(f, "sha256").hexdigest()
        positions = int(config.get("max_position_embeddings", max_length + 2))
        pad_id = int(config.get("pad_token_id", 1))
        pad_token = self.tokenizer.id_to_token(pad_id) or "<pad>"
        # The same truncation and right padding as the transformers tokenizer: RoBERTa derives
        # positions from input_ids != pad_token_id, so the pad id must be the config's.
        self.tokenizer.enable_truncation(max_length=min(max_length, positions - 2))
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def logits(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encs = self.tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
        out = self.session.run(None, {name: arrays[name] for name in self.inputs})
        result: npt.NDArray[np.float32] = np.asarray(out[0], dtype=np.float32)
        return result


def _providers(device: str) -> list[str]:
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise BackendError(
                f"onnx backend: device {device!r} needs onnxruntime-gpu "
                f"(available providers: {', '.join(available)})"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise BackendError(f"onnx backend: unknown device {device!r} (cpu or cuda)")


class OnnxBackend:
    """Score chat with exported CardiffNLP-style models under onnxruntime.

    ``model_dir``: a directory written by ``chatpulse models export``.  ``precision``: ``int8``
    (default, the quantised models) or ``fp32``.  ``max_length``: tokens per text (default: the
    one the export was made for).  ``threads``: onnxruntime intra-op threads per session
    (default: onnxruntime's choice, all cores).  ``device``: ``cpu``, or ``cuda`` with
    onnxruntime-gpu.

    Raises :class:`BackendError` when the directory is not an export (the message says how to
    make one), a model cannot be loaded or its labels do not fit its role.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        precision: Literal["int8", "fp32"] = "int8",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_length: int | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ) -> None:
        root = Path(model_dir).expanduser()
        if precision not in MODEL_FILES:
            raise BackendError(f"onnx backend: precision must be int8 or fp32, not {precision!r}")
        if batch_size < 1:
            raise BackendError("onnx backend: batch_size must be at least 1")
        try:
            manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BackendError(
                f"onnx backend: {root} is not a model export ({exc}); "
                f"make one with `chatpulse models export --out {root}`"
            ) from exc
        roles: dict[str, Any] = manifest.get("roles", {})
        if "sentiment" not in roles:
            raise BackendError(f"onnx backend: the export in {root} has no sentiment model")
        length = int(max_length if max_length is not None else manifest.get("max_length", 128))
        if length < 3:
            raise BackendError("onnx backend: max_length must be at least 3")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        providers = _providers(device)
        self._sessions = {
            role: _Session(role, root / role, MODEL_FILES[precision], length, options, providers)
            for role in ROLES
            if role in roles
        }
        self.batch_size = batch_size
        self.max_length = length
        self.precision = precision
        parts = [f"max_length={length}", f"precision={precision}"] + [
            f"{role}={roles[role].get('version', '')}:{self._sessions[role].digest}"
            if role in self._sessions
            else role
            for role in ROLES
        ]
        stem = str(roles["sentiment"].get("name", "model"))
        self.model: str = model_name(f"onnx-{precision}", stem, parts)

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        """Score ``texts`` (see :class:`~scorer.backends.base.ScoringBackend`).

        ``channels`` is checked but unused: these models know no channel emotes.
        """
        try:
            return score_texts(self._sessions, texts, channels, self.batch_size)
        except ValueError:
            raise
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise BackendError(f"onnx backend failed: {exc}") from exc
