"""Shape of the committed alerting and datasource provisioning files ([GRAFANA])."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.build import PROVISIONING_DIR

ALERTING = PROVISIONING_DIR / "alerting"


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == 1
    return dict(doc)


RULES = [r for g in _load(ALERTING / "rules.yaml")["groups"] for r in g["rules"]]
DURATION = re.compile(r"^\d+[smh]$")


def test_groups_shape() -> None:
    groups = _load(ALERTING / "rules.yaml")["groups"]
    assert {g["name"] for g in groups} == {"chatpulse-hype", "chatpulse-chat", "chatpulse-pipeline"}
    for group in groups:
        assert group["orgId"] == 1 and group["folder"] == "chatpulse"
        seconds = int(group["interval"][:-1]) * {"s": 1, "m": 60}[group["interval"][-1]]
        assert seconds % 10 == 0, "a group interval is a multiple of 10 s"
    uids = [r["uid"] for r in RULES]
    assert len(uids) == len(set(uids)) == 8
    assert all(re.fullmatch(r"[\w-]{1,40}", u) for u in uids)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["uid"])
def test_rule_shape(rule: dict[str, Any]) -> None:
    assert rule["condition"] == "C"
    assert [d["refId"] for d in rule["data"]] == ["A", "B", "C"]
    query, reduce, threshold = rule["data"]
    assert query["datasourceUid"] in ("chatpulse", "prometheus")
    assert query["relativeTimeRange"]["from"] > 0 and query["relativeTimeRange"]["to"] == 0
    model = query["model"]
    text = model.get("rawSql") or model["expr"]
    assert "$__interval" not in text, "alert rules evaluate $__interval as 1s"
    if query["datasourceUid"] == "chatpulse":
        assert model["format"] == "table" and model["datasource"]["uid"] == "chatpulse"
        assert not re.search(r"\bAS\s+metric\b", text, re.I)
    assert reduce["datasourceUid"] == threshold["datasourceUid"] == "__expr__"
    assert reduce["model"]["type"] == "reduce" and reduce["model"]["expression"] == "A"
    assert reduce["model"]["settings"]["mode"] == "dropNN"
    assert threshold["model"]["type"] == "threshold" and threshold["model"]["expression"] == "B"
    evaluator = threshold["model"]["conditions"][0]["evaluator"]
    assert evaluator["type"] in ("gt", "lt") and len(evaluator["params"]) == 1
    assert DURATION.match(rule["for"])
    assert rule["noDataState"] in ("NoData", "Alerting", "OK", "KeepLast")
    assert rule["execErrState"] in ("Error", "Alerting", "OK", "KeepLast")
    assert {"summary", "description", "runbook"} <= set(rule["annotations"])
    assert all("$" not in v for v in rule["labels"].values())
    assert ("dashboardUid" in rule) == ("panelId" in rule)


def test_rules_link_to_existing_panels() -> None:
    boards = {
        json.loads(p.read_text())["uid"]: json.loads(p.read_text())
        for p in (PROVISIONING_DIR / "dashboards" / "chatpulse").glob("*.json")
    }
    for rule in RULES:
        panels = {p["id"] for p in boards[rule["dashboardUid"]]["panels"]}
        assert rule["panelId"] in panels, rule["uid"]


def test_contact_point_is_the_clipper_webhook_with_secrets_from_env() -> None:
    (cp,) = _load(ALERTING / "contact-points.yaml")["contactPoints"]
    (receiver,) = cp["receivers"]
    settings = receiver["settings"]
    assert receiver["type"] == "webhook" and receiver["uid"] == "chatpulse-clipper"
    assert settings["url"] == "http://clipper:8095/webhooks/grafana"
    assert settings["httpMethod"] == "POST"
    assert settings["authorization_scheme"] == "Bearer"
    assert settings["authorization_credentials"] == "$__env{CHATPULSE_WEBHOOK_TOKEN}"
    assert settings["hmacConfig"] == {
        "secret": "$__env{CHATPULSE_WEBHOOK_HMAC_SECRET}",
        "header": "X-Grafana-Alerting-Signature",
        # signed with the timestamp: the clipper refuses a signature without one by default
        "timestampHeader": "X-Grafana-Alerting-Timestamp",
    }


def test_policy_routes_hype_to_the_clipper_grouped_by_channel() -> None:
    (tree,) = _load(ALERTING / "policies.yaml")["policies"]
    (route,) = tree["routes"]
    assert route["receiver"] == "chatpulse-clipper"
    assert route["object_matchers"] == [["chatpulse", "=", "hype"]]
    assert "channel" in route["group_by"]
    hype = next(r for r in RULES if r["uid"] == "chatpulse-hype-moment")
    assert hype["labels"]["chatpulse"] == "hype"
    others = [r for r in RULES if r is not hype]
    assert all(r["labels"]["chatpulse"] != "hype" for r in others)


def test_datasources() -> None:
    pg, prom = _load(PROVISIONING_DIR / "datasources" / "chatpulse.yaml")["datasources"]
    assert pg["uid"] == "chatpulse" and pg["type"] == "grafana-postgresql-datasource"
    assert pg["user"] == "chatpulse_reader"
    assert "password" not in pg and pg["secureJsonData"]["password"].startswith("$__env{")
    assert pg["jsonData"]["database"].startswith("$__env{") and "database" not in pg
    assert re.fullmatch(r"\$__env\{\w+\}", pg["url"])
    assert pg["jsonData"]["timescaledb"] is True
    assert prom["uid"] == "prometheus" and prom["type"] == "prometheus"
    provider = _load(PROVISIONING_DIR / "dashboards" / "chatpulse.yaml")["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"].endswith("/chatpulse")
