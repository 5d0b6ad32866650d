"""The report's topics section (issue 16): what chat talked about over the range.

It reads what ``chatpulse topics`` and the topics service keep (``chat.topics``,
``chat.window_topics``, ``chat.window_terms``; queries in ``sql/queries/report_topics.sql``):
the topic timeline (each topic's share of chat per time bin, stacked), the topics with their
top terms and emotes, and the model-free baseline beside them, the most distinctive terms of
each part of the range.  Where there are no vectors (no pgvector, or the range's windows are
not embedded) the section says so in one line and still shows the distinctive terms.  Charts
are inline SVG like the rest of the report (no scripts, nothing external).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatpulse.app.charts import stacked_figure
from chatpulse.core.queries import load_queries

__all__ = ["TopicsReport", "load_topics_report", "render_topic_sections"]

_W = 880
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 26
#: Time bins of the timeline (at most) and of the distinctive-terms table (at most).
TIMELINE_BINS = 48
TERM_BINS = 10
_COLORS = (
    "#3366cc",
    "#dc3912",
    "#ff9900",
    "#109618",
    "#990099",
    "#0099c6",
    "#dd4477",
    "#66aa00",
    "#b82e2e",
    "#316395",
)

_Q = load_queries("report_topics")  # sql/queries/report_topics.sql


@dataclass(slots=True)
class TopicsReport:
    """The rows of the topics section.

    ``vectors``: the database has pgvector; ``embedded``: windows of the range with a vector;
    ``topics``: the topics present in the range, heaviest first; ``timeline``: (bin, topic id,
    weight) rows; ``terms``: (bin, term, uses) rows, five per bin."""

    channel: str
    start: datetime
    end: datetime
    vectors: bool = False
    embedded: int = 0
    bin: timedelta = timedelta(seconds=30)
    term_bin: timedelta = timedelta(seconds=30)
    topics: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    terms: list[dict[str, Any]] = field(default_factory=list)


def bin_size(start: datetime, end: datetime, bins: int) -> timedelta:
    """A whole number of 30-s windows that cuts [start, end) into at most ``bins`` parts."""
    windows = max(1, math.ceil((end - start).total_seconds() / 30))
    return timedelta(seconds=30 * max(1, math.ceil(windows / bins)))


async def load_topics_report(
    conn: Any, channel: str, channel_id: int, start: datetime, end: datetime
) -> TopicsReport:
    """Read the section's rows; ``conn`` returns dict rows."""
    out = TopicsReport(channel, start, end)
    out.bin = bin_size(start, end, TIMELINE_BINS)
    out.term_bin = bin_size(start, end, TERM_BINS)
    args: dict[str, Any] = {"c": channel_id, "s": start, "e": end}

    async def rows(name: str, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = await conn.execute(_Q[name], {**args, **(extra or {})})
        return list(await cur.fetchall())

    out.vectors = bool((await rows("vectors_available"))[0]["vectors"])
    if out.vectors:
        out.embedded = int((await rows("embedded_windows"))[0]["windows"])
    out.topics = await rows("range_topics")
    if out.topics:
        out.timeline = await rows("topic_timeline", {"bin": out.bin})
    out.terms = await rows("bin_terms", {"bin": out.term_bin})
    return out


def _clock(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M")


def _timeline_chart(report: TopicsReport, *, interactive: bool = False) -> str:
    """Stacked bars: per time bin, each topic's share of that bin's chat (a Plotly figure when
    ``interactive``, inline SVG otherwise)."""
    colors = {t["topic_id"]: _COLORS[i % len(_COLORS)] for i, t in enumerate(report.topics)}
    labels = {t["topic_id"]: str(t["label"]) for t in report.topics}
    bins: dict[datetime, dict[int, float]] = {}
    for r in report.timeline:
        bins.setdefault(r["bin"], {})[r["topic_id"]] = float(r["weight"])
    if interactive:
        stamps = sorted(bins)
        totals = [sum(bins[b].values()) or 1.0 for b in stamps]
        return stacked_figure(
            stamps,
            [
                (
                    labels[t["topic_id"]],
                    colors[t["topic_id"]],
                    [
                        bins[b].get(t["topic_id"], 0.0) / n
                        for b, n in zip(stamps, totals, strict=True)
                    ],
                )
                for t in report.topics
            ],
            label=f"Topic timeline (share of chat per {_span(report.bin)}, UTC)",
        )
    slots = max(1, math.ceil((report.end - report.start) / report.bin))
    height = 200
    pw, ph = _W - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    slot = pw / slots
    parts = [
        f"<text x='{_LEFT - 4}' y='{_TOP + 4}' class='tick' text-anchor='end'>100%</text>",
        f"<text x='{_LEFT - 4}' y='{_TOP + ph}' class='tick' text-anchor='end'>0%</text>",
    ]
    order = [t["topic_id"] for t in report.topics]
    for when, weights in sorted(bins.items()):
        i = int((when - report.start) / report.bin)
        total = sum(weights.values()) or 1.0
        y = float(_TOP + ph)
        for topic in order:
            share = weights.get(topic, 0.0) / total
            if share <= 0:
                continue
            h = ph * share
            y -= h
            parts.append(
                f"<rect x='{_LEFT + slot * i:.1f}' y='{y:.1f}' width='{max(slot * 0.9, 0.5):.1f}' "
                f"height='{h:.1f}' fill='{colors[topic]}'><title>{_clock(when)}: "
                f"{html.escape(labels[topic])} {100 * share:.0f}%</title></rect>"
            )
    ticks = min(slots, 6)
    for k in range(ticks + 1):
        i = round(k * slots / max(ticks, 1))
        parts.append(
            f"<text x='{_LEFT + slot * i:.1f}' y='{height - 8}' class='tick' "
            f"text-anchor='middle'>{_clock(report.start + report.bin * i)}</text>"
        )
    legend = " ".join(
        f"<span style='color:{colors[t['topic_id']]}'>■ {html.escape(str(t['label']))}</span>"
        for t in report.topics
    )
    return (
        f"<div class='label'>Topic timeline (share of chat per {_span(report.bin)}, UTC) — "
        f"{legend}</div>"
        f"<svg viewBox='0 0 {_W} {height}' role='img' aria-label='topic timeline'>"
        + "".join(parts)
        + "</svg>"
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _topics_table(report: TopicsReport) -> str:
    total = sum(float(t["weight"]) for t in report.topics) or 1.0
    body = "".join(
        "<tr>"
        f"<td><span style='color:{_COLORS[i % len(_COLORS)]}'>■</span> "
        f"{html.escape(str(t['label']))}</td>"
        f"<td>{100 * float(t['weight']) / total:.0f}%</td>"
        f"<td>{int(t['windows']):,}</td>"
        f"<td>{html.escape(', '.join(t['terms']))}</td>"
        f"<td>{html.escape(' '.join(t['emotes']))}</td>"
        "</tr>"
        for i, t in enumerate(report.topics)
    )
    return (
        "<table><thead><tr><th>topic</th><th>share</th><th>windows</th><th>top terms</th>"
        "<th>emotes</th></tr></thead><tbody>" + body + "</tbody></table>"
    )


def _terms_table(report: TopicsReport) -> str:
    per_bin: dict[datetime, list[str]] = {}
    for r in report.terms:
        per_bin.setdefault(r["bin"], []).append(f"{r['term']} ({int(r['uses'])})")
    body = "".join(
        f"<tr><td>{_clock(when)}–{_clock(min(when + report.term_bin, report.end))}</td>"
        f"<td>{html.escape(', '.join(terms))}</td></tr>"
        for when, terms in sorted(per_bin.items())
    )
    return (
        "<table><thead><tr><th>UTC</th><th>most distinctive terms (messages using them)</th>"
        "</tr></thead><tbody>" + body + "</tbody></table>"
    )


def render_topic_sections(report: TopicsReport, *, interactive: bool = False) -> list[str]:
    """The report's HTML for the topics of the range and its distinctive terms; the timeline is
    a Plotly figure when ``interactive`` (plotly.js must be in the page:
    :func:`chatpulse.app.charts.plotly_script`)."""
    name = html.escape(report.channel)
    out = ["<h2>Topics</h2>"]
    if not report.vectors:
        out.append(
            "<p class='note'>No topics: this database has no pgvector (the embedded database "
            "and the timescale/timescaledb-ha image have it).</p>"
        )
    elif not report.topics:
        out.append(
            f"<p class='note'>No topics: {report.embedded:,} windows of this range are embedded; "
            f"run <code>chatpulse embed --until-idle</code> and <code>chatpulse topics --channel "
            f"{name}</code>.</p>"
        )
    else:
        model = html.escape(str(report.topics[0]["model"]))
        out += [
            f"<p class='note'>Topics of #{name}: clusters of its 30-s window embeddings "
            f"({model}), named by their most distinctive terms; each window's share of a topic "
            "is the share of its messages nearest that topic.</p>",
            _timeline_chart(report, interactive=interactive),
            _topics_table(report),
        ]
    out.append("<h2>Distinctive terms</h2>")
    if not report.terms:
        out.append(
            "<p class='note'>No distinctive terms for this range: run <code>chatpulse topics "
            f"--channel {name}</code> (no model needed).</p>"
        )
    else:
        out += [
            f"<p class='note'>The words of each {_span(report.term_bin)} that set it apart from "
            "the channel's usual chat (log-odds with an informative prior), no model needed.</p>",
            _terms_table(report),
        ]
    return out
