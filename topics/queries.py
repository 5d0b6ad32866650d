"""Named SQL queries: ``-- name: <name>`` markers in ``sql/queries/topics.sql``."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path

__all__ = ["load_queries", "query"]

_MARK = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split a named-query file; text before the first marker is a header and dropped."""
    parts = _MARK.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
        found[name] = body.strip()
    return found


@functools.cache
def load_queries(file: str = "topics.sql") -> dict[str, str]:
    """The named queries of ``sql/queries/<file>`` (installed as ``chatpulse.sql``)."""
    try:
        text = resources.files("chatpulse.sql").joinpath("queries", file).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # a source tree without the mapping
        path = Path(__file__).resolve().parent.parent / "sql" / "queries" / file
        text = path.read_text("utf-8")
    return parse_queries(text)


def query(name: str) -> str:
    """One query by name; KeyError names it when missing."""
    return load_queries()[name]
