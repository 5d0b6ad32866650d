"""Every SQL of every dashboard and alert rule, expanded as Grafana would, on real chat.

The committed provisioning files are read (what ships is what is tested).  A database holds
the replayed nymn sample (2024-01-06 16:19-16:27 UTC), scored by the lexicon backend, plus one
hype moment, one emote burst, one clip and one gap; the aggregates are refreshed and
``chatpulse analyze`` has run with clustering (one stream: the ``stream`` variable is its id).  Each query
runs as the read-only role Grafana uses, on plain PostgreSQL and, when available, TimescaleDB
(with the datasource's ``timescaledb`` option off and on).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from analytics.clusters import cluster_channels
from analytics.runner import analyze_pass
from chatpulse.core.aggregates import refresh_pending, refresh_range
from chatpulse.core.migrate import READER_ROLE, run_migrations
from chatpulse.core.settings import load_settings
from collector.app import replay_files
from grafana.build import PROVISIONING_DIR
from grafana.macros import TimeRange, expand, expand_macros, grafana_interval
from scorer.backends import load_backend
from tests.conftest import (
    FIXTURES,
    create_database,
    drop_database,
    timescaledb_admin_url,
)
from tests.helpers import write_irc_log
from tests.scoring import score_with_lexicon

NYMN = FIXTURES / "chatterino-recentmessages-nymn"
RANGE = TimeRange(
    datetime(2024, 1, 6, 16, 19, tzinfo=UTC), datetime(2024, 1, 6, 16, 27, tzinfo=UTC)
)
PEAK = datetime(2024, 1, 6, 16, 23, tzinfo=UTC)
SEARCH = "forsenParty"
DS_TIME_INTERVAL = "10s"  # jsonData.timeInterval of the committed datasource


@dataclass(frozen=True)
class Query:
    """One SQL as it sits in a provisioning file."""

    where: str
    sql: str
    fmt: str
    min_interval: str | None
    must_return_rows: bool
    max_data_points: int = 1000

    def __str__(self) -> str:
        return self.where


def _dashboards() -> dict[str, dict[str, Any]]:
    folder = PROVISIONING_DIR / "dashboards" / "chatpulse"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def dashboard_queries() -> list[Query]:
    out: list[Query] = []
    for name, board in _dashboards().items():
        if name == "topics":
            continue  # pgvector and computed topics: tests/integration/test_topics_vectors.py
        for panel in board["panels"]:
            for target in panel["targets"]:
                if "rawSql" not in target:
                    continue  # PromQL
                out.append(
                    Query(
                        f"{name}/{panel['title']}/{target['refId']}",
                        target["rawSql"],
                        target["format"],
                        panel.get("interval"),
                        True,
                        panel.get("maxDataPoints", 1000),
                    )
                )
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                out.append(Query(f"{name}/${var['name']}", var["query"], "table", None, True))
        for anno in board["annotations"]["list"]:
            if "target" in anno:
                # Gaps: the sample had none until the fixture adds one; all must return rows.
                out.append(
                    Query(
                        f"{name}/annotation {anno['name']}",
                        anno["target"]["rawSql"],
                        "table",
                        None,
                        True,
                    )
                )
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROVISIONING_DIR / "alerting" / "rules.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _sql_alerts() -> list[dict[str, Any]]:
    return [r for r in alert_rules() if r["data"][0]["model"].get("rawSql")]


# -- the data -----------------------------------------------------------------------------------


def _nymn_log(tmp: Path) -> Path:
    return write_irc_log(tmp / "nymn.log")


def _score_all(url: str) -> str:
    score_with_lexicon(url)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT sent_at, channel_id FROM chat.messages ORDER BY 1").fetchall()
        channel_id = rows[0][1]
        conn.execute(
            "INSERT INTO chat.hype_moments (channel_id, started_at, peak_at, ended_at, score, "
            "messages_per_min, baseline_per_min, chatters, top_emotes, avg_sentiment) "
            "VALUES (%s, %s, %s, %s, 4.2, 180, 60, 40, ARRAY['forsenParty','nymnEDM'], 0.3)",
            (channel_id, PEAK - timedelta(minutes=1), PEAK, PEAK + timedelta(minutes=1)),
        )
        # The hype forecast (chatpulse forecast) rising in the minute before the peak.
        conn.execute(
            "INSERT INTO chat.hype_forecasts (channel_id, at, probability, likely, horizon_s, "
            "threshold, trained_moments, trained_at) SELECT %s, %s - make_interval(secs => 5 * k), "
            "0.9 - 0.06 * k, 0.9 - 0.06 * k >= 0.5, 60, 0.5, 8, %s FROM generate_series(0, 11) k",
            (channel_id, PEAK, PEAK - timedelta(hours=1)),
        )
        conn.execute(
            "INSERT INTO chat.emote_bursts (channel_id, emote_name, provider, started_at, "
            "peak_at, ended_at, peak_uses, baseline, score, total_uses) "
            "VALUES (%s, 'forsenParty', 'twitch', %s, %s, %s, 60, 4.5, 6.1, 300)",
            (channel_id, PEAK - timedelta(seconds=30), PEAK, PEAK + timedelta(seconds=40)),
        )
        conn.execute(
            "INSERT INTO chat.clips (dedup_key, channel_id, requested_at, trigger, start_at, end_at, "
            "status, location, finished_at) VALUES ('test-clip', %s, %s, 'alert', %s, %s, 'done', "
            "'/clips/nymn-1.mp4', %s)",
            (channel_id, PEAK, PEAK - timedelta(seconds=20), PEAK + timedelta(seconds=10), PEAK),
        )
        conn.execute(
            "INSERT INTO chat.gaps (channel_id, started_at, ended_at, reason, filled_at, "
            "recovered) VALUES (%s, %s, %s, 'reconnect', %s, 12)",
            (
                channel_id,
                PEAK + timedelta(minutes=2),
                PEAK + timedelta(minutes=2, seconds=5),
                PEAK + timedelta(minutes=3),
            ),
        )
    return load_backend("lexicon").model


async def _refresh(url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    async with conn:
        await refresh_pending(conn)
        await refresh_range(conn, RANGE.start - timedelta(hours=1), RANGE.end + timedelta(hours=1))
        await analyze_pass(conn, timedelta(minutes=30))
        await cluster_channels(conn)  # the analytics extra is part of the dev install


def _stream_id(url: str) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id FROM chat.streams").fetchall()
    assert len(rows) == 1, rows  # the sample is one stream
    return str(rows[0][0])


def _load(url: str, tmp: Path) -> str:
    settings = load_settings(
        overrides={"database_url": url, "data_dir": tmp / "data", "emote_providers": []}
    )
    asyncio.run(replay_files(settings, url, [_nymn_log(tmp)]))
    model = _score_all(url)
    asyncio.run(_refresh(url))
    return model


@dataclass
class Chat:
    url: str
    model: str
    timescaledb: bool

    @property
    def stream(self) -> str:
        return _stream_id(self.url)


@pytest.fixture(scope="module")
def pg_chat(
    admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chat]:
    url = create_database(admin_url, template=template_db)
    try:
        yield Chat(url, _load(url, tmp_path_factory.mktemp("pg")), False)
    finally:
        drop_database(admin_url, url)


@pytest.fixture(scope="module")
def ts_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chat]:
    admin = timescaledb_admin_url()
    if admin is None:
        pytest.skip(
            "TimescaleDB not available (set CHATPULSE_TEST_TIMESCALEDB_URL to a server that "
            "preloads timescaledb)"
        )
    url = create_database(admin)
    try:
        asyncio.run(run_migrations(url, timescaledb="on"))
        yield Chat(url, _load(url, tmp_path_factory.mktemp("ts")), True)
    finally:
        drop_database(admin, url)


def run_as_reader(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``sql`` as Grafana's read-only role; returns (column names, rows)."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SET ROLE {READER_ROLE}")
        conn.execute("SET default_transaction_read_only = on")
        cur = conn.execute(sql)  # type: ignore[arg-type]
        assert cur.description is not None
        return [c.name for c in cur.description], cur.fetchall()


def _variables(model: str, channel: list[str], stream: str) -> dict[str, str | list[str]]:
    return {"channel": channel, "model": model, "search": SEARCH, "user": "", "stream": stream}


def _check_query(chat: Chat, query: Query, *, timescaledb: bool, channel: list[str]) -> None:
    interval = grafana_interval(
        RANGE,
        max_data_points=query.max_data_points,
        min_interval=query.min_interval or DS_TIME_INTERVAL,
    )
    sql = expand(
        query.sql,
        RANGE,
        _variables(chat.model, channel, chat.stream),
        multi={"channel"},
        interval_ms=interval,
        timescaledb=timescaledb,
    )
    assert "$" not in sql, f"unexpanded variable or macro in {query}: {sql}"
    columns, rows = run_as_reader(chat.url, sql)
    if query.fmt == "time_series":
        assert "time" in columns, f"{query}: time series without a time column: {columns}"
        times = [row[columns.index("time")] for row in rows]
        assert times == sorted(times), f"{query}: time series not sorted by time"
    if query.must_return_rows:
        assert rows, f"{query} returned no rows on the real sample:\n{sql}"


QUERIES = dashboard_queries()


@pytest.mark.parametrize("query", QUERIES, ids=str)
def test_dashboard_sql_runs_and_returns_rows_on_postgres(pg_chat: Chat, query: Query) -> None:
    _check_query(pg_chat, query, timescaledb=False, channel=["nymn"])


@pytest.mark.parametrize("query", QUERIES, ids=str)
@pytest.mark.parametrize("timescaledb_macros", [True, False], ids=["time_bucket", "floor"])
def test_dashboard_sql_runs_and_returns_rows_on_timescaledb(
    ts_chat: Chat, query: Query, timescaledb_macros: bool
) -> None:
    _check_query(ts_chat, query, timescaledb=timescaledb_macros, channel=["nymn"])


def test_include_all_with_several_channels_and_quotes(pg_chat: Chat) -> None:
    """Include-all expands to every channel, quoted; a name with a quote cannot break out."""
    with psycopg.connect(pg_chat.url) as conn:
        conn.execute("INSERT INTO chat.channels (name) VALUES ('o''brien'), ('quiet')")
    names = [row[0] for row in run_as_reader(pg_chat.url, "SELECT name FROM chat.channels")[1]]
    for query in QUERIES:
        _check_query(pg_chat, query, timescaledb=False, channel=sorted(names))


def test_search_matches_words_and_empty_search_lists_everything(pg_chat: Chat) -> None:
    board = _dashboards()["search"]
    table = next(p for p in board["panels"] if p["title"] == "Messages")
    raw = table["targets"][0]["rawSql"]

    def search(term: str) -> list[tuple[Any, ...]]:
        variables = {"channel": ["nymn"], "search": term, "user": ""}
        sql = expand(raw, RANGE, variables, multi={"channel"})
        return run_as_reader(pg_chat.url, sql)[1]

    hits = search(SEARCH)
    assert hits and all(SEARCH.lower() in row[4].lower() for row in hits)
    assert len(search("")) == 500  # the newest 500 of 798
    assert search('"no such phrase anywhere" -forsenParty') == []
    assert search("it's ' OR 1=1 --") == []  # quotes are doubled, never SQL


# -- alert rules --------------------------------------------------------------------------------


def _alert_sql(rule: dict[str, Any], end: datetime, timescaledb: bool = False) -> str:
    query = rule["data"][0]
    window = timedelta(seconds=query["relativeTimeRange"]["from"])
    return expand_macros(
        query["model"]["rawSql"],
        TimeRange(end - window, end),
        interval_ms=query["model"]["intervalMs"],
        timescaledb=timescaledb,
    )


def _series(columns: list[str], rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], float]:
    """What Grafana makes of a table-format alert result: one series per row, text columns
    as labels, exactly one numeric column as the value."""
    numeric = [
        i
        for i, _ in enumerate(columns)
        if rows and all(isinstance(r[i], (int, float)) for r in rows)
    ]
    assert len(numeric) == 1 or not rows, f"alert query needs one numeric column: {columns}"
    assert "metric" not in columns and "time" not in columns
    series: dict[tuple[Any, ...], float] = {}
    for row in rows:
        labels = tuple(v for i, v in enumerate(row) if i != numeric[0])
        assert all(isinstance(v, str) for v in labels), f"labels must be text: {row}"
        assert labels not in series, f"duplicate label set {labels}"
        series[labels] = float(row[numeric[0]])
    return series


@pytest.mark.parametrize("rule", _sql_alerts(), ids=lambda r: r["uid"])
@pytest.mark.parametrize("end_offset_min", [0, 4, 10, 40], ids=lambda m: f"end+{m}m")
def test_alert_query_shape_matches_its_threshold(
    pg_chat: Chat, rule: dict[str, Any], end_offset_min: int
) -> None:
    sql = _alert_sql(rule, RANGE.end + timedelta(minutes=end_offset_min))
    assert "$__" not in sql and "$" not in sql
    columns, rows = run_as_reader(pg_chat.url, sql)
    assert columns[0] == "channel"
    _series(columns, rows)


def _evaluate(rule: dict[str, Any], columns: list[str], rows: list[tuple[Any, ...]]) -> set[str]:
    """Channels for which the rule's threshold fires (reduce last of a single value)."""
    threshold = rule["data"][2]["model"]["conditions"][0]["evaluator"]
    op, limit = threshold["type"], threshold["params"][0]
    fired = set()
    for labels, value in _series(columns, rows).items():
        if (op == "gt" and value > limit) or (op == "lt" and value < limit):
            fired.add(labels[0])
    return fired


