"""Evaluate a backend on a user's labelled CSV (``chatpulse eval sentiment|toxicity``).

Pure functions: read the file (:func:`read_labelled_csv`, :func:`read_toxicity_csv`), compare gold
and predicted labels (:func:`evaluate`), format the report (:func:`format_report`) or its JSON
(:func:`report_json`).  No numpy: this runs in the base install.

Accepted sentiment labels (case and surrounding spaces ignored):

============  ==========================================
negative      ``negative``, ``neg``, ``-1``, ``-``
neutral       ``neutral``, ``neu``, ``neut``, ``0``
positive      ``positive``, ``pos``, ``1``, ``+1``, ``+``
============  ==========================================

A file whose numeric labels are exactly ``0``/``1``/``2`` (with at least one ``2`` and no
``-1``) uses TweetEval's / CardiffNLP's convention: 0 negative, 1 neutral, 2 positive.

Accepted toxicity labels (case, spaces, ``-``/``_`` ignored):

=====  =========================================================================================
toxic  ``1``, ``toxic``, ``offensive``, ``off``, ``hate``, ``hateful``, ``abusive``, ``abuse``,
       ``insult``, ``profanity``, ``obscene``, ``yes``, ``true``
clean  ``0``, ``clean``, ``neither``, ``not``, ``none``, ``normal``, ``nontoxic``, ``not toxic``,
       ``not offensive``, ``no``, ``false``
=====  =========================================================================================

A file whose numeric labels are exactly ``0``/``1``/``2`` (with at least one ``2``) uses
Davidson et al.'s ``class`` column (0 hate speech, 1 offensive language, 2 neither): 0 and 1 are
toxic, 2 is clean -- hate speech and offensive language are both what a moderator acts on.
OLID/OffensEval's ``OFF``/``NOT`` are covered by the words.  A message is predicted toxic when
its ``toxicity >= threshold`` (the product's 0.5 unless ``--threshold`` says otherwise).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatpulse.core.errors import ConfigError
from scorer.backends import Label

__all__ = [
    "LABELS",
    "TOXICITY_LABELS",
    "TOXICITY_THRESHOLD",
    "ClassScores",
    "Evaluation",
    "evaluate",
    "format_report",
    "normalise_labels",
    "normalise_toxicity_labels",
    "read_labelled_csv",
    "read_toxicity_csv",
    "report_json",
]

#: Class order of every table and matrix.
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")

_WORDS: dict[str, Label] = {
    "negative": "negative",
    "neg": "negative",
    "-1": "negative",
    "-": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "neut": "neutral",
    "0": "neutral",
    "positive": "positive",
    "pos": "positive",
    "1": "positive",
    "+1": "positive",
    "+": "positive",
}
_TWEETEVAL: dict[str, Label] = {"0": "negative", "1": "neutral", "2": "positive"}

#: Class order of the toxicity report.
TOXICITY_LABELS: tuple[str, ...] = ("clean", "toxic")
#: The product's threshold: a message counts as toxic in sentiment_1m and the panels at >= this.
TOXICITY_THRESHOLD = 0.5

_TOXIC_WORDS = {
    **dict.fromkeys(
        [
            "1",
            "toxic",
            "offensive",
            "offensivelanguage",
            "off",
            "hate",
            "hateful",
            "hatespeech",
            "abusive",
            "abuse",
            "insult",
            "profanity",
            "obscene",
            "yes",
            "true",
        ],
        "toxic",
    ),
    **dict.fromkeys(
        [
            "0",
            "clean",
            "neither",
            "not",
            "none",
            "normal",
            "nontoxic",
            "nottoxic",
            "notoffensive",
            "no",
            "false",
        ],
        "clean",
    ),
}
_DAVIDSON = {"0": "toxic", "1": "toxic", "2": "clean"}


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision, recall and F1 of one class, and how many gold examples it has."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Scores over :data:`LABELS`; ``confusion[i][j]``: gold ``LABELS[i]`` predicted ``LABELS[j]``."""

    n: int
    accuracy: float
    macro_f1: float
    macro_recall: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]


def normalise_labels(raw: Sequence[str], column: str) -> list[Label]:
    """Map the file's labels onto :data:`LABELS`; raises ConfigError naming the column and line.

    Line numbers count the header as line 1.
    """
    cleaned = [value.strip().lower() for value in raw]
    numeric = set(cleaned) & {"-1", "0", "1", "2"}
    table = _TWEETEVAL if "2" in numeric and "-1" not in numeric else _WORDS
    out: list[Label] = []
    for i, value in enumerate(cleaned):
        label = table.get(value)
        if label is None:
            raise ConfigError(
                f"label column {column!r}, line {i + 2}: unknown label {raw[i]!r} (use "
                "negative/neutral/positive, neg/neu/pos, -1/0/1 or 0/1/2)"
            )
        out.append(label)
    return out


