"""Expand a panel's SQL exactly as Grafana does before PostgreSQL sees it.

No Grafana server runs in our tests, so this module reproduces, step by step, what Grafana's
PostgreSQL datasource does to ``rawSql`` ([GRAFANA], "Macros"):

1. :func:`interpolate_variables` - the browser: template variables and ``$__interval``
   (dashboards only, never alert rules).
2. :func:`expand_macros` - the server: ``$__interval_ms``, ``$__interval``,
   ``$__unixEpochFrom()``/``$__unixEpochTo()``, then every ``$name(args)`` macro with the
   regular expression and argument splitting of Grafana's ``sqleng`` engine, including its
   ``$__timeGroup`` alias quirk.

:func:`grafana_interval` computes ``$__interval`` from a time range the way the browser does.
It is used by the tests and by ``bench/dashboards.py``; the generator itself never expands SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chatpulse.core.errors import ChatpulseError

__all__ = [
    "MacroError",
    "TimeRange",
    "expand",
    "expand_macros",
    "format_interval",
    "grafana_interval",
    "interpolate_variables",
    "parse_interval",
    "round_interval_ms",
    "sqlstring",
    "unformatted_variables",
]

# sqleng's macro expression: `\$([_a-zA-Z0-9]+)\(([^\)]*)\)`; arguments end at the first `)`.
_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
# A template variable: $name, ${name} or ${name:format} (Grafana's variableRegex, simplified
# to the forms our dashboards use; [[name]] is deprecated and never generated).
_VARIABLE_RE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}")
_INTERVAL_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_S = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


class MacroError(ChatpulseError, ValueError):
    """Grafana would reject this SQL (unknown macro, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard or alert time range; both ends are timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError("TimeRange end must be after its start")

    @property
    def ms(self) -> int:
        """Length in milliseconds."""
        return int((self.end - self.start) / timedelta(milliseconds=1))


def rfc3339_nano(value: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds only when present, zeros trimmed."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + f"{value.microsecond:06d}").rstrip("0")
    return text + "Z"


def parse_interval(text: str) -> float:
    """Seconds in an interval like ``5m``, ``1h30m``, ``'1d'`` or ``500ms`` (gtime.ParseInterval).

    Raises :class:`MacroError` when ``text`` is not an interval.
    """
    raw = text.strip().strip("'\"")
    pos, total = 0, 0.0
    for match in _INTERVAL_RE.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not raw or pos != len(raw):
        raise MacroError(f"invalid interval {text!r}")
    return total


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's ``rangeutil.roundInterval``: the nice interval nearest ``interval_ms``."""
    steps = (
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (150_000, 120_000),
        (450_000, 300_000),
        (900_000, 600_000),
        (1_200_000, 900_000),
        (1_800_000, 1_200_000),
        (3_600_000, 1_800_000),
        (7_200_000, 3_600_000),
        (21_600_000, 10_800_000),
        (43_200_000, 21_600_000),
        (86_400_000, 43_200_000),
        (604_800_000, 86_400_000),
        (1_814_400_000, 604_800_000),
        (3_628_800_000, 2_592_000_000),
    )
    for limit, value in steps:
        if interval_ms < limit:
            return value
    return 31_536_000_000


def format_interval(interval_ms: int) -> str:
    """Grafana's ``secondsToHms``: the largest whole unit, truncated (``90s`` -> ``1m``)."""
    seconds = interval_ms / 1000
    parts = (
        ("y", seconds // 31536000),
        ("d", (seconds % 31536000) // 86400),
        ("h", (seconds % 86400) // 3600),
        ("m", (seconds % 3600) // 60),
        ("s", seconds % 60 // 1),
    )
    for unit, whole in parts:
        if int(whole):
            return f"{int(whole)}{unit}"
    return f"{int(interval_ms)}ms"


def grafana_interval(
    time_range: TimeRange, *, max_data_points: int = 1000, min_interval: str | None = None
) -> int:
    """``$__interval_ms`` for ``time_range``: range / points, rounded, floored at the minimum.

    ``min_interval`` is the panel's ``interval`` or else the datasource's ``timeInterval``.
    """
    interval = round_interval_ms(time_range.ms / max_data_points)
    if min_interval:
        interval = max(interval, int(parse_interval(min_interval) * 1000))
    return interval


def _quote_literal(value: str) -> str:
    """The SQL datasources' default quoting of a multi-value item (``quoteLiteral``)."""
    return "'" + value.replace("'", "''") + "'"


def sqlstring(value: str) -> str:
    """Grafana's ``${v:sqlstring}`` of one value (``sqlStringFormatter``, scenes 1.20 and later,
    so every Grafana 11 and 12): single-quoted, ``'`` doubled and ``"`` written ``\\"``.

    Only ``'`` can end a PostgreSQL string (``standard_conforming_strings``, on by default and
    set for ``chatpulse_reader`` by ``migrate``), so the result is always one literal; the ``\\``
    before a ``"`` stays in the value (harmless where we use it: channel names and model names
    have no ``"``, and ``websearch_to_tsquery`` treats a backslash as a separator).
    """
    return "'" + value.replace("'", "''").replace('"', '\\"') + "'"


def unformatted_variables(sql: str) -> list[str]:
    """Template variables that ``sql`` uses without an explicit ``${name:format}``.

    Grafana's built-ins (``$__interval``, ``$__timeFilter(...)`` ...) are not template
    variables and are not listed.
    """
    found = []
    for match in _VARIABLE_RE.finditer(sql):
        name = match.group(1) or match.group(2)
        if name.startswith("__") or name.isdigit():
            continue
        if match.group(3) is None:
            found.append(name)
    return found


def interpolate_variables(
    sql: str,
    variables: Mapping[str, str | Sequence[str]],
    *,
    multi: frozenset[str] | set[str] = frozenset(),
    interval_ms: int | None = None,
) -> str:
    """The browser's step: template variables and ``$__interval``/``$__interval_ms``.

    ``variables`` maps a name to its current value (a list for a multi-value variable);
    ``multi`` names the variables that are multi-value or include-all, whose values are each
    single-quoted with ``'`` doubled and joined with ``,``.  A single-value variable is
    inserted unquoted with ``'`` doubled.  ``${v:csv}`` and ``${v:sqlstring}`` (see
    :func:`sqlstring`) are honoured;
    ``${v:singlequote}`` raises (backslash escaping is wrong for PostgreSQL).  Names that are
    not variables (``$__timeFilter``, ``$1``) are left alone.  Raises :class:`MacroError`.
    """

    def value_of(name: str, fmt: str | None) -> str | None:
        if name in ("__interval", "__interval_ms") and interval_ms is not None:
            if name == "__interval_ms":
                return str(interval_ms)
            return format_interval(interval_ms)
        if name not in variables:
            return None
        value = variables[name]
        values = [value] if isinstance(value, str) else list(value)
        if fmt == "csv":
            return ",".join(values)
        if fmt == "sqlstring":
            return ",".join(sqlstring(v) for v in values)
        if fmt is not None:
            raise MacroError(f"variable format {fmt!r} not supported for PostgreSQL")
        if name in multi or not isinstance(value, str):
            return ",".join(_quote_literal(v) for v in values)
        return value.replace("'", "''")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        fmt = match.group(3)
        # `$__interval_ms` must not be read as `$__interval` followed by `_ms`: \w+ is greedy.
        got = value_of(name, fmt)
        return match.group(0) if got is None else got

    return _VARIABLE_RE.sub(replace, sql)


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64 (60 -> ``60``, 0.5 -> ``0.5``)."""
    return str(int(value)) if value == int(value) else repr(value)


def _time_group(args: list[str], timescaledb: bool) -> str:
    if len(args) < 2:
        raise MacroError("macro __timeGroup needs time column and interval")
    seconds = parse_interval(args[1])
    if len(args) == 3 and not (
        args[2] in ("NULL", "previous") or re.fullmatch(r"-?\d+(\.\d+)?", args[2])
    ):
        raise MacroError(f"error parsing fill value {args[2]!r}")
    if timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"


def expand_macros(
    sql: str, time_range: TimeRange, *, interval_ms: int = 1000, timescaledb: bool = False
) -> str:
    """The server's step: what Grafana's PostgreSQL backend sends to the database.

    ``interval_ms`` is the query's interval (alert rules: 1000, so ``$__interval`` is ``1s``).
    ``timescaledb`` is the datasource's ``jsonData.timescaledb``.  Raises :class:`MacroError`
    for an unknown macro or bad arguments, as Grafana would answer the query with an error.
    """
    start = int(time_range.start.timestamp())
    end = int(time_range.end.timestamp())
    sql = sql.replace("$__interval_ms", str(interval_ms))
    sql = sql.replace("$__interval", format_interval(interval_ms))
    sql = sql.replace("$__unixEpochFrom()", str(start))
    sql = sql.replace("$__unixEpochTo()", str(end))
    frm, to = rfc3339_nano(time_range.start), rfc3339_nano(time_range.end)

    # sqleng: when the *first* macro call of the query is directly followed by a comma, every
    # $__timeGroup becomes $__timeGroupAlias (pre-5.3 compatibility) - even one in GROUP BY.
    first = _MACRO_RE.search(sql)
    alias_all = first is not None and sql[first.end() : first.end() + 1] == ","

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        args = [arg.strip() for arg in match.group(2).split(",")]
        if name == "__timeGroup" and alias_all:
            name = "__timeGroupAlias"
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
        if name == "__timeFrom":
            return f"'{frm}'"
        if name == "__timeTo":
            return f"'{to}'"
        if name == "__timeGroup":
            return _time_group(args, timescaledb)
        if name == "__timeGroupAlias":
            return _time_group(args, timescaledb) + ' AS "time"'
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {start} AND {args[0]} <= {end}"
        if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval")
            seconds = _go_float(parse_interval(args[1]))
            text = f"floor(({args[0]})/{seconds})*{seconds}"
            return text + (' AS "time"' if name.endswith("Alias") else "")
        raise MacroError(f"unknown macro {name!r}")

    return _MACRO_RE.sub(replace, sql)


def expand(
    sql: str,
    time_range: TimeRange,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    *,
    multi: frozenset[str] | set[str] = frozenset(),
    interval_ms: int | None = None,
    timescaledb: bool = False,
) -> str:
    """Both steps: a dashboard query as PostgreSQL receives it from Grafana."""
    interval = interval_ms if interval_ms is not None else grafana_interval(time_range)
    browser = interpolate_variables(sql, variables or {}, multi=multi, interval_ms=interval)
    return expand_macros(browser, time_range, interval_ms=interval, timescaledb=timescaledb)
