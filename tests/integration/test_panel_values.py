"""Panels that read coarse aggregates or maintained tables give the numbers the raw rows give.

"Unique chatters" is ``chat.unique_chatters()``: whole days, 6-hour blocks and hours from
``chatters_1d``/``chatters_6h``/``chatters_1h`` and the minutes at the range's ends from
``chatters_1m``; the emote panels read ``emotes_1m`` when the interval is a whole number of
minutes and ``emotes_10s`` otherwise.  Three and a half busy hours (a drifting crowd, two
channels, ten emotes with distinct weights) and then two and a half quieter days are written,
the aggregates refreshed, and each panel's SQL (from the committed dashboards, expanded as
Grafana would) compared with the same figure computed from ``chat.messages``/``chat.emote_uses``
over ranges that start and end on and off the hour and the day, on plain PostgreSQL and on
TimescaleDB when present.  The Audience and Compare channels panels that read
``chat.stream_segments`` and the Audience overlap are compared with ``chat.stream_chatters``.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest

from analytics.runner import analyze_pass
from chatpulse.core.aggregates import refresh_pending, refresh_range
from chatpulse.core.db import connect
from chatpulse.core.migrate import run_migrations
from grafana.build import PROVISIONING_DIR
from grafana.macros import TimeRange, expand
from tests.integration.test_grafana_sql import run_as_reader

START = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=3, minutes=30)
QUIET_END = END + timedelta(days=2, hours=12)
EMOTES = [f"emote{i}" for i in range(10)]
ORIGIN = "'2000-01-03 00:00:00+00'::timestamptz"


def _panel_sql(board: str, title: str) -> str:
    path = PROVISIONING_DIR / "dashboards" / "chatpulse" / f"{board}.json"
    panels = json.loads(path.read_text())["panels"]
    return str(next(p for p in panels if p["title"] == title)["targets"][0]["rawSql"])


def _fill(url: str) -> None:
    """A message every 5 s (6 s) per channel from a drifting crowd of 13 users, five of them new
    every 40 messages (so a range's edges change its count); emote k in every (k+2)th message."""
    messages, uses = [], []
    for channel, name in ((1, "busy"), (2, "other")):
        t, i = START, 0
        while t < END:
            user = (i // 40) * 5 + (i * 7 + channel) % 13
            mid = f"{name}-{i}"
            messages.append((t, channel, mid, f"u{user}", f"user{user}", "hi", "chat", 0))
            for k, emote in enumerate(EMOTES):
                if i % (k + 2) == 0:
                    uses.append((t, channel, mid, f"e{k}", emote, "7tv", 1 + k % 3))
            t += timedelta(seconds=5 + channel)
            i += 1
        # then a quieter tail without emotes: a message every 97 s, for two and a half days
        t = END + timedelta(minutes=1)
        while t < QUIET_END:
            user = (i // 40) * 5 + (i * 7 + channel) % 13
            mid = f"{name}-{i}"
            messages.append((t, channel, mid, f"u{user}", f"user{user}", "hi", "chat", 0))
            t += timedelta(seconds=97)
            i += 1
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO chat.channels (id, platform, name) OVERRIDING SYSTEM VALUE "
            "VALUES (1, 'twitch', 'busy'), (2, 'twitch', 'other')"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, "
                "text, kind, emote_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                messages,
            )
            cur.executemany(
                "INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, "
                "emote_name, provider, count) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                uses,
            )


def _run(url: str, sql: str) -> list[tuple[Any, ...]]:
    return run_as_reader(url, sql)[1]


def _scalar(url: str, sql: str, *args: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def _chatters_ranges() -> list[TimeRange]:
    at = START
    return [
        TimeRange(at, END),  # whole hours
        TimeRange(at + timedelta(minutes=7, seconds=13.25), at + timedelta(hours=2, minutes=41, seconds=9.5)),
        TimeRange(at + timedelta(seconds=0.4), at + timedelta(hours=1)),  # from just after the hour
        TimeRange(at + timedelta(hours=1), at + timedelta(hours=2)),  # exactly one hour
        TimeRange(at + timedelta(minutes=20), at + timedelta(minutes=50)),  # inside one hour
        TimeRange(at + timedelta(minutes=50), at + timedelta(hours=1, minutes=10)),  # across one
        TimeRange(at - timedelta(hours=5), at + timedelta(hours=9)),  # wider than the data
        TimeRange(at - timedelta(hours=1), QUIET_END + timedelta(days=1)),  # all of it
        TimeRange(at + timedelta(hours=2, minutes=3, seconds=5), at + timedelta(days=1, hours=2)),
        TimeRange(at.replace(hour=0), at.replace(hour=0) + timedelta(days=2)),  # two whole days
        TimeRange(at + timedelta(hours=14), at + timedelta(days=1, hours=14)),  # 24 h, two days
        TimeRange(at + timedelta(hours=8), at + timedelta(hours=17, minutes=59, seconds=59)),
        TimeRange(at + timedelta(days=1, hours=6), at + timedelta(days=1, hours=6, seconds=1)),
    ]  # fmt: skip


def _check_chatters(url: str, timescaledb: bool) -> None:
    raw = _panel_sql("overview", "Unique chatters")
    counts = []
    for channels in (["busy"], ["busy", "other"]):
        for span in _chatters_ranges():
            sql = expand(
                raw, span, {"channel": channels}, multi={"channel"}, timescaledb=timescaledb
            )
            got = _run(url, sql)
            # The panel's meaning: users whose message falls in a minute bucket inside the range.
            want = _scalar(
                url,
                "SELECT count(DISTINCT (m.channel_id, m.user_id)) FROM chat.messages m "
                "JOIN chat.channels c ON c.id = m.channel_id "
                f"WHERE date_bin('1 minute', m.sent_at, {ORIGIN}) BETWEEN %s AND %s "
                "AND c.name = ANY(%s)",
                span.start,
                span.end,
                channels,
            )
            assert got == [(want,)], f"{channels} {span}"
            counts.append(want)
    assert len(set(counts)) > len(counts) // 2  # the ranges really differ
    # No such channel, or an empty range: zero, not an error.
    assert _run(
        url, "SELECT chat.unique_chatters('{nobody}', now() - interval '1 day', now())"
    ) == [(0,)]
    assert _run(url, f"SELECT chat.unique_chatters('{{busy}}', '{END}', '{START}')") == [(0,)]


def _emote_series(url: str, span: TimeRange, interval_ms: int, top: int) -> dict[Any, int]:
    """Uses per (interval, emote) of the ``top`` emotes of the range, from the raw rows."""
    rows = _run(
        url,
        f"""
        WITH r AS (
          SELECT to_timestamp(floor(extract(epoch FROM e.sent_at) * 1000 / {interval_ms})
                              * {interval_ms} / 1000.0) AS t, e.emote_name, e.count
          FROM chat.emote_uses e
          WHERE e.channel_id = 1 AND e.sent_at >= '{span.start.isoformat()}'
            AND e.sent_at < '{span.end.isoformat()}'
        ), top AS (
          SELECT emote_name FROM r GROUP BY 1 ORDER BY sum(count) DESC LIMIT {top}
        )
        SELECT t, emote_name, sum(count) FROM r JOIN top USING (emote_name) GROUP BY 1, 2
        """,
    )
    return {(t, emote): int(n) for t, emote, n in rows}


def _check_emotes(url: str, timescaledb: bool) -> None:
    panels = [("Emote usage over time (top 8)", 8), ("Emote activity heatmap (top 20)", 20)]
    # Ranges start on a minute and end where the data ends, so every path sees the same rows.
    spans = [TimeRange(START, END), TimeRange(START + timedelta(minutes=67), END)]
    for title, top in panels:
        raw = _panel_sql("emotes", title)
        for span in spans:
            for interval_ms in (10_000, 20_000, 60_000, 300_000):
                sql = expand(
                    raw,
                    span,
                    {"channel": ["busy"]},
                    multi={"channel"},
                    interval_ms=interval_ms,
                    timescaledb=timescaledb,
                )
                got: dict[Any, int] = defaultdict(int)
                for row in _run(url, sql):
                    value = (
                        row[2]
                        if title.startswith("Emote activity")
                        else round(float(row[2]) * interval_ms / 60000)
                    )
                    t = row[0]
                    if not isinstance(t, datetime):  # $__timeGroup without timescaledb: epoch
                        t = datetime.fromtimestamp(float(t), UTC)
                    got[(t, row[1])] += int(value)
                want = _emote_series(url, span, interval_ms, top)
                assert dict(got) == want, f"{title} {span} {interval_ms} ms"
                assert len({emote for _, emote in want}) == min(top, len(EMOTES))
    totals = _run(
        url,
        expand(_panel_sql("emotes", "Top emotes"), TimeRange(START, END), {"channel": ["busy"]},
               multi={"channel"}),
    )  # fmt: skip
    want_totals = _run(
        url,
        "SELECT emote_name, sum(count) FROM chat.emote_uses WHERE channel_id = 1 "
        "GROUP BY 1 ORDER BY 2 DESC",
    )
    assert totals == want_totals


def test_coarse_aggregate_panels_match_raw_rows_on_postgres(db_url: str) -> None:
    _fill(db_url)

    async def refresh() -> None:
        async with await connect(db_url) as conn:
            await refresh_pending(conn)

    asyncio.run(refresh())
    _check_chatters(db_url, timescaledb=False)
    _check_emotes(db_url, timescaledb=False)


@pytest.mark.timescaledb
@pytest.mark.parametrize("materialized", [True, False], ids=["materialized", "real-time"])
def test_coarse_aggregate_panels_match_raw_rows_on_timescaledb(
    ts_empty_db_url: str, materialized: bool
) -> None:
    asyncio.run(run_migrations(ts_empty_db_url, timescaledb="on", compress_after=None))
    _fill(ts_empty_db_url)
    if materialized:

        async def refresh() -> None:
            async with await connect(ts_empty_db_url, autocommit=True) as conn:
                await refresh_range(conn, START, END)

        asyncio.run(refresh())
    for timescaledb in (True, False):
        _check_chatters(ts_empty_db_url, timescaledb=timescaledb)
        _check_emotes(ts_empty_db_url, timescaledb=timescaledb)


# The Audience and Compare channels panels that read chat.stream_segments (migration 0024) and
# the Audience overlap: three streams per channel (two hours of silence between them), chatters
# that write in one stream or several, in one channel or both, so segments, DISTINCT across
# streams and cross-channel pairs all matter.
AUDIENCE_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AUDIENCE_GAP = timedelta(minutes=30)


def _fill_audience(url: str) -> None:
    messages = []
    for channel, name in ((1, "busy"), (2, "other")):
        for stream in range(3):
            t0 = AUDIENCE_START + timedelta(hours=3 * stream, minutes=channel)
            # users 0-19 loyal to busy, 10-29 to other (10-19 in both); 100+ appear once
            loyal = range(0, 20) if channel == 1 else range(10, 30)
            users = [u for u in loyal if (u + stream) % 4] + [100 + 10 * stream + channel]
            for k, user in enumerate(users):
                for j in range(1 + user % 5):
                    t = t0 + timedelta(seconds=20 * k + 3 * j)
                    mid = f"{name}-{stream}-{user}-{j}"
                    text = "same again" if user % 7 == 0 else f"message {j} from {user}"
                    messages.append((t, channel, mid, f"u{user}", f"user{user}", text, "chat", 0))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO chat.channels (id, platform, name) OVERRIDING SYSTEM VALUE "
            "VALUES (1, 'twitch', 'busy'), (2, 'twitch', 'other')"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, "
                "text, kind, emote_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                messages,
            )

    async def analyze() -> None:
        async with await connect(url, autocommit=True) as conn:
            await analyze_pass(conn, AUDIENCE_GAP)

    asyncio.run(analyze())


def _round(x: Decimal, places: int) -> Decimal:
    """PostgreSQL's round(numeric, n): halves away from zero."""
    return x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def test_audience_and_compare_panels_match_chatter_rows(db_url: str) -> None:
    _fill_audience(db_url)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT c.name, s.id, s.started_at, s.ended_at, s.chatters, sc.chatter, sc.segment "
            "FROM chat.stream_chatters sc JOIN chat.streams s ON s.id = sc.stream_id "
            "JOIN chat.channels c ON c.id = s.channel_id"
        ).fetchall()
    assert len({(r[0], r[1]) for r in rows}) == 6  # three streams per channel
    assert len({r[6] for r in rows}) >= 3  # several segments
    spans = [
        TimeRange(AUDIENCE_START - timedelta(hours=1), AUDIENCE_START + timedelta(hours=12)),
        TimeRange(AUDIENCE_START + timedelta(hours=2), AUDIENCE_START + timedelta(hours=7)),
        TimeRange(AUDIENCE_START + timedelta(hours=5), AUDIENCE_START + timedelta(hours=7)),
    ]
    overlap_raw = _panel_sql("compare", "Audience overlap")
    signatures_raw = _panel_sql("compare", "Signatures")
    shares_raw = _panel_sql("audience", "Segment shares per stream")
    current_raw = _panel_sql("audience", "Current segments")
    latest: dict[tuple[str, str], tuple[datetime, str]] = {}
    for r in rows:  # each chatter's latest stream per channel and its segment
        if (r[0], r[5]) not in latest or r[2] > latest[(r[0], r[5])][0]:
            latest[(r[0], r[5])] = (r[2], r[6])
    segments = ("one-time", "casual", "regular", "power user", "spammer", "bot")
    cross = 0
    for channels in (["busy"], ["busy", "other"]):
        for span in spans:
            inside = [
                r for r in rows if r[0] in channels and r[3] >= span.start and r[2] <= span.end
            ]
            variables: dict[str, str | list[str]] = {"channel": channels}
            # Audience overlap: distinct chatters per channel, pairs sharing at least one.
            audiences: dict[str, set[str]] = defaultdict(set)
            for r in inside:
                audiences[r[0]].add(r[5])
            want_overlap = []
            for a in sorted(audiences):
                for b in sorted(audiences):
                    shared = len(audiences[a] & audiences[b])
                    if b >= a and shared:
                        na, nb = len(audiences[a]), len(audiences[b])
                        jaccard = _round(Decimal(shared) / (na + nb - shared), 4)
                        want_overlap.append((a, b, na, nb, shared, jaccard))
                        cross += a != b
            got = _run(db_url, expand(overlap_raw, span, variables, multi={"channel"}))
            assert got == want_overlap, f"{channels} {span}"
            # Signatures: each channel's segment shares over its chatter rows in range.
            columns, got_rows = run_as_reader(
                db_url, expand(signatures_raw, span, variables, multi={"channel"})
            )
            got_shares = {
                row[0]: tuple(row[columns.index(seg)] for seg in segments) for row in got_rows
            }
            want_shares = {}
            for name in audiences:
                mine = [r for r in inside if r[0] == name]
                want_shares[name] = tuple(
                    _round(Decimal(sum(r[6] == seg for r in mine)) / len(mine), 3)
                    for seg in segments
                )
            assert got_shares == want_shares, f"{channels} {span}"
            # Segment shares per stream: chatters of each segment / the stream's chatters.
            per: dict[tuple[datetime, str], int] = defaultdict(int)
            totals = {}
            for r in inside:
                per[(r[2], f"{r[0]} {r[6]}")] += 1
                totals[(r[2], f"{r[0]} {r[6]}")] = r[4]
            want_series = sorted((k[0], k[1], n / totals[k]) for k, n in per.items())
            got_series = _run(db_url, expand(shares_raw, span, variables, multi={"channel"}))
            assert [(t, m, pytest.approx(v)) for t, m, v in want_series] == got_series
            # Current segments: chatters whose latest stream began by the range's end, per
            # segment of that stream (chat.channel_segments).
            counts: dict[tuple[str, str], int] = defaultdict(int)
            for (name, _), (began, segment) in latest.items():
                if name in channels and began <= span.end:
                    counts[(name, segment)] += 1
            got_current = _run(db_url, expand(current_raw, span, variables, multi={"channel"}))
            assert sorted(got_current) == sorted((c, g, n) for (c, g), n in counts.items())
            assert got_current == sorted(got_current, key=lambda r: (r[0], -r[2]))
    assert cross > 0  # the two channels share chatters in some range