def normalise_toxicity_labels(raw: Sequence[str], column: str) -> list[str]:
    """Map the file's labels onto :data:`TOXICITY_LABELS`; ConfigError names column and line."""
    cleaned = [
        value.strip().lower().replace("-", "").replace("_", "").replace(" ", "") for value in raw
    ]
    davidson = "2" in cleaned and set(cleaned) <= {"0", "1", "2"}
    table = _DAVIDSON if davidson else _TOXIC_WORDS
    out: list[str] = []
    for i, value in enumerate(cleaned):
        label = table.get(value)
        if label is None:
            raise ConfigError(
                f"label column {column!r}, line {i + 2}: unknown label {raw[i]!r} (use 0/1, "
                "toxic/clean, offensive/neither, hate, OFF/NOT, or Davidson's class 0/1/2)"
            )
        out.append(label)
    return out


def read_toxicity_csv(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    """Read texts and toxicity labels; raises ConfigError for a missing file, column or label."""
    texts, raw = _read_columns(path, text_col, label_col)
    return texts, normalise_toxicity_labels(raw, label_col)


def read_labelled_csv(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[Label]]:
    """Read texts and normalised labels; raises ConfigError for a missing file or column."""
    texts, raw = _read_columns(path, text_col, label_col)
    return texts, normalise_labels(raw, label_col)


def _read_columns(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            for flag, column in (("--text-col", text_col), ("--label-col", label_col)):
                if column not in columns:
                    raise ConfigError(
                        f"{flag}: column {column!r} not in {path} "
                        f"(columns: {', '.join(columns) or 'none'})"
                    )
            texts, raw = [], []
            for row in reader:
                texts.append(row[text_col] or "")
                raw.append(row[label_col] or "")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not texts:
        raise ConfigError(f"{path}: no labelled rows")
    return texts, raw


def evaluate(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = LABELS
) -> Evaluation:
    """Accuracy, macro-F1, macro recall, per-class scores and the confusion matrix over ``labels``.

    A class with no gold example and no prediction counts 0 in the macro averages (as
    scikit-learn's ``zero_division=0``).  Raises ValueError when the lengths differ or are 0.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g]][index[p]] += 1
    per_class: dict[str, ClassScores] = {}
    for i, label in enumerate(labels):
        tp = confusion[i][i]
        gold_n = sum(confusion[i])
        pred_n = sum(row[i] for row in confusion)
        precision = tp / pred_n if pred_n else 0.0
        recall = tp / gold_n if gold_n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScores(precision, recall, f1, gold_n)
    n = len(gold)
    return Evaluation(
        n=n,
        accuracy=sum(confusion[i][i] for i in range(len(labels))) / n,
        macro_f1=sum(c.f1 for c in per_class.values()) / len(labels),
        macro_recall=sum(c.recall for c in per_class.values()) / len(labels),
        per_class=per_class,
        confusion=confusion,
    )


def format_report(
    result: Evaluation, model: str, source: str, *, threshold: float | None = None
) -> str:
    """The text ``chatpulse eval`` prints: headline figures, per-class table, confusion matrix."""
    labels = list(result.per_class)
    lines = [
        f"model: {model}",
        f"data: {source} ({result.n} messages)",
        *([f"threshold:    toxic when toxicity >= {threshold:g}"] if threshold is not None else []),
        f"macro-F1:     {result.macro_f1:.3f}",
        f"macro recall: {result.macro_recall:.3f}",
        f"accuracy:     {result.accuracy:.3f}",
        "",
        f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
    ]
    for label in labels:
        c = result.per_class[label]
        lines.append(
            f"{label:<10} {c.precision:>9.3f} {c.recall:>7.3f} {c.f1:>6.3f} {c.support:>8}"
        )
    lines += ["", "confusion matrix (rows: gold, columns: predicted)"]
    lines.append(f"{'':<10} " + " ".join(f"{label:>9}" for label in labels))
    for label, row in zip(labels, result.confusion, strict=True):
        lines.append(f"{label:<10} " + " ".join(f"{v:>9}" for v in row))
    return "\n".join(lines)


def report_json(
    result: Evaluation, model: str, source: str, task: str, *, threshold: float | None = None
) -> dict[str, Any]:
    """The figures of :func:`format_report` as one JSON-ready object (``eval --json``).

    Keys: ``task``, ``model``, ``data``, ``n``, ``macro_f1``, ``macro_recall``, ``accuracy``,
    ``labels``, ``per_class`` (precision, recall, f1, support by label), ``confusion`` (rows
    gold, columns predicted, in ``labels`` order) and, for toxicity, ``threshold``.
    """
    out: dict[str, Any] = {
        "task": task,
        "model": model,
        "data": source,
        "n": result.n,
        "macro_f1": result.macro_f1,
        "macro_recall": result.macro_recall,
        "accuracy": result.accuracy,
        "labels": list(result.per_class),
        "per_class": {
            label: {"precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
            for label, c in result.per_class.items()
        },
        "confusion": result.confusion,
    }
    if threshold is not None:
        out["threshold"] = threshold
    return out