def _rule(uid: str) -> dict[str, Any]:
    return next(r for r in alert_rules() if r["uid"] == uid)


def test_hype_alert_fires_for_the_channel_of_a_hype_moment(pg_chat: Chat) -> None:
    rule = _rule("chatpulse-hype-moment")
    columns, rows = run_as_reader(pg_chat.url, _alert_sql(rule, PEAK + timedelta(minutes=2)))
    assert _evaluate(rule, columns, rows) == {"nymn"}
    assert rule["labels"]["chatpulse"] == "hype"  # the route to the clipper
    columns, rows = run_as_reader(pg_chat.url, _alert_sql(rule, PEAK + timedelta(hours=1)))
    assert _evaluate(rule, columns, rows) == set()


def test_silent_alert_fires_when_a_busy_channel_stops(pg_chat: Chat) -> None:
    rule = _rule("chatpulse-chat-silent")
    # 16:35: the 30 minutes before 16:30 held all 798 messages, 16:30-16:35 none.
    end = datetime(2024, 1, 6, 16, 35, tzinfo=UTC)
    columns, rows = run_as_reader(pg_chat.url, _alert_sql(rule, end))
    assert _evaluate(rule, columns, rows) == {"nymn"}
    columns, rows = run_as_reader(pg_chat.url, _alert_sql(rule, RANGE.end))
    assert _evaluate(rule, columns, rows) == set()  # still talking


