"""The "Streams", "Audience" and "Compare channels" dashboards (issue 15).

Built on the relations ``chatpulse analyze`` keeps current (migration 0016): ``chat.streams``,
``chat.stream_shape``, ``chat.channel_shape``, ``chat.stream_chatters``, ``chat.stream_emotes``
and ``chat.chatter_segments``.  Each has the usual multi-value ``channel`` variable; Streams and
Audience add a single-value ``stream`` variable (a stream id; label: channel and start, newest
first), compared as text (``s.id::text = ${stream:sqlstring}``) so any value is one literal and
never a cast error.  A stream is in the time range when it overlaps it.  Imports only
:mod:`grafana.panels`, so :mod:`grafana.dashboards` can register it without an import cycle.
"""

# ruff: noqa: S608  (dashboard SQL texts assembled from constants; values reach them only
# through Grafana's ${var:sqlstring}, never through Python formatting)

from __future__ import annotations

from typing import Any

from grafana.panels import Panel, channel_variable, dashboard, sql, sql_variable

__all__ = ["AUDIENCE_UID", "COMPARE_UID", "STREAMS_UID", "audience", "compare", "streams"]

STREAMS_UID = "chatpulse-streams"
AUDIENCE_UID = "chatpulse-audience"
COMPARE_UID = "chatpulse-compare"

_IN_RANGE = (
    "s.ended_at >= $__timeFrom() AND s.started_at <= $__timeTo() "
    "AND c.name IN (${channel:sqlstring})"
)
_STREAMS = "FROM chat.streams s JOIN chat.channels c ON c.id = s.channel_id"
_THIS = "s.id::text = ${stream:sqlstring}"
_TENTH = "(sh.decile * 10)::text || '-' || (sh.decile * 10 + 10)::text || '%'"


def stream_variable() -> dict[str, Any]:
    """The selected stream: id as value, channel and start as label, newest first."""
    var = sql_variable(
        "stream",
        "Stream",
        f"""
SELECT s.id::text AS __value,
       c.name || ' ' || to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'
       AS __text
{_STREAMS}
WHERE {_IN_RANGE}
ORDER BY s.started_at DESC
""",
        refresh=2,
    )
    var["sort"] = 0  # the query's order: newest first, so the default is the latest stream
    return var


def _stat(title: str, raw_sql: str, *, unit: str | None = None, description: str = "") -> Panel:
    return Panel(
        title=title,
        type="stat",
        targets=[sql(raw_sql, "table")],
        width=4,
        height=4,
        unit=unit,
        description=description,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    )


def _table(
    title: str,
    raw_sql: str,
    *,
    width: int = 12,
    height: int = 10,
    description: str = "",
    links: list[dict[str, Any]] | None = None,
) -> Panel:
    return Panel(
        title=title,
        type="table",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=height,
        description=description,
        options={"showHeader": True},
        links=links or [],
    )


