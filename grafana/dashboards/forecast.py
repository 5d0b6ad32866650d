"""The "Hype forecast" dashboard: will chat erupt in the next minute, and did it?

Built on ``chat.hype_forecasts`` (migration 0017, written by ``chatpulse forecast``) beside the
detected ``chat.hype_moments``.
"""

from __future__ import annotations

from typing import Any

from grafana.panels import Panel, channel_variable, dashboard, sql

__all__ = ["UID", "hype_forecast"]

UID = "chatpulse-hype-forecast"


def hype_forecast() -> dict[str, Any]:
    """The dashboard's JSON."""
    probability = Panel(
        title="Hype probability",
        type="timeseries",
        targets=[
            sql(
                """
SELECT $__timeGroupAlias(f.at, $__interval), c.name AS channel, max(f.probability) AS probability
FROM chat.hype_forecasts f
JOIN chat.channels c ON c.id = f.channel_id
WHERE $__timeFilter(f.at) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        width=16,
        height=9,
        unit="percentunit",
        interval="5s",
        description="Per 5-s hop: the probability that a hype moment peaks within the horizon "
        "(60 s by default), from the chat before it only. The dashed line is the 'hype likely' "
        "threshold.",
        custom={"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"},
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )
    now = Panel(
        title="Hype likely now",
        type="stat",
        targets=[
            sql(
                """
SELECT c.name AS channel, coalesce(max(f.probability), 0)::float8 AS probability
FROM chat.channels c
LEFT JOIN chat.hype_forecasts f
  ON f.channel_id = c.id AND f.at > $__timeTo()::timestamptz - INTERVAL '30 seconds'
 AND f.at <= $__timeTo()
WHERE c.name IN (${channel:sqlstring})
GROUP BY c.name
ORDER BY c.name
""",
                "table",
            )
        ],
        width=8,
        height=9,
        unit="percentunit",
        description="The highest forecast probability of the last 30 s of the range, per channel.",
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "value_and_name",
            "orientation": "auto",
        },
    )
    foreseen = Panel(
        title="Moments and their warnings",
        type="table",
        targets=[
            sql(
                """
SELECT h.peak_at AS "time", c.name AS channel, round(h.score::numeric, 2) AS score,
       round(h.messages_per_min::numeric, 1) AS messages_per_min,
       extract(epoch FROM h.peak_at - w.first_at)::float8 AS warned_s_before_peak
FROM chat.hype_moments h
JOIN chat.channels c ON c.id = h.channel_id
LEFT JOIN LATERAL (
    SELECT min(f.at) AS first_at
    FROM chat.hype_forecasts f
    WHERE f.channel_id = h.channel_id AND f.likely
      AND f.at >= h.peak_at - make_interval(secs => f.horizon_s) AND f.at <= h.peak_at
) w ON true
WHERE $__timeFilter(h.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY h.peak_at DESC
LIMIT 100
""",
                "table",
            )
        ],
        width=24,
        height=10,
        description="Each detected hype moment and how many seconds before its peak the "
        "forecast first said 'hype likely' (empty: not foreseen).",
        options={"showHeader": True},
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Hype forecast",
        description="The hype forecast (chatpulse forecast): the probability of a hype moment "
        "in the next minute per channel, and which detected moments it foresaw.",
        rows=[[probability, now], [foreseen]],
        variables=[channel_variable()],
        refresh="30s",
    )