def test_sentiment_and_toxicity_alerts_stay_quiet_on_an_ordinary_stream(pg_chat: Chat) -> None:
    for uid in ("chatpulse-sentiment-crash", "chatpulse-toxicity-surge"):
        rule = _rule(uid)
        for minutes in range(0, 12, 3):
            end = RANGE.start + timedelta(minutes=minutes + 1)
            columns, rows = run_as_reader(pg_chat.url, _alert_sql(rule, end))
            assert _evaluate(rule, columns, rows) == set(), (uid, end)


def test_toxicity_alert_fires_on_a_toxic_wave(pg_chat: Chat) -> None:
    """A copy of the sample where the last minutes turn toxic makes the rule fire."""
    rule = _rule("chatpulse-toxicity-surge")
    with psycopg.connect(pg_chat.url) as conn:
        conn.execute("CREATE TEMP TABLE saved AS SELECT * FROM chat.sentiment_1m")
        conn.execute("UPDATE chat.sentiment_1m SET toxic = scored WHERE bucket >= %s", (PEAK,))
        try:
            conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
            cur = conn.execute(_alert_sql(rule, RANGE.end))  # type: ignore[arg-type]
            assert cur.description is not None
            columns = [c.name for c in cur.description]
            rows = cur.fetchall()
        finally:
            conn.rollback()
    assert _evaluate(rule, columns, rows) == {"nymn"}


def test_alert_sql_runs_on_timescaledb(ts_chat: Chat) -> None:
    for rule in _sql_alerts():
        for timescaledb in (True, False):
            columns, rows = run_as_reader(
                ts_chat.url, _alert_sql(rule, RANGE.end, timescaledb=timescaledb)
            )
            _series(columns, rows)
    rule = _rule("chatpulse-hype-moment")
    columns, rows = run_as_reader(ts_chat.url, _alert_sql(rule, PEAK + timedelta(minutes=2)))
    assert _evaluate(rule, columns, rows) == {"nymn"}
