"""Invariants of the committed dashboards (reads grafana/provisioning, the shipped files)."""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import pytest

from grafana.build import PROVISIONING_DIR, check, render
from grafana.dashboards import UIDS
from grafana.macros import unformatted_variables

FOLDER = PROVISIONING_DIR / "dashboards" / "chatpulse"
BOARDS = {p.stem: json.loads(p.read_text()) for p in sorted(FOLDER.glob("*.json"))}
DATASOURCES = {"chatpulse": "grafana-postgresql-datasource", "prometheus": "prometheus"}
BUILTIN = {"__interval", "__interval_ms", "__rate_interval", "__range", "__url_time_range"}
VAR_RE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}")


def _texts(board: dict[str, Any]) -> list[str]:
    """Every string in the dashboard that Grafana interpolates variables into."""
    out = []
    for panel in board["panels"]:
        out += [t.get("rawSql", "") + t.get("expr", "") for t in panel["targets"]]
        out += [link["url"] for link in panel["fieldConfig"]["defaults"].get("links", [])]
        out.append(panel["title"])
    out += [a["target"]["rawSql"] for a in board["annotations"]["list"] if "target" in a]
    out += [v.get("query", "") for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def _sqls(board: dict[str, Any]) -> list[str]:
    out = [t["rawSql"] for p in board["panels"] for t in p["targets"] if "rawSql" in t]
    out += [a["target"]["rawSql"] for a in board["annotations"]["list"] if "target" in a]
    out += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return out


def test_committed_files_equal_the_generator_output() -> None:
    assert check() == [], "run `chatpulse grafana build` and commit the result"
    assert set(BOARDS) == set(UIDS)
    assert len(render()) == len(BOARDS) + 5


@pytest.mark.parametrize("name", BOARDS)
def test_stable_uid_schema_and_links(name: str) -> None:
    board = BOARDS[name]
    assert board["uid"] == UIDS[name] and len(board["uid"]) <= 40
    assert 39 <= board["schemaVersion"] <= 41
    assert board["links"][0]["tags"] == ["chatpulse"] and "chatpulse" in board["tags"]
    assert board["annotations"]["list"][0]["name"] == "Annotations & Alerts"


@pytest.mark.parametrize("name", BOARDS)
def test_panel_ids_unique_and_grid_without_overlap(name: str) -> None:
    panels = BOARDS[name]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    boxes = []
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        boxes.append((g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], p["title"]))
    for a, b in combinations(boxes, 2):
        overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
        assert not overlap, f"{a[4]!r} overlaps {b[4]!r}"


@pytest.mark.parametrize("name", BOARDS)
def test_datasources_referenced_by_uid(name: str) -> None:
    board = BOARDS[name]
    refs = [p["datasource"] for p in board["panels"]]
    refs += [t["datasource"] for p in board["panels"] for t in p["targets"]]
    refs += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    refs += [a["datasource"] for a in board["annotations"]["list"][1:]]
    for ref in refs:
        assert isinstance(ref, dict) and DATASOURCES[ref["uid"]] == ref["type"], ref
    for panel in board["panels"]:
        kinds = {t["datasource"]["uid"] for t in panel["targets"]}
        assert kinds == {panel["datasource"]["uid"]}, panel["title"]


@pytest.mark.parametrize("name", BOARDS)
def test_every_variable_used_exists_and_channel_is_multi(name: str) -> None:
    board = BOARDS[name]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    channel = variables["channel"]
    assert channel["multi"] and channel["includeAll"] and channel["type"] == "query"
    for text in _texts(board):
        for match in VAR_RE.finditer(text):
            used = match.group(1) or match.group(2)
            if used.startswith("__"):
                assert used in BUILTIN or text[match.end() : match.end() + 1] == "(", used
                continue
            assert used in variables, f"{name}: ${used} is not a variable"
    for var in variables.values():
        if var["type"] == "query" and "$__timeFilter" in var["query"]:
            assert var["refresh"] == 2, var["name"]


@pytest.mark.parametrize("name", BOARDS)
def test_sql_follows_the_grafana_rules(name: str) -> None:
    board = BOARDS[name]
    multi = {v["name"] for v in board["templating"]["list"] if v.get("multi")}
    for sql in _sqls(board):
        assert "--" not in sql and "/*" not in sql, "comments are stripped in Grafana 12"
        assert not re.search(r"\$__timeGroup\(", sql), "use $__timeGroupAlias and GROUP BY 1"
        assert "$__interval" not in sql or "$__timeGroupAlias" in sql
        # Never Grafana's default escaping: every variable names its format (sqlstring: each
        # value one literal, ' doubled), and a literal is never written around it.
        assert unformatted_variables(sql) == [], f"variable without a format in {sql}"
        for match in re.finditer(r"\$\{(\w+):(\w+)\}", sql):
            assert match.group(2) == "sqlstring", f"${{{match.group(1)}:{match.group(2)}}}"
            assert sql[match.start() - 1] != "'", f"{match.group(0)} inside quotes"
        for var in multi:
            for match in re.finditer(rf"\$\{{?{var}\b", sql):
                before = sql[: match.start()]
                assert before.endswith(("IN (", "ARRAY[")), f"${var} outside IN (...)/ARRAY[...]"
    for panel in board["panels"]:
        for target in panel["targets"]:
            if target.get("format") == "time_series":
                raw = target["rawSql"]
                assert "$__timeGroupAlias(" in raw or '"time"' in raw, panel["title"]


