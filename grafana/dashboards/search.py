"""The "Message search" dashboard: full-text search over every message, by time and channel."""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import GAP_ANNOTATION, HYPE_ANNOTATION, table, timeseries
from grafana.panels import channel_variable, dashboard, textbox_variable

__all__ = ["UID", "search"]

UID = "chatpulse-search"


# The GIN index is on exactly to_tsvector('simple', text); websearch_to_tsquery takes user
# syntax ("quoted phrase", -not, or) without ever raising a syntax error.
_MATCH = """
  AND (${search:sqlstring} = '' OR to_tsvector('simple', m.text) @@ websearch_to_tsquery('simple', ${search:sqlstring}))
  AND (${user:sqlstring} = '' OR m.user_login = lower(${user:sqlstring}))"""


def search() -> dict[str, Any]:
    matches = timeseries(
        "Matching messages",
        # With no filter the 1-minute aggregate answers; PostgreSQL folds the constant
        # conditions, so only one branch runs.
        """
SELECT $__timeGroupAlias(a.bucket, $__interval), sum(a.messages) AS messages
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring}) AND ${search:sqlstring} = '' AND ${user:sqlstring} = ''
GROUP BY 1
UNION ALL
SELECT $__timeGroupAlias(m.sent_at, $__interval), count(*) AS messages
FROM chat.messages m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.sent_at) AND c.name IN (${channel:sqlstring}) AND NOT (${search:sqlstring} = '' AND ${user:sqlstring} = '')"""
        + _MATCH
        + """
GROUP BY 1
ORDER BY 1
""",
        width=24,
        height=6,
        draw="bars",
        by_channel=False,
        description="Messages per interval that match the search and user filters.",
    )
    messages = table(
        "Messages",
        """
SELECT m.sent_at AS "time", c.name AS channel, m.user_name AS "user", m.kind, m.text,
       m.user_login
FROM chat.messages m
JOIN chat.channels c ON c.id = m.channel_id
WHERE $__timeFilter(m.sent_at) AND c.name IN (${channel:sqlstring})"""
        + _MATCH
        + """
ORDER BY m.sent_at DESC
LIMIT 500
""",
        height=18,
        description='The newest 500 matching messages. Search syntax: words, "a phrase", '
        "-excluded, or.",
        links=[
            {
                "title": "Messages of this user",
                "url": f"/d/{UID}?${{__url_time_range}}"
                "&var-channel=${__data.fields.channel}&var-user=${__data.fields.user_login}",
            }
        ],
        hidden=("user_login",),
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Message search",
        description="Full-text search over every message, by time and channel.",
        rows=[[matches], [messages]],
        variables=[
            channel_variable(),
            textbox_variable("search", "Search"),
            textbox_variable("user", "User login"),
        ],
        annotations=[HYPE_ANNOTATION, GAP_ANNOTATION],
        time_from="now-24h",
    )
