"""Time options of the commands (``--from``, ``--to``): one parser, one error message."""

from __future__ import annotations

from datetime import UTC, datetime

from chatpulse.core.errors import ConfigError

__all__ = ["parse_time_option", "parse_zoned_time"]


def parse_time_option(value: str | None, flag: str) -> datetime | None:
    """``value`` as an aware datetime (ISO 8601; no zone means UTC), None when not given.

    Raises :class:`ConfigError` naming ``flag`` (e.g. ``--from``) for a value that is no time.
    """
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{flag}: not an ISO 8601 time (e.g. 2024-01-06T16:00:00Z): {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_zoned_time(value: str, flag: str) -> datetime:
    """``value`` as an aware datetime that must carry its zone (``--start`` of a stream or a
    VOD: a guessed zone would shift every message).  Raises :class:`ConfigError` naming
    ``flag`` for a value that is no time or has no zone."""
    try:
        when = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise ConfigError(
            f"{flag}: {value!r} is not an ISO 8601 time (e.g. 2024-01-06T16:00:00Z)"
        ) from None
    if when.utcoffset() is None:
        raise ConfigError(
            f"{flag}: {value!r} has no time zone; add one (e.g. 2024-01-06T16:00:00Z)"
        )
    return when
