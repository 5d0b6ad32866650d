"""Which database errors mean "not now" (spool and retry) rather than "not this data".

The writer spools a batch when :func:`is_unavailable` says so and isolates the rows the
database rejects otherwise (docs/architecture.md, "The exactly-once protocol").
"""

from __future__ import annotations

import psycopg
from psycopg_pool import PoolTimeout

from chatpulse.core.errors import DatabaseError

__all__ = ["DatabaseUnavailable", "is_unavailable"]


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached (or is read-only): spool and retry, the data is fine."""


# SQLSTATE classes that mean "not now" rather than "not this data": connection exceptions,
# operator intervention (shutdown, cannot connect now), insufficient resources, read-only.
_UNAVAILABLE_STATES = ("08", "57", "53", "25006", "40001", "40P01")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot take the batch now (down, cut, read-only,
    out of resources, a serialization failure); False when it rejects the data itself."""
    if isinstance(
        exc,
        (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            PoolTimeout,
            TimeoutError,
            OSError,
            DatabaseUnavailable,
        ),
    ):
        return True
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        return exc.sqlstate.startswith(_UNAVAILABLE_STATES)
    return False
