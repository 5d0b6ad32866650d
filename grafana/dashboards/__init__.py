"""The chatpulse dashboards, as data.

Every SQL here reads the documented relations of schema ``chat`` (README, "The SQL
contract"): the coarsest aggregate that answers a panel exactly (``activity_1m``,
``chat.unique_chatters()`` over ``chatters_1d/6h/1h/1m``, ``sentiment_1m``, ``emotes_1m`` or
``emotes_10s`` by interval), raw ``messages``/``message_scores`` only where a panel lists
individual messages.  Rules that keep them right on both backends ([GRAFANA]):

- time series select ``$__timeGroupAlias(col, $__interval)`` first and ``GROUP BY 1``, never a
  bare ``$__timeGroup`` (Grafana would alias every copy of it when the first macro is followed
  by a comma), and sort by time;
- a per-minute rate divides by ``$__interval_ms`` and the panel's minimum interval is the
  aggregate's bucket, so it stays a per-minute rate at any zoom;
- every text variable carries an explicit format, never Grafana's default escaping:
  ``${channel:sqlstring}`` (multi-value/include-all: ``'a','b'``, each quoted, ``'`` doubled)
  is used only as ``IN (${channel:sqlstring})`` or ``ARRAY[${channel:sqlstring}]``, and a
  single value is ``${model:sqlstring}`` in place of a whole literal (``'$model'`` would depend
  on the SQL datasource's default escaping); no ``--`` comments and no macro inside a string
  literal.
"""

from __future__ import annotations

from typing import Any

from chatpulse.core.contract import EMOTIONS
from grafana.dashboards.forecast import UID as HYPE_FORECAST_UID
from grafana.dashboards.forecast import hype_forecast
from grafana.dashboards.moderation_response import UID as MODERATION_RESPONSE_UID
from grafana.dashboards.moderation_response import moderation_response
from grafana.dashboards.streams import (
    AUDIENCE_UID,
    COMPARE_UID,
    STREAMS_UID,
    audience,
    compare,
    streams,
)
from grafana.panels import (
    Panel,
    channel_variable,
    dashboard,
    prom,
    sql,
    sql_annotation,
    sql_variable,
    textbox_variable,
)

__all__ = ["DASHBOARDS", "UIDS", "all_dashboards"]

UIDS = {
    "overview": "chatpulse-overview",
    "emotes": "chatpulse-emotes",
    "sentiment": "chatpulse-sentiment",
    "moderation": "chatpulse-moderation",
    "moderation_response": MODERATION_RESPONSE_UID,
    "forecast": HYPE_FORECAST_UID,
    "search": "chatpulse-search",
    "pipeline": "chatpulse-pipeline",
    "streams": STREAMS_UID,
    "audience": AUDIENCE_UID,
    "compare": COMPARE_UID,
    "topics": "chatpulse-topics",
}

_EMOTIONS = EMOTIONS  # the emotion columns of chat.message_scores and sentiment_1m

_BY_CHANNEL = {"displayName": "${__field.labels.channel}"}


def _model_variable() -> dict[str, Any]:
    # Several models may score the same messages (lexicon and transformers side by side); a
    # panel must show one model at a time or its averages would mix them.
    return sql_variable(
        "model",
        "Model",
        "SELECT DISTINCT model FROM chat.sentiment_1m WHERE $__timeFilter(bucket) ORDER BY 1",
        refresh=2,
    )


def _link(uid: str, title: str, extra: str = "") -> dict[str, Any]:
    return {
        "title": title,
        "url": f"/d/{uid}?${{__url_time_range}}&${{channel:queryparam}}{extra}",
    }


def _moment_link(uid: str, title: str) -> dict[str, Any]:
    # from_ms / to_ms are columns the query computes around the row's moment.
    return {
        "title": title,
        "url": f"/d/{uid}?from=${{__data.fields.from_ms}}&to=${{__data.fields.to_ms}}"
        "&var-channel=${__data.fields.channel}",
    }