def test_links_point_at_existing_dashboards() -> None:
    for board in BOARDS.values():
        for panel in board["panels"]:
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                uid = re.match(r"/d/([\w-]+)\?", link["url"])
                assert uid and uid.group(1) in UIDS.values(), link


def test_dashboards_cover_the_issue() -> None:
    titles = {name: {p["title"] for p in b["panels"]} for name, b in BOARDS.items()}
    assert {
        "Messages per minute",
        "Unique chatters",
        "Emote share",
        "Toxicity",
        "Subs, bits and raids",
        "Current hype score",
    } <= titles["overview"]
    assert {"Top emotes", "Emote bursts", "Emote activity heatmap (top 20)"} <= titles["emotes"]
    assert {"Most positive messages", "Most negative messages"} <= titles["sentiment"]
    assert "Top flagged messages" in titles["moderation"]
    assert {"Spool", "Scorer", "Clip jobs", "Reconnects and gaps"} <= titles["pipeline"]


def test_pipeline_health_shows_the_bus() -> None:
    """Publish rate, consumer lag, redeliveries, lease owners and orphaned channels (issue 18),
    read from Prometheus, on metric names the bus really exports."""
    from prometheus_client import CollectorRegistry, generate_latest

    from bus.metrics import BusMetrics

    registry = CollectorRegistry()
    metrics = BusMetrics(registry)
    metrics.published.labels("nymn").inc()
    metrics.leases_owned.labels("a").set(1)
    metrics.takeovers.labels("nymn").inc()
    exported = set(
        re.findall(r"^(chatpulse_bus_\w+?)(?:\{| )", generate_latest(registry).decode(), re.M)
    )
    panels = {p["title"]: p for p in BOARDS["pipeline"]["panels"]}
    wanted = {
        "Bus publish rate": "chatpulse_bus_published_total",
        "Bus consumer lag": "chatpulse_bus_consumer_pending",
        "Bus redeliveries and poison": "chatpulse_bus_redelivered_total",
        "Channel leases": "chatpulse_bus_orphaned_channels",
    }
    for title, metric in wanted.items():
        exprs = [t["expr"] for t in panels[title]["targets"]]
        assert any(metric in e for e in exprs), (title, exprs)
        assert panels[title]["datasource"]["type"] == "prometheus", title
    assert "chatpulse_bus_leases_owned" in " ".join(
        t["expr"] for t in panels["Channel leases"]["targets"]
    )
    for panel in panels.values():
        for target in panel["targets"]:
            for name in re.findall(r"chatpulse_bus_\w+", target.get("expr", "")):
                assert name in exported, (panel["title"], name)
    search = {v["name"]: v for v in BOARDS["search"]["templating"]["list"]}
    assert search["search"]["type"] == "textbox"
    for name in ("overview", "emotes"):
        annotations = {a["name"] for a in BOARDS[name]["annotations"]["list"]}
        assert {"Hype moments", "Clips"} <= annotations


def test_stream_dashboards_cover_issue_15() -> None:
    """Streams, Audience and Compare channels: their panels, and a stream variable that is one
    literal (never a bare value) and lists the newest stream first."""
    titles = {name: {p["title"] for p in b["panels"]} for name, b in BOARDS.items()}
    assert {
        "Streams",
        "Shape: share of messages by tenth",
        "Mood by tenth",
        "Emote share by tenth",
    } <= titles["streams"]
    assert {
        "Segment shares per stream",
        "First-time and returning chatters",
        "Retention stream to stream",
        "This stream's audience",
    } <= titles["audience"]
    assert {"Signatures", "Audience overlap", "Emote mix", "Usual stream shape"} <= titles[
        "compare"
    ]
    for name in ("streams", "audience"):
        variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
        stream = variables["stream"]
        assert not stream["multi"] and not stream["includeAll"] and stream["sort"] == 0
        assert "ORDER BY s.started_at DESC" in stream["query"]
        for sql in _sqls(BOARDS[name]):
            if "stream:sqlstring" in sql:
                assert "s.id::text = ${stream:sqlstring}" in sql
    shape = next(p for p in BOARDS["streams"]["panels"] if p["title"].startswith("Shape"))
    assert "chat.channel_shape" in shape["targets"][0]["rawSql"]
    links = [
        link["url"]
        for p in BOARDS["streams"]["panels"]
        for link in p["fieldConfig"]["defaults"].get("links", [])
    ]
    assert any(url.startswith("/d/chatpulse-overview?") for url in links)
