"""Model management: export the transformers models to ONNX (fp32 + int8).

``chatpulse models export --out DIR`` (:func:`chatpulse.app.commands.score.cmd_models_export`) writes what the ``onnx``
backend reads (:mod:`scorer.backends.onnx_backend`)::

    DIR/manifest.json               roles, source model names and versions, max_length, tools
    DIR/<role>/model.onnx           fp32, dynamic batch and sequence axes
    DIR/<role>/model.int8.onnx      dynamically quantised (int8 weights of every MatMul)
    DIR/<role>/config.json          labels (id2label), pad id, positions
    DIR/<role>/tokenizer.json       the model's tokenizer, for the ``tokenizers`` library

for each role (``sentiment``, ``emotion``, ``offensive``) that has a model.  Every export is
checked before it is kept: the fp32 ONNX logits must equal torch's within ``tolerance`` on sample
chat, or :class:`~scorer.backends.base.BackendError` is raised.

Exporting needs torch, transformers, onnx and onnxruntime (the ``ml`` extra); scoring with the
result needs only onnxruntime and tokenizers.  torch is imported inside the functions that need
it, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scorer.backends.base import BackendError
from scorer.backends.hf import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MODELS,
    MANIFEST,
    MODEL_FILES,
    ROLES,
    preprocess,
    read_config,
    read_label_maps,
    resolve_model,
    role_specs,
)

if TYPE_CHECKING:
    from chatpulse.core.settings import Settings

__all__ = [
    "DEFAULT_EXPORT_TOLERANCE",
    "DEFAULT_OPSET",
    "SAMPLE_TEXTS",
    "default_export_dir",
    "export_models",
    "export_onnx",
    "quantize_onnx",
]

log = logging.getLogger(__name__)

#: ONNX opset of the export; onnxruntime >= 1.14 runs it.
DEFAULT_OPSET = 17
#: Largest |torch - onnx fp32| logit difference an export may have.
DEFAULT_EXPORT_TOLERANCE = 1e-3

#: Chat lines the export is traced and checked on: different lengths, so the check covers padding.
SAMPLE_TEXTS: tuple[str, ...] = (
    "PogChamp LETS GOOO that was the cleanest clutch I have seen all week @streamer",
    "KEKW",
    "",
    "this is so boring, unfollow https://example.com/x",
    "I love this community <3",
    "ＷＴＦ 😭😭😭 noooo",
)


def default_export_dir(settings: Settings) -> Path:
    """Where ``models export`` writes, and the ``onnx`` backend reads, without ``--out``/model_dir."""
    return Path(settings.data_dir) / "models" / "onnx"


def export_onnx(
    model: Any, path: Path, example: Mapping[str, Any], opset: int = DEFAULT_OPSET
) -> None:
    """Write torch sequence classifier ``model`` to ``path`` as ONNX (fp32).

    ``example`` is a tokenizer output (``input_ids``, ``attention_mask`` tensors) to trace with;
    give it two texts of different lengths so that padding is traced.  Batch and sequence axes
    are dynamic; the output is ``logits``.
    """
    import torch

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the torch.export one, which needs
        # onnxscript and takes far longer; it traces these encoders exactly (checked below, on
        # every export) and warns about shapes that are constant by construction.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_onnx(source: Path, target: Path) -> None:
    """Write the dynamically int8-quantised version of ONNX model ``source`` to ``target``.

    Weights of every MatMul become int8 (signed, per tensor); activations are quantised at run
    time.  Needs onnx and onnxruntime.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    # quantize_dynamic logs a generic "consider pre-processing" advice on the root logger.
    root.setLevel(max(level, logging.ERROR))
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def _export_role(
    role: str, spec: str, dest: Path, max_length: int, opset: int, tolerance: float
) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf_logging: Any = transformers.utils.logging  # untyped
    hf_logging.disable_progress_bar()
    resolved = resolve_model(spec, role)
    where = f"{role} model {spec}"
    read_label_maps(role, read_config(resolved.path, where), where)  # fail early on bad labels
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(resolved.path)
        model: Any = AutoModelForSequenceClassification.from_pretrained(
            resolved.path, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise BackendError(f"{where} cannot be loaded: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise BackendError(f"{where}: no fast (tokenizers) tokenizer, which the onnx backend needs")
    model.eval()
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(dest)
    model.config.save_pretrained(dest)
    positions = int(getattr(model.config, "max_position_embeddings", max_length + 2))
    texts = [preprocess(t) for t in SAMPLE_TEXTS]
    enc = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=min(max_length, positions - 2),
        return_tensors="pt",
    )
    fp32, int8 = dest / MODEL_FILES["fp32"], dest / MODEL_FILES["int8"]
    export_onnx(model, fp32, enc, opset)
    quantize_onnx(fp32, int8)
    with torch.no_grad():
        reference = model(**enc).logits.numpy()
    diffs = {}
    for precision, path in (("fp32", fp32), ("int8", int8)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: enc[i.name].numpy() for i in session.get_inputs()}
        got = session.run(None, feed)[0]
        diffs[precision] = float(np.abs(got - reference).max())
    if diffs["fp32"] > tolerance:
        raise BackendError(
            f"{where}: ONNX export differs from torch by {diffs['fp32']:.2g} > {tolerance:g}"
        )
    log.info(
        "model exported",
        extra={"role": role, "model": spec, "version": resolved.version, "max_diff": diffs},
    )
    return {
        "name": resolved.name,
        "source": spec if not Path(spec).expanduser().is_dir() else str(resolved.path),
        "version": resolved.version,
        "files": dict(MODEL_FILES),
        "max_abs_logit_diff": diffs,
    }


def export_models(
    out_dir: str | os.PathLike[str],
    *,
    sentiment: str | None = DEFAULT_MODELS["sentiment"],
    emotion: str | None = DEFAULT_MODELS["emotion"],
    offensive: str | None = DEFAULT_MODELS["offensive"],
    model_dir: str | os.PathLike[str] | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    opset: int = DEFAULT_OPSET,
    tolerance: float = DEFAULT_EXPORT_TOLERANCE,
) -> dict[str, Any]:
    """Export the models to ``out_dir`` (layout in the module docstring); return the manifest.

    The models are chosen as by the transformers backend (``model_dir`` with role subdirectories,
    else the three names; an empty ``emotion``/``offensive`` is left out).  Role directories of an
    earlier export in ``out_dir`` are replaced; the manifest is written last, so an interrupted
    export leaves no manifest naming half-written files.  Raises :class:`BackendError` when a
    model cannot be found or loaded, or its ONNX export does not match torch.
    """
    import onnx
    import onnxruntime
    import torch

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    specs = role_specs(sentiment, emotion, offensive, model_dir)
    roles: dict[str, Any] = {}
    for role in ROLES:
        dest = out / role
        if dest.exists():
            shutil.rmtree(dest)
        spec = specs[role]
        if spec is not None:
            roles[role] = _export_role(role, spec, dest, max_length, opset, tolerance)
    manifest = {
        "format": 1,
        "max_length": max_length,
        "opset": opset,
        "roles": roles,
        "tools": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out / MANIFEST)
    return manifest
