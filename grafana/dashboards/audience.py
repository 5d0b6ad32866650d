"""The "Audience" dashboard: who chats across streams, who comes back, who is new (issue 15).

Built on ``chat.streams``, ``chat.stream_chatters``, ``chat.chatter_segments`` (migration
0016) and ``chat.stream_segments`` (migration 0024), kept current by ``chatpulse analyze``,
with the ``channel`` and ``stream`` variables of the Streams dashboard.
"""

# ruff: noqa: S608  (dashboard SQL texts assembled from constants; values reach them only
# through Grafana's ${var:sqlstring}, never through Python formatting)

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    IN_RANGE,
    STREAMS_FROM,
    THIS_STREAM,
    per_stream,
    plain_table,
    stream_variable,
)
from grafana.dashboards.streams import stream_link
from grafana.panels import Panel, channel_variable, dashboard, sql

__all__ = ["UID", "audience"]

UID = "chatpulse-audience"


def audience() -> dict[str, Any]:
    """The Audience dashboard: segments, first-time and returning chatters, retention."""
    shares = per_stream(
        "Segment shares per stream",
        f"""
SELECT s.started_at AS "time", c.name || ' ' || g.segment AS metric,
       sum(g.chatters)::float8 / nullif(s.chatters, 0) AS share
{STREAMS_FROM}
JOIN chat.stream_segments g ON g.stream_id = s.id
WHERE {IN_RANGE}
GROUP BY s.started_at, c.name, g.segment, s.chatters
ORDER BY 1, 2
""",
        unit="percentunit",
        stack=True,
        description="Each stream's chatters by segment (one-time, casual, regular, power user, "
        "spammer, bot; rules in the README), at the stream's start.",
    )
    first_time = per_stream(
        "First-time and returning chatters",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.new_chatters AS first_time,
       s.returning_chatters AS returning
{STREAMS_FROM}
WHERE {IN_RANGE}
ORDER BY 1, 2
""",
        stack=True,
        description="Per stream: chatters writing in the channel for the first time, and those "
        "who had written before.",
    )
    retention = plain_table(
        "Retention stream to stream",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.id AS stream_id, s.chatters,
       s.previous_chatters, s.retained,
       round((s.retained::float8 / nullif(s.previous_chatters, 0))::numeric, 3) AS retention,
       round((s.returning_chatters::float8 / nullif(s.chatters, 0))::numeric, 3)
       AS returning_share
{STREAMS_FROM}
WHERE {IN_RANGE}
ORDER BY s.started_at DESC
LIMIT 200
""",
        description="Per stream: chatters of the channel's previous stream who wrote again "
        "(retained / previous_chatters), and the share of this stream's chatters who had "
        "written before.",
        width=24,
        links=[stream_link()],
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
WHERE {THIS_STREAM}
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
    chatters = plain_table(
        "Chatters of this stream",
        f"""
SELECT coalesce(sc.login, sc.chatter) AS chatter, sc.segment, sc.messages, sc.duplicates,
       sc.emote_uses, round((sc.chars::float8 / nullif(sc.messages, 0))::numeric, 1)
       AS avg_length, sc.first_time, sc.first_at AS first_message, sc.last_at AS last_message
FROM chat.stream_chatters sc
JOIN chat.streams s ON s.id = sc.stream_id
WHERE {THIS_STREAM}
ORDER BY sc.messages DESC, sc.chatter
LIMIT 200
""",
        width=16,
        description="The selected stream's chatters, most active first, with their segment "
        "and what it rests on (messages, duplicates, emote uses, length).",
    )
    current = plain_table(
        "Current segments",
        """
SELECT c.name AS channel, g.segment, sum(g.chatters)::bigint AS chatters
FROM chat.channel_segments g
JOIN chat.channels c ON c.id = g.channel_id
WHERE g.last_stream_at <= $__timeTo() AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 3 DESC
""",
        width=24,
        height=8,
        description="Every chatter the channel has seen whose latest stream began by the end "
        "of the range, in the segment of that stream (chat.channel_segments: the counts of "
        "chat.chatter_segments).",
    )
    clusters = plain_table(
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
        uid=UID,
        title="chatpulse / Audience",
        description="Who is chatting: segments per stream, first-time and returning chatters, "
        "retention from one stream to the next, and the selected stream's audience.",
        rows=[[shares, first_time], [pie, chatters], [retention], [current], [clusters]],
        variables=[channel_variable(), stream_variable()],
        time_from="now-30d",
        refresh="5m",
    )
