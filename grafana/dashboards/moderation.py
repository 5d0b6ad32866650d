"""The "Moderation & toxicity" dashboard: moderation actions against toxicity, flagged
messages and the moderation log.
"""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import HYPE_ANNOTATION, model_variable, stat, table, timeseries
from grafana.panels import channel_variable, dashboard, sql

__all__ = ["UID", "moderation"]

UID = "chatpulse-moderation"


def moderation() -> dict[str, Any]:
    counts = stat(
        "Moderation actions",
        """
SELECT count(*) FILTER (WHERE me.kind = 'ban') AS bans,
       count(*) FILTER (WHERE me.kind = 'timeout') AS timeouts,
       count(*) FILTER (WHERE me.kind = 'delete') AS deletions,
       count(*) FILTER (WHERE me.kind = 'clear') AS clears
FROM chat.moderation_events me
JOIN chat.channels c ON c.id = me.channel_id
WHERE $__timeFilter(me.at) AND c.name IN (${channel:sqlstring})
""",
        width=12,
        description="Bans, timeouts, message deletions and chat clears in the range.",
    )
    toxic_share = stat(
        "Toxic share",
        """
SELECT sum(s.toxic)::float8 / nullif(sum(s.scored), 0) AS toxic_share
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
        width=6,
        unit="percentunit",
        description="Share of scored messages with toxicity >= 0.5.",
    )
    avg_tox = stat(
        "Mean toxicity",
        """
SELECT sum(s.avg_toxicity * s.scored) / nullif(sum(s.scored), 0) AS toxicity
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
        width=6,
        description="Mean toxicity (0..1) of the scored messages.",
        defaults={"decimals": 3},
    )
    against = timeseries(
        "Moderation actions against toxicity",
        """
SELECT $__timeGroupAlias(me.at, $__interval), me.kind AS action, count(*) AS actions
FROM chat.moderation_events me
JOIN chat.channels c ON c.id = me.channel_id
WHERE $__timeFilter(me.at) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
        width=24,
        height=9,
        draw="bars",
        stack=True,
        by_channel=False,
        description="Bars: moderation actions per interval by kind. Line (right axis): share "
        "of toxic messages.",
        defaults={"displayName": "${__field.labels.action}"},
        extra_targets=[
            sql(
                """
SELECT $__timeGroupAlias(s.bucket, $__interval),
       sum(s.toxic)::float8 / nullif(sum(s.scored), 0) AS toxic_share
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1
ORDER BY 1
""",
                ref="B",
            )
        ],
        overrides=[
            {
                "matcher": {"id": "byFrameRefID", "options": "B"},
                "properties": [
                    {"id": "custom.drawStyle", "value": "line"},
                    {"id": "custom.axisPlacement", "value": "right"},
                    {"id": "custom.stacking", "value": {"mode": "none", "group": "B"}},
                    {"id": "unit", "value": "percentunit"},
                    {"id": "displayName", "value": "toxic share"},
                    {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                ],
            }
        ],
    )
    # Per channel, as in _extreme_messages: the index (channel_id, model, toxicity, sent_at)
    # of migration 0008 gives each channel's most toxic rows first.
    flagged = table(
        "Top flagged messages",
        """
SELECT x.sent_at AS "time", c.name AS channel, m.user_name AS "user", m.text,
       round(x.toxicity::numeric, 3) AS toxicity,
       EXISTS (
         SELECT 1 FROM chat.moderation_events me
         WHERE me.channel_id = c.id
           AND me.at BETWEEN x.sent_at AND x.sent_at + INTERVAL '10 minutes'
           AND (me.target_message_id = m.message_id OR me.target_user_id = m.user_id)
       ) AS moderated
FROM chat.channels c
CROSS JOIN LATERAL (
  SELECT s.sent_at, s.message_id, s.toxicity
  FROM chat.message_scores s
  WHERE s.channel_id = c.id AND s.model = ${model:sqlstring} AND s.toxicity > 0
    AND $__timeFilter(s.sent_at)
  ORDER BY s.toxicity DESC, s.sent_at DESC
  LIMIT 50
) x
JOIN chat.messages m
  ON m.channel_id = c.id AND m.message_id = x.message_id AND m.sent_at = x.sent_at
WHERE c.name IN (${channel:sqlstring}) AND $__timeFilter(m.sent_at)
ORDER BY x.toxicity DESC, x.sent_at DESC
LIMIT 50
""",
        width=14,
        height=12,
        description="The most toxic messages of the range, and whether a moderator acted on "
        "the message or its author within 10 minutes.",
    )
    log = table(
        "Moderation log",
        """
SELECT me.at AS "time", c.name AS channel, me.kind AS action, me.target_login AS "user",
       me.duration_s, last_msg.text AS last_message
FROM chat.moderation_events me
JOIN chat.channels c ON c.id = me.channel_id
LEFT JOIN LATERAL (
  SELECT m.text
  FROM chat.messages m
  WHERE m.channel_id = me.channel_id AND m.user_login = me.target_login
    AND m.sent_at <= me.at AND m.sent_at > me.at - INTERVAL '1 hour'
  ORDER BY m.sent_at DESC
  LIMIT 1
) last_msg ON true
WHERE $__timeFilter(me.at) AND c.name IN (${channel:sqlstring})
ORDER BY me.at DESC
LIMIT 200
""",
        width=10,
        height=12,
        description="Each ban, timeout and deletion with the target's last message before it.",
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Moderation & toxicity",
        description="Bans, timeouts and deletions against measured toxicity, and the messages "
        "that were flagged.",
        rows=[[counts, toxic_share, avg_tox], [against], [flagged, log]],
        variables=[channel_variable(), model_variable()],
        annotations=[HYPE_ANNOTATION],
    )
