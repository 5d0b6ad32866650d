"""The "Compare channels" dashboard: channels side by side over their streams (issue 15).

Built on ``chat.streams``, ``chat.channel_shape``, ``chat.stream_emotes``,
``chat.stream_chatters`` (migration 0016) and ``chat.stream_segments`` (migration 0024), kept
current by ``chatpulse analyze``.
"""

# ruff: noqa: S608  (dashboard SQL texts assembled from constants; values reach them only
# through Grafana's ${var:sqlstring}, never through Python formatting)

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    IN_RANGE,
    STREAMS_FROM,
    TENTH,
    bars,
    per_stream,
    plain_table,
)
from grafana.panels import channel_variable, dashboard

__all__ = ["UID", "compare"]

UID = "chatpulse-compare"


_SEGMENTS = ("one-time", "casual", "regular", "power user", "spammer", "bot")


def compare() -> dict[str, Any]:
    """The Compare channels dashboard: signatures side by side, audience overlap."""
    seg_columns = ",\n       ".join(
        f"round((coalesce(sum(g.chatters) FILTER (WHERE g.segment = '{seg}'), 0)::float8 "
        f'/ sum(g.chatters))::numeric, 3) AS "{seg}"'
        for seg in _SEGMENTS
    )
    signatures = plain_table(
        "Signatures",
        f"""
WITH seg AS (
  SELECT c.name AS channel,
       {seg_columns}
  {STREAMS_FROM}
  JOIN chat.stream_segments g ON g.stream_id = s.id
  WHERE {IN_RANGE}
  GROUP BY 1
)
SELECT c.name AS channel, count(*) AS streams, sum(s.messages) AS messages,
       round((sum(s.duration_s) / 60.0)::numeric, 1) AS minutes,
       round((sum(s.messages) / nullif(sum(s.duration_s) / 60.0, 0))::numeric, 1) AS per_min,
       round((sum(s.avg_length * s.messages) / nullif(sum(s.messages), 0))::numeric, 1)
       AS avg_length,
       round((sum(s.mood * s.scored) / nullif(sum(s.scored) FILTER (WHERE s.mood IS NOT NULL),
       0))::numeric, 3) AS mood,
       round((sum(s.emote_uses)::float8 / nullif(sum(s.messages), 0))::numeric, 3)
       AS emotes_per_message,
       round((sum(s.new_chatters)::float8 / nullif(sum(s.chatters), 0))::numeric, 3)
       AS first_time_share,
       max(seg."one-time") AS "one-time", max(seg.casual) AS casual,
       max(seg.regular) AS regular, max(seg."power user") AS "power user",
       max(seg.spammer) AS spammer, max(seg.bot) AS bot
{STREAMS_FROM}
LEFT JOIN seg ON seg.channel = c.name
WHERE {IN_RANGE}
GROUP BY c.name
ORDER BY c.name
""",
        width=24,
        height=8,
        description="Each channel's chat signature over its streams in the range: pace, "
        "message length, mood, emotes per message, share of first-time chatters and the "
        "segment shares (the features `chatpulse compare` uses).",
    )
    # Each stream's chatters through the primary key (OFFSET 0 keeps the per-stream lookup: the
    # planner otherwise scans every chatter row of the table for one day's stream); a channel
    # against itself is its count, and only chatters in two or more channels are paired.
    overlap = plain_table(
        "Audience overlap",
        f"""
WITH x AS MATERIALIZED (
  SELECT DISTINCT c.name AS channel, sc.chatter
  {STREAMS_FROM}
  CROSS JOIN LATERAL (
    SELECT chatter FROM chat.stream_chatters WHERE stream_id = s.id OFFSET 0
  ) sc
  WHERE {IN_RANGE}
), n AS MATERIALIZED (
  SELECT channel, count(*) AS chatters FROM x GROUP BY 1
), w AS MATERIALIZED (
  SELECT chatter FROM x GROUP BY 1 HAVING count(*) > 1
), pairs AS (
  SELECT a.channel AS a, b.channel AS b, count(*) AS shared
  FROM w
  JOIN x a USING (chatter)
  JOIN x b ON b.chatter = w.chatter AND b.channel > a.channel
  GROUP BY 1, 2
  UNION ALL
  SELECT channel, channel, chatters FROM n
)
SELECT p.a AS channel_a, p.b AS channel_b, na.chatters AS chatters_a, nb.chatters AS chatters_b,
       p.shared,
       round((p.shared::float8 / (na.chatters + nb.chatters - p.shared))::numeric, 4) AS jaccard
FROM pairs p
JOIN n na ON na.channel = p.a
JOIN n nb ON nb.channel = p.b
ORDER BY p.a, p.b
""",
        description="Chatters two channels share in the range and their Jaccard index (shared "
        "/ either); a channel against itself shows its own audience.",
    )
    emotes = plain_table(
        "Emote mix",
        f"""
WITH u AS (
  SELECT c.name AS channel, e.emote_name, sum(e.uses) AS uses
  {STREAMS_FROM}
  JOIN chat.stream_emotes e ON e.stream_id = s.id
  WHERE {IN_RANGE}
  GROUP BY 1, 2
), r AS (
  SELECT channel, emote_name, uses,
         uses::float8 / sum(uses) OVER (PARTITION BY channel) AS share,
         row_number() OVER (PARTITION BY channel ORDER BY uses DESC, emote_name) AS rank
  FROM u
)
SELECT channel, rank, emote_name AS emote, uses, round(share::numeric, 4) AS share
FROM r
WHERE rank <= 15
ORDER BY channel, rank
""",
        description="Each channel's 15 most used emotes and their share of its emote uses.",
    )
    usual = bars(
        "Usual stream shape",
        f"""
SELECT {TENTH} AS tenth, c.name AS channel, sh.share
FROM chat.channel_shape sh
JOIN chat.channels c ON c.id = sh.channel_id
WHERE c.name IN (${{channel:sqlstring}})
ORDER BY sh.decile, c.name
""",
        "tenth",
        width=12,
        unit="percentunit",
        description="Each channel's usual stream: the share of messages in each tenth of its "
        "duration, averaged over all its streams (chat.channel_shape).",
        transformations=[
            {
                "id": "groupingToMatrix",
                "options": {
                    "columnField": "channel",
                    "rowField": "tenth",
                    "valueField": "share",
                },
            }
        ],
    )
    pace = per_stream(
        "Messages per minute per stream",
        f"""
SELECT s.started_at AS "time", c.name AS channel,
       s.messages / nullif(s.duration_s / 60.0, 0) AS per_min
{STREAMS_FROM}
WHERE {IN_RANGE}
ORDER BY 1, 2
""",
        description="Each stream's average pace, per channel.",
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Compare channels",
        description="How communities differ: chat signatures side by side, shared audience, "
        "emote mix and the usual stream shape of each channel.",
        rows=[[signatures], [overlap, emotes], [usual, pace]],
        variables=[channel_variable()],
        time_from="now-30d",
        refresh="5m",
    )
