"""Grafana's SQL expansion as reproduced by grafana.macros, against Grafana's macro docs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from grafana.macros import (
    MacroError,
    TimeRange,
    expand,
    expand_macros,
    format_interval,
    grafana_interval,
    interpolate_variables,
    parse_interval,
    unformatted_variables,
)

R = TimeRange(datetime(2018, 4, 12, 18, tzinfo=UTC), datetime(2018, 4, 12, 19, tzinfo=UTC))
R_MS = TimeRange(R.start, datetime(2018, 4, 12, 18, 5, 0, 123000, tzinfo=UTC))


def test_time_filter_uses_rfc3339_with_nanoseconds_only_when_present() -> None:
    assert (
        expand_macros("WHERE $__timeFilter(t)", R_MS)
        == "WHERE t BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00.123Z'"
    )
    assert expand_macros("$__timeFrom() $__timeTo()", R) == (
        "'2018-04-12T18:00:00Z' '2018-04-12T19:00:00Z'"
    )


def test_time_group_plain_and_timescaledb() -> None:
    sql = "SELECT $__timeGroupAlias(c, '5m') FROM t GROUP BY 1"
    assert expand_macros(sql, R) == (
        'SELECT floor(extract(epoch from c)/300)*300 AS "time" FROM t GROUP BY 1'
    )
    assert expand_macros(sql, R, timescaledb=True) == (
        "SELECT time_bucket('300.000s',c) AS \"time\" FROM t GROUP BY 1"
    )
    assert expand_macros("$__timeGroup(c, 1h30m)", R, timescaledb=True) == (
        "time_bucket('5400.000s',c)"
    )


def test_first_macro_followed_by_comma_aliases_every_time_group() -> None:
    sql = "SELECT $__timeGroup(c,5m), v FROM t GROUP BY $__timeGroup(c,5m)"
    out = expand_macros(sql, R)
    assert out.count('AS "time"') == 2  # Grafana's trap: invalid SQL in GROUP BY


def test_epoch_macros_and_server_side_intervals() -> None:
    sql = "$__unixEpochFilter(e) $__unixEpochGroupAlias(e, 1m) $__interval_ms $__interval"
    assert expand_macros(sql, R, interval_ms=120000) == (
        'e >= 1523556000 AND e <= 1523559600 floor((e)/60)*60 AS "time" 120000 2m'
    )
    assert expand_macros("$__unixEpochFrom() $__unixEpochTo()", R) == "1523556000 1523559600"


def test_unformatted_variables_lists_only_template_variables_without_a_format() -> None:
    sql = "IN (${channel:sqlstring}) AND m = '$model' AND ${user} $__timeFilter(t) $__interval"
    assert unformatted_variables(sql) == ["model", "user"]
    assert unformatted_variables("${model:sqlstring} $1") == []


def test_unknown_macro_and_bad_interval_are_errors() -> None:
    with pytest.raises(MacroError):
        expand_macros("SELECT $__nope(x)", R)
    with pytest.raises(MacroError):
        expand_macros("SELECT $__timeGroup(x, fortnight)", R)
    with pytest.raises(MacroError):
        expand_macros("SELECT $__timeGroup(x)", R)


def test_variables_multi_value_quoted_single_value_doubled() -> None:
    sql = "name IN ($channel) AND m = '$model' AND ${channel:csv} ${channel:sqlstring}"
    out = interpolate_variables(
        sql, {"channel": ["a", "o'b"], "model": "lex'icon"}, multi={"channel"}
    )
    assert out == "name IN ('a','o''b') AND m = 'lex''icon' AND a,o'b 'a','o''b'"
    # sqlstring as Grafana's sqlStringFormatter (scenes >= 1.20): ' doubled, " as \"
    out = interpolate_variables(
        "${search:sqlstring} ${channel:sqlstring}",
        {"search": 'say "hi" it\'s \\', "channel": ["a", "o'b"]},
        multi={"channel"},
    )
    assert out == "'say \\\"hi\\\" it''s \\' 'a','o''b'"
    with pytest.raises(MacroError):
        interpolate_variables("${channel:singlequote}", {"channel": ["a"]}, multi={"channel"})
    # Not variables: macros and unknown names stay for the server step.
    assert interpolate_variables("$__timeFilter(t) $other", {}) == "$__timeFilter(t) $other"


def test_interval_rounding_and_formatting_like_the_browser() -> None:
    assert grafana_interval(R) == 5000  # 3.6 s -> 5 s
    assert grafana_interval(R, min_interval="1m") == 60000
    week = TimeRange(R.start, R.start.replace(day=19))
    assert format_interval(grafana_interval(week)) == "10m"
    assert format_interval(90_000) == "1m"  # truncated to one unit
    assert format_interval(604_800_000) == "7d"
    assert format_interval(500) == "500ms"
    assert parse_interval("'1d'") == 86400
    assert expand("$__timeGroupAlias(c, $__interval)", R, interval_ms=20000) == (
        'floor(extract(epoch from c)/20)*20 AS "time"'
    )
