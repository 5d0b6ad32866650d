"""``chatpulse report``: one self-contained HTML file about a stream, for people without Grafana.

It shows what the stream overview dashboard shows — activity, mood and emotions, top emotes
and bursts, hype moments with clip links — as inline SVG (no scripts, no external files), so
it can be mailed or attached after a stream.  It reads only the public relations of the
``chat`` schema, like any analyst would.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row

from chatpulse.aggregates import backend_of, refresh_pending
from chatpulse.db import connect, database
from chatpulse.errors import ConfigError
from chatpulse.settings import Settings

__all__ = ["ReportData", "cmd_report", "load_report", "render_report", "write_report"]

_EMOTIONS = ("joy", "love", "surprise", "anticipation", "sadness", "anger", "fear", "disgust")
# Minute mood for the report: all models' rows weighted by how many messages each scored.
_SENTIMENT_SQL = (
    "SELECT bucket, sum(scored) AS scored, "
    "sum(avg_sentiment * scored) / nullif(sum(scored), 0) AS mood, "
    "sum(joy * scored) / nullif(sum(scored), 0) AS joy, "
    "sum(love * scored) / nullif(sum(scored), 0) AS love, "
    "sum(surprise * scored) / nullif(sum(scored), 0) AS surprise, "
    "sum(anticipation * scored) / nullif(sum(scored), 0) AS anticipation, "
    "sum(sadness * scored) / nullif(sum(scored), 0) AS sadness, "
    "sum(anger * scored) / nullif(sum(scored), 0) AS anger, "
    "sum(fear * scored) / nullif(sum(scored), 0) AS fear, "
    "sum(disgust * scored) / nullif(sum(scored), 0) AS disgust, "
    "sum(toxic) AS toxic FROM chat.sentiment_1m "
    "WHERE channel_id = %(c)s AND bucket >= date_trunc('minute', %(s)s::timestamptz) "
    "AND bucket < %(e)s GROUP BY bucket ORDER BY bucket"
)


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


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--{name}: not an RFC 3339 time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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
        cur = await conn.execute(
            "SELECT c.id, min(m.sent_at) AS first, max(m.sent_at) AS last "
            "FROM chat.channels c LEFT JOIN chat.messages m ON m.channel_id = c.id "
            "WHERE c.name = %s GROUP BY c.id ORDER BY count(m.*) DESC LIMIT 1",
            (channel,),
        )
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

        data.activity = await rows(
            "SELECT bucket, messages, chatters, emote_uses, subs, bits FROM chat.activity_1m "
            "WHERE channel_id = %(c)s AND bucket >= date_trunc('minute', %(s)s::timestamptz) "
            "AND bucket < %(e)s ORDER BY bucket"
        )
        data.sentiment = await rows(_SENTIMENT_SQL)
        # From the stored uses themselves, over exactly [start, end): the 10 s buckets of
        # emotes_10s do not line up with a window that starts or ends inside one.
        data.top_emotes = await rows(
            "SELECT emote_name, provider, sum(count) AS uses FROM chat.emote_uses "
            "WHERE channel_id = %(c)s AND sent_at >= %(s)s AND sent_at < %(e)s "
            "GROUP BY 1, 2 ORDER BY uses DESC, emote_name, provider LIMIT 15"
        )
        data.bursts = await rows(
            "SELECT emote_name, started_at, peak_at, ended_at, peak_uses, baseline, score "
            "FROM chat.emote_bursts WHERE channel_id = %(c)s AND peak_at >= %(s)s "
            "AND peak_at < %(e)s ORDER BY score DESC LIMIT 20"
        )
        data.hype = await rows(
            "SELECT h.id, h.started_at, h.peak_at, h.ended_at, h.score, h.messages_per_min, "
            "h.baseline_per_min, h.chatters, h.top_emotes, h.avg_sentiment FROM chat.hype_moments h "
            "WHERE h.channel_id = %(c)s AND h.peak_at >= %(s)s AND h.peak_at < %(e)s "
            "ORDER BY h.peak_at"
        )
        data.clips = await rows(
            "SELECT id, start_at, end_at, status, location, duration_s, hype_moment_id "
            "FROM chat.clips WHERE channel_id = %(c)s AND start_at < %(e)s "
            "AND end_at > %(s)s ORDER BY start_at"
        )
        totals = await rows(
            "SELECT count(*) AS messages, "
            "count(DISTINCT chat.chatter_key(user_id, user_login, user_name)) AS chatters, "
            "sum(emote_count) AS emote_uses FROM chat.messages "
            "WHERE channel_id = %(c)s AND sent_at >= %(s)s AND sent_at < %(e)s"
        )
        data.totals = totals[0] if totals else {}
        # Moderation against toxicity (the 0018 views): toxic messages sent in the range and
        # what became of them, and the actions from the range's start to 10 minutes after its
        # end (the time an action may take to answer a toxic message of the range).
        moderation = await rows(
            "SELECT count(*) AS toxic, count(acted_at) AS acted,"
            " count(*) FILTER (WHERE never_acted) AS never_acted,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s)"
            "  FILTER (WHERE acted_at IS NOT NULL) AS median_latency_s,"
            " (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s"
            "  AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes' AND e.kind = 'ban') AS bans,"
            " (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s"
            "  AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes' AND e.kind = 'timeout') AS timeouts,"
            " (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s"
            "  AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes' AND e.kind = 'delete') AS deletions,"
            " (SELECT count(*) FROM chat.messages m WHERE m.channel_id = %(c)s AND m.is_mod"
            "  AND m.sent_at >= %(s)s AND m.sent_at < %(e)s) AS mod_messages"
            " FROM chat.toxic_messages WHERE channel_id = %(c)s AND sent_at >= %(s)s"
            " AND sent_at < %(e)s"
        )
        data.moderation = moderation[0] if moderation else {}
        data.moderators = await rows(
            "SELECT coalesce(user_login, user_name, user_id) AS moderator, count(*) AS messages "
            "FROM chat.messages WHERE channel_id = %(c)s AND is_mod AND sent_at >= %(s)s "
            "AND sent_at < %(e)s GROUP BY 1 ORDER BY messages DESC, moderator LIMIT 10"
        )
    return data


# -- rendering -----------------------------------------------------------------------------------

_W, _H, _PAD = 880, 180, 36


def _fmt_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M")


def _line_chart(
    points: list[tuple[datetime, float | None]],
    *,
    color: str,
    label: str,
    y_min: float | None = None,
    y_max: float | None = None,
) -> str:
    """An SVG line chart of one series over time (gaps where a value is None)."""
    pts = [(t, v) for t, v in points if v is not None]
    if not pts:
        return f"<p class='empty'>No data for {html.escape(label)}.</p>"
    t0, t1 = pts[0][0].timestamp(), pts[-1][0].timestamp()
    lo = min(v for _, v in pts) if y_min is None else y_min
    hi = max(v for _, v in pts) if y_max is None else y_max
    if hi == lo:
        hi = lo + 1
    span = max(t1 - t0, 1.0)

    def xy(t: datetime, v: float) -> str:
        x = _PAD + (t.timestamp() - t0) / span * (_W - 2 * _PAD)
        y = _H - _PAD + (_PAD * 2 - _H) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    path = " ".join(xy(t, v) for t, v in pts)
    ticks = "".join(
        f"<text x='{_PAD + i / 4 * (_W - 2 * _PAD):.0f}' y='{_H - 10}' class='tick'>"
        f"{_fmt_time(datetime.fromtimestamp(t0 + i / 4 * span, UTC))}</text>"
        for i in range(5)
    )
    zero = ""
    if lo < 0 < hi:
        y0 = _H - _PAD + (_PAD * 2 - _H) * (0 - lo) / (hi - lo)
        zero = f"<line x1='{_PAD}' x2='{_W - _PAD}' y1='{y0:.1f}' y2='{y0:.1f}' class='zero'/>"
    return (
        f"<svg viewBox='0 0 {_W} {_H}' role='img' aria-label='{html.escape(label)}'>"
        f"<text x='{_PAD}' y='16' class='label'>{html.escape(label)}</text>"
        f"<text x='4' y='{_PAD}' class='tick'>{hi:.3g}</text>"
        f"<text x='4' y='{_H - _PAD}' class='tick'>{lo:.3g}</text>{zero}"
        f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{path}'/>{ticks}</svg>"
    )


def _multi_chart(
    series: dict[str, list[tuple[datetime, float | None]]], colors: dict[str, str], *, label: str
) -> str:
    """Several series on one time axis (shared y from 0), with a legend."""
    pts = [(t, v) for values in series.values() for t, v in values if v is not None]
    if not pts:
        return f"<p class='empty'>No data for {html.escape(label)}.</p>"
    t0 = min(t for t, _ in pts).timestamp()
    span = max(max(t for t, _ in pts).timestamp() - t0, 1.0)
    hi = max(v for _, v in pts) or 1.0
    lines, legend = [], []
    for i, (name, values) in enumerate(series.items()):
        path = " ".join(
            f"{_PAD + (t.timestamp() - t0) / span * (_W - 2 * _PAD):.1f},"
            f"{_H - _PAD + (_PAD * 2 - _H) * v / hi:.1f}"
            for t, v in values
            if v is not None
        )
        lines.append(
            f"<polyline fill='none' stroke='{colors[name]}' stroke-width='2' points='{path}'/>"
        )
        legend.append(
            f"<text x='{_PAD + 95 * i}' y='{_H - 10}' class='tick' "
            f"style='fill:{colors[name]}'>■ {html.escape(name)}</text>"
        )
    return (
        f"<svg viewBox='0 0 {_W} {_H + 10}' role='img' aria-label='{html.escape(label)}'>"
        f"<text x='{_PAD}' y='16' class='label'>{html.escape(label)}</text>"
        f"<text x='4' y='{_PAD}' class='tick'>{hi:.3g}</text>"
        f"<text x='4' y='{_H - _PAD}' class='tick'>0</text>"
        + "".join(lines)
        + "".join(legend)
        + "</svg>"
    )


def _short(name: str, width: int = 30) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _bars(rows: list[tuple[str, float]], *, color: str) -> str:
    if not rows:
        return "<p class='empty'>No emotes in this range.</p>"
    top = max(v for _, v in rows) or 1
    height = 22 * len(rows) + 10
    bars = "".join(
        f"<text x='0' y='{22 * i + 16}' class='bar'>{html.escape(_short(name))}</text>"
        f"<rect x='220' y='{22 * i + 4}' height='16' width='{600 * v / top:.1f}' fill='{color}'/>"
        f"<text x='{226 + 600 * v / top:.1f}' y='{22 * i + 16}' class='tick'>{v:,.0f}</text>"
        for i, (name, v) in enumerate(rows)
    )
    return f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='top emotes'>{bars}</svg>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p class='empty'>None in this range.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _clip_link(location: str | None) -> str:
    if not location:
        return ""
    href = location if "://" in location else Path(location).resolve().as_uri()
    return f"<a href='{html.escape(href, quote=True)}'>clip</a>"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:920px;color:#1d2330}
h1{margin-bottom:.2rem} .sub{color:#5b6475;margin-top:0}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f3f5f9;border-radius:8px;padding:.6rem 1rem}
.card b{display:block;font-size:1.4rem}
svg{width:100%;height:auto;background:#fafbfd;border:1px solid #e3e7ef;border-radius:6px;margin:.3rem 0}
.label{font-weight:600;font-size:13px}.tick{font-size:11px;fill:#5b6475}.bar{font-size:12px}
.zero{stroke:#b8bfcc;stroke-dasharray:4 3}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e7ef;padding:.3rem .5rem;text-align:left}
.empty{color:#8a93a5}
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


def render_report(data: ReportData) -> str:
    """Render the report as one HTML document (no scripts, no external resources)."""
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
    sections = [
        "<div class='cards'>"
        + "".join(
            f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in cards
        )
        + "</div>",
        "<h2>Activity</h2>",
        _line_chart(
            [(r["bucket"], float(r["messages"])) for r in data.activity],
            color="#3366cc",
            label="messages per minute",
            y_min=0,
        ),
        _line_chart(
            [(r["bucket"], float(r["chatters"])) for r in data.activity],
            color="#109618",
            label="chatters per minute",
            y_min=0,
        ),
        "<h2>Mood and emotions</h2>",
        _line_chart(
            [
                (r["bucket"], None if r["mood"] is None else float(r["mood"]))
                for r in data.sentiment
            ],
            color="#990099",
            label="average sentiment (−1 … +1)",
            y_min=-1,
            y_max=1,
        ),
    ]
    palette = (
        "#dc3912",
        "#ff9900",
        "#0099c6",
        "#dd4477",
        "#66aa00",
        "#b82e2e",
        "#316395",
        "#994499",
    )
    series = {
        emotion: [
            (r["bucket"], None if r[emotion] is None else float(r[emotion])) for r in data.sentiment
        ]
        for emotion in _EMOTIONS
    }
    series = {k: v for k, v in series.items() if any(x for _, x in v)}
    if series:
        sections.append(
            _multi_chart(
                series,
                dict(zip(_EMOTIONS, palette, strict=True)),
                label="emotions (average intensity, 0 … 1)",
            )
        )
    sections += [
        "<h2>Top emotes</h2>",
        _bars(
            [(f"{r['emote_name']} ({r['provider']})", float(r["uses"])) for r in data.top_emotes],
            color="#ff9900",
        ),
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
        "<h2>Hype moments</h2>",
    ]
    clips_by_moment = {c["hype_moment_id"]: c for c in data.clips if c["hype_moment_id"]}
    sections.append(
        _table(
            [
                "peak (UTC)",
                "start",
                "end",
                "score",
                "msgs/min vs baseline",
                "chatters",
                "top emotes",
                "mood",
                "clip",
            ],
            [
                [
                    h["peak_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    _fmt_time(h["started_at"]),
                    _fmt_time(h["ended_at"]),
                    f"{h['score']:.1f}",
                    f"{h['messages_per_min']:.0f} vs {h['baseline_per_min']:.0f}",
                    "" if h["chatters"] is None else f"{h['chatters']:,}",
                    html.escape(", ".join(h["top_emotes"] or [])),
                    "" if h["avg_sentiment"] is None else f"{h['avg_sentiment']:+.2f}",
                    _clip_link(clips_by_moment.get(h["id"], {}).get("location")),
                ]
                for h in data.hype
            ],
        )
    )
    sections += _moderation_section(data)
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
    meta = html.escape(
        json.dumps(
            {"channel": data.channel, "start": data.start.isoformat(), "end": data.end.isoformat()}
        ),
        quote=True,
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='chatpulse-report' content='{meta}'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(span)} · made by chatpulse</p>"
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
    start = _parse_time(args.time_from, "from")
    end = _parse_time(args.time_to, "to")
    with database(settings) as url:
        data = asyncio.run(load_report(url, args.channel, start, end))
    path = write_report(data, Path(args.out))
    print(f"report written: {path}")
    return 0
