"""The report's stream sections (issue 15): the stream's shape against the channel's usual
stream, its audience, and how it compares with the channel's other streams.

They read what ``chatpulse analyze`` keeps (``chat.streams``, ``chat.stream_shape``,
``chat.channel_shape``, ``chat.stream_chatters``) for the newest analyzed stream that overlaps
the report's range.  Charts are inline SVG like the rest of the report (no scripts, nothing
external).  Without analyzed streams the report says how to get them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString

from chatpulse.app import charts
from chatpulse.core.queries import load_queries

__all__ = ["StreamAnalysis", "load_stream_analysis", "render_stream_sections"]

_W = 880
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 26
SEGMENTS = ("one-time", "casual", "regular", "power user", "spammer", "bot")


@dataclass(slots=True)
class StreamAnalysis:
    """The analyzed stream the report shows, and what it is compared with."""

    stream: dict[str, Any] | None = None
    shape: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    usual: dict[str, Any] = field(default_factory=dict)


_Q = load_queries("report")  # sql/queries/report.sql


async def load_stream_analysis(
    conn: Any, channel_id: int, start: datetime, end: datetime
) -> StreamAnalysis:
    """Read the newest analyzed stream of ``channel_id`` overlapping [start, end); ``conn``
    returns dict rows."""
    out = StreamAnalysis()

    async def rows(sql: LiteralString, args: dict[str, Any]) -> list[dict[str, Any]]:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())

    found = await rows(_Q["analyzed_stream"], {"c": channel_id, "s": start, "e": end})
    if not found:
        return out
    out.stream = found[0]
    sid = {"id": out.stream["id"], "c": channel_id}
    out.shape = await rows(_Q["stream_shape"], sid)
    out.segments = await rows(_Q["stream_segments"], sid)
    usual = await rows(_Q["usual_stream"], sid)
    out.usual = usual[0] if usual and usual[0]["streams"] else {}
    return out


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _decile_chart(
    shape: list[dict[str, Any]], key: str, usual_key: str, *, label: str, percent: bool
) -> str:
    """Bars: this stream per tenth; dots and line: the channel's usual stream."""
    points = [(_num(r[key]), _num(r[usual_key])) for r in shape]
    values = [v for pair in points for v in pair if v is not None]
    if not values:
        return f"<p class='empty'>No {html.escape(label)} for this stream.</p>"
    lo, hi = min(0.0, *values), max(0.0, *values)
    if hi == lo:
        hi = lo + 1
    height = 190
    pw, ph = _W - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = pw / max(len(points), 1)

    def y(v: float) -> float:
        return _TOP + ph * (hi - v) / (hi - lo)

    def fmt(v: float) -> str:
        return f"{100 * v:.1f}%" if percent else f"{v:.2f}"

    parts = [
        f"<line x1='{_LEFT}' x2='{_W - _RIGHT}' y1='{y(0):.1f}' y2='{y(0):.1f}' stroke='#b0b6c3'/>",
        f"<text x='{_LEFT - 4}' y='{y(hi) + 4:.1f}' class='tick' text-anchor='end'>"
        f"{fmt(hi)}</text>",
    ]
    if lo < 0:
        parts.append(
            f"<text x='{_LEFT - 4}' y='{y(lo):.1f}' class='tick' text-anchor='end'>{fmt(lo)}</text>"
        )
    usual_line = []
    for i, (this, usual) in enumerate(points):
        x = _LEFT + slot * i
        if this is not None:
            top, bottom = sorted((y(this), y(0)))
            parts.append(
                f"<rect x='{x + slot * 0.15:.1f}' y='{top:.1f}' width='{slot * 0.7:.1f}' "
                f"height='{max(bottom - top, 0.5):.1f}' fill='#3366cc' opacity='0.75'>"
                f"<title>{10 * i}–{10 * i + 10}%: this stream {fmt(this)}</title></rect>"
            )
        if usual is not None:
            cx = x + slot / 2
            usual_line.append(f"{cx:.1f},{y(usual):.1f}")
            parts.append(
                f"<circle cx='{cx:.1f}' cy='{y(usual):.1f}' r='3.5' fill='#dc3912'>"
                f"<title>{10 * i}–{10 * i + 10}%: usual {fmt(usual)}</title></circle>"
            )
        parts.append(
            f"<text x='{x + slot / 2:.1f}' y='{height - 8}' class='tick' text-anchor='middle'>"
            f"{10 * i}–{10 * i + 10}%</text>"
        )
    if len(usual_line) > 1:
        parts.append(
            f"<polyline points='{' '.join(usual_line)}' fill='none' stroke='#dc3912' "
            "stroke-width='1.5'/>"
        )
    legend = (
        f"<div class='label'>{html.escape(label)} by tenth of the stream — "
        "<span style='color:#3366cc'>■ this stream</span> "
        "<span style='color:#dc3912'>● the channel's usual stream</span></div>"
    )
    return (
        legend
        + f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='{html.escape(label)}'>"
        + "".join(parts)
        + "</svg>"
    )


_SEGMENT_COLORS = {
    "one-time": "#9aa5b8",
    "casual": "#3366cc",
    "regular": "#109618",
    "power user": "#ff9900",
    "spammer": "#dc3912",
    "bot": "#990099",
}


