"""Benchmark: a roberta-base-sized classifier under torch fp32, ONNX fp32 and ONNX int8.

Run from the repository root: ``.venv/bin/python bench/models.py [--batch 32] [--seq 32 128]
[--threads 1] [--device cpu|cuda]``.  Needs the ``ml`` extra.

No download: the model is built from ``RobertaConfig()`` (roberta-base's size: 12 layers, hidden
768, 12 heads, vocab 50265; 3 labels like CardiffNLP's sentiment model) with random weights,
exported with :func:`scorer.export.export_onnx` and quantised with
:func:`scorer.export.quantize_onnx` -- the code ``chatpulse models export`` runs.  Random weights
run exactly as fast as trained ones.  Inputs are random token ids of a fixed sequence length with
no padding, so the figure is model throughput (messages/s) at that batch size and length; chat
messages are mostly under 32 tokens.  Tokenisation is not timed: both paths pay it alike.
``--device cuda`` runs the torch model on the GPU (fp32, and fp16 too); ONNX stays on the CPU.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make the repository's packages importable

import numpy as np  # noqa: E402

__all__ = ["main"]


def _rate(run: Callable[[], object], batch: int, min_seconds: float) -> float:
    run()  # warm-up: first-call allocation and kernel selection
    n = 0
    start = time.perf_counter()
    while True:
        run()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 3:
            return n * batch / elapsed


def _run_torch(model: Any, ids: Any) -> object:
    import torch

    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float().cpu()


def main(argv: list[str] | None = None) -> int:
    """Print messages/s per engine and sequence length; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="messages per batch")
    parser.add_argument("--seq", type=int, nargs="+", default=[32, 128], help="tokens per message")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and ORT")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch
    import transformers
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from scorer.export import export_onnx, quantize_onnx

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = RobertaConfig(num_labels=3)
    model = RobertaForSequenceClassification(config).eval()
    print(
        f"model: RobertaForSequenceClassification from RobertaConfig() "
        f"({config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"vocab {config.vocab_size}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
        f"parameters), random weights"
    )
    print(
        f"torch {torch.__version__}, onnxruntime {ort.__version__}, threads {args.threads}, "
        f"batch {args.batch}"
    )
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        ids = torch.from_numpy(rng.integers(3, config.vocab_size, (2, 16), dtype=np.int64))
        mask = torch.ones_like(ids)
        mask[1, 10:] = 0  # trace with padding
        start = time.perf_counter()
        export_onnx(model, fp32, {"input_ids": ids, "attention_mask": mask})
        exported = time.perf_counter() - start
        quantize_onnx(fp32, int8)
        print(
            f"export {exported:.1f} s, quantise {time.perf_counter() - start - exported:.1f} s; "
            f"fp32 {fp32.stat().st_size / 1e6:.0f} MB, int8 {int8.stat().st_size / 1e6:.0f} MB"
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("onnx fp32", fp32), ("onnx int8", int8))
        }
        device = torch.device(args.device)
        model_dev = model.to(device)
        for seq in args.seq:
            batch_ids = rng.integers(3, config.vocab_size, (args.batch, seq), dtype=np.int64)
            batch_ids[:, 0], batch_ids[:, -1] = 0, 2
            feed = {"input_ids": batch_ids, "attention_mask": np.ones_like(batch_ids)}
            t_ids = torch.from_numpy(batch_ids).to(device)
            rates = {
                f"torch fp32 ({device.type})": _rate(
                    functools.partial(_run_torch, model_dev, t_ids), args.batch, args.seconds
                )
            }
            if device.type == "cuda":
                half = model_dev.half()
                rates["torch fp16 (cuda)"] = _rate(
                    functools.partial(_run_torch, half, t_ids), args.batch, args.seconds
                )
                model_dev = half.float()
            for name, session in sessions.items():
                rates[name] = _rate(
                    functools.partial(session.run, None, feed), args.batch, args.seconds
                )
            base = next(iter(rates.values()))
            for name, rate in rates.items():
                print(
                    f"seq {seq:4d}  batch {args.batch:3d}  {name:20s} {rate:9.1f} messages/s"
                    f"  ({rate / base:.2f}x torch fp32)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
