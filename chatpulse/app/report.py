"""``chatpulse report``: one self-contained HTML file about a stream, for people without Grafana.

It shows what the stream overview dashboard shows — activity, mood and emotions, top emotes
and bursts, hype moments with clip links — with interactive Plotly charts (hover, zoom;
:mod:`chatpulse.app.charts`, plotly.js inlined once) when the ``report`` extra is installed,
else as inline SVG; either way one file with no external resources, so it can be mailed or
attached after a stream and opened offline.  It reads only the public relations of the
``chat`` schema, like any analyst would.

Times are UTC.  Each hype moment also shows its time into the stream, counted from the start of
the stream it belongs to.  A stream is a run of chat with no silence longer than
:data:`STREAM_SILENCE` (counted in minute buckets); its start is, in this order, the start a
replay recorded (``content_offset_seconds`` in ``chat.messages.extra``, which a TwitchDownloader
JSON and a relative-stamped TXT replayed with ``--start`` carry: ``sent_at`` minus the offset),
the start of a VOD registered in ``chat.vods`` that covers the stream's first message, else the
stream's first message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row

from chatpulse.app import charts
from chatpulse.app.report_streams import (
    StreamAnalysis,
    load_stream_analysis,
    render_stream_sections,
)
from chatpulse.app.report_topics import TopicsReport, load_topics_report, render_topic_sections
from chatpulse.app.times import parse_time_option
from chatpulse.core.aggregates import backend_of, refresh_pending
from chatpulse.core.db import connect, database
from chatpulse.core.errors import ConfigError
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings

__all__ = ["ReportData", "cmd_report", "load_report", "render_report", "write_report"]

_EMOTIONS = (
    "joy",
    "love",
    "surprise",
    "anticipation",
    "trust",
    "sadness",
    "anger",
    "fear",
    "disgust",
)


_Q = load_queries("report")  # sql/queries/report.sql


#: Chat silent for longer than this ends a stream (see the module docstring).
STREAM_SILENCE = timedelta(minutes=30)


@dataclass(slots=True)
class ReportData:
    """Everything the report shows, as plain rows."""

    channel: str
    start: datetime
    end: datetime
    activity: list[dict[str, Any]] = field(default_factory=list)
    sentiment: list[dict[str, Any]] = field(default_factory=list)
    top_emotes: list[dict[str, Any]] = field(default_factory=list)
    bursts: list[dict[str, Any]] = field(default_factory=list)
    hype: list[dict[str, Any]] = field(default_factory=list)
    clips: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    moderation: dict[str, Any] = field(default_factory=dict)
    moderators: list[dict[str, Any]] = field(default_factory=list)
    #: The streams the range touches, oldest first: ``first`` (bucket of its first message),
    #: ``start`` (its start, see the module docstring) and ``start_from`` (where that came from).
    streams: list[dict[str, Any]] = field(default_factory=list)
    #: The newest analyzed stream in the range (``chatpulse analyze``), for the stream sections.
    analysis: StreamAnalysis = field(default_factory=StreamAnalysis)
    #: Topics and distinctive terms of the range (chatpulse/app/report_topics.py).
    topics: TopicsReport | None = None

    def stream_of(self, when: datetime) -> dict[str, Any] | None:
        """The stream that ``when`` falls in (the last one that began at or before it)."""
        found = None
        for stream in self.streams:
            if stream["first"] <= when:
                found = stream
        return found


async def load_report(
    conninfo: str, channel: str, start: datetime | None = None, end: datetime | None = None
) -> ReportData:
    """Read the report's rows for ``channel`` between ``start`` and ``end``.

    Without a range: the channel's whole history.  Raises :class:`ConfigError` when the
    channel is unknown or has no messages in the range.
    """
    channel = channel.lstrip("#").lower()
    async with await connect(conninfo, autocommit=True) as conn:
        if await backend_of(conn) != "timescaledb":
            await refresh_pending(conn)
        conn.row_factory = dict_row
        cur = await conn.execute(_Q["channel_range"], {"name": channel})
        row: Any = await cur.fetchone()
        if row is None:
            raise ConfigError(f"--channel: no channel named {channel!r} in this database")
        if row["first"] is None:
            raise ConfigError(f"--channel: {channel!r} has no messages yet")
        start = start or row["first"]
        end = end or row["last"] + timedelta(seconds=1)
        assert start is not None and end is not None
        data = ReportData(channel, start, end)
        args = {"c": row["id"], "s": start, "e": end}

        async def rows(query: str) -> list[dict[str, Any]]:
            result = await conn.execute(query, args)
            return list(await result.fetchall())

        data.activity = await rows(_Q["activity"])
        data.sentiment = await rows(_Q["sentiment"])
        data.top_emotes = await rows(_Q["top_emotes"])
        data.bursts = await rows(_Q["bursts"])
        data.hype = await rows(_Q["hype"])
        data.clips = await rows(_Q["clips"])
        totals = await rows(_Q["totals"])
        data.totals = totals[0] if totals else {}
        data.streams = await _streams(conn, args)
        moderation = await rows(_Q["moderation"])
        data.moderation = moderation[0] if moderation else {}
        data.moderators = await rows(_Q["moderators"])
        data.analysis = await load_stream_analysis(conn, row["id"], start, end)
        data.topics = await load_topics_report(conn, channel, row["id"], start, end)
    return data


async def _streams(conn: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The streams that ``[s, e)`` touches, each with its start (see the module docstring)."""
    cur = await conn.execute(_Q["stream_firsts"], {**args, "silence": STREAM_SILENCE})
    firsts = [r["bucket"] for r in await cur.fetchall()]
    earlier = [f for f in firsts if f <= args["s"]]
    firsts = earlier[-1:] + [f for f in firsts if f > args["s"]]
    streams: list[dict[str, Any]] = []
    for i, first in enumerate(firsts):
        until = firsts[i + 1] if i + 1 < len(firsts) else args["e"]
        span = {"c": args["c"], "a": first, "b": until}
        cur = await conn.execute(_Q["recorded_start"], span)
        row = await cur.fetchone()
        if row is not None:
            start, start_from = next(iter(row.values())), "recorded by the replay"
        else:
            cur = await conn.execute(_Q["first_message"], span)
            first_message = (await cur.fetchone())["m"] or first
            cur = await conn.execute(_Q["vod_start"], {"c": args["c"], "m": first_message})
            vod = await cur.fetchone()
            if vod is not None:
                start, start_from = vod["start_at"], "start of its VOD"
            else:
                start, start_from = first_message, "first message"
        streams.append({"first": first, "start": start, "start_from": start_from})
    return streams


