"""Handlers of ``chatpulse score`` and ``chatpulse eval``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from chatpulse.app.commands.database import migrate
from chatpulse.app.commands.detect import cmd_detect
from chatpulse.app.signals import stop_on_signals
from chatpulse.core.db import database
from chatpulse.core.errors import ConfigError, DatabaseError
from chatpulse.core.metrics import serve_metrics
from chatpulse.core.settings import Settings, redact_url
from scorer.backends import ScoringBackend, import_backend, load_backend
from scorer.backends.base import BackendError
from scorer.evaluate import (
    LABELS,
    TOXICITY_LABELS,
    TOXICITY_THRESHOLD,
    evaluate,
    format_report,
    read_labelled_csv,
    read_toxicity_csv,
    report_json,
)
from scorer.export import default_export_dir, export_models
from scorer.loop import LoopConfig, ScorerStats, loop_config, run_scorer
from scorer.metrics import ScorerMetrics

__all__ = ["backend_options", "cmd_detect", "cmd_eval", "cmd_models_export", "cmd_score"]

log = logging.getLogger(__name__)


def backend_options(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword arguments for ``load_backend(name, ...)`` from the settings.

    ``lexicon`` takes none; the model backends get ``model_dir`` (when set) and, for
    ``transformers``, ``device``.  Raises :class:`~scorer.backends.MissingExtraError` first when
    the backend's extra is not installed.
    """
    import_backend(name)
    if name == "lexicon":
        return {}
    options: dict[str, Any] = {"batch_size": settings.scorer_batch_size}
    if name == "onnx":
        model_dir = settings.model_dir or default_export_dir(settings)
        if not model_dir.is_dir():
            raise ConfigError(
                f"model_dir (CHATPULSE_MODEL_DIR): {model_dir} holds no exported models; run "
                "'chatpulse models export' first or point model_dir at its output"
            )
        options["model_dir"] = model_dir
        return options
    if settings.model_dir is not None:
        options["model_dir"] = settings.model_dir
    else:  # hub names or local directories, one per task
        options["sentiment"] = settings.sentiment_model
        options["emotion"] = settings.emotion_model or None
        options["offensive"] = settings.offensive_model or None
    options["device"] = settings.device
    options["max_length"] = settings.model_max_length
    return options


async def _score(
    url: str,
    backend: ScoringBackend,
    config: LoopConfig,
    until_idle: bool,
    metrics: ScorerMetrics,
) -> ScorerStats:
    with stop_on_signals() as stop:
        return await run_scorer(
            url, backend, config=config, until_idle=until_idle, stop=stop, metrics=metrics
        )


def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse score``: score until SIGTERM/Ctrl-C (exit 0), or ``--until-idle``."""
    name = settings.scorer_backend
    backend = load_backend(name, **backend_options(settings, name))
    config = loop_config(settings)
    registry = CollectorRegistry()
    with database(settings) as url:
        asyncio.run(migrate(settings, url))
        metrics = ScorerMetrics(registry, url=url, model=backend.model)
        serve_metrics(settings, registry, one_shot=bool(args.until_idle))
        try:
            stats = asyncio.run(_score(url, backend, config, bool(args.until_idle), metrics))
        except psycopg.Error as exc:
            raise DatabaseError(f"scoring stopped: {redact_url(str(exc))}") from exc
    print(
        f"scored {stats.written} messages with {stats.model} "
        f"({stats.failed} not scored, see chat.scoring_failures; "
        f"{stats.attempted - stats.written} already scored); "
        f"{stats.seconds:.1f} s, {stats.rate:,.0f} messages/s"
    )
    sys.stdout.flush()
    return 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse eval sentiment|toxicity FILE.csv``: macro-F1, recall, accuracy, confusion.

    Toxicity: a message is predicted toxic when ``toxicity >= --threshold`` (default the
    product's 0.5).  ``--json`` prints the figures as one JSON object instead of the table.
    """
    task = getattr(args, "task", "sentiment")
    if task == "forecast":
        from chatpulse.app.commands.forecast import cmd_eval_forecast

        return cmd_eval_forecast(settings, args)
    if getattr(args, "file", None) is None:
        raise ConfigError(f"eval {task}: give the labelled FILE.csv")
    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"eval: no such file: {path}")
    threshold: float | None = None
    if task == "toxicity":
        threshold = getattr(args, "threshold", None)
        threshold = TOXICITY_THRESHOLD if threshold is None else threshold
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"--threshold: {threshold} is outside 0..1")
        texts, gold = read_toxicity_csv(path, args.text_col, args.label_col)
    else:
        texts, sentiment_gold = read_labelled_csv(path, args.text_col, args.label_col)
        gold = list(sentiment_gold)
    name = settings.scorer_backend
    backend = load_backend(name, **backend_options(settings, name))
    predicted: list[str] = []
    batch = max(1, settings.scorer_batch_size)
    for i in range(0, len(texts), batch):
        for score in backend.score(texts[i : i + batch]):
            if threshold is None:
                predicted.append(score.label)
            elif score.toxicity is None:
                raise ConfigError(
                    f"eval toxicity: backend {name!r} ({backend.model}) scores no toxicity; "
                    "configure an offensive model or use the lexicon backend"
                )
            else:
                predicted.append("toxic" if score.toxicity >= threshold else "clean")
    result = evaluate(gold, predicted, TOXICITY_LABELS if threshold is not None else LABELS)
    if getattr(args, "json", False):
        print(json.dumps(report_json(result, backend.model, str(path), task, threshold=threshold)))
    else:
        print(format_report(result, backend.model, str(path), threshold=threshold))
    sys.stdout.flush()
    return 0


def cmd_models_export(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse models export [--out DIR]``: export the configured models to int8 ONNX.

    Sources: ``model_dir`` (role subdirectories) when set, else the three model names (hub names
    need the Hugging Face cache or network).  ``--out`` defaults to :func:`default_export_dir`.
    Returns 0, or 1 with the reason on stderr when a model cannot be exported.
    """
    out = Path(args.out) if getattr(args, "out", None) else default_export_dir(settings)
    model_dir = settings.model_dir
    if model_dir is not None and Path(model_dir).expanduser().resolve() == out.resolve():
        print("chatpulse: models export: --out must differ from model_dir", file=sys.stderr)
        return 1
    try:
        manifest = export_models(
            out,
            sentiment=settings.sentiment_model,
            emotion=settings.emotion_model,
            offensive=settings.offensive_model,
            model_dir=model_dir,
            max_length=int(settings.model_max_length),
        )
    except (BackendError, ImportError) as exc:
        print(f"chatpulse: models export: {exc}", file=sys.stderr)
        return 1
    for role, info in manifest["roles"].items():
        diff = info["max_abs_logit_diff"]
        print(
            f"{role}: {info['name']}@{info['version']} -> {out / role} "
            f"(max |logit diff| fp32 {diff['fp32']:.1e}, int8 {diff['int8']:.1e})"
        )
    return 0
