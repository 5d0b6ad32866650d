"""Evaluate a sentiment backend on a user's labelled CSV (``chatpulse eval sentiment``).

Pure functions: read the file (:func:`read_labelled_csv`), compare gold and predicted labels
(:func:`evaluate`), format the report (:func:`format_report`).

Accepted labels (case and surrounding spaces ignored):

============  ==========================================
negative      ``negative``, ``neg``, ``-1``, ``-``
neutral       ``neutral``, ``neu``, ``neut``, ``0``
positive      ``positive``, ``pos``, ``1``, ``+1``, ``+``
============  ==========================================

A file whose numeric labels are exactly ``0``/``1``/``2`` (with at least one ``2`` and no
``-1``) uses TweetEval's / CardiffNLP's convention: 0 negative, 1 neutral, 2 positive.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chatpulse.core.errors import ConfigError
from scorer.backends import Label

__all__ = [
    "LABELS",
    "ClassScores",
    "Evaluation",
    "evaluate",
    "format_report",
    "normalise_labels",
    "read_labelled_csv",
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


def read_labelled_csv(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[Label]]:
    """Read texts and normalised labels; raises ConfigError for a missing file or column."""
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
    return texts, normalise_labels(raw, label_col)


def evaluate(gold: Sequence[Label], predicted: Sequence[Label]) -> Evaluation:
    """Accuracy, macro-F1, macro recall, per-class scores and the confusion matrix.

    A class with no gold example and no prediction counts 0 in the macro averages (as
    scikit-learn's ``zero_division=0``).  Raises ValueError when the lengths differ or are 0.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    index = {label: i for i, label in enumerate(LABELS)}
    confusion = [[0] * len(LABELS) for _ in LABELS]
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g]][index[p]] += 1
    per_class: dict[str, ClassScores] = {}
    for i, label in enumerate(LABELS):
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
        accuracy=sum(confusion[i][i] for i in range(len(LABELS))) / n,
        macro_f1=sum(c.f1 for c in per_class.values()) / len(LABELS),
        macro_recall=sum(c.recall for c in per_class.values()) / len(LABELS),
        per_class=per_class,
        confusion=confusion,
    )


def format_report(result: Evaluation, model: str, source: str) -> str:
    """The text ``chatpulse eval`` prints: headline figures, per-class table, confusion matrix."""
    lines = [
        f"model: {model}",
        f"data: {source} ({result.n} messages)",
        f"macro-F1:     {result.macro_f1:.3f}",
        f"macro recall: {result.macro_recall:.3f}",
        f"accuracy:     {result.accuracy:.3f}",
        "",
        f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
    ]
    for label in LABELS:
        c = result.per_class[label]
        lines.append(
            f"{label:<10} {c.precision:>9.3f} {c.recall:>7.3f} {c.f1:>6.3f} {c.support:>8}"
        )
    lines += ["", "confusion matrix (rows: gold, columns: predicted)"]
    lines.append(f"{'':<10} " + " ".join(f"{label:>9}" for label in LABELS))
    for label, row in zip(LABELS, result.confusion, strict=True):
        lines.append(f"{label:<10} " + " ".join(f"{v:>9}" for v in row))
    return "\n".join(lines)