# -- rendering -----------------------------------------------------------------------------------

_W = 880  # every chart's width in SVG units (the page scales it)
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 16, 26, 40  # plot margins: y labels left, time labels below
# Time-axis tick spacings (seconds); each divides a day, so ticks fall on round clock times.
_TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# Distinguishable on white and for the common colour-vision deficiencies (Okabe-Ito, + grey).
_EMOTION_COLORS = {
    "joy": "#e69f00",
    "love": "#cc79a7",
    "surprise": "#56b4e9",
    "anticipation": "#009e73",
    "trust": "#0072b2",
    "sadness": "#4d4d99",
    "anger": "#d55e00",
    "fear": "#7f7f7f",
    "disgust": "#8c6d1f",
}
#: An emotion is charted when its message-weighted mean over the range reaches this.
EMOTION_SIGNAL = 0.005


def _fmt_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S")


def _fmt_span(delta: timedelta) -> str:
    """``+1:02:03``: a time into the stream (negative before its start)."""
    total = int(delta.total_seconds())
    sign = "−" if total < 0 else "+"
    h, rest = divmod(abs(total), 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}"


def _fmt_duration(delta: timedelta) -> str:
    total = round(delta.total_seconds())
    m, sec = divmod(total, 60)
    return f"{m} min {sec} s" if m else f"{sec} s"


