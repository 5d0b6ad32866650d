"""The "Emotes" dashboard: the most used emotes, their use over time, and emote bursts."""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    BURST_ANNOTATION,
    CLIP_ANNOTATION,
    HYPE_ANNOTATION,
    moment_link,
    table,
    timeseries,
)
from grafana.panels import Panel, channel_variable, dashboard, sql

__all__ = ["UID", "emotes"]

UID = "chatpulse-emotes"


# The emotes of the range at the panel's interval (``e``): per minute when the interval is a
# whole number of minutes (a 24 h range is 1 m), per 10 s otherwise.  The condition on the
# constant $__interval_ms is decided when the query is planned, so only one aggregate is read.
# ``top``: the most used emotes of the range.
_TOP_EMOTES_CTE = """
WITH top AS (
  SELECT e.emote_name
  FROM chat.emotes_1m e
  JOIN chat.channels c ON c.id = e.channel_id
  WHERE $__timeFilter(e.bucket) AND c.name IN (${{channel:sqlstring}})
  GROUP BY 1
  ORDER BY sum(e.uses) DESC
  LIMIT {limit}
), e AS (
  SELECT bucket, channel_id, emote_name, uses FROM chat.emotes_1m
  WHERE $__interval_ms % 60000 = 0 AND $__timeFilter(bucket)
  UNION ALL
  SELECT bucket, channel_id, emote_name, uses FROM chat.emotes_10s
  WHERE $__interval_ms % 60000 <> 0 AND $__timeFilter(bucket)
)"""


def emotes() -> dict[str, Any]:
    top = Panel(
        title="Top emotes",
        type="barchart",
        targets=[
            sql(
                """
SELECT e.emote_name AS emote, sum(e.uses) AS uses
FROM chat.emotes_1m e
JOIN chat.channels c ON c.id = e.channel_id
WHERE $__timeFilter(e.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1
ORDER BY 2 DESC
LIMIT 20
""",
                "table",
            )
        ],
        width=8,
        height=12,
        description="The 20 most used emotes in the range (all providers).",
        options={
            "orientation": "horizontal",
            "xField": "emote",
            "showValue": "auto",
            "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "single", "sort": "none"},
        },
        custom={"fillOpacity": 80},
    )
    over_time = timeseries(
        "Emote usage over time (top 8)",
        _TOP_EMOTES_CTE.format(limit=8)
        + """
SELECT $__timeGroupAlias(e.bucket, $__interval), e.emote_name AS emote,
       sum(e.uses) * 60000.0 / $__interval_ms AS uses_per_min
FROM e
JOIN top ON top.emote_name = e.emote_name
JOIN chat.channels c ON c.id = e.channel_id
WHERE c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
        width=16,
        height=12,
        interval="10s",
        by_channel=False,
        defaults={"displayName": "${__field.labels.emote}"},
        description="Uses per minute of the 8 most used emotes of the range.",
    )
    heatmap = Panel(
        title="Emote activity heatmap (top 20)",
        type="heatmap",
        targets=[
            sql(
                _TOP_EMOTES_CTE.format(limit=20)
                + """
SELECT $__timeGroupAlias(e.bucket, $__interval), e.emote_name AS emote, sum(e.uses) AS uses
FROM e
JOIN top ON top.emote_name = e.emote_name
JOIN chat.channels c ON c.id = e.channel_id
WHERE c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        width=24,
        height=12,
        interval="10s",
        # Cells of at least ~5 px across a full-width panel: 5-minute cells over 24 h, 1 minute
        # over 6 h (~4,600 rows at 24 h instead of ~23,000 at Grafana's pixel-wide default).
        max_data_points=300,
        description="One row per emote (the 20 most used), colour = uses per interval.",
        defaults={"displayName": "${__field.labels.emote}"},
        options={
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange"},
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left"},
            "legend": {"show": True},
            "tooltip": {"mode": "single", "yHistogram": False},
        },
    )
    providers = Panel(
        title="Emote providers",
        type="piechart",
        targets=[
            sql(
                """
SELECT e.provider, sum(e.uses) AS uses
FROM chat.emotes_1m e
JOIN chat.channels c ON c.id = e.channel_id
WHERE $__timeFilter(e.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1
ORDER BY 2 DESC
""",
                "table",
            )
        ],
        width=6,
        height=10,
        description="Emote uses by provider (twitch, bttv, ffz, 7tv, emoji).",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "pieType": "donut",
            "legend": {"displayMode": "list", "placement": "right", "showLegend": True},
        },
        defaults={"displayName": "${__data.fields.provider}"},
    )
    bursts = table(
        "Emote bursts",
        """
SELECT b.peak_at AS "time", c.name AS channel, b.emote_name AS emote, b.provider,
       b.peak_uses, round(b.baseline::numeric, 2) AS baseline, round(b.score::numeric, 2) AS score,
       b.total_uses, b.started_at, b.ended_at,
       (extract(epoch from b.started_at - INTERVAL '2 minutes') * 1000)::bigint AS from_ms,
       (extract(epoch from b.ended_at + INTERVAL '2 minutes') * 1000)::bigint AS to_ms
FROM chat.emote_bursts b
JOIN chat.channels c ON c.id = b.channel_id
WHERE $__timeFilter(b.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY b.peak_at DESC
LIMIT 200
""",
        width=18,
        height=10,
        description="Emotes used far above their own baseline (peak uses per 10 s).",
        links=[moment_link(UID, "Zoom to this burst")],
        hidden=("from_ms", "to_ms"),
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Emotes & bursts",
        description="Which emotes chat uses, when, and when one bursts.",
        rows=[[top, over_time], [heatmap], [providers, bursts]],
        variables=[channel_variable()],
        annotations=[BURST_ANNOTATION, HYPE_ANNOTATION, CLIP_ANNOTATION],
    )
