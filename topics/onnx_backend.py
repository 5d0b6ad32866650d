"""The ``onnx-int8`` embedding backend: the sentence-transformer exported to ONNX, its weights
quantised to int8, run by onnxruntime on CPU.

The first use exports the model (needs torch and sentence-transformers: the ``embed`` extra)
into a cache directory::

    DIR/model.onnx          fp32 transformer, dynamic batch and sequence axes -> token vectors
    DIR/model.int8.onnx     dynamically quantised (onnxruntime.quantization.quantize_dynamic)
    DIR/tokenizer.json      the model's fast tokenizer
    DIR/manifest.json       source, max_seq_length, versions

Later uses read only that directory: onnxruntime, tokenizers and numpy (the ``onnx`` extra), no
torch.  Pooling and normalisation are the sentence-transformer's own (mean over the attention
mask, then unit length: checked against its ``modules.json`` at export), so the vectors are those
of :class:`topics.embed.Embedder` on torch up to the int8 rounding (cosine > 0.98 on real chat,
``tests/integration/test_topics_vectors.py``).  Activations are quantised at run time with one
scale per batch, so a text's vector moves slightly with the texts batched beside it (the same
batch gives the same vectors).  The stored model name stays the torch one: the vectors of both
backends live in one space and may be mixed.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatpulse.core.errors import ConfigError

__all__ = ["MANIFEST_VERSION", "OnnxEncoder", "export_int8", "load_int8", "quantize_int8"]

log = logging.getLogger(__name__)

#: Bumped when the files or the way they are made change: an older cache is exported again.
MANIFEST_VERSION = 3
_FILES = ("model.int8.onnx", "tokenizer.json", "manifest.json")
_ONNX_EXTRA = (
    "the onnx-int8 embedding backend needs the 'onnx' extra: pip install 'chatpulse[onnx]'"
)


class OnnxEncoder:
    """Tokenizer and onnxruntime session; :meth:`encode` gives unit vectors (numpy, float32)."""

    def __init__(self, directory: Path, threads: int = 0) -> None:
        self.directory = directory
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ModuleNotFoundError:
            raise ConfigError(f"CHATPULSE_EMBED_BACKEND: {_ONNX_EXTRA}") from None
        manifest = json.loads((directory / "manifest.json").read_text())
        self.max_length = int(manifest["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(pad_id=int(manifest.get("pad_id", 0)))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(directory / "model.int8.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: Sequence[str], batch_size: int) -> Any:
        """Unit vectors of ``texts`` in order, as a (len(texts), 384) float32 array.

        Batches hold texts of similar length (sorted, as sentence-transformers does), so little
        of a batch is padding."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        # onnxruntime runs batches of 32 faster per text than larger ones here (activations
        # stay in cache); a smaller setting is kept.
        step = min(batch_size, 32)
        chunks = []
        for first in range(0, len(order), step):
            idx = order[first : first + step]
            encs = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.asarray([e.ids for e in encs], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encs], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feed["token_type_ids"] = np.asarray([e.type_ids for e in encs], dtype=np.int64)
            tokens = self.session.run(None, feed)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            chunks.append((idx, pooled / np.maximum(norms, 1e-12)))
        width = chunks[0][1].shape[1] if chunks else 0
        out = np.zeros((len(texts), width), dtype=np.float32)
        for idx, vectors in chunks:
            out[idx] = vectors
        return out


def _check_pooling(source: Path) -> None:
    """The exported pooling is mean + normalise: refuse a model whose modules say otherwise."""
    modules = source / "modules.json"
    if not modules.is_file():
        return  # a bare transformers model: sentence-transformers adds mean pooling itself
    listed = json.loads(modules.read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in listed]
    pooling = next((m for m in listed if m["type"].endswith("Pooling")), None)
    config = {}
    if pooling is not None:
        config = json.loads((source / pooling["path"] / "config.json").read_text())
    modes = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    if kinds[:1] != ["Transformer"] or modes not in ([], ["pooling_mode_mean_tokens"]):
        raise ConfigError(
            f"CHATPULSE_EMBED_BACKEND=onnx-int8: {source} is not a mean-pooling "
            f"sentence-transformer (modules {kinds}, pooling {modes})"
        )


def quantize_int8(source: Path, target: Path) -> None:
    """Write the dynamically int8-quantised version of ONNX encoder ``source`` to ``target``.

    The weights of every MatMul become int8 with one scale per output channel; embedding
    lookups (Gather) stay fp32.  Per channel, not per tensor: on tests/fixtures chat with this
    model the mean cosine to the torch vectors is ~0.986 against ~0.92 per tensor (a few
    channels with large weights set a tensor's scale).  Keeping the feed-forward
    down-projections fp32 too gives ~0.992 but halves the speed-up, so they are quantised."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # quantize_dynamic's generic pre-process advice
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
    finally:
        root.setLevel(level)


def export_int8(st: Any, source: str, target: Path) -> None:
    """Export loaded sentence-transformer ``st`` (read from ``source``) to ``target``.

    Writes into a temporary directory beside ``target`` and renames it, so a crash leaves no
    half-written cache.  Needs torch, onnx and onnxruntime."""
    import onnxruntime
    import torch

    if Path(source).is_dir():
        _check_pooling(Path(source))
    transformer = st[0]
    bert = transformer.auto_model.eval()

    class _TokenVectors(torch.nn.Module):
        """The encoder called by keyword (its positional order changes across transformers
        versions), returning only the token vectors."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, *args: Any) -> Any:
            return self.bert(**dict(zip(names, args, strict=True))).last_hidden_state

    model = _TokenVectors().eval()
    tokenizer = transformer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"CHATPULSE_EMBED_BACKEND=onnx-int8: {source} has no fast tokenizer")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        example = tokenizer(
            ["a chat line", "a longer chat line with more words in it"],
            padding=True,
            return_tensors="pt",
        )
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in example]
        axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
        axes["token_embeddings"] = {0: "batch", 1: "sequence"}
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript; this one
            # traces a BERT encoder exactly and warns about shapes constant by construction.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(example[n] for n in names),
                str(work / "model.onnx"),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        quantize_int8(work / "model.onnx", work / "model.int8.onnx")
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        manifest = {
            "version": MANIFEST_VERSION,
            "source": source,
            "max_seq_length": int(st.max_seq_length),
            "pad_id": int(tokenizer.pad_token_id or 0),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("embedding model exported to ONNX int8", extra={"directory": str(target)})


def _cached(target: Path, source: str) -> bool:
    if not all((target / f).is_file() for f in _FILES):
        return False
    try:
        manifest = json.loads((target / "manifest.json").read_text())
    except ValueError:
        return False
    return bool(manifest.get("version") == MANIFEST_VERSION and manifest.get("source") == source)


def load_int8(source: str, target: Path, load_torch: Any) -> OnnxEncoder:
    """The int8 encoder of ``source`` from cache directory ``target``, exported there first
    when missing or stale (``load_torch()`` gives the sentence-transformer to export)."""
    if not _cached(target, source):
        export_int8(load_torch(), source, target)
    return OnnxEncoder(target)
