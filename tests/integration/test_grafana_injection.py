"""Every dashboard SQL with quote-laden and injection-shaped variable values, run for real.

Each panel, variable query and annotation is expanded as Grafana does (``${v:sqlstring}``:
Grafana's ``sqlStringFormatter``, see :func:`grafana.macros.sqlstring`) with hostile values in
every text variable, then run logged in as ``chatpulse_reader`` through the extended protocol,
which refuses a second statement: an injected ``; DROP ...`` would fail the test, and so would
a value that breaks out of its literal (a syntax error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from chatpulse.core.aggregates import refresh_pending
from chatpulse.core.migrate import run_migrations
from grafana.macros import expand, grafana_interval, interpolate_variables
from tests.conftest import create_database, drop_database
from tests.integration.test_grafana_sql import DS_TIME_INTERVAL, RANGE, dashboard_queries
from tests.integration.test_reader_role import PASSWORD, as_reader

HOSTILE = [
    "'; DROP TABLE chat.channels; --",
    "O'Brien",
    "back\\slash\\",
    "\\'; DROP TABLE chat.channels; --",
    'say "hi" \\"',
    "it's ' OR 1=1 --",
    "%s %(x)s {} $1",
]
MODEL = "lex'icon\\@1"
QUERIES = dashboard_queries()


@pytest.fixture(scope="module")
def hostile_db(admin_url: str, template_db: str) -> Iterator[str]:
    """Channels named after the hostile values, and a message, score and moment in each."""
    url = create_database(admin_url, template=template_db)
    try:
        asyncio.run(run_migrations(url, timescaledb="off", reader_password=PASSWORD))
        at = RANGE.start + timedelta(minutes=2)
        with psycopg.connect(url) as conn:
            for n, name in enumerate(HOSTILE):
                row = conn.execute(
                    "INSERT INTO chat.channels (name) VALUES (%s) RETURNING id", (name.lower(),)
                ).fetchone()
                assert row is not None
                conn.execute(
                    "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, "
                    "user_login, text) VALUES (%s, %s, %s, %s, %s, %s)",
                    (at, row[0], f"m{n}", f"u{n}", "o'brien", f"it's {name}"),
                )
                conn.execute(
                    "INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, "
                    "sentiment, label, toxicity) VALUES (%s, %s, %s, %s, 0.5, 'positive', 0.9)",
                    (at, row[0], f"m{n}", MODEL),
                )
                conn.execute(
                    "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, "
                    "score, messages_per_min, baseline_per_min) VALUES (%s, %s, %s, %s, 3, 9, 1)",
                    (row[0], at, at, at + timedelta(minutes=1)),
                )

        async def refresh() -> None:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await refresh_pending(conn)

        asyncio.run(refresh())
        yield url
    finally:
        drop_database(admin_url, url)


def _run(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(as_reader(url)) as conn:
        # prepare=True: the extended protocol, one statement or an error.
        return conn.execute(sql, prepare=True).fetchall()


def test_sqlstring_values_arrive_whole_in_postgresql(hostile_db: str) -> None:
    sql = interpolate_variables(
        "SELECT ARRAY[${v:sqlstring}]::text[], ${one:sqlstring}",
        {"v": HOSTILE, "one": "O'Brien"},
        multi={"v"},
    )
    (row,) = _run(hostile_db, sql)
    # Grafana's formatter writes " as \" (scenes >= 1.20); only that backslash is added.
    assert row == ([v.replace('"', '\\"') for v in HOSTILE], "O'Brien")


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("query", QUERIES, ids=str)
def test_every_dashboard_sql_runs_with_hostile_values(
    hostile_db: str, query: Any, value: str
) -> None:
    interval = grafana_interval(
        RANGE,
        max_data_points=query.max_data_points,
        min_interval=query.min_interval or DS_TIME_INTERVAL,
    )
    variables = {
        "channel": [value.lower(), "o'brien"],
        "model": value,
        "search": value,
        "user": value,
        "stream": value,
    }
    sql = expand(query.sql, RANGE, variables, multi={"channel"}, interval_ms=interval)
    _run(hostile_db, sql)


def test_hostile_values_select_exactly_their_rows(hostile_db: str) -> None:
    """The values are data, not SQL: the search finds O'Brien's message in the quoted channel."""
    query = next(q for q in QUERIES if q.where == "search/Messages/A")
    # A " comes out of Grafana's formatter as \" (no login has one), every other value whole.
    for name in (h for h in HOSTILE if '"' not in h):
        variables = {"channel": [name.lower()], "model": MODEL, "search": "", "user": "O'Brien"}
        rows = _run(hostile_db, expand(query.sql, RANGE, variables, multi={"channel"}))
        assert [r[4] for r in rows] == [f"it's {name}"]
    variables = {"channel": [HOSTILE[0]], "model": MODEL, "search": "", "user": "' OR 1=1 --"}
    assert _run(hostile_db, expand(query.sql, RANGE, variables, multi={"channel"})) == []
    with psycopg.connect(hostile_db) as conn:  # and nothing was dropped along the way
        count = conn.execute("SELECT count(*) FROM chat.channels").fetchone()
    assert count == (len(HOSTILE),)
