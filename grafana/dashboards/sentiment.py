"""The "Sentiment" dashboard: sentiment and emotions per model, the most positive and
negative messages.
"""

from __future__ import annotations

from typing import Any

from chatpulse.core.contract import EMOTIONS
from grafana.dashboards.common import HYPE_ANNOTATION, model_variable, table, timeseries
from grafana.dashboards.search import UID as SEARCH_UID
from grafana.panels import Panel, channel_variable, dashboard, sql

__all__ = ["UID", "sentiment"]

UID = "chatpulse-sentiment"


def _weighted(column: str) -> str:
    # Emotion columns are NULL where a backend does not estimate them: weight only the minutes
    # that have a value, so a partial backend does not drag the mean to zero.
    return (
        f"sum(s.{column} * s.scored) / nullif(sum(s.scored) FILTER "
        f"(WHERE s.{column} IS NOT NULL), 0) AS {column}"
    )


def _extreme_messages(title: str, order: str, description: str) -> Panel:
    # `order` is one of two constants (ASC/DESC), never input.
    # Per channel (LATERAL), so that each channel's top rows come in order from the index
    # (channel_id, model, sentiment, sent_at) of migration 0008: a join with the channel list
    # would hide that only one channel_id is wanted and sort every score of the range.  The
    # messages are joined after the LIMIT: joined inside it, the planner misjudges the join
    # (message_id and sent_at are estimated independent) as one row and sorts it all anyway.
    # A score whose message is gone (retention) drops out instead of letting a later one in.
    return table(
        title,
        """
SELECT x.sent_at AS "time", c.name AS channel, m.user_name AS "user", m.text,
       round(x.sentiment::numeric, 3) AS sentiment, x.label
FROM chat.channels c
CROSS JOIN LATERAL (
  SELECT s.sent_at, s.message_id, s.sentiment, s.label
  FROM chat.message_scores s
  WHERE s.channel_id = c.id AND s.model = ${model:sqlstring} AND $__timeFilter(s.sent_at)
  ORDER BY s.sentiment ORDER_DIR, s.sent_at DESC
  LIMIT 25
) x
JOIN chat.messages m
  ON m.channel_id = c.id AND m.message_id = x.message_id AND m.sent_at = x.sent_at
WHERE c.name IN (${channel:sqlstring}) AND $__timeFilter(m.sent_at)
ORDER BY x.sentiment ORDER_DIR, x.sent_at DESC
LIMIT 25
""".replace("ORDER_DIR", order),
        width=12,
        height=10,
        description=description,
        links=[
            {
                "title": "Messages of this user",
                "url": f"/d/{SEARCH_UID}?${{__url_time_range}}"
                "&var-channel=${__data.fields.channel}&var-user=${__data.fields.user}",
            }
        ],
    )


def sentiment() -> dict[str, Any]:
    emotions = timeseries(
        "Emotions over time",
        "SELECT $__timeGroupAlias(s.bucket, $__interval),\n       "
        + ",\n       ".join(_weighted(e) for e in EMOTIONS)
        + """
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1
ORDER BY 1
""",
        width=24,
        height=10,
        by_channel=False,
        description="Mean intensity (0..1) of each emotion over the selected channels.",
        defaults={"min": 0},
    )
    distribution = timeseries(
        "Sentiment distribution over time",
        """
SELECT $__timeGroupAlias(s.bucket, $__interval),
       sum(s.negative) AS negative, sum(s.neutral) AS neutral, sum(s.positive) AS positive
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1
ORDER BY 1
""",
        width=12,
        draw="bars",
        stack=True,
        by_channel=False,
        description="Messages per interval by sentiment label.",
        overrides=[
            {
                "matcher": {"id": "byName", "options": name},
                "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
            }
            for name, color in (("negative", "red"), ("neutral", "gray"), ("positive", "green"))
        ],
    )
    totals = Panel(
        title="Sentiment split",
        type="piechart",
        targets=[
            sql(
                """
SELECT sum(s.negative) AS negative, sum(s.neutral) AS neutral, sum(s.positive) AS positive
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
                "table",
            )
        ],
        width=4,
        height=8,
        description="Share of messages per sentiment label in the range.",
        options={
            "reduceOptions": {"calcs": ["sum"], "fields": "", "values": False},
            "pieType": "pie",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        },
    )
    by_channel = timeseries(
        "Average sentiment per channel",
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
        description="Mean sentiment (-1..1), weighted by messages scored.",
        defaults={"min": -1, "max": 1},
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Sentiment & emotions",
        description="How chat feels: emotions, the sentiment split, and the most positive "
        "and most negative messages of the range.",
        rows=[
            [emotions],
            [distribution, totals, by_channel],
            [
                _extreme_messages(
                    "Most positive messages", "DESC", "The 25 highest-sentiment messages."
                ),
                _extreme_messages(
                    "Most negative messages", "ASC", "The 25 lowest-sentiment messages."
                ),
            ],
        ],
        variables=[channel_variable(), model_variable()],
        annotations=[HYPE_ANNOTATION],
    )
