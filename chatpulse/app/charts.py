"""Interactive charts for the HTML reports: Plotly figures a person can hover and zoom, in a file
that still opens offline (plotly.js is inlined once per report, by :func:`plotly_script`).

Plotly is the ``report`` extra (``pip install 'chatpulse[report]'``).  Without it
:func:`interactive` is False and the report modules draw their inline SVG charts instead, with
:data:`FALLBACK_NOTE` said once.  Every figure function returns an HTML fragment: a ``div``
holding the figure and the script that draws it with the already loaded ``Plotly``; each figure's
data sits in the fragment as JSON (``data-chatpulse-figure``), which the script reads, and so
can tests and scripts.

Used by :mod:`chatpulse.app.report`, :mod:`chatpulse.app.report_streams` and other report
sections.
"""

from __future__ import annotations

import html
import importlib.util
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "FALLBACK_NOTE",
    "TimeSeries",
    "bar_figure",
    "decile_figure",
    "interactive",
    "plotly_script",
    "stacked_figure",
    "time_figure",
]

#: Said once in a report drawn without Plotly.
FALLBACK_NOTE = (
    "Charts are static: install the report extra (pip install 'chatpulse[report]') for "
    "interactive ones you can hover and zoom."
)

_counter = itertools.count(1)
_CONFIG = {"displaylogo": False, "responsive": True}
_FONT = {"family": "system-ui, sans-serif", "size": 12, "color": "#1d2330"}


@dataclass(frozen=True, slots=True)
class TimeSeries:
    """One line of a time chart; ``None`` values are gaps."""

    name: str
    color: str
    points: Sequence[tuple[datetime, float | None]]
    fill: bool = False


def interactive() -> bool:
    """Whether Plotly is installed (the ``report`` extra)."""
    return importlib.util.find_spec("plotly") is not None


def plotly_script() -> str:
    """plotly.js inlined as one ``<script>`` (about 4.5 MB): put it once in the report's head.
    Raises ImportError without Plotly."""
    from plotly.offline import get_plotlyjs

    script: str = get_plotlyjs()
    return "<script>" + script + "</script>"


def _layout(label: str, height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": label, "x": 0, "xanchor": "left", "font": {"size": 13}},
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
        "font": _FONT,
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12},
        "xaxis": {"gridcolor": "#e3e7ee"},
        "yaxis": {"gridcolor": "#e3e7ee", "zerolinecolor": "#b0b6c3"},
    }
    layout.update(extra)
    return layout


def _fragment(label: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    """The figure as a div and the script that draws it (plotly.js must be loaded before)."""
    from plotly.utils import PlotlyJSONEncoder

    div = f"chatpulse-chart-{next(_counter)}"
    figure = json.dumps({"data": data, "layout": layout}, cls=PlotlyJSONEncoder)
    return (
        f"<div class='chart' id='{div}' role='img' aria-label='{html.escape(label, quote=True)}' "
        f"data-chatpulse-figure='{html.escape(figure, quote=True)}'></div>"
        f"<script>(function(){{var e=document.getElementById('{div}');"
        "var f=JSON.parse(e.dataset.chatpulseFigure);"
        f"Plotly.newPlot(e,f.data,f.layout,{json.dumps(_CONFIG)});}})();</script>"
    )


def time_figure(
    series: Sequence[TimeSeries],
    *,
    label: str,
    y_min: float | None = None,
    y_max: float | None = None,
    height: int = 220,
    bands: Sequence[tuple[datetime, datetime, str]] = (),
    y_title: str | None = None,
) -> str:
    """Lines over time (UTC), shaded ``bands`` (start, end, label) behind them."""
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": s.name,
            "x": [t.isoformat() for t, _ in s.points],
            "y": [v for _, v in s.points],
            "line": {"color": s.color, "width": 1.8},
            "fill": "tozeroy" if s.fill else "none",
            "connectgaps": False,
            "hovertemplate": "%{y:,.3~f}",
        }
        for s in series
    ]
    y_range = None if y_min is None or y_max is None else [y_min, y_max]
    layout = _layout(
        label,
        height,
        showlegend=len(series) > 1,
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": a.isoformat(),
                "x1": b.isoformat(),
                "y0": 0,
                "y1": 1,
                "fillcolor": "#ff9900",
                "opacity": 0.15,
                "line": {"width": 0},
                "layer": "below",
            }
            for a, b, _ in bands
        ],
        annotations=[
            {
                "x": a.isoformat(),
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": text,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"size": 10, "color": "#8a5a00"},
            }
            for a, _, text in bands
        ],
    )
    layout["xaxis"] = {**layout["xaxis"], "type": "date", "title": {"text": "time (UTC)"}}
    layout["yaxis"] = {
        **layout["yaxis"],
        **({"range": y_range} if y_range else {}),
        **({"rangemode": "tozero"} if y_min == 0 and y_max is None else {}),
        **({"title": {"text": y_title}} if y_title else {}),
    }
    return _fragment(label, data, layout)