def _hidden(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for name in names
    ]


def _timeseries(
    title: str,
    raw_sql: str,
    *,
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
    interval: str | None = "1m",
    description: str = "",
    draw: str = "line",
    stack: bool = False,
    by_channel: bool = True,
    extra_targets: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": draw,
        "lineWidth": 1,
        "fillOpacity": 60 if draw == "bars" else 10,
        "spanNulls": False,
        "showPoints": "never",
    }
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return Panel(
        title=title,
        type="timeseries",
        targets=[sql(raw_sql), *(extra_targets or [])],
        width=width,
        height=height,
        unit=unit,
        interval=interval,
        description=description,
        custom=custom,
        defaults={**(_BY_CHANNEL if by_channel else {}), **(defaults or {})},
        overrides=overrides or [],
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def _stat(
    title: str,
    raw_sql: str,
    *,
    width: int = 4,
    height: int = 4,
    unit: str | None = None,
    fmt: str = "table",
    description: str = "",
    calc: str = "lastNotNull",
    values: bool = False,
    defaults: dict[str, Any] | None = None,
) -> Panel:
    return Panel(
        title=title,
        type="stat",
        targets=[sql(raw_sql, fmt)],  # type: ignore[arg-type]
        width=width,
        height=height,
        unit=unit,
        description=description,
        defaults=defaults or {},
        options={
            "reduceOptions": {"calcs": [calc], "fields": "", "values": values},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    )


def _table(
    title: str,
    raw_sql: str,
    *,
    width: int = 24,
    height: int = 10,
    description: str = "",
    links: list[dict[str, Any]] | None = None,
    hidden: tuple[str, ...] = (),
    overrides: list[dict[str, Any]] | None = None,
) -> Panel:
    return Panel(
        title=title,
        type="table",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=height,
        description=description,
        links=links or [],
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": True},
        overrides=[*_hidden(*hidden), *(overrides or [])],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


# -- shared annotations -------------------------------------------------------------------------

_HYPE_ANNOTATION = sql_annotation(
    "Hype moments",
    "orange",
    """
SELECT h.started_at AS "time", h.ended_at AS timeend,
       format('Hype in %s: score %s, %s msg/min (baseline %s). Top emotes: %s',
              c.name, round(h.score::numeric, 1), round(h.messages_per_min::numeric),
              round(h.baseline_per_min::numeric, 1), array_to_string(h.top_emotes, ' ')) AS text,
       'hype,' || c.name AS tags
FROM chat.hype_moments h
JOIN chat.channels c ON c.id = h.channel_id
WHERE $__timeFilter(h.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY 1
""",
)

_CLIP_ANNOTATION = sql_annotation(
    "Clips",
    "purple",
    """
SELECT cl.start_at AS "time", cl.end_at AS timeend,
       format('Clip %s (%s, %s)%s', cl.id, cl.trigger, cl.status,
              coalesce(': ' || cl.location, '')) AS text,
       'clip,' || cl.status || ',' || c.name AS tags
FROM chat.clips cl
JOIN chat.channels c ON c.id = cl.channel_id
WHERE $__timeFilter(cl.start_at) AND c.name IN (${channel:sqlstring})
ORDER BY 1
""",
)

_GAP_ANNOTATION = sql_annotation(
    "Collection gaps",
    "red",
    """
SELECT g.started_at AS "time", coalesce(g.ended_at, now()) AS timeend,
       format('Gap in %s (%s): %s messages recovered', c.name, g.reason,
              coalesce(g.recovered::text, 'no')) AS text,
       'gap,' || c.name AS tags
FROM chat.gaps g
JOIN chat.channels c ON c.id = g.channel_id
WHERE g.started_at <= $__timeTo() AND coalesce(g.ended_at, now()) >= $__timeFrom()
  AND c.name IN (${channel:sqlstring})
ORDER BY 1
""",
)

_BURST_ANNOTATION = sql_annotation(
    "Emote bursts",
    "yellow",
    """
SELECT b.started_at AS "time", b.ended_at AS timeend,
       format('%s burst in %s: %s uses at peak (baseline %s)', b.emote_name, c.name,
              b.peak_uses, round(b.baseline::numeric, 1)) AS text,
       'burst,' || c.name AS tags
FROM chat.emote_bursts b
JOIN chat.channels c ON c.id = b.channel_id
WHERE $__timeFilter(b.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY 1
""",
)

# -- 1. stream overview -------------------------------------------------------------------------

_HYPE_SCORE_SQL = """
SELECT s."time", s.channel, s.hype_score
FROM (
  SELECT a.bucket AS "time", c.name AS channel,
         a.messages / nullif(avg(a.messages) OVER w, 0) AS hype_score
  FROM chat.activity_1m a
  JOIN chat.channels c ON c.id = a.channel_id
  WHERE a.bucket >= $__timeFrom()::timestamptz - INTERVAL '30 minutes'
    AND a.bucket <= $__timeTo() AND c.name IN (${channel:sqlstring})
  WINDOW w AS (PARTITION BY a.channel_id ORDER BY a.bucket
               RANGE BETWEEN INTERVAL '30 minutes' PRECEDING AND INTERVAL '1 minute' PRECEDING)
) s
WHERE $__timeFilter(s."time")
ORDER BY 1, 2
"""


def _overview() -> dict[str, Any]:
    stats = [
        _stat(
            "Messages",
            """
SELECT coalesce(sum(a.messages), 0) AS messages
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
""",
            unit="short",
            description="Chat messages in the time range.",
        ),
        _stat(
            "Unique chatters",
            """
SELECT chat.unique_chatters(ARRAY[${channel:sqlstring}]::text[], $__timeFrom(), $__timeTo()) AS chatters
""",
            unit="short",
            description="Distinct chatters who wrote in the time range (by user id, else by login).",
        ),
        _stat(
            "Emotes per message",
            """
SELECT sum(a.emote_uses)::float8 / nullif(sum(a.messages), 0) AS emotes_per_message
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
""",
            unit="none",
            description="Emote share: emote uses (all providers) per message.",
            defaults={"decimals": 2},
        ),
        _stat(
            "Average sentiment",
            """
SELECT sum(s.avg_sentiment * s.scored) / nullif(sum(s.scored), 0) AS sentiment
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
            description="Mean sentiment (-1..1) of the scored messages, model $model.",
            defaults={
                "decimals": 2,
                "min": -1,
                "max": 1,
                "color": {"mode": "continuous-RdYlGr"},
            },
        ),
        _stat(
            "Toxic messages",
            """
SELECT sum(s.toxic)::float8 / nullif(sum(s.scored), 0) AS toxic_share
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
""",
            unit="percentunit",
            description="Share of scored messages with toxicity >= 0.5.",
        ),
        _stat(
            "Current hype score",
            _HYPE_SCORE_SQL,
            fmt="time_series",
            description="Messages in the latest minute divided by the channel's mean of the "
            "30 minutes before it (1 = usual, 3 = three times busier). One value per channel.",
            defaults={"decimals": 1, **_BY_CHANNEL},
        ),
    ]
    rates = [
        _timeseries(
            "Messages per minute",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       sum(a.messages) * 60000.0 / $__interval_ms AS messages_per_min
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            unit="short",
            description="Chat messages per minute, per channel.",
        ),
        _timeseries(
            "Active chatters per minute",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       avg(a.chatters) AS chatters
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            unit="short",
            description="Distinct chatters writing in a minute (mean over the interval).",
        ),
    ]
    feeling = [
        _timeseries(
            "Average sentiment",
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
            description="Mean sentiment (-1..1) per channel, weighted by messages scored.",
            defaults={"min": -1, "max": 1},
        ),
        _timeseries(
            "Toxicity",
            """
SELECT $__timeGroupAlias(s.bucket, $__interval), c.name AS channel,
       sum(s.avg_toxicity * s.scored) / nullif(sum(s.scored), 0) AS toxicity
FROM chat.sentiment_1m s
JOIN chat.channels c ON c.id = s.channel_id
WHERE $__timeFilter(s.bucket) AND c.name IN (${channel:sqlstring}) AND s.model = ${model:sqlstring}
GROUP BY 1, 2
ORDER BY 1, 2
""",
            width=8,
            unit="percentunit",
            description="Mean toxicity (0..1) of the scored messages.",
            defaults={"min": 0},
        ),
        _timeseries(
            "Emote share",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval), c.name AS channel,
       sum(a.emote_uses)::float8 / nullif(sum(a.messages), 0) AS emotes_per_message
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1, 2
ORDER BY 1, 2
""",
            width=8,
            description="Emote uses per message.",
        ),
    ]
    events = [
        _timeseries(
            "Subs, bits and raids",
            """
SELECT $__timeGroupAlias(a.bucket, $__interval),
       sum(a.subs) AS subs, sum(a.bits) AS bits, sum(a.raids) AS raids
FROM chat.activity_1m a
JOIN chat.channels c ON c.id = a.channel_id
WHERE $__timeFilter(a.bucket) AND c.name IN (${channel:sqlstring})
GROUP BY 1
ORDER BY 1
""",
            draw="bars",
            by_channel=False,
            description="Subscription notices of every kind (subs, resubs, gifts, upgrades, "
            "memberships), bits cheered and raids per interval, all selected channels together.",
        ),
        _timeseries(
            "Hype score",
            _HYPE_SCORE_SQL,
            interval=None,
            description="Messages per minute divided by the channel's mean of the previous "
            "30 minutes; hype moments are annotated.",
            defaults={"min": 0},
        ),
    ]
    hype_table = [
        _table(
            "Hype moments",
            """
SELECT h.peak_at AS "time", c.name AS channel, h.score, h.messages_per_min,
       h.baseline_per_min, h.chatters, array_to_string(h.top_emotes, ' ') AS top_emotes,
       h.avg_sentiment, h.started_at, h.ended_at,
       (extract(epoch from h.started_at - INTERVAL '5 minutes') * 1000)::bigint AS from_ms,
       (extract(epoch from h.ended_at + INTERVAL '5 minutes') * 1000)::bigint AS to_ms
FROM chat.hype_moments h
JOIN chat.channels c ON c.id = h.channel_id
WHERE $__timeFilter(h.peak_at) AND c.name IN (${channel:sqlstring})
ORDER BY h.peak_at DESC
LIMIT 100
""",
            height=8,
            description="Moments when chat ran far above the channel's own baseline. "
            "Click a row for the emotes and sentiment around it.",
            links=[
                _moment_link(UIDS["emotes"], "Emotes around this moment"),
                _moment_link(UIDS["sentiment"], "Sentiment around this moment"),
            ],
            hidden=("from_ms", "to_ms"),
        )
    ]
    return dashboard(
        uid=UIDS["overview"],
        title="chatpulse / Stream overview",
        description="What chat says and feels: activity, chatters, emotes, sentiment, "
        "toxicity, subs and hype, per channel.",
        rows=[stats, rates, feeling, events, hype_table],
        variables=[channel_variable(), _model_variable()],
        annotations=[_HYPE_ANNOTATION, _CLIP_ANNOTATION, _GAP_ANNOTATION],
    )


# -- 2. emotes and bursts -----------------------------------------------------------------------

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


def _emotes() -> dict[str, Any]:
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
    over_time = _timeseries(
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
    bursts = _table(
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
        links=[_moment_link(UIDS["emotes"], "Zoom to this burst")],
        hidden=("from_ms", "to_ms"),
    )
    return dashboard(
        uid=UIDS["emotes"],
        title="chatpulse / Emotes & bursts",
        description="Which emotes chat uses, when, and when one bursts.",
        rows=[[top, over_time], [heatmap], [providers, bursts]],
        variables=[channel_variable()],
        annotations=[_BURST_ANNOTATION, _HYPE_ANNOTATION, _CLIP_ANNOTATION],
    )


# -- 3. sentiment and emotions ------------------------------------------------------------------


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
    return _table(
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
                "url": f"/d/{UIDS['search']}?${{__url_time_range}}"
                "&var-channel=${__data.fields.channel}&var-user=${__data.fields.user}",
            }
        ],
    )


def _sentiment() -> dict[str, Any]:
    emotions = _timeseries(
        "Emotions over time",
        "SELECT $__timeGroupAlias(s.bucket, $__interval),\n       "
        + ",\n       ".join(_weighted(e) for e in _EMOTIONS)
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
    distribution = _timeseries(
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
    by_channel = _timeseries(
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
        uid=UIDS["sentiment"],
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
        variables=[channel_variable(), _model_variable()],
        annotations=[_HYPE_ANNOTATION],
    )


# -- 4. moderation and toxicity -----------------------------------------------------------------


def _moderation() -> dict[str, Any]:
    counts = _stat(
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
    toxic_share = _stat(
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
    avg_tox = _stat(
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
    against = _timeseries(
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
    flagged = _table(
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
    log = _table(
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
        uid=UIDS["moderation"],
        title="chatpulse / Moderation & toxicity",
        description="Bans, timeouts and deletions against measured toxicity, and the messages "
        "that were flagged.",
        rows=[[counts, toxic_share, avg_tox], [against], [flagged, log]],
        variables=[channel_variable(), _model_variable()],
        annotations=[_HYPE_ANNOTATION],
    )


# -- 5. message search --------------------------------------------------------------------------

# The GIN index is on exactly to_tsvector('simple', text); websearch_to_tsquery takes user
# syntax ("quoted phrase", -not, or) without ever raising a syntax error.
_MATCH = """
  AND (${search:sqlstring} = '' OR to_tsvector('simple', m.text) @@ websearch_to_tsquery('simple', ${search:sqlstring}))
  AND (${user:sqlstring} = '' OR m.user_login = lower(${user:sqlstring}))"""


def _search() -> dict[str, Any]:
    matches = _timeseries(
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
    table = _table(
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
                "url": f"/d/{UIDS['search']}?${{__url_time_range}}"
                "&var-channel=${__data.fields.channel}&var-user=${__data.fields.user_login}",
            }
        ],
        hidden=("user_login",),
    )
    return dashboard(
        uid=UIDS["search"],
        title="chatpulse / Message search",
        description="Full-text search over every message, by time and channel.",
        rows=[[matches], [table]],
        variables=[
            channel_variable(),
            textbox_variable("search", "Search"),
            textbox_variable("user", "User login"),
        ],
        annotations=[_HYPE_ANNOTATION, _GAP_ANNOTATION],
        time_from="now-24h",
    )


# -- 6. pipeline health (Prometheus) ------------------------------------------------------------


def _prom_panel(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str | None = None,
    width: int = 8,
    description: str = "",
    draw: str = "line",
) -> Panel:
    return Panel(
        title=title,
        type="timeseries",
        targets=targets,
        width=width,
        height=8,
        unit=unit,
        description=description,
        custom={"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"},
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


_CH = 'channel=~"${channel:regex}"'


def _pipeline() -> dict[str, Any]:
    row1 = [
        _prom_panel(
            "Ingest rate",
            [
                prom(
                    f"sum by (channel) (rate(chatpulse_messages_received_total{{{_CH}}}[$__rate_interval]))",
                    "received {{channel}}",
                ),
                prom(
                    f"sum by (channel) (rate(chatpulse_messages_written_total{{{_CH}}}[$__rate_interval]))",
                    "written {{channel}}",
                    "B",
                ),
            ],
            unit="reqps",
            width=12,
            description="Messages per second received from sources and newly written.",
        ),
        _prom_panel(
            "Duplicates and malformed lines",
            [
                prom(
                    f"sum by (source) (rate(chatpulse_messages_duplicate_total{{{_CH}}}[$__rate_interval]))",
                    "duplicate {{source}}",
                ),
                prom(
                    "sum by (source) (rate(chatpulse_messages_malformed_total[$__rate_interval]))",
                    "malformed {{source}}",
                    "B",
                ),
            ],
            unit="reqps",
            width=12,
            description="Duplicates are expected after reconnects and replays (dropped by the "
            "unique key); malformed lines go to the dead-letter file.",
        ),
    ]
    row2 = [
        _prom_panel(
            "Connection and database",
            [
                prom("chatpulse_connection_up", "connected {{source}}"),
                prom("chatpulse_database_up", "database {{instance}}", "B"),
            ],
            description="1 while connected to chat / while the writer reaches the database.",
        ),
        _prom_panel(
            "Reconnects and gaps",
            [
                prom(
                    "sum by (source) (increase(chatpulse_reconnects_total[$__rate_interval]))",
                    "reconnects {{source}}",
                ),
                prom(
                    f"sum by (channel) (increase(chatpulse_gaps_total{{{_CH}}}[$__rate_interval]))",
                    "gaps {{channel}}",
                    "B",
                ),
            ],
            draw="bars",
            description="Reconnects of live sources and gaps recorded in chat.gaps.",
        ),
        _prom_panel(
            "Spool",
            [
                prom("sum(chatpulse_spool_bytes)", "spool bytes"),
                prom("max(chatpulse_spool_oldest_age_seconds)", "oldest batch age (s)", "B"),
            ],
            unit="bytes",
            description="Batches kept on disk while the database is unreachable.",
        ),
    ]
    row3 = [
        _prom_panel(
            "Write latency and ingest delay (p95)",
            [
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(chatpulse_write_latency_seconds_bucket[$__rate_interval])))",
                    "write latency p95",
                ),
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(chatpulse_ingest_delay_seconds_bucket[$__rate_interval])))",
                    "ingest delay p95",
                    "B",
                ),
            ],
            unit="s",
        ),
        _prom_panel(
            "Scorer",
            [
                prom("max(chatpulse_scorer_lag_seconds)", "lag (s)"),
                prom(
                    "sum by (model) (rate(chatpulse_messages_scored_total[$__rate_interval]))",
                    "scored/s {{model}}",
                    "B",
                ),
            ],
            description="Seconds the scorer is behind the newest message, and its throughput.",
        ),
        _prom_panel(
            "Clip jobs",
            [prom("sum by (status) (chatpulse_clips)", "{{status}}")],
            description="Clip jobs by status, as the clipper reports them.",
        ),
    ]
    bus = [
        _prom_panel(
            "Bus publish rate",
            [
                prom(
                    f"sum by (channel) (rate(chatpulse_bus_published_total{{{_CH}}}[$__rate_interval]))",
                    "published {{channel}}",
                ),
                prom(
                    "sum(rate(chatpulse_bus_consumed_total[$__rate_interval]))",
                    "written and acked",
                    "B",
                ),
            ],
            unit="reqps",
            width=6,
            description="Events the collectors published to the NATS JetStream stream, and "
            "stream messages the bus writers committed and acknowledged (--sink nats only).",
        ),
        _prom_panel(
            "Bus consumer lag",
            [
                prom("max(chatpulse_bus_consumer_pending)", "not yet delivered"),
                prom("max(chatpulse_bus_consumer_ack_pending)", "delivered, unacked", "B"),
            ],
            width=6,
            description="Messages the writers' consumer has not delivered yet (the lag; it grows "
            "while the database is down and the stream holds the backlog) and messages "
            "delivered but not yet acknowledged.",
        ),
        _prom_panel(
            "Bus redeliveries and poison",
            [
                prom(
                    "sum(increase(chatpulse_bus_redelivered_total[$__rate_interval]))",
                    "redelivered",
                ),
                prom(
                    "sum(increase(chatpulse_bus_poison_total[$__rate_interval]))",
                    "poison (dead-lettered)",
                    "B",
                ),
                prom(
                    "sum(increase(chatpulse_bus_publish_retries_total[$__rate_interval]))",
                    "publish retries",
                    "C",
                ),
            ],
            draw="bars",
            width=6,
            description="Redelivered messages (a writer died or was slow), undecodable ones "
            "and publish batches retried.",
        ),
        _prom_panel(
            "Channel leases",
            [
                prom("sum by (collector) (chatpulse_bus_leases_owned)", "owned by {{collector}}"),
                prom("max(chatpulse_bus_orphaned_channels)", "orphaned", "B"),
                prom("max(chatpulse_bus_channels)", "in the shared list", "C"),
                prom(
                    "sum(increase(chatpulse_bus_takeovers_total[$__rate_interval]))",
                    "taken over",
                    "D",
                ),
            ],
            width=6,
            description="Channels each collector holds a lease on, channels of the shared list "
            "nobody holds (orphaned), and takeovers after a collector died.",
        ),
    ]
    gaps = _table(
        "Recent gaps",
        """
SELECT g.started_at AS "time", c.name AS channel, g.ended_at, g.reason, g.filled_at,
       g.recovered, g.collector
FROM chat.gaps g
JOIN chat.channels c ON c.id = g.channel_id
WHERE g.started_at <= $__timeTo() AND coalesce(g.ended_at, now()) >= $__timeFrom()
  AND c.name IN (${channel:sqlstring})
ORDER BY g.started_at DESC
LIMIT 100
""",
        width=12,
        height=8,
        description="Disconnects of live sources and what gap fill brought back.",
    )
    clips = _table(
        "Recent clip jobs",
        """
SELECT cl.requested_at AS "time", c.name AS channel, cl.trigger, cl.status, cl.attempts,
       cl.start_at, cl.end_at, cl.duration_s, cl.location, cl.error
FROM chat.clips cl
LEFT JOIN chat.channels c ON c.id = cl.channel_id
WHERE $__timeFilter(cl.requested_at) AND (c.name IN (${channel:sqlstring}) OR cl.channel_id IS NULL)
ORDER BY cl.requested_at DESC
LIMIT 100
""",
        width=12,
        height=8,
        description="Clip jobs requested in the range (alerts, manual, hype).",
    )
    return dashboard(
        uid=UIDS["pipeline"],
        title="chatpulse / Pipeline health",
        description="The stack's own health: ingest, duplicates, malformed lines, reconnects, "
        "gaps, spool, scorer lag, clip jobs and the NATS bus.",
        rows=[row1, row2, row3, bus, [gaps, clips]],
        variables=[channel_variable()],
        annotations=[_GAP_ANNOTATION, _CLIP_ANNOTATION],
        refresh="30s",
    )


def _topics_dashboard() -> dict[str, Any]:
    from grafana.dashboards.topics import topics_dashboard

    return topics_dashboard()


DASHBOARDS = {
    "overview": _overview,
    "emotes": _emotes,
    "sentiment": _sentiment,
    "moderation": _moderation,
    "moderation_response": moderation_response,
    "forecast": hype_forecast,
    "search": _search,
    "pipeline": _pipeline,
    "streams": streams,
    "audience": audience,
    "compare": compare,
    "topics": _topics_dashboard,
}


def all_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON, keyed by its file stem (``overview`` ...)."""
    return {name: build() for name, build in DASHBOARDS.items()}
