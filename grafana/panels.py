"""Small typed builders for Grafana dashboard JSON (schemaVersion 39).

Only what chatpulse's dashboards use: SQL and PromQL targets, a few panel types, query and
textbox variables, SQL annotations, and a grid packer that assigns ``gridPos`` so that panels
never overlap and never pass column 24.  The output is plain ``dict``/``list`` data, written as
JSON by :mod:`grafana.build`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DS_POSTGRES",
    "DS_PROMETHEUS",
    "POSTGRES_TYPE",
    "PROMETHEUS_TYPE",
    "SCHEMA_VERSION",
    "Panel",
    "channel_variable",
    "dashboard",
    "prom",
    "sql",
    "sql_annotation",
    "sql_variable",
    "textbox_variable",
]

POSTGRES_TYPE = "grafana-postgresql-datasource"
PROMETHEUS_TYPE = "prometheus"
DS_POSTGRES: dict[str, str] = {"type": POSTGRES_TYPE, "uid": "chatpulse"}
DS_PROMETHEUS: dict[str, str] = {"type": PROMETHEUS_TYPE, "uid": "prometheus"}
SCHEMA_VERSION = 39
GRID_COLUMNS = 24

Format = Literal["time_series", "table"]


def sql(raw_sql: str, fmt: Format = "time_series", ref: str = "A") -> dict[str, Any]:
    """A PostgreSQL target; the backend reads only ``rawSql`` and ``format``."""
    return {
        "refId": ref,
        "datasource": dict(DS_POSTGRES),
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": raw_sql.strip(),
    }


def prom(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    """A Prometheus range-query target."""
    return {
        "refId": ref,
        "datasource": dict(DS_PROMETHEUS),
        "editorMode": "code",
        "expr": expr.strip(),
        "legendFormat": legend or "__auto",
        "range": True,
    }


@dataclass
class Panel:
    """One panel; :func:`dashboard` gives it an id and a grid position.

    ``interval`` is the panel's minimum ``$__interval`` (e.g. ``1m`` over 1-minute aggregates,
    so that a per-minute rate never divides by less than a minute).  ``max_data_points`` caps
    the points Grafana asks for (its default is the panel's width in pixels), which coarsens
    ``$__interval``.
    """

    title: str
    type: str
    targets: list[dict[str, Any]]
    width: int = 12
    height: int = 8
    description: str = ""
    unit: str | None = None
    interval: str | None = None
    max_data_points: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        """The panel's JSON at grid position (``x``, ``y``)."""
        defaults: dict[str, Any] = {"custom": dict(self.custom), **self.defaults}
        if self.unit:
            defaults["unit"] = self.unit
        if self.links:
            defaults["links"] = self.links
        datasource = self.targets[0]["datasource"] if self.targets else dict(DS_POSTGRES)
        out: dict[str, Any] = {
            "id": panel_id,
            "type": self.type,
            "title": self.title,
            "description": self.description,
            "datasource": dict(datasource),
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
            "targets": self.targets,
        }
        if self.interval:
            out["interval"] = self.interval
        if self.max_data_points:
            out["maxDataPoints"] = self.max_data_points
        if self.transformations:
            out["transformations"] = self.transformations
        return out


def _layout(rows: Sequence[Sequence[Panel]]) -> list[dict[str, Any]]:
    """Place rows of panels top to bottom, left to right; a row's height is its tallest panel."""
    out: list[dict[str, Any]] = []
    y, panel_id = 0, 1
    for row in rows:
        x = 0
        if sum(p.width for p in row) > GRID_COLUMNS:
            raise ValueError(f"row wider than {GRID_COLUMNS} columns: {[p.title for p in row]}")
        for panel in row:
            out.append(panel.to_json(panel_id, x, y))
            panel_id += 1
            x += panel.width
        y += max((p.height for p in row), default=0)
    return out


def sql_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    refresh: int = 1,
) -> dict[str, Any]:
    """A query variable on the PostgreSQL datasource.

    ``refresh`` is 1 (on load) or 2 (on time range change: needed when the SQL uses
    ``$__timeFilter``).
    """
    current: dict[str, Any] = (
        {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {}
    )
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": dict(DS_POSTGRES),
        "query": query.strip(),
        "definition": query.strip(),
        "refresh": refresh,
        "multi": multi,
        "includeAll": include_all,
        "current": current,
        "options": [],
        "sort": 1,
        "hide": 0,
    }


def channel_variable() -> dict[str, Any]:
    """The ``channel`` variable every dashboard has: channel names, multi-value, include All."""
    return sql_variable(
        "channel",
        "Channel",
        "SELECT name FROM chat.channels ORDER BY name",
        multi=True,
        include_all=True,
    )


def textbox_variable(name: str, label: str, default: str = "") -> dict[str, Any]:
    """A free-text variable (single value: insert it as ``'$name'``)."""
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
    }


def sql_annotation(name: str, color: str, raw_sql: str) -> dict[str, Any]:
    """A SQL annotation: the query returns ``time``, optional ``timeend``, ``text``, ``tags``."""
    return {
        "name": name,
        "datasource": dict(DS_POSTGRES),
        "enable": True,
        "hide": False,
        "iconColor": color,
        "target": {
            "refId": "Anno",
            "editorMode": "code",
            "format": "table",
            "rawQuery": True,
            "rawSql": raw_sql.strip(),
        },
    }


_BUILTIN_ANNOTATION: dict[str, Any] = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    rows: Sequence[Sequence[Panel]],
    variables: Sequence[dict[str, Any]],
    annotations: Sequence[dict[str, Any]] = (),
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> dict[str, Any]:
    """A complete dashboard with links to every other chatpulse dashboard (tag ``chatpulse``)."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["chatpulse"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "type": "dashboards",
                "title": "chatpulse",
                "tags": ["chatpulse"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [_BUILTIN_ANNOTATION, *annotations]},
        "templating": {"list": list(variables)},
        "panels": _layout(rows),
    }
