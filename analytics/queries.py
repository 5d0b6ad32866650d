"""Load the named queries of ``sql/queries/analytics.sql``.

A query starts at a line ``-- name: <name>`` and runs to the next such line; comment lines
inside it stay (PostgreSQL ignores them).  Each query is one statement.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

__all__ = ["QUERY_FILE", "load_queries", "parse_queries", "query"]

QUERY_FILE = "queries/analytics.sql"
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """``{name: sql}`` of every named query in ``text``; a repeated name is an error."""
    out: dict[str, str] = {}
    marks = list(_NAME.finditer(text))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        name = mark[1]
        if name in out:
            raise ValueError(f"query {name!r} is defined twice")
        body = text[mark.end() : end].strip().rstrip(";").strip()
        if not body:
            raise ValueError(f"query {name!r} is empty")
        out[name] = body
    return out


def _text() -> str:
    try:
        return resources.files("chatpulse.sql").joinpath(QUERY_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # source tree without the mapping
        root = Path(__file__).resolve().parent.parent / "sql"
        return (root / QUERY_FILE).read_text(encoding="utf-8")


@functools.cache
def load_queries() -> dict[str, str]:
    """Every named query of the analyze job (read once)."""
    return parse_queries(_text())


def query(name: str) -> str:
    """The SQL of one named query; KeyError names it when it does not exist."""
    return load_queries()[name]
