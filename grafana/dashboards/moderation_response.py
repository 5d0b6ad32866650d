"""The "Moderation & toxicity: response" dashboard: does moderation keep up with toxicity?

Built on the views of migration 0015 (``chat.toxic_messages``, ``chat.moderation_1m``,
``chat.moderation_streams``).  Imports only :mod:`grafana.panels`, so :mod:`grafana.dashboards`
can register it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from grafana.panels import Panel, channel_variable, dashboard, sql

__all__ = ["UID", "moderation_response"]

UID = "chatpulse-moderation-response"


def _stat(title: str, raw_sql: str, *, unit: str | None = None, description: str = "") -> Panel:
    return Panel(
        title=title,
        type="stat",
        targets=[sql(raw_sql, "table")],
        width=6,
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


def _series(title: str, raw_sql: str, *, unit: str | None = None, description: str = "") -> Panel:
    return Panel(
        title=title,
        type="timeseries",
        targets=[sql(raw_sql)],
        width=12,
        height=8,
        unit=unit,
        interval="1m",
        description=description,
        custom={"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"},
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def _table(title: str, raw_sql: str, *, width: int = 12, description: str = "") -> Panel:
    return Panel(
        title=title,
        type="table",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=10,
        description=description,
        options={"showHeader": True},
    )


def moderation_response() -> dict[str, Any]:
    """The dashboard's JSON."""
    acted_share = _stat(
        "Toxic messages acted on",
        """
SELECT sum(m.acted)::float8 / nullif(sum(m.toxic), 0) AS acted_share
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        unit="percentunit",
        description="Share of toxic messages (toxicity >= 0.5) deleted, or whose author was "
        "timed out or banned, within 10 minutes.",
    )
    never = _stat(
        "Toxic, never acted on",
        """
SELECT coalesce(sum(m.never_acted), 0) AS never_acted
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        description="Toxic messages with no action within 10 minutes.",
    )
    latency = _stat(
        "Time to action",
        """
SELECT sum(m.avg_latency_s * m.acted) / nullif(sum(m.acted), 0) AS latency_s
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        unit="s",
        description="Mean seconds from a toxic message to the first action on it or its author.",
    )
    mods = _stat(
        "Moderator messages",
        """
SELECT coalesce(sum(m.mod_messages), 0) AS mod_messages
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        description="Messages written by moderators (is_mod) in the range.",
    )
    toxic_vs_actions = _series(
        "Toxic messages against actions",
        """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.toxic) AS toxic, sum(m.acted) AS acted, sum(m.actions) AS actions
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
        description="Per interval: toxic messages, those acted on, and all moderation actions.",
    )
    latency_series = _series(
        "Time to action over time",
        """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.avg_latency_s * m.acted) / nullif(sum(m.acted), 0) AS latency_s
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
        unit="s",
        description="Mean seconds from a toxic message to the action, per interval.",
    )
    mod_activity = _series(
        "Moderator activity",
        """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.mod_messages) AS mod_messages, max(m.active_mods) AS active_mods
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
        description="Messages by moderators and the most moderators active in one minute.",
    )
    streams = _table(
        "Per stream",
        """
SELECT s.started_at AS "time", c.name AS channel, s.ended_at, s.messages, s.toxic, s.acted,
       round(s.acted_share::numeric, 3) AS acted_share, s.never_acted,
       round(s.avg_latency_s::numeric, 1) AS avg_latency_s, s.bans, s.timeouts, s.deletions,
       s.mod_messages, s.peak_active_mods
FROM chat.moderation_streams s
JOIN chat.channels c ON c.id = s.channel_id
WHERE s.ended_at >= $__timeFrom() AND s.started_at <= $__timeTo()
  AND c.name IN (${channel:sqlstring})
ORDER BY s.started_at DESC
LIMIT 100
""",
        description="Each stream (chat broken by 15 minutes of silence) of the range.",
    )
    unanswered = _table(
        "Never acted on",
        """
SELECT t.sent_at AS "time", c.name AS channel, t.user_login AS "user", m.text,
       round(t.toxicity::numeric, 3) AS toxicity
FROM chat.toxic_messages t
JOIN chat.channels c ON c.id = t.channel_id
JOIN chat.messages m
  ON m.channel_id = t.channel_id AND m.message_id = t.message_id AND m.sent_at = t.sent_at
WHERE $__timeFilter(t.sent_at) AND c.name IN (${channel:sqlstring}) AND t.never_acted
ORDER BY t.toxicity DESC, t.sent_at DESC
LIMIT 100
""",
        description="Toxic messages no moderator acted on within 10 minutes, most toxic first.",
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Moderation & toxicity: response",
        description="Whether moderation keeps up with toxicity: toxic messages acted on, how "
        "fast, never acted on, and moderator activity, per minute and per stream.",
        rows=[
            [acted_share, never, latency, mods],
            [toxic_vs_actions, latency_series],
            [mod_activity],
            [streams, unanswered],
        ],
        variables=[channel_variable()],
    )