def _bars(
    title: str,
    raw_sql: str,
    x_field: str,
    *,
    width: int = 8,
    unit: str | None = None,
    description: str = "",
    transformations: list[dict[str, Any]] | None = None,
) -> Panel:
    return Panel(
        title=title,
        type="barchart",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=9,
        unit=unit,
        description=description,
        custom={"fillOpacity": 70, "lineWidth": 1},
        options={
            "xField": x_field,
            "orientation": "vertical",
            "groupWidth": 0.8,
            "barWidth": 0.9,
            "showValue": "never",
            "stacking": "none",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
        transformations=transformations or [],
    )


def _per_stream(
    title: str, raw_sql: str, *, unit: str | None = None, stack: bool = False, description: str = ""
) -> Panel:
    """One point (bar) per stream at its start."""
    return Panel(
        title=title,
        type="timeseries",
        targets=[sql(raw_sql)],
        width=12,
        height=9,
        unit=unit,
        description=description,
        custom={
            "drawStyle": "bars",
            "fillOpacity": 60,
            "lineWidth": 1,
            "showPoints": "always",
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def _stream_link() -> dict[str, Any]:
    return {
        "title": "Open this stream",
        "url": f"/d/{STREAMS_UID}?var-channel=${{__data.fields.channel}}"
        "&var-stream=${__data.fields.stream_id}&${__url_time_range}",
    }


def _overview_link() -> dict[str, Any]:
    return {
        "title": "Stream overview of this stream",
        "url": "/d/chatpulse-overview?from=${__data.fields.from_ms}&to=${__data.fields.to_ms}"
        "&var-channel=${__data.fields.channel}",
    }


def _this_stream_stat(title: str, expr: str, *, unit: str | None = None, description: str) -> Panel:
    return _stat(
        title,
        f"SELECT {expr} AS value\n{_STREAMS}\nWHERE {_THIS}",
        unit=unit,
        description=description,
    )


def streams() -> dict[str, Any]:
    """The Streams dashboard: every stream of the range, and the selected one's shape."""
    stats = [
        _this_stream_stat(
            "Duration", "s.duration_s", unit="s", description="The selected stream's length."
        ),
        _this_stream_stat("Messages", "s.messages", description="Messages in the stream."),
        _this_stream_stat(
            "Chatters", "s.chatters", description="Distinct chatters (chat.chatter_key)."
        ),
        _this_stream_stat(
            "New chatters",
            "s.new_chatters",
            description="Chatters writing in this channel for the first time.",
        ),
        _this_stream_stat(
            "Peak messages per minute", "s.peak_per_min", description="The busiest minute."
        ),
        _this_stream_stat(
            "Mood",
            "round(s.mood::numeric, 3)",
            description="Average sentiment of the stream's scored messages (-1 to 1).",
        ),
    ]
    table = _table(
        "Streams",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.id AS stream_id, s.ended_at,
       round((s.duration_s / 60.0)::numeric, 1) AS minutes, s.messages, s.chatters,
       s.new_chatters AS new, s.returning_chatters AS returning, s.retained,
       s.peak_per_min, round(s.mood::numeric, 3) AS mood,
       array_to_string(s.top_emotes, ' ') AS top_emotes, s.bursts, s.hype_moments, s.found_by,
       s.title, s.category,
       (extract(epoch FROM s.started_at) * 1000)::bigint AS from_ms,
       (extract(epoch FROM s.ended_at) * 1000)::bigint AS to_ms
{_STREAMS}
WHERE {_IN_RANGE}
ORDER BY s.started_at DESC
LIMIT 200
""",
        width=24,
        description="Every stream overlapping the range (a silence over CHATPULSE_STREAM_GAP_S "
        "ends one), newest first: duration, messages, chatters, first-time and returning "
        "chatters, chatters of the previous stream who came back, peak rate, mood.",
        links=[_stream_link(), _overview_link()],
    )
    table.overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for name in ("from_ms", "to_ms")
    ]

    def shape(title: str, column: str, *, unit: str | None, description: str) -> Panel:
        return _bars(
            title,
            f"""
SELECT {_TENTH} AS tenth, sh.{column} AS this_stream, cs.{column} AS usual
FROM chat.stream_shape sh
JOIN chat.streams s ON s.id = sh.stream_id
JOIN chat.channel_shape cs ON cs.channel_id = sh.channel_id AND cs.decile = sh.decile
WHERE {_THIS}
ORDER BY sh.decile
""",
            "tenth",
            unit=unit,
            description=description,
        )

    shapes = [
        shape(
            "Shape: share of messages by tenth",
            "share",
            unit="percentunit",
            description="The selected stream cut into tenths of its duration: the share of its "
            "messages in each, against the channel's usual stream (chat.channel_shape).",
        ),
        shape(
            "Messages per minute by tenth",
            "per_min",
            unit=None,
            description="Pace in each tenth of the stream against the channel's usual pace.",
        ),
        shape(
            "Mood by tenth",
            "mood",
            unit=None,
            description="Average sentiment in each tenth against the channel's usual stream.",
        ),
    ]
    emotes = _table(
        "Top emotes of this stream",
        f"""
SELECT e.emote_name AS emote, e.uses,
       round((e.uses::float8 / nullif(sum(e.uses) OVER (), 0))::numeric, 3) AS share
FROM chat.stream_emotes e
JOIN chat.streams s ON s.id = e.stream_id
WHERE {_THIS}
ORDER BY e.uses DESC, e.emote_name
LIMIT 25
""",
        description="The selected stream's most used emotes and their share of its emote uses.",
    )
    emote_shape = shape(
        "Emote share by tenth",
        "emote_share",
        unit=None,
        description="Emote uses per message in each tenth against the channel's usual stream.",
    )
    emote_shape.width = 12
    return dashboard(
        uid=STREAMS_UID,
        title="chatpulse / Streams",
        description="Each broadcast found in the chat (chatpulse analyze): the list of streams "
        "with their summaries, and how the selected stream went against the channel's usual "
        "stream.",
        rows=[stats, [table], shapes, [emote_shape, emotes]],
        variables=[channel_variable(), stream_variable()],
        time_from="now-30d",
        refresh="5m",
    )


def audience() -> dict[str, Any]:
    """The Audience dashboard: segments, first-time and returning chatters, retention."""
    shares = _per_stream(
        "Segment shares per stream",
        f"""
SELECT s.started_at AS "time", c.name || ' ' || sc.segment AS metric,
       count(*)::float8 / nullif(s.chatters, 0) AS share
{_STREAMS}
JOIN chat.stream_chatters sc ON sc.stream_id = s.id
WHERE {_IN_RANGE}
GROUP BY s.started_at, c.name, sc.segment, s.chatters
ORDER BY 1, 2
""",
        unit="percentunit",
        stack=True,
        description="Each stream's chatters by segment (one-time, casual, regular, power user, "
        "spammer, bot; rules in the README), at the stream's start.",
    )
    first_time = _per_stream(
        "First-time and returning chatters",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.new_chatters AS first_time,
       s.returning_chatters AS returning
{_STREAMS}
WHERE {_IN_RANGE}
ORDER BY 1, 2
""",
        stack=True,
        description="Per stream: chatters writing in the channel for the first time, and those "
        "who had written before.",
    )
    retention = _table(
        "Retention stream to stream",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.id AS stream_id, s.chatters,
       s.previous_chatters, s.retained,
       round((s.retained::float8 / nullif(s.previous_chatters, 0))::numeric, 3) AS retention,
       round((s.returning_chatters::float8 / nullif(s.chatters, 0))::numeric, 3)
       AS returning_share
{_STREAMS}
WHERE {_IN_RANGE}
ORDER BY s.started_at DESC
LIMIT 200
""",
        description="Per stream: chatters of the channel's previous stream who wrote again "
        "(retained / previous_chatters), and the share of this stream's chatters who had "
        "written before.",
        width=24,
        links=[_stream_link()],
    )
    pie = Panel(
        title="This stream's audience",
        type="piechart",
        targets=[
            sql(
                f"""
SELECT sc.segment, count(*) AS chatters
FROM chat.stream_chatters sc
JOIN chat.streams s ON s.id = sc.stream_id
WHERE {_THIS}
GROUP BY 1
ORDER BY 2 DESC
""",
                "table",
            )
        ],
        width=8,
        height=10,
        description="The selected stream's chatters by segment.",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "pieType": "donut",
            "legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )
    chatters = _table(
        "Chatters of this stream",
        f"""
SELECT coalesce(sc.login, sc.chatter) AS chatter, sc.segment, sc.messages, sc.duplicates,
       sc.emote_uses, round((sc.chars::float8 / nullif(sc.messages, 0))::numeric, 1)
       AS avg_length, sc.first_time, sc.first_at AS first_message, sc.last_at AS last_message
FROM chat.stream_chatters sc
JOIN chat.streams s ON s.id = sc.stream_id
WHERE {_THIS}
ORDER BY sc.messages DESC, sc.chatter
LIMIT 200
""",
        width=16,
        description="The selected stream's chatters, most active first, with their segment "
        "and what it rests on (messages, duplicates, emote uses, length).",
    )
    current = _table(
        "Current segments",
        """
SELECT c.name AS channel, g.segment, count(*) AS chatters
FROM chat.chatter_segments g
JOIN chat.channels c ON c.id = g.channel_id
WHERE g.last_stream_at <= $__timeTo() AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 3 DESC
""",
        width=24,
        height=8,
        description="Every chatter the channel has seen, in the segment of their latest "
        "stream up to the end of the range (chat.chatter_segments).",
    )
    clusters = _table(
        "Behavioural clusters",
        """
SELECT c.name AS channel, k.cluster, k.chatters, k.description,
       round(k.messages::numeric, 1) AS messages,
       round(k.messages_per_stream::numeric, 1) AS per_stream,
       round(k.streams::numeric, 1) AS streams, round(k.attendance::numeric, 2) AS attendance,
       round(k.emote_share::numeric, 2) AS emotes_per_message,
       round(k.duplicate_share::numeric, 2) AS duplicates,
       round(k.avg_length::numeric, 1) AS avg_length,
       round(k.gap_mean_s::numeric, 0) AS gap_s, round(k.silhouette::numeric, 2) AS silhouette
FROM chat.chatter_clusters k
JOIN chat.channels c ON c.id = k.channel_id
WHERE c.name IN (${channel:sqlstring})
ORDER BY c.name, k.cluster
""",
        width=24,
        height=8,
        description="The types the data suggests (KMeans on standardised behaviour, k by "
        "silhouette; needs the analytics extra): each cluster's size, the features furthest "
        "from the channel's average, and its feature means (chat.chatter_clusters).",
    )
    return dashboard(
        uid=AUDIENCE_UID,
        title="chatpulse / Audience",
        description="Who is chatting: segments per stream, first-time and returning chatters, "
        "retention from one stream to the next, and the selected stream's audience.",
        rows=[[shares, first_time], [pie, chatters], [retention], [current], [clusters]],
        variables=[channel_variable(), stream_variable()],
        time_from="now-30d",
        refresh="5m",
    )


_SEGMENTS = ("one-time", "casual", "regular", "power user", "spammer", "bot")


def compare() -> dict[str, Any]:
    """The Compare channels dashboard: signatures side by side, audience overlap."""
    seg_columns = ",\n       ".join(
        f"round((count(*) FILTER (WHERE sc.segment = '{seg}')::float8 / count(*))::numeric, 3) "
        f'AS "{seg}"'
        for seg in _SEGMENTS
    )
    signatures = _table(
        "Signatures",
        f"""
WITH seg AS (
  SELECT c.name AS channel,
       {seg_columns}
  {_STREAMS}
  JOIN chat.stream_chatters sc ON sc.stream_id = s.id
  WHERE {_IN_RANGE}
  GROUP BY 1
)
SELECT c.name AS channel, count(*) AS streams, sum(s.messages) AS messages,
       round((sum(s.duration_s) / 60.0)::numeric, 1) AS minutes,
       round((sum(s.messages) / nullif(sum(s.duration_s) / 60.0, 0))::numeric, 1) AS per_min,
       round((sum(s.avg_length * s.messages) / nullif(sum(s.messages), 0))::numeric, 1)
       AS avg_length,
       round((sum(s.mood * s.scored) / nullif(sum(s.scored) FILTER (WHERE s.mood IS NOT NULL),
       0))::numeric, 3) AS mood,
       round((sum(s.emote_uses)::float8 / nullif(sum(s.messages), 0))::numeric, 3)
       AS emotes_per_message,
       round((sum(s.new_chatters)::float8 / nullif(sum(s.chatters), 0))::numeric, 3)
       AS first_time_share,
       max(seg."one-time") AS "one-time", max(seg.casual) AS casual,
       max(seg.regular) AS regular, max(seg."power user") AS "power user",
       max(seg.spammer) AS spammer, max(seg.bot) AS bot
{_STREAMS}
LEFT JOIN seg ON seg.channel = c.name
WHERE {_IN_RANGE}
GROUP BY c.name
ORDER BY c.name
""",
        width=24,
        height=8,
        description="Each channel's chat signature over its streams in the range: pace, "
        "message length, mood, emotes per message, share of first-time chatters and the "
        "segment shares (the features `chatpulse compare` uses).",
    )
    overlap = _table(
        "Audience overlap",
        f"""
WITH x AS (
  SELECT DISTINCT c.name AS channel, sc.chatter
  {_STREAMS}
  JOIN chat.stream_chatters sc ON sc.stream_id = s.id
  WHERE {_IN_RANGE}
), n AS (
  SELECT channel, count(*) AS chatters FROM x GROUP BY 1
)
SELECT a.channel AS channel_a, b.channel AS channel_b, na.chatters AS chatters_a,
       nb.chatters AS chatters_b, count(*) AS shared,
       round((count(*)::float8 / (na.chatters + nb.chatters - count(*)))::numeric, 4) AS jaccard
FROM x a
JOIN x b ON b.chatter = a.chatter AND b.channel >= a.channel
JOIN n na ON na.channel = a.channel
JOIN n nb ON nb.channel = b.channel
GROUP BY a.channel, b.channel, na.chatters, nb.chatters
ORDER BY a.channel, b.channel
""",
        description="Chatters two channels share in the range and their Jaccard index (shared "
        "/ either); a channel against itself shows its own audience.",
    )
    emotes = _table(
        "Emote mix",
        f"""
WITH u AS (
  SELECT c.name AS channel, e.emote_name, sum(e.uses) AS uses
  {_STREAMS}
  JOIN chat.stream_emotes e ON e.stream_id = s.id
  WHERE {_IN_RANGE}
  GROUP BY 1, 2
), r AS (
  SELECT channel, emote_name, uses,
         uses::float8 / sum(uses) OVER (PARTITION BY channel) AS share,
         row_number() OVER (PARTITION BY channel ORDER BY uses DESC, emote_name) AS rank
  FROM u
)
SELECT channel, rank, emote_name AS emote, uses, round(share::numeric, 4) AS share
FROM r
WHERE rank <= 15
ORDER BY channel, rank
""",
        description="Each channel's 15 most used emotes and their share of its emote uses.",
    )
    usual = _bars(
        "Usual stream shape",
        f"""
SELECT {_TENTH} AS tenth, c.name AS channel, sh.share
FROM chat.channel_shape sh
JOIN chat.channels c ON c.id = sh.channel_id
WHERE c.name IN (${{channel:sqlstring}})
ORDER BY sh.decile, c.name
""",
        "tenth",
        width=12,
        unit="percentunit",
        description="Each channel's usual stream: the share of messages in each tenth of its "
        "duration, averaged over all its streams (chat.channel_shape).",
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "columnField": "channel",
                    "rowField": "tenth",
                    "valueField": "share",
                },
            }
        ],
    )
    pace = _per_stream(
        "Messages per minute per stream",
        f"""
SELECT s.started_at AS "time", c.name AS channel,
       s.messages / nullif(s.duration_s / 60.0, 0) AS per_min
{_STREAMS}
WHERE {_IN_RANGE}
ORDER BY 1, 2
""",
        description="Each stream's average pace, per channel.",
    )
    return dashboard(
        uid=COMPARE_UID,
        title="chatpulse / Compare channels",
        description="How communities differ: chat signatures side by side, shared audience, "
        "emote mix and the usual stream shape of each channel.",
        rows=[[signatures], [overlap, emotes], [usual, pace]],
        variables=[channel_variable()],
        time_from="now-30d",
        refresh="5m",
    )