def stacked_figure(
    x: Sequence[datetime],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    label: str,
    percent: bool = True,
    height: int = 220,
) -> str:
    """Stacked columns over time: ``series`` is (name, color, one value per ``x``) each; with
    ``percent`` the values are shares (0..1) shown as percentages."""
    stamps = [t.isoformat() for t in x]
    data = [
        {
            "type": "bar",
            "name": name,
            "x": stamps,
            "y": list(values),
            "marker": {"color": color},
            "hovertemplate": "%{y:.0%}" if percent else "%{y:,.3~f}",
        }
        for name, color, values in series
    ]
    layout = _layout(label, height, barmode="stack", bargap=0.1, showlegend=len(series) > 1)
    layout["xaxis"] = {**layout["xaxis"], "type": "date", "title": {"text": "time (UTC)"}}
    if percent:
        layout["yaxis"] = {**layout["yaxis"], "tickformat": ".0%", "range": [0, 1]}
    return _fragment(label, data, layout)


def bar_figure(
    rows: Sequence[tuple[str, float]],
    *,
    label: str,
    color: str | Sequence[str],
    value_suffix: str = "",
) -> str:
    """Horizontal bars, largest first as given (top to bottom)."""
    names = [name for name, _ in rows]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": label,
            "y": names,
            "x": [v for _, v in rows],
            "marker": {"color": color if isinstance(color, str) else list(color)},
            "hovertemplate": "%{y}: %{x:,}" + value_suffix + "<extra></extra>",
        }
    ]
    layout = _layout(label, 60 + 24 * max(len(rows), 1), showlegend=False, hovermode="closest")
    layout["yaxis"] = {**layout["yaxis"], "autorange": "reversed", "automargin": True}
    return _fragment(label, data, layout)


def decile_figure(
    this: Sequence[float | None],
    usual: Sequence[float | None],
    *,
    label: str,
    percent: bool,
) -> str:
    """Bars: one stream per tenth of its duration; line and dots: the channel's usual stream."""
    tenths = [f"{10 * i}–{10 * i + 10}%" for i in range(len(this))]
    fmt = ":.1%" if percent else ":.3f"
    data = [
        {
            "type": "bar",
            "name": "this stream",
            "x": tenths,
            "y": list(this),
            "marker": {"color": "#3366cc", "opacity": 0.75},
            "hovertemplate": "%{y" + fmt + "}",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "the channel's usual stream",
            "x": tenths,
            "y": list(usual),
            "line": {"color": "#dc3912", "width": 1.5},
            "hovertemplate": "%{y" + fmt + "}",
        },
    ]
    layout = _layout(f"{label} by tenth of the stream", 240)
    layout["yaxis"] = {**layout["yaxis"], **({"tickformat": ".0%"} if percent else {})}
    return _fragment(label, data, layout)