def _segment_bars(segments: list[dict[str, Any]]) -> str:
    total = sum(int(r["chatters"]) for r in segments) or 1
    colors = _SEGMENT_COLORS
    order = sorted(segments, key=lambda r: SEGMENTS.index(r["segment"]))
    height = 22 * len(order) + 10
    bars = "".join(
        f"<text x='0' y='{22 * i + 16}' class='bar'>{html.escape(r['segment'])}</text>"
        f"<rect x='120' y='{22 * i + 4}' height='16' "
        f"width='{640 * int(r['chatters']) / total:.1f}' fill='{colors.get(r['segment'], '#666')}'/>"
        f"<text x='{126 + 640 * int(r['chatters']) / total:.1f}' y='{22 * i + 16}' class='tick'>"
        f"{int(r['chatters']):,} ({100 * int(r['chatters']) / total:.0f}%)</text>"
        for i, r in enumerate(order)
    )
    return (
        f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='audience segments'>{bars}</svg>"
    )


def _cell(value: Any, kind: str) -> str:
    v = _num(value)
    if v is None:
        return "–"
    if kind == "minutes":
        return f"{v / 60:,.0f} min"
    if kind == "share":
        return f"{100 * v:.1f}%"
    if kind == "signed":
        return f"{v:+.2f}"
    if kind == "ratio":
        return f"{v:.2f}"
    return f"{v:,.1f}" if kind == "rate" else f"{v:,.0f}"


def _comparison(stream: dict[str, Any], usual: dict[str, Any]) -> str:
    if not usual:
        return (
            "<p class='note'>This is the channel's only analyzed stream: nothing to compare "
            "with yet.</p>"
        )
    rows = [
        ("duration", "duration_s", "minutes"),
        ("messages", "messages", "count"),
        ("chatters", "chatters", "count"),
        ("messages / min", "per_min", "rate"),
        ("peak messages / min", "peak_per_min", "count"),
        ("first-time chatters", "first_time_share", "share"),
        ("emote uses / message", "emotes_per_message", "ratio"),
        ("mood", "mood", "signed"),
    ]
    body = []
    for label, key, kind in rows:
        this, mean = _num(stream.get(key)), _num(usual.get(key))
        diff = f"{100 * (this - mean) / abs(mean):+.0f}%" if this is not None and mean else "–"
        body.append(
            f"<tr><td>{html.escape(label)}</td><td>{_cell(this, kind)}</td>"
            f"<td>{_cell(mean, kind)}</td><td>{diff}</td></tr>"
        )
    n = int(usual["streams"])
    return (
        "<table><thead><tr><th></th><th>this stream</th>"
        f"<th>usual (mean of {n} other stream{'s' if n != 1 else ''})</th><th>difference</th>"
        "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    )


def _deciles(
    shape: list[dict[str, Any]],
    key: str,
    usual_key: str,
    *,
    label: str,
    percent: bool,
    interactive: bool,
) -> str:
    if not interactive:
        return _decile_chart(shape, key, usual_key, label=label, percent=percent)
    this, usual = [_num(r[key]) for r in shape], [_num(r[usual_key]) for r in shape]
    if all(v is None for v in this + usual):
        return f"<p class='empty'>No {html.escape(label)} for this stream.</p>"
    return charts.decile_figure(this, usual, label=label, percent=percent)


def _segments(segments: list[dict[str, Any]], interactive: bool) -> str:
    if not interactive:
        return _segment_bars(segments)
    order = sorted(segments, key=lambda r: SEGMENTS.index(r["segment"]))
    return charts.bar_figure(
        [(str(r["segment"]), float(r["chatters"])) for r in order],
        label="chatters per segment",
        color=[_SEGMENT_COLORS.get(str(r["segment"]), "#666") for r in order],
    )


def render_stream_sections(analysis: StreamAnalysis, *, interactive: bool = False) -> list[str]:
    """The report's HTML for the stream's shape, audience and comparison; Plotly charts when
    ``interactive`` (plotly.js must be in the page: :func:`chatpulse.app.charts.plotly_script`)."""
    s = analysis.stream
    if s is None:
        return [
            "<h2>Stream shape and audience</h2>",
            "<p class='note'>No analyzed stream in this range: run <code>chatpulse analyze "
            "--until-idle</code> for the stream's shape, its audience and how it compares with "
            "the channel's usual stream.</p>",
        ]
    shape = analysis.shape
    usual_n = int(shape[0]["streams"]) if shape else 0
    started = s["started_at"].strftime("%Y-%m-%d %H:%M")
    out = [
        "<h2>Stream shape</h2>",
        f"<p class='note'>The stream of {html.escape(started)} UTC "
        f"({_cell(s['duration_s'], 'minutes')}, found by {html.escape(str(s['found_by']))}) cut "
        f"into tenths of its duration, against the channel's usual stream (the average of its "
        f"{usual_n} analyzed stream{'s' if usual_n != 1 else ''}).</p>",
        _deciles(
            shape,
            "share",
            "usual_share",
            label="share of messages",
            percent=True,
            interactive=interactive,
        ),
        _deciles(shape, "mood", "usual_mood", label="mood", percent=False, interactive=interactive),
        "<h2>Audience</h2>",
        "<p class='note'>Every chatter of the stream in one segment (rules in the README): "
        f"{int(s['chatters']):,} chatters, {int(s['new_chatters']):,} writing here for the first "
        f"time, {int(s['returning_chatters']):,} returning"
        + (
            f"; {int(s['retained']):,} of the previous stream's "
            f"{int(s['previous_chatters']):,} chatters came back"
            if s["previous_chatters"]
            else ""
        )
        + ".</p>",
        _segments(analysis.segments, interactive),
        "<h2>Against the channel's usual stream</h2>",
        _comparison(s, analysis.usual),
    ]
    return out
