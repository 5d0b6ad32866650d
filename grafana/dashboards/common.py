"""What several chatpulse dashboards share: panel styles, links, variables, annotations.

The panel builders wrap :class:`grafana.panels.Panel` with the options chatpulse's dashboards
use, so that a dashboard module says only what differs (title, SQL, size, unit).  The SQL
fragments of the stream dashboards (``streams``, ``audience``, ``compare``) read the relations
``chatpulse analyze`` keeps current (migration 0016).
"""

from __future__ import annotations

from typing import Any

from grafana.panels import Format, Panel, sql, sql_annotation, sql_variable

__all__ = [
    "BURST_ANNOTATION",
    "BY_CHANNEL",
    "CLIP_ANNOTATION",
    "GAP_ANNOTATION",
    "HYPE_ANNOTATION",
    "IN_RANGE",
    "STREAMS_FROM",
    "TENTH",
    "THIS_STREAM",
    "bars",
    "basic_timeseries",
    "model_variable",
    "moment_link",
    "per_stream",
    "plain_table",
    "stat",
    "stream_variable",
    "table",
    "timeseries",
]

# Series named after their channel (the ``channel`` column of a time-series query).
BY_CHANNEL = {"displayName": "${__field.labels.channel}"}

# The stream dashboards: a stream is in the time range when it overlaps it; the selected stream
# is compared as text, so any value of ``stream`` is one literal and never a cast error.
IN_RANGE = (
    "s.ended_at >= $__timeFrom() AND s.started_at <= $__timeTo() "
    "AND c.name IN (${channel:sqlstring})"
)
STREAMS_FROM = "FROM chat.streams s JOIN chat.channels c ON c.id = s.channel_id"
THIS_STREAM = "s.id::text = ${stream:sqlstring}"
TENTH = "(sh.decile * 10)::text || '-' || (sh.decile * 10 + 10)::text || '%'"


def model_variable() -> dict[str, Any]:
    """The single-value ``model`` variable: the scoring models seen in the time range."""
    # Several models may score the same messages (lexicon and transformers side by side); a
    # panel must show one model at a time or its averages would mix them.
    return sql_variable(
        "model",
        "Model",
        "SELECT DISTINCT model FROM chat.sentiment_1m WHERE $__timeFilter(bucket) ORDER BY 1",
        refresh=2,
    )


def stream_variable() -> dict[str, Any]:
    """The selected stream: id as value, channel and start as label, newest first."""
    var = sql_variable(
        "stream",
        "Stream",
        f"""
SELECT s.id::text AS __value,
       c.name || ' ' || to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'
       AS __text
{STREAMS_FROM}
WHERE {IN_RANGE}
ORDER BY s.started_at DESC
""",
        refresh=2,
    )
    var["sort"] = 0  # the query's order: newest first, so the default is the latest stream
    return var


def moment_link(uid: str, title: str) -> dict[str, Any]:
    """A data link to dashboard ``uid`` around the row's moment, for the row's channel."""
    # from_ms / to_ms are columns the query computes around the row's moment.
    return {
        "title": title,
        "url": f"/d/{uid}?from=${{__data.fields.from_ms}}&to=${{__data.fields.to_ms}}"
        "&var-channel=${__data.fields.channel}",
    }


def _hidden_columns(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for name in names
    ]


def _series_options(sort: str = "desc") -> dict[str, Any]:
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": sort},
    }


def timeseries(
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
    """A time series over SQL, one series per channel (``by_channel``), gaps left open."""
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
        defaults={**(BY_CHANNEL if by_channel else {}), **(defaults or {})},
        overrides=overrides or [],
        options=_series_options(),
    )


def basic_timeseries(
    title: str,
    targets: list[dict[str, Any]],
    *,
    width: int = 8,
    height: int = 8,
    unit: str | None = None,
    interval: str | None = None,
    description: str = "",
    draw: str = "line",
) -> Panel:
    """A time series over any targets (SQL or PromQL), with Grafana's own series names."""
    return Panel(
        title=title,
        type="timeseries",
        targets=targets,
        width=width,
        height=height,
        unit=unit,
        interval=interval,
        description=description,
        custom={"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"},
        options=_series_options(),
    )


def per_stream(
    title: str, raw_sql: str, *, unit: str | None = None, stack: bool = False, description: str = ""
) -> Panel:
    """One point (bar) per stream at its start."""
    return Panel(
        title=title,
        type="timeseries",
        targets=[sql(raw_sql)],
        width=12,
        height=9,
        unit=unit,
        description=description,
        custom={
            "drawStyle": "bars",
            "fillOpacity": 60,
            "lineWidth": 1,
            "showPoints": "always",
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
        options=_series_options(),
    )


def bars(
    title: str,
    raw_sql: str,
    x_field: str,
    *,
    width: int = 8,
    unit: str | None = None,
    description: str = "",
    transformations: list[dict[str, Any]] | None = None,
) -> Panel:
    """A bar chart of a table query, one group of bars per value of ``x_field``."""
    return Panel(
        title=title,
        type="barchart",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=9,
        unit=unit,
        description=description,
        custom={"fillOpacity": 70, "lineWidth": 1},
        options={
            "xField": x_field,
            "orientation": "vertical",
            "groupWidth": 0.8,
            "barWidth": 0.9,
            "showValue": "never",
            "stacking": "none",
            **_series_options("none"),
        },
        transformations=transformations or [],
    )


def stat(
    title: str,
    raw_sql: str,
    *,
    width: int = 4,
    height: int = 4,
    unit: str | None = None,
    fmt: Format = "table",
    description: str = "",
    calc: str = "lastNotNull",
    values: bool = False,
    defaults: dict[str, Any] | None = None,
    graph: bool = True,
) -> Panel:
    """A single value (the ``calc`` of the query's last column), with a sparkline if ``graph``."""
    return Panel(
        title=title,
        type="stat",
        targets=[sql(raw_sql, fmt)],
        width=width,
        height=height,
        unit=unit,
        description=description,
        defaults=defaults or {},
        options={
            "reduceOptions": {"calcs": [calc], "fields": "", "values": values},
            "colorMode": "value",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    )


def table(
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
    """A compact table whose cells can be inspected; ``hidden`` columns feed links only."""
    return Panel(
        title=title,
        type="table",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=height,
        description=description,
        links=links or [],
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": True},
        overrides=[*_hidden_columns(*hidden), *(overrides or [])],
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )


def plain_table(
    title: str,
    raw_sql: str,
    *,
    width: int = 12,
    height: int = 10,
    description: str = "",
    links: list[dict[str, Any]] | None = None,
) -> Panel:
    """A table with Grafana's default cell options."""
    return Panel(
        title=title,
        type="table",
        targets=[sql(raw_sql, "table")],
        width=width,
        height=height,
        description=description,
        options={"showHeader": True},
        links=links or [],
    )


HYPE_ANNOTATION = sql_annotation(
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

CLIP_ANNOTATION = sql_annotation(
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

GAP_ANNOTATION = sql_annotation(
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

BURST_ANNOTATION = sql_annotation(
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
