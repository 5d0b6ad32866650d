"""The Topics dashboard: topic timeline, distinctive terms per window, moments like this.

Reads ``chat.topics``, ``chat.window_topics``, ``chat.window_terms`` (filled by
``chatpulse topics`` and ``chatpulse up``) and ``chat.window_embeddings`` (pgvector; the
"moments like this" panel is plain SQL with ``<=>`` and errors where pgvector is missing).
"""

from __future__ import annotations

from typing import Any

from grafana.panels import Panel, channel_variable, dashboard, sql, textbox_variable

__all__ = ["UID", "topics_dashboard"]

UID = "chatpulse-topics"

TIMELINE_SQL = """
SELECT wt.window_start AS "time", c.name || ': ' || t.label AS metric, wt.share AS value
FROM chat.window_topics wt
JOIN chat.topics t ON t.channel_id = wt.channel_id AND t.topic_id = wt.topic_id
JOIN chat.channels c ON c.id = wt.channel_id
WHERE $__timeFilter(wt.window_start) AND c.name IN (${channel:sqlstring})
ORDER BY 1
"""

TOPICS_SQL = """
SELECT c.name AS channel, t.topic_id, t.label, array_to_string(t.terms, ', ') AS terms,
       array_to_string(t.emotes, ' ') AS emotes, t.windows,
       round(sum(wt.share)::numeric * 30 / 60, 1) AS minutes_in_range
FROM chat.topics t
JOIN chat.channels c ON c.id = t.channel_id
LEFT JOIN chat.window_topics wt
  ON wt.channel_id = t.channel_id AND wt.topic_id = t.topic_id
 AND $__timeFilter(wt.window_start)
WHERE c.name IN (${channel:sqlstring})
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1, 7 DESC NULLS LAST
"""

TERMS_SQL = """
SELECT w.window_start AS "time", c.name AS channel,
       string_agg(w.term || ' (' || w.count || ')', ', ' ORDER BY w.rank) AS distinctive_terms,
       max(w.zscore) AS top_z
FROM chat.window_terms w
JOIN chat.channels c ON c.id = w.channel_id
WHERE $__timeFilter(w.window_start) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1 DESC
LIMIT 500
"""

# The window at (or just before) the chosen moment, and its 10 nearest windows elsewhere
# (exact cosine distance over every embedded window: no index, so no filter can starve it).
LIKE_THIS_SQL = """
WITH anchor AS (
    SELECT e.embedding, e.channel_id, e.window_start
    FROM chat.window_embeddings e
    JOIN chat.channels c ON c.id = e.channel_id
    WHERE c.name IN (${channel:sqlstring})
      AND e.window_start <= coalesce(nullif(${moment:sqlstring}, '')::timestamptz, $__timeTo())
    ORDER BY e.window_start DESC
    LIMIT 1
)
SELECT e.window_start AS "time", c.name AS channel,
       round((1 - ((e.embedding <=> a.embedding) + 0))::numeric, 3) AS similarity,
       e.messages,
       (SELECT string_agg(x.text, ' | ') FROM (
            SELECT m.text FROM chat.messages m
            WHERE m.channel_id = e.channel_id AND m.sent_at >= e.window_start
              AND m.sent_at < e.window_end AND m.text <> ''
            GROUP BY m.text ORDER BY count(*) DESC, m.text LIMIT 3) x) AS what_chat_said
FROM chat.window_embeddings e
CROSS JOIN anchor a
JOIN chat.channels c ON c.id = e.channel_id
WHERE NOT (e.channel_id = a.channel_id AND abs(extract(epoch FROM e.window_start - a.window_start)) < 120)
ORDER BY (e.embedding <=> a.embedding) + 0
LIMIT 10
"""


def topics_dashboard() -> dict[str, Any]:
    timeline = Panel(
        title="Topic timeline",
        type="timeseries",
        targets=[sql(TIMELINE_SQL)],
        width=24,
        height=9,
        unit="percentunit",
        description="Share of each topic in every 30-s window (stacked): what chat talked about.",
        custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
        interval="30s",
    )
    topics = Panel(
        title="Topics",
        type="table",
        targets=[sql(TOPICS_SQL, "table")],
        width=12,
        height=10,
        description="Per channel: topics by their top terms (class-based TF-IDF) and emotes; "
        "minutes of chat in the time range.",
    )
    terms = Panel(
        title="Distinctive terms per window",
        type="table",
        targets=[sql(TERMS_SQL, "table")],
        width=12,
        height=10,
        description="Words over-represented in each 30-s window against the channel's chat "
        "(log-odds with an informative prior); needs no model.",
    )
    like = Panel(
        title="Moments like this",
        type="table",
        targets=[sql(LIKE_THIS_SQL, "table")],
        width=24,
        height=10,
        description="The 10 windows nearest in meaning to the window at 'Moment' (default: the "
        "end of the time range), over every channel and time (pgvector cosine distance).",
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Topics",
        description="What chat talked about: topics over time, distinctive terms, similar moments.",
        rows=[[timeline], [topics, terms], [like]],
        variables=[
            channel_variable(),
            textbox_variable("moment", "Moment (RFC 3339; empty: end of range)"),
        ],
        time_from="now-12h",
    )