def time_ticks(t0: datetime, t1: datetime, max_ticks: int = 8) -> list[tuple[datetime, str]]:
    """Ticks at round clock times (UTC) between ``t0`` and ``t1``: the smallest spacing of
    10 s … 1 day that gives at most ``max_ticks``.  Labels are ``HH:MM`` (``HH:MM:SS`` under a
    minute apart); a tick where the date changes shows the date (``MM-DD``) instead."""
    a, b = t0.timestamp(), t1.timestamp()
    step = next((s for s in _TIME_STEPS if (b - a) / s <= max_ticks), _TIME_STEPS[-1])
    if (b - a) / step > max_ticks:
        step = math.ceil((b - a) / max_ticks / 86400) * 86400
    first = math.ceil(a / step) * step
    out: list[tuple[datetime, str]] = []
    previous = t0.astimezone(UTC).date()
    for k in range(int((b - first) // step) + 1):
        when = datetime.fromtimestamp(first + k * step, UTC)
        midnight = when.hour == 0 and when.minute == 0 and when.second == 0
        if step >= 86400 or (when.date() != previous and midnight):
            label = when.strftime("%m-%d")
        else:
            label = when.strftime("%H:%M:%S" if step < 60 else "%H:%M")
        previous = when.date()
        out.append((when, label))
    return out


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round-number ticks (1, 2, 2.5 or 5 × 10^k apart) that cover ``[lo, hi]``."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, max_ticks - 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        step = m * mag
        low, high = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if high - low + 1 <= max_ticks:
            break
    return [round(k * step, 10) for k in range(low, high + 1)]


def _fmt_tick(value: float, ticks: list[float]) -> str:
    """A tick label with as many decimals as the tick spacing needs (0.25 → 2, 20 → 0)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    fraction = f"{step:.6f}".rstrip("0").partition(".")[2]
    text = f"{value:,.{len(fraction)}f}"
    return "−" + text[1:] if text.startswith("-") else text


@dataclass(slots=True)
class _Series:
    name: str
    color: str
    points: list[tuple[datetime, float | None]]
    fill: bool = False


def _segments(
    points: list[tuple[datetime, float | None]], max_gap: timedelta
) -> list[list[tuple[datetime, float]]]:
    """Runs of points without a missing value or a gap longer than ``max_gap``."""
    out: list[list[tuple[datetime, float]]] = []
    last: datetime | None = None
    for t, v in points:
        if v is None:
            last = None
            continue
        if last is None or t - last > max_gap:
            out.append([])
        out[-1].append((t, v))
        last = t
    return out


def _fill_minutes(rows: list[tuple[datetime, float]]) -> list[tuple[datetime, float | None]]:
    """Per-minute counts with the silent minutes of a stream as 0 (aggregates store no row for
    them); a silence longer than a stream break stays a gap."""
    out: list[tuple[datetime, float | None]] = []
    for t, v in rows:
        if out:
            gap = t - out[-1][0]
            if timedelta(minutes=1) < gap <= STREAM_SILENCE:
                step = out[-1][0] + timedelta(minutes=1)
                while step < t:
                    out.append((step, 0.0))
                    step += timedelta(minutes=1)
        out.append((t, v))
    return out


def _plot(
    series: list[_Series],
    *,
    x0: float,
    y0: float,
    w: float,
    h: float,
    t_range: tuple[datetime, datetime],
    y_ticks: list[float],
    max_time_ticks: int = 8,
    bands: list[tuple[datetime, datetime, str]] | None = None,
    max_gap: timedelta = timedelta(minutes=2),
) -> str:
    """One plot area at (x0, y0) of size w × h: grid, labelled axes, bands, the series."""
    t0, t1 = t_range[0].timestamp(), t_range[1].timestamp()
    span = max(t1 - t0, 1.0)
    lo, hi = y_ticks[0], y_ticks[-1]

    def x(t: datetime) -> float:
        return x0 + (t.timestamp() - t0) / span * w

    def y(v: float) -> float:
        return y0 + h - (min(max(v, lo), hi) - lo) / ((hi - lo) or 1) * h

    parts: list[str] = []
    for v in y_ticks:
        yy = y(v)
        cls = "axis" if v == 0 or v == lo else "grid"
        parts.append(f"<line x1='{x0}' x2='{x0 + w}' y1='{yy:.1f}' y2='{yy:.1f}' class='{cls}'/>")
        parts.append(
            f"<text x='{x0 - 6}' y='{yy + 4:.1f}' class='tick ytick' text-anchor='end'>"
            f"{_fmt_tick(v, y_ticks)}</text>"
        )
    for when, label in time_ticks(t_range[0], t_range[1], max_time_ticks):
        xx = x(when)
        parts.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{y0}' y2='{y0 + h}' class='grid'/>")
        parts.append(
            f"<text x='{xx:.1f}' y='{y0 + h + 15}' class='tick xtick' text-anchor='middle'>"
            f"{label}</text>"
        )
    for a, b, label in bands or ():
        xa, xb = max(x0, x(a)), min(x0 + w, x(b))
        parts.append(
            f"<rect x='{xa:.1f}' y='{y0}' width='{max(xb - xa, 2):.1f}' height='{h}' "
            f"class='band'/><text x='{xa + 2:.1f}' y='{y0 + 11}' class='bandlabel'>"
            f"{html.escape(label)}</text>"
        )
    for s in series:
        for seg in _segments(s.points, max_gap):
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in seg)
            if s.fill and len(seg) > 1:
                base = y(max(lo, 0.0))
                parts.append(
                    f"<polygon points='{x(seg[0][0]):.1f},{base:.1f} {path} "
                    f"{x(seg[-1][0]):.1f},{base:.1f}' fill='{s.color}' fill-opacity='0.15'/>"
                )
            if len(seg) == 1:
                t, v = seg[0]
                parts.append(f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='2' fill='{s.color}'/>")
            else:
                parts.append(
                    f"<polyline fill='none' stroke='{s.color}' stroke-width='1.8' "
                    f"stroke-linejoin='round' points='{path}'/>"
                )
    return "<g class='plot'>" + "".join(parts) + "</g>"


def _t_range(series: list[_Series]) -> tuple[datetime, datetime] | None:
    times = [t for s in series for t, v in s.points if v is not None]
    if not times:
        return None
    return min(times), max(max(times), min(times) + timedelta(minutes=1))


def _axis_note(t_range: tuple[datetime, datetime]) -> str:
    a, b = t_range[0].astimezone(UTC).date(), t_range[1].astimezone(UTC).date()
    return f"time (UTC) on {a:%Y-%m-%d}" if a == b else f"time (UTC), {a:%Y-%m-%d} – {b:%Y-%m-%d}"


def _chart(
    series: list[_Series],
    *,
    label: str,
    y_min: float | None = None,
    y_max: float | None = None,
    height: int = 200,
    bands: list[tuple[datetime, datetime, str]] | None = None,
) -> str:
    """A chart of one or more series over time, with round-number y ticks and a legend when
    there is more than one series."""
    t_range = _t_range(series)
    if t_range is None:
        return f"<p class='empty'>No data for {html.escape(label)}.</p>"
    values = [v for s in series for _, v in s.points if v is not None]
    ticks = nice_ticks(
        min(values) if y_min is None else y_min, max(values) if y_max is None else y_max
    )
    w, h = _W - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    legend = ""
    if len(series) > 1:
        legend = "".join(
            f"<rect x='{_W - _RIGHT - 110 * (len(series) - i)}' y='8' width='10' height='10' "
            f"fill='{s.color}'/><text x='{_W - _RIGHT - 110 * (len(series) - i) + 14}' y='17' "
            f"class='tick'>{html.escape(s.name)}</text>"
            for i, s in enumerate(series)
        )
    return (
        f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='{html.escape(label)}'>"
        f"<text x='{_LEFT}' y='16' class='label'>{html.escape(label)}</text>"
        f"{legend}"
        + _plot(series, x0=_LEFT, y0=_TOP, w=w, h=h, t_range=t_range, y_ticks=ticks, bands=bands)
        + f"<text x='{_LEFT + w}' y='{height - 4}' class='tick' text-anchor='end'>"
        f"{_axis_note(t_range)}</text></svg>"
    )


def _emotions_with_signal(
    sentiment: list[dict[str, Any]],
) -> tuple[list[tuple[str, float]], list[str]]:
    """(emotion, mean) of the emotions with signal, and those left out for too little."""
    shown: list[tuple[str, float]] = []
    quiet: list[str] = []
    for emotion in _EMOTIONS:
        rows = [(r[emotion], r["scored"]) for r in sentiment if r[emotion] is not None]
        weight = sum(float(n or 0) for _, n in rows)
        mean = sum(float(v) * float(n or 0) for v, n in rows) / weight if weight else 0.0
        if rows and mean >= EMOTION_SIGNAL:
            shown.append((emotion, mean))
        elif rows:
            quiet.append(emotion)
    return shown, quiet


def _emotion_figures(sentiment: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """One interactive chart per emotion with signal, each on its own scale."""
    shown, quiet = _emotions_with_signal(sentiment)
    figures = [
        charts.time_figure(
            [
                charts.TimeSeries(
                    emotion,
                    _EMOTION_COLORS[emotion],
                    [
                        (r["bucket"], None if r[emotion] is None else float(r[emotion]))
                        for r in sentiment
                    ],
                    fill=True,
                )
            ],
            label=f"{emotion} (mean {mean:.3f}), average intensity per minute (0 … 1)",
            y_min=0,
            height=170,
        )
        for emotion, mean in shown
    ]
    return "".join(figures), quiet


def _emotion_panels(
    sentiment: list[dict[str, Any]],
) -> tuple[str, list[str]]:
    """Small multiples: one panel per emotion with signal (its own y scale, labelled), on one
    shared time axis; returns the SVG and the emotions left out for too little signal."""
    shown, quiet = _emotions_with_signal(sentiment)
    if not shown:
        return "", quiet
    series = {
        e: _Series(
            e,
            _EMOTION_COLORS[e],
            [(r["bucket"], None if r[e] is None else float(r[e])) for r in sentiment],
            fill=True,
        )
        for e, _ in shown
    }
    t_range = _t_range(list(series.values()))
    assert t_range is not None
    cols = 2 if len(shown) > 1 else 1
    rows_n = math.ceil(len(shown) / cols)
    cell_w, cell_h = _W / cols, 150
    pw, ph = cell_w - _LEFT - 14, cell_h - 22 - 34
    parts = []
    for k, (emotion, mean) in enumerate(shown):
        cx, cy = (k % cols) * cell_w, (k // cols) * cell_h + 6
        values = [v for _, v in series[emotion].points if v is not None]
        ticks = nice_ticks(0.0, max(max(values), 0.01), max_ticks=4)
        parts.append(
            f"<text x='{cx + _LEFT}' y='{cy + 14}' class='label' "
            f"style='fill:{_EMOTION_COLORS[emotion]}'>{emotion}</text>"
            f"<text x='{cx + _LEFT + pw}' y='{cy + 14}' class='tick' text-anchor='end'>"
            f"mean {mean:.3f}</text>"
            + _plot(
                [series[emotion]],
                x0=cx + _LEFT,
                y0=cy + 22,
                w=pw,
                h=ph,
                t_range=t_range,
                y_ticks=ticks,
                max_time_ticks=5,
            )
        )
    height = rows_n * cell_h + 22
    return (
        f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='emotions'>"
        + "".join(parts)
        + f"<text x='{_W - _RIGHT}' y='{height - 6}' class='tick' text-anchor='end'>"
        f"average intensity per minute (0 … 1), each panel on its own scale · "
        f"{_axis_note(t_range)}</text></svg>",
        quiet,
    )


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _bars(rows: list[tuple[str, float]], *, color: str) -> str:
    if not rows:
        return "<p class='empty'>No emotes in this range.</p>"
    top = max(v for _, v in rows) or 1
    height = 22 * len(rows) + 10
    bars = "".join(
        f"<text x='0' y='{22 * i + 16}' class='bar'>{html.escape(_short(name))}</text>"
        f"<rect x='220' y='{22 * i + 4}' height='16' width='{560 * v / top:.1f}' fill='{color}'/>"
        f"<text x='{226 + 560 * v / top:.1f}' y='{22 * i + 16}' class='tick'>{v:,.0f}</text>"
        for i, (name, v) in enumerate(rows)
    )
    return f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='top emotes'>{bars}</svg>"


def _top_emotes(rows: list[tuple[str, float]], live: bool) -> str:
    if not live or not rows:
        return _bars(rows, color="#ff9900")
    return charts.bar_figure(
        [(_short(name), v) for name, v in rows], label="uses of the top emotes", color="#ff9900"
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p class='empty'>None in this range.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _clip_link(location: str | None, text: str = "clip") -> str:
    if not location:
        return ""
    href = location if "://" in location else Path(location).resolve().as_uri()
    return f"<a href='{html.escape(href, quote=True)}'>{html.escape(text)}</a>"


def _clip_for(moment: dict[str, Any], clips: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cut clip of a hype moment: the one made for it, else a cut clip around its peak."""
    done = [c for c in clips if c["location"] and c["status"] == "done"]
    for clip in done:
        if clip["hype_moment_id"] == moment["id"]:
            return clip
    for clip in done:
        if (
            clip["hype_moment_id"] is None
            and clip["start_at"] <= moment["peak_at"] < clip["end_at"]
        ):
            return clip
    return None


def _sample_line(sample: Any) -> str:
    if not isinstance(sample, dict):
        return ""
    at = ""
    with contextlib.suppress(TypeError, ValueError):
        at = _fmt_time(datetime.fromisoformat(str(sample.get("at")).replace("Z", "+00:00")))
    return (
        f"<li><span class='at'>{html.escape(at)}</span> "
        f"<b>{html.escape(str(sample.get('user') or '?'))}</b> "
        f"{html.escape(str(sample.get('text') or ''))}</li>"
    )


def _hype_section(data: ReportData) -> str:
    if not data.hype:
        return "<p class='empty'>No hype moments in this range.</p>"
    out = []
    for rank, h in enumerate(data.hype, 1):
        stream = data.stream_of(h["peak_at"])
        into = ""
        if stream is not None:
            s0 = stream["start"]
            into = (
                f" <span class='into' title='time into the stream (its start: "
                f"{html.escape(stream['start_from'])}, {_fmt_time(s0)} UTC)'>"
                f"{_fmt_span(h['peak_at'] - s0)} into the stream</span>"
            )
        window = f"{_fmt_time(h['started_at'])} – {_fmt_time(h['ended_at'])} UTC"
        if stream is not None:
            window += (
                f" ({_fmt_span(h['started_at'] - stream['start'])} – "
                f"{_fmt_span(h['ended_at'] - stream['start'])})"
            )
        facts = [
            window,
            _fmt_duration(h["ended_at"] - h["started_at"]),
            f"{h['messages_per_min']:,.0f} messages/min vs {h['baseline_per_min']:,.0f} baseline",
        ]
        if h["chatters"] is not None:
            facts.append(f"{h['chatters']:,} chatters")
        if h["top_emotes"]:
            facts.append("emotes " + ", ".join(h["top_emotes"]))
        if h["avg_sentiment"] is not None:
            facts.append(f"mood {h['avg_sentiment']:+.2f}")
        clip = _clip_for(h, data.clips)
        clip_html = " · " + _clip_link(clip["location"], "▶ clip") if clip else ""
        samples = "".join(
            _sample_line(x)
            for x in sorted(
                h.get("sample_messages") or [],
                key=lambda x: str(x.get("at") or "") if isinstance(x, dict) else "",
            )
        )
        out.append(
            f"<div class='moment'><h3><span class='rank'>#{rank}</span> "
            f"<span class='score'>score {h['score']:.1f}</span> · peak "
            f"{h['peak_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC{into}</h3>"
            f"<p class='facts'>{html.escape(' · '.join(facts))}{clip_html}</p>"
            + (f"<ul class='samples'>{samples}</ul>" if samples else "")
            + "</div>"
        )
    return "".join(out)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:920px;color:#1d2330}
h1{margin-bottom:.2rem} .sub{color:#5b6475;margin-top:0}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f3f5f9;border-radius:8px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}
svg{width:100%;height:auto;background:#fff;border:1px solid #e3e7ef;border-radius:6px;margin:.3rem 0}
.label{font-weight:600;font-size:13px}.tick{font-size:11px;fill:#4a5263}.bar{font-size:12px}
.grid{stroke:#eceff4}.axis{stroke:#9aa3b2}.band{fill:#ffb000;fill-opacity:.16}
.bandlabel{font-size:10px;font-weight:600;fill:#9a6a00}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e7ef;padding:.3rem .5rem;text-align:left}
.empty,.note{color:#6b7385}
.moment{border:1px solid #e3e7ef;border-radius:8px;padding:.4rem .9rem;margin:.6rem 0}
.moment h3{font-size:15px;margin:.2rem 0}.rank{color:#9a6a00}.into{color:#5b6475;font-weight:400}
.facts{margin:.2rem 0;color:#39404f}.samples{margin:.2rem 0 .4rem;padding-left:1.1rem}
.samples li{overflow-wrap:anywhere}.at{color:#8a93a5;font-variant-numeric:tabular-nums}
"""


def _moderation_section(data: ReportData) -> list[str]:
    """Toxic messages, the share acted on, median time to action, never acted on, actions and
    moderator activity in the report's range."""
    m = data.moderation
    toxic, acted = int(m.get("toxic") or 0), int(m.get("acted") or 0)
    latency = m.get("median_latency_s")
    figures = [
        ("toxic messages (toxicity ≥ 0.5)", f"{toxic:,}"),
        ("acted on within 10 min", f"{acted:,} ({acted / toxic:.0%})" if toxic else "0"),
        ("median time to action", "–" if latency is None else f"{float(latency):.1f} s"),
        ("never acted on", f"{int(m.get('never_acted') or 0):,}"),
        (
            "bans / timeouts / deletions",
            f"{int(m.get('bans') or 0)} / {int(m.get('timeouts') or 0)} / "
            f"{int(m.get('deletions') or 0)}",
        ),
        ("moderator messages", f"{int(m.get('mod_messages') or 0):,}"),
        ("active moderators", str(len(data.moderators))),
    ]
    out = [
        "<h2>Moderation</h2>",
        _table(["", ""], [[html.escape(k), html.escape(v)] for k, v in figures]),
    ]
    if data.moderators:
        out.append(
            _table(
                ["moderator", "messages"],
                [[html.escape(str(r["moderator"])), f"{r['messages']:,}"] for r in data.moderators],
            )
        )
    return out


def render_report(data: ReportData, *, interactive: bool | None = None) -> str:
    """Render the report as one HTML document with no external resources: Plotly charts with
    plotly.js inlined once when ``interactive`` (default: when Plotly is installed), else
    inline SVG and a line saying how to get interactive charts."""
    live = charts.interactive() if interactive is None else interactive

    def chart(
        series: list[_Series],
        *,
        label: str,
        y_min: float | None = None,
        y_max: float | None = None,
        height: int = 200,
        bands: list[tuple[datetime, datetime, str]] | None = None,
    ) -> str:
        if not live:
            return _chart(series, label=label, y_min=y_min, y_max=y_max, height=height, bands=bands)
        if _t_range(series) is None:
            return f"<p class='empty'>No data for {html.escape(label)}.</p>"
        return charts.time_figure(
            [charts.TimeSeries(s.name, s.color, s.points, s.fill) for s in series],
            label=label,
            y_min=y_min,
            y_max=y_max,
            height=height + 20,
            bands=bands or (),
        )

    t = data.totals
    minutes = max(1.0, (data.end - data.start).total_seconds() / 60)
    mood_rows = [r for r in data.sentiment if r["mood"] is not None]
    avg_mood = (
        sum(float(r["mood"]) * float(r["scored"]) for r in mood_rows)
        / max(1.0, sum(float(r["scored"]) for r in mood_rows))
        if mood_rows
        else None
    )
    cards = [
        ("messages", f"{int(t.get('messages') or 0):,}"),
        ("chatters", f"{int(t.get('chatters') or 0):,}"),
        ("messages / min", f"{int(t.get('messages') or 0) / minutes:,.1f}"),
        ("emote uses", f"{int(t.get('emote_uses') or 0):,}"),
        ("mood", "not scored" if avg_mood is None else f"{avg_mood:+.2f}"),
        ("hype moments", str(len(data.hype))),
    ]
    bands = [(h["started_at"], h["ended_at"], f"#{i}") for i, h in enumerate(data.hype, 1)]
    sections = [
        "<div class='cards'>"
        + "".join(
            f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in cards
        )
        + "</div>",
        "<h2>Activity</h2>",
        chart(
            [
                _Series(
                    "messages",
                    "#3366cc",
                    _fill_minutes([(r["bucket"], float(r["messages"])) for r in data.activity]),
                    fill=True,
                )
            ],
            label="messages per minute" + (" (shaded: hype moments)" if bands else ""),
            y_min=0,
            bands=bands,
        ),
        chart(
            [
                _Series(
                    "chatters",
                    "#109618",
                    _fill_minutes([(r["bucket"], float(r["chatters"])) for r in data.activity]),
                    fill=True,
                )
            ],
            label="chatters per minute",
            y_min=0,
            height=170,
        ),
        "<h2>Mood and emotions</h2>",
        chart(
            [
                _Series(
                    "mood",
                    "#990099",
                    [
                        (r["bucket"], None if r["mood"] is None else float(r["mood"]))
                        for r in data.sentiment
                    ],
                )
            ],
            label="average sentiment per minute (−1 negative … +1 positive)",
            y_min=-1,
            y_max=1,
            height=170,
        ),
    ]
    panels, quiet = (_emotion_figures if live else _emotion_panels)(data.sentiment)
    if panels:
        sections.append(panels)
    if quiet:
        sections.append(
            f"<p class='note'>Not charted, too little signal (mean under {EMOTION_SIGNAL}): "
            f"{html.escape(', '.join(quiet))}.</p>"
        )
    sections += [
        "<h2>Top emotes</h2>",
        _top_emotes(
            [(f"{r['emote_name']} ({r['provider']})", float(r["uses"])) for r in data.top_emotes],
            live,
        ),
        "<h2>Hype moments</h2>",
        "<p class='note'>Strongest first. Times are UTC; the time into the stream counts from "
        "the stream's start: the start a replay recorded (TwitchDownloader JSON, or a TXT "
        "replayed with --start), else the start of its VOD, else its first message (chat "
        f"silent for over {int(STREAM_SILENCE.total_seconds() // 60)} minutes starts a new "
        "stream).</p>",
        _hype_section(data),
        "<h2>Emote bursts</h2>",
        _table(
            ["emote", "start", "peak", "end", "peak uses / 10 s", "baseline", "score"],
            [
                [
                    html.escape(str(b["emote_name"])),
                    _fmt_time(b["started_at"]),
                    _fmt_time(b["peak_at"]),
                    _fmt_time(b["ended_at"]),
                    str(b["peak_uses"]),
                    f"{b['baseline']:.1f}",
                    f"{b['score']:.1f}",
                ]
                for b in data.bursts
            ],
        ),
    ]
    sections += _moderation_section(data)
    sections += render_stream_sections(data.analysis, interactive=live)
    if data.topics is not None:
        sections += render_topic_sections(data.topics, interactive=live)
    if data.clips:
        sections.append("<h2>Clips</h2>")
        sections.append(
            _table(
                ["start (UTC)", "end", "status", "length", "file"],
                [
                    [
                        c["start_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                        _fmt_time(c["end_at"]),
                        html.escape(str(c["status"])),
                        "" if c["duration_s"] is None else f"{c['duration_s']:.1f} s",
                        _clip_link(c["location"]),
                    ]
                    for c in data.clips
                ],
            )
        )
    title = f"#{data.channel} — chat report"
    span = f"{data.start.astimezone(UTC):%Y-%m-%d %H:%M} – {data.end.astimezone(UTC):%H:%M} UTC"
    if len(data.streams) == 1:
        s0 = data.streams[0]
        span += f" · stream start {_fmt_time(s0['start'])} UTC ({s0['start_from']})"
    elif data.streams:
        span += f" · {len(data.streams)} streams"
    meta = html.escape(
        json.dumps(
            {"channel": data.channel, "start": data.start.isoformat(), "end": data.end.isoformat()}
        ),
        quote=True,
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='chatpulse-report' content='{meta}'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        + (charts.plotly_script() if live else "")
        + "</head><body>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(span)} · made by chatpulse</p>"
        + ("" if live else f"<p class='note'>{html.escape(charts.FALLBACK_NOTE)}</p>")
        + "".join(sections)
        + "</body></html>"
    )


def write_report(data: ReportData, out: Path) -> Path:
    """Write the report to ``out`` and return its absolute path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(data), encoding="utf-8")
    return out.resolve()


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse report --channel NAME [--from T --to T] --out FILE``."""
    start = parse_time_option(args.time_from, "--from")
    end = parse_time_option(args.time_to, "--to")
    with database(settings) as url:
        data = asyncio.run(load_report(url, args.channel, start, end))
    path = write_report(data, Path(args.out))
    print(f"report written: {path}")
    return 0
