"""Named SQL queries, kept in ``.sql`` files next to the migrations.

One file per component, ``sql/queries/<component>.sql`` (shipped in the wheel as
``chatpulse.sql/queries``).  Each statement starts with a marker line and a one-line
comment that says what it does::

    -- name: claim_job
    -- Claim one due job, or one whose worker stopped heartbeating.
    UPDATE chat.clips SET ... RETURNING ...;

Text before the first marker (the file's header comment) is ignored; a statement runs up to
the next marker, and its trailing ``;`` is dropped.  Parameters are psycopg placeholders
(``%(name)s``; a literal ``%`` is ``%%``).  A file is read and checked once per process
(:func:`load_queries`); the migration runner ignores the ``queries`` folder.  The style is
procrastinate's ``sql/queries.sql``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import LiteralString

from chatpulse.core.errors import ChatpulseError

__all__ = ["QueryFileError", "load_queries", "parse_queries"]

_MARKER = re.compile(r"^-- name: (?P<name>\S*)\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class QueryFileError(ChatpulseError, ValueError):
    """A query file that breaks the layout above; the message names the file and line."""


def parse_queries(text: str, source: str = "<string>") -> dict[str, LiteralString]:
    """Split the text of a query file into ``{name: statement}``, in file order.

    Raises :class:`QueryFileError` for a bad or repeated name, a marker not followed by a
    ``-- `` comment line, or a statement with no SQL.  The statements come from files shipped
    with the package, never from input, hence ``LiteralString``.
    """
    queries: dict[str, LiteralString] = {}
    name: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        statement = "\n".join(body).strip().removesuffix(";").rstrip()
        sql_lines = [ln for ln in statement.splitlines() if not ln.lstrip().startswith("--")]
        if not "".join(sql_lines).strip():
            raise QueryFileError(f"{source}:{start}: query {name!r} has no SQL")
        queries[name] = statement  # mypy reads LiteralString as str

    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        marker = _MARKER.match(line)
        if marker is None:
            body.append(line)
            continue
        close()
        name, start, body = marker["name"], number, []
        if not _NAME.match(name):
            raise QueryFileError(f"{source}:{number}: bad query name {name!r} (a-z, 0-9, _)")
        if name in queries:
            raise QueryFileError(f"{source}:{number}: query {name!r} is defined twice")
        comment = lines[number] if number < len(lines) else ""
        if not comment.startswith("-- ") or _MARKER.match(comment):
            raise QueryFileError(
                f"{source}:{number + 1}: query {name!r} needs a one-line '-- ' comment"
            )
    close()
    return queries


@functools.cache
def load_queries(component: str) -> Mapping[str, LiteralString]:
    """The named queries of ``sql/queries/<component>.sql``, read once (read-only mapping).

    Raises :class:`QueryFileError` for a malformed file, :class:`FileNotFoundError` for an
    unknown component.
    """
    path = resources.files("chatpulse.sql").joinpath("queries", f"{component}.sql")
    text = path.read_text(encoding="utf-8")
    return MappingProxyType(parse_queries(text, f"sql/queries/{component}.sql"))
