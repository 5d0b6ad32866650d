"""The "Moderation & toxicity: response" dashboard: does moderation keep up with toxicity?

Built on the views of migration 0015 (``chat.toxic_messages``, ``chat.moderation_1m``,
``chat.moderation_streams``).
"""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import basic_timeseries, plain_table, stat
from grafana.panels import channel_variable, dashboard, sql

__all__ = ["UID", "moderation_response"]

UID = "chatpulse-moderation-response"


def moderation_response() -> dict[str, Any]:
    """The dashboard's JSON."""
    acted_share = stat(
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
        width=6,
        graph=False,
    )
    never = stat(
        "Toxic, never acted on",
        """
SELECT coalesce(sum(m.never_acted), 0) AS never_acted
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        description="Toxic messages with no action within 10 minutes.",
        width=6,
        graph=False,
    )
    latency = stat(
        "Time to action",
        """
SELECT sum(m.avg_latency_s * m.acted) / nullif(sum(m.acted), 0) AS latency_s
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        unit="s",
        description="Mean seconds from a toxic message to the first action on it or its author.",
        width=6,
        graph=False,
    )
    mods = stat(
        "Moderator messages",
        """
SELECT coalesce(sum(m.mod_messages), 0) AS mod_messages
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
""",
        description="Messages written by moderators (is_mod) in the range.",
        width=6,
        graph=False,
    )
    toxic_vs_actions = basic_timeseries(
        "Toxic messages against actions",
        [
            sql(
                """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.toxic) AS toxic, sum(m.acted) AS acted, sum(m.actions) AS actions
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        description="Per interval: toxic messages, those acted on, and all moderation actions.",
        width=12,
        interval="1m",
    )
    latency_series = basic_timeseries(
        "Time to action over time",
        [
            sql(
                """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.avg_latency_s * m.acted) / nullif(sum(m.acted), 0) AS latency_s
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        unit="s",
        description="Mean seconds from a toxic message to the action, per interval.",
        width=12,
        interval="1m",
    )
    mod_activity = basic_timeseries(
        "Moderator activity",
        [
            sql(
                """
SELECT $__timeGroupAlias(m.bucket, $__interval), c.name AS channel,
       sum(m.mod_messages) AS mod_messages, max(m.active_mods) AS active_mods
FROM chat.moderation_1m m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
"""
            )
        ],
        description="Messages by moderators and the most moderators active in one minute.",
        width=12,
        interval="1m",
    )
    streams = plain_table(
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
    unanswered = plain_table(
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
