"""``chatpulse eval sentiment`` on a labelled CSV, as a user runs it."""

from __future__ import annotations

import json
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


DAVIDSON = FIXTURES / "davidson-offensive" / "labeled_data_sample.csv"


def _json_eval(*args: str) -> dict[str, object]:
    done = run_cli("eval", *args, "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object, nothing else
    figures: dict[str, object] = json.loads(lines[0])
    return figures


def test_eval_toxicity_on_the_davidson_sample_reaches_the_goal() -> None:
    figures = _json_eval("toxicity", str(DAVIDSON), "--text-col", "tweet", "--label-col", "class")
    assert figures["task"] == "toxicity" and figures["threshold"] == 0.5
    assert figures["n"] == 3000 and figures["labels"] == ["clean", "toxic"]
    confusion = figures["confusion"]
    assert isinstance(confusion, list)
    # Davidson's class: 0 hate + 1 offensive -> toxic (2,481), 2 neither -> clean (519).
    assert [sum(row) for row in confusion] == [519, 2481]
    macro_f1 = figures["macro_f1"]
    assert isinstance(macro_f1, float) and macro_f1 >= 0.70  # issue 17's goal at 0.5
    assert isinstance(figures["macro_recall"], float) and isinstance(figures["accuracy"], float)


def test_eval_toxicity_threshold_changes_the_prediction() -> None:
    strict = _json_eval(
        "toxicity",
        str(DAVIDSON),
        "--text-col",
        "tweet",
        "--label-col",
        "class",
        "--threshold",
        "0.99",
    )
    assert strict["threshold"] == 0.99
    confusion = strict["confusion"]
    assert isinstance(confusion, list) and confusion[1][1] < 2000  # few flagged at 0.99


def test_eval_toxicity_accepts_words_and_prints_the_table(tmp_path: Path) -> None:
    data = tmp_path / "words.csv"
    data.write_text(
        "text,label\nur so dumb,offensive\nyou suck,TOXIC\nnice play,neither\n"
        "what a nice day,clean\nfucking idiot,hate\ngg wp,NOT\n"
    )
    done = run_cli("eval", "toxicity", str(data))
    assert done.returncode == 0, done.stderr
    assert "threshold:    toxic when toxicity >= 0.5" in done.stdout
    assert "(6 messages)" in done.stdout
    assert re.search(r"^macro-F1: +1\.000$", done.stdout, re.M)


def test_eval_toxicity_bad_label_and_threshold_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nhi,clean\nmeh,spicy\n")
    done = run_cli("eval", "toxicity", str(data))
    assert done.returncode == 2
    assert "label column 'label', line 3: unknown label 'spicy'" in done.stderr
    done = run_cli(
        "eval",
        "toxicity",
        str(DAVIDSON),
        "--text-col",
        "tweet",
        "--label-col",
        "class",
        "--threshold",
        "1.5",
    )
    assert done.returncode == 2 and "--threshold" in done.stderr


def test_eval_sentiment_json_on_the_labelled_chat_set() -> None:
    figures = _json_eval("sentiment", str(LABELLED))
    assert figures["task"] == "sentiment" and "threshold" not in figures
    assert figures["n"] == 164
    macro_f1 = figures["macro_f1"]
    assert isinstance(macro_f1, float) and macro_f1 > 0.75
    assert set(figures) >= {"macro_f1", "macro_recall", "accuracy", "confusion", "per_class"}
