"""The "Stream overview" dashboard: messages, chatters, hype, sentiment and toxicity at a glance.

Its table of hype moments links to the Emotes and Sentiment dashboards around each moment.
"""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    BY_CHANNEL,
    CLIP_ANNOTATION,
    GAP_ANNOTATION,
    HYPE_ANNOTATION,
    model_variable,
    moment_link,
    stat,
    table,
    timeseries,
)
from grafana.dashboards.emotes import UID as EMOTES_UID
from grafana.dashboards.sentiment import UID as SENTIMENT_UID
from grafana.panels import channel_variable, dashboard

__all__ = ["UID", "overview"]

UID = "chatpulse-overview"


_HYPE_SCORE_SQL = """
SELECT s."time", s.channel, s.hype_score
FROM (
  SELECT a.bucket AS "time", c.name AS channel,
         a.messages / nullif(avg(a.messages) OVER w, 0) AS hype_score
  FROM chat.activity_1m a
  JOIN chat.channels c ON c.id = a.channel_id
  WHERE a.bucket >= $__timeFrom()::timestamptz - INTERVAL '30 minutes'
    AND a.bucket <= $__timeTo() AND c.name IN (${channel:sqlstring})
  WINDOW w AS (PARTITION BY a.channel_id ORDER BY a.bucket
               RANGE BETWEEN INTERVAL '30 minutes' PRECEDING AND INTERVAL '1 minute' PRECEDING)
) s
WHERE $__timeFilter(s."time")
ORDER BY 1, 2
"""


def overview() -> dict[str, Any]:
    stats = [
        stat(
            "Messages",
            """
SELECT coalesce(sum(a.messages), 0) AS messages
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
""",
            unit="short",
            description="Chat messages in the time range.",
        ),
        stat(
            "Unique chatters",
            """
SELECT chat.unique_chatters(ARRAY[${channel:sqlstring}]::text[], $__timeFrom(), $__timeTo()) AS chatters
""",
            unit="short",
            description="Distinct chatters who wrote in the time range (by user id, else by login).",
        ),
        stat(
            "Emotes per message",
            """
SELECT sum(a.emote_uses)::float8 / nullif(sum(a.messages), 0) AS emotes_per_message
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
""",
            unit="none",
            description="Emote share: emote uses (all providers) per message.",
            defaults={"decimals": 2},
        ),
        stat(
            "Average sentiment",
            """
SELECT sum(s.avg_sentiment * s.scored) / nullif(sum(s.scored), 0) AS sentiment
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
            description="Mean sentiment (-1..1) of the scored messages, model $model.",
            defaults={
                "decimals": 2,
                "min": -1,
                "max": 1,
                "color": {"mode": "continuous-RdYlGr"},
            },
        ),
        stat(
            "Toxic messages",
            """
SELECT sum(s.toxic)::float8 / nullif(sum(s.scored), 0) AS toxic_share
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
            unit="percentunit",
            description="Share of scored messages with toxicity >= 0.5.",
        ),
        stat(
            "Current hype score",
            _HYPE_SCORE_SQL,
            fmt="time_series",
            description="Messages in the latest minute divided by the channel's mean of the "
            "30 minutes before it (1 = usual, 3 = three times busier). One value per channel.",
            defaults={"decimals": 1, **BY_CHANNEL},
        ),
    ]
    rates = [
        timeseries(
            "Messages per minute",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       sum(a.messages) * 60000.0 / $__interval_ms AS messages_per_min
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            unit="short",
            description="Chat messages per minute, per channel.",
        ),
        timeseries(
            "Active chatters per minute",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       avg(a.chatters) AS chatters
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            unit="short",
            description="Distinct chatters writing in a minute (mean over the interval).",
        ),
    ]
    feeling = [
        timeseries(
            "Average sentiment",
            """
SELECT $__timeGroupAlias(s.bucket, $__interval), c.name AS channel,
       sum(s.avg_sentiment * s.scored) / nullif(sum(s.scored), 0) AS sentiment
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1, 2
ORDER BY 1, 2
""",
            width=8,
            description="Mean sentiment (-1..1) per channel, weighted by messages scored.",
            defaults={"min": -1, "max": 1},
        ),
        timeseries(
            "Toxicity",
            """
SELECT $__timeGroupAlias(s.bucket, $__interval), c.name AS channel,
       sum(s.avg_toxicity * s.scored) / nullif(sum(s.scored), 0) AS toxicity
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1, 2
ORDER BY 1, 2
""",
            width=8,
            unit="percentunit",
            description="Mean toxicity (0..1) of the scored messages.",
            defaults={"min": 0},
        ),
        timeseries(
            "Emote share",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       sum(a.emote_uses)::float8 / nullif(sum(a.messages), 0) AS emotes_per_message
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            width=8,
            description="Emote uses per message.",
        ),
    ]
    events = [
        timeseries(
            "Subs, bits and raids",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval),
       sum(a.subs) AS subs, sum(a.bits) AS bits, sum(a.raids) AS raids
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1
ORDER BY 1
""",
            draw="bars",
            by_channel=False,
            description="Subscription notices of every kind (subs, resubs, gifts, upgrades, "
            "memberships), bits cheered and raids per interval, all selected channels together.",
        ),
        timeseries(
            "Hype score",
            _HYPE_SCORE_SQL,
            interval=None,
            description="Messages per minute divided by the channel's mean of the previous "
            "30 minutes; hype moments are annotated.",
            defaults={"min": 0},
        ),
    ]
    hype_table = [
        table(
            "Hype moments",
            """
SELECT h.peak_at AS "time", c.name AS channel, h.score, h.messages_per_min,
       h.baseline_per_min, h.chatters, array_to_string(h.top_emotes, ' ') AS top_emotes,
       h.avg_sentiment, h.started_at, h.ended_at,
       (extract(epoch from h.started_at - INTERVAL '5 minutes') * 1000)::bigint AS from_ms,
       (extract(epoch from h.ended_at + INTERVAL '5 minutes') * 1000)::bigint AS to_ms
FROM chat.hype_moments h
JOIN chat.channels c ON c.id = h.channel_id
WHERE $__timeFilter(h.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY h.peak_at DESC
LIMIT 100
""",
            height=8,
            description="Moments when chat ran far above the channel's own baseline. "
            "Click a row for the emotes and sentiment around it.",
            links=[
                moment_link(EMOTES_UID, "Emotes around this moment"),
                moment_link(SENTIMENT_UID, "Sentiment around this moment"),
            ],
            hidden=("from_ms", "to_ms"),
        )
    ]
    return dashboard(
        uid=UID,
        title="chatpulse / Stream overview",
        description="What chat says and feels: activity, chatters, emotes, sentiment, "
        "toxicity, subs and hype, per channel.",
        rows=[stats, rates, feeling, events, hype_table],
        variables=[channel_variable(), model_variable()],
        annotations=[HYPE_ANNOTATION, CLIP_ANNOTATION, GAP_ANNOTATION],
    )
