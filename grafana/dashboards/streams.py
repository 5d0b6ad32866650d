"""The "Streams" dashboard: one stream against the channel's usual (issue 15).

Built on the relations ``chatpulse analyze`` keeps current (migration 0016): ``chat.streams``,
``chat.stream_shape``, ``chat.channel_shape``, ``chat.stream_chatters``, ``chat.stream_emotes``
and ``chat.chatter_segments``.  Besides the usual multi-value ``channel`` variable it has a
single-value ``stream`` variable (a stream id; label: channel and start, newest first).
"""

# ruff: noqa: S608  (dashboard SQL texts assembled from constants; values reach them only
# through Grafana's ${var:sqlstring}, never through Python formatting)

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    IN_RANGE,
    STREAMS_FROM,
    TENTH,
    THIS_STREAM,
    bars,
    moment_link,
    plain_table,
    stat,
    stream_variable,
)
from grafana.dashboards.overview import UID as OVERVIEW_UID
from grafana.panels import Panel, channel_variable, dashboard

__all__ = ["UID", "stream_link", "streams"]

UID = "chatpulse-streams"


def stream_link() -> dict[str, Any]:
    """A data link that opens this dashboard on the row's stream (columns ``channel``,
    ``stream_id``)."""
    return {
        "title": "Open this stream",
        "url": f"/d/{UID}?var-channel=${{__data.fields.channel}}"
        "&var-stream=${__data.fields.stream_id}&${__url_time_range}",
    }


def _this_stream_stat(title: str, expr: str, *, unit: str | None = None, description: str) -> Panel:
    return stat(
        title,
        f"SELECT {expr} AS value\n{STREAMS_FROM}\nWHERE {THIS_STREAM}",
        unit=unit,
        description=description,
        graph=False,
    )


def streams() -> dict[str, Any]:
    """The Streams dashboard: every stream of the range, and the selected one's shape."""
    stats = [
        _this_stream_stat(
            "Duration", "s.duration_s", unit="s", description="The selected stream's length."
        ),
        _this_stream_stat("Messages", "s.messages", description="Messages in the stream."),
        _this_stream_stat(
            "Chatters", "s.chatters", description="Distinct chatters (chat.chatter_key)."
        ),
        _this_stream_stat(
            "New chatters",
            "s.new_chatters",
            description="Chatters writing in this channel for the first time.",
        ),
        _this_stream_stat(
            "Peak messages per minute", "s.peak_per_min", description="The busiest minute."
        ),
        _this_stream_stat(
            "Mood",
            "round(s.mood::numeric, 3)",
            description="Average sentiment of the stream's scored messages (-1 to 1).",
        ),
    ]
    table = plain_table(
        "Streams",
        f"""
SELECT s.started_at AS "time", c.name AS channel, s.id AS stream_id, s.ended_at,
       round((s.duration_s / 60.0)::numeric, 1) AS minutes, s.messages, s.chatters,
       s.new_chatters AS new, s.returning_chatters AS returning, s.retained,
       s.peak_per_min, round(s.mood::numeric, 3) AS mood,
       array_to_string(s.top_emotes, ' ') AS top_emotes, s.bursts, s.hype_moments, s.found_by,
       s.title, s.category,
       (extract(epoch FROM s.started_at) * 1000)::bigint AS from_ms,
       (extract(epoch FROM s.ended_at) * 1000)::bigint AS to_ms
{STREAMS_FROM}
WHERE {IN_RANGE}
ORDER BY s.started_at DESC
LIMIT 200
""",
        width=24,
        description="Every stream overlapping the range (a silence over CHATPULSE_STREAM_GAP_S "
        "ends one), newest first: duration, messages, chatters, first-time and returning "
        "chatters, chatters of the previous stream who came back, peak rate, mood.",
        links=[stream_link(), moment_link(OVERVIEW_UID, "Stream overview of this stream")],
    )
    table.overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for name in ("from_ms", "to_ms")
    ]

    def shape(title: str, column: str, *, unit: str | None, description: str) -> Panel:
        return bars(
            title,
            f"""
SELECT {TENTH} AS tenth, sh.{column} AS this_stream, cs.{column} AS usual
FROM chat.stream_shape sh
JOIN chat.streams s ON s.id = sh.stream_id
JOIN chat.channel_shape cs ON cs.channel_id = sh.channel_id AND cs.decile = sh.decile
WHERE {THIS_STREAM}
ORDER BY sh.decile
""",
            "tenth",
            unit=unit,
            description=description,
        )

    shapes = [
        shape(
            "Shape: share of messages by tenth",
            "share",
            unit="percentunit",
            description="The selected stream cut into tenths of its duration: the share of its "
            "messages in each, against the channel's usual stream (chat.channel_shape).",
        ),
        shape(
            "Messages per minute by tenth",
            "per_min",
            unit=None,
            description="Pace in each tenth of the stream against the channel's usual pace.",
        ),
        shape(
            "Mood by tenth",
            "mood",
            unit=None,
            description="Average sentiment in each tenth against the channel's usual stream.",
        ),
    ]
    emotes = plain_table(
        "Top emotes of this stream",
        f"""
SELECT e.emote_name AS emote, e.uses,
       round((e.uses::float8 / nullif(sum(e.uses) OVER (), 0))::numeric, 3) AS share
FROM chat.stream_emotes e
JOIN chat.streams s ON s.id = e.stream_id
WHERE {THIS_STREAM}
ORDER BY e.uses DESC, e.emote_name
LIMIT 25
""",
        description="The selected stream's most used emotes and their share of its emote uses.",
    )
    emote_shape = shape(
        "Emote share by tenth",
        "emote_share",
        unit=None,
        description="Emote uses per message in each tenth against the channel's usual stream.",
    )
    emote_shape.width = 12
    return dashboard(
        uid=UID,
        title="chatpulse / Streams",
        description="Each broadcast found in the chat (chatpulse analyze): the list of streams "
        "with their summaries, and how the selected stream went against the channel's usual "
        "stream.",
        rows=[stats, [table], shapes, [emote_shape, emotes]],
        variables=[channel_variable(), stream_variable()],
        time_from="now-30d",
        refresh="5m",
    )
