"""Named queries: the loader's file layout, and each query file against the module that runs it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chatpulse.core.contract import EMOTIONS
from chatpulse.core.migrate import load_migrations
from chatpulse.core.queries import QueryFileError, load_queries, parse_queries
from tests.paths import ROOT

_TEXT = """\
-- header: ignored
-- name: first_one
-- Says what it does.
SELECT 1;

-- name: second
-- Another.
-- (more comment is fine)
UPDATE t SET a = %(a)s
WHERE b = 'x;y';
"""


def test_statements_are_split_on_markers_without_header_or_trailing_semicolon() -> None:
    queries = parse_queries(_TEXT)
    assert list(queries) == ["first_one", "second"]
    assert queries["first_one"] == "-- Says what it does.\nSELECT 1"
    assert queries["second"].endswith("WHERE b = 'x;y'")
    assert "header" not in queries["first_one"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("-- name: a\n-- x\nSELECT 1;\n-- name: a\n-- y\nSELECT 2;\n", "defined twice"),
        ("-- name: a\nSELECT 1;\n", "one-line '-- ' comment"),
        ("-- name: a\n-- name: b\n-- x\nSELECT 1;\n", "one-line '-- ' comment"),
        ("-- name: a\n-- only a comment\n\n-- name: b\n-- x\nSELECT 1;\n", "has no SQL"),
        ("-- name: Bad-Name\n-- x\nSELECT 1;\n", "bad query name"),
    ],
)
def test_a_malformed_file_is_refused_naming_file_and_line(text: str, said: str) -> None:
    with pytest.raises(QueryFileError, match=said) as info:
        parse_queries(text, "sql/queries/x.sql")
    assert str(info.value).startswith("sql/queries/x.sql:")


def test_queries_are_loaded_once() -> None:
    assert load_queries("clipper") is load_queries("clipper")


def _names_used(module: Path) -> set[str]:
    """Every ``_Q["name"]`` subscript and ``_update``/``_scalar``/``_names(conn, "name", ...)``
    call in a module."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "_Q"
            and isinstance(node.slice, ast.Constant)
        ):
            used.add(node.slice.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"_update", "_scalar", "_names"}
            and isinstance(node.args[1], ast.Constant)
        ):
            used.add(node.args[1].value)
    return used


@pytest.mark.parametrize(
    ("component", "modules"),
    [
        ("clipper", ["clipper/jobs.py"]),
        ("scorer", ["scorer/loop.py", "scorer/metrics.py"]),
        ("detector", ["detector/runner.py"]),
        ("forecast", ["forecast/store.py"]),
        (
            "core",
            [
                "chatpulse/core/migrate.py",
                "chatpulse/core/aggregates.py",
                "chatpulse/core/hints.py",
            ],
        ),
    ],
)
def test_each_module_uses_exactly_the_queries_of_its_file(
    component: str, modules: list[str]
) -> None:
    defined = set(load_queries(component))
    used = set().union(*(_names_used(ROOT / m) for m in modules))
    assert used - defined == set(), f"used but not in sql/queries/{component}.sql"
    assert defined - used == set(), f"in sql/queries/{component}.sql but never used"


def test_the_score_insert_writes_every_emotion_column() -> None:
    # The emotion columns are written out in sql/queries/scorer.sql; the contract lists them.
    statement = load_queries("scorer")["insert_scores"]
    for emotion in EMOTIONS:
        assert f"%({emotion})s::real[]" in statement
        assert f"u.{emotion}," in statement


def test_the_migration_runner_ignores_the_queries_folder() -> None:
    # A file named clipper.sql would be refused as a migration ("file name not understood").
    queries = (ROOT / "sql" / "queries" / "clipper.sql").read_text()
    assert all("-- name: claim_job" not in m.sql for m in load_migrations())
    assert "-- name: claim_job" in queries


def test_the_collector_uses_exactly_the_queries_of_its_file() -> None:
    defined = set(load_queries("collector"))
    used: set[str] = set()
    for module in sorted((ROOT / "collector").rglob("*.py")):
        used |= _names_used(module)
    assert used - defined == set(), "used but not in sql/queries/collector.sql"
    assert defined - used == set(), "in sql/queries/collector.sql but never used"
