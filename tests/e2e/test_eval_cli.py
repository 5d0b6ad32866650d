"""``chatpulse eval sentiment`` on a labelled CSV, as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import FIXTURES
from tests.e2e.cli import run_cli

LABELLED = FIXTURES / "labelled-chat" / "chat_sentiment.csv"


def test_eval_prints_macro_f1_recall_accuracy_and_confusion(tmp_path: Path) -> None:
    done = run_cli("eval", "sentiment", str(LABELLED), "--text-col", "text", "--label-col", "label")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "(164 messages)" in out
    figures = {
        name: float(value)
        for name, value in re.findall(r"^(macro-F1|macro recall|accuracy): +([0-9.]+)$", out, re.M)
    }
    assert set(figures) == {"macro-F1", "macro recall", "accuracy"}
    assert figures["macro-F1"] > 0.75  # the lexicon's documented floor on this set
    matrix = re.findall(r"^(negative|neutral|positive) +(\d+) +(\d+) +(\d+)$", out, re.M)
    assert [row[0] for row in matrix] == ["negative", "neutral", "positive"]
    assert [sum(map(int, row[1:])) for row in matrix] == [59, 47, 58]  # gold supports
    diagonal = sum(int(row[i + 1]) for i, row in enumerate(matrix))
    assert abs(diagonal / 164 - figures["accuracy"]) < 0.001


def test_eval_accepts_numeric_and_short_labels(tmp_path: Path) -> None:
    data = tmp_path / "numeric.csv"
    data.write_text(
        "msg;sentiment\nPogChamp LETS GO;1\nSadge;-1\nwhat time is it;0\n".replace(";", ",")
    )
    done = run_cli("eval", "sentiment", str(data), "--text-col", "msg", "--label-col", "sentiment")
    assert done.returncode == 0, done.stderr
    assert "(3 messages)" in done.stdout
    short = tmp_path / "short.csv"
    short.write_text("text,label\nPogChamp LETS GO,POS\nSadge, neg\nwhat time is it,neu\n")
    assert run_cli("eval", "sentiment", str(short)).returncode == 0


def test_eval_missing_column_exits_2_naming_it(tmp_path: Path) -> None:
    done = run_cli("eval", "sentiment", str(LABELLED), "--label-col", "gold")
    assert done.returncode == 2
    assert "--label-col: column 'gold'" in done.stderr
    assert "text, label" in done.stderr  # the columns the file has


def test_eval_bad_label_exits_2_naming_column_and_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nnice,positive\nmeh,mixed\n")
    done = run_cli("eval", "sentiment", str(data))
    assert done.returncode == 2
    assert "label column 'label', line 3: unknown label 'mixed'" in done.stderr
