"""prometheus/: the scrape config and rules pass promtool, and the rule unit tests pass."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_promtool_check_config() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests() -> None:
    result = _promtool("test", "rules", "tests/chatpulse_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_is_scraped() -> None:
    config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    assert targets["chatpulse-collector"] == "collector:9108"
    assert targets["chatpulse-scorer"] == "scorer:9109"
    assert targets["chatpulse-detector"] == "detector:9110"
    assert targets["chatpulse-clipper"] == "clipper:8095"


def test_grafana_prometheus_rules_read_recorded_series() -> None:
    rules = yaml.safe_load((ROOT / "rules" / "chatpulse.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    grafana = yaml.safe_load(
        (ROOT.parent / "grafana" / "provisioning" / "alerting" / "rules.yaml").read_text()
    )
    for group in grafana["groups"]:
        for rule in group["rules"]:
            expr = rule["data"][0]["model"].get("expr")
            if expr:
                names = set(re.findall(r"chatpulse:[\w:]+", expr))
                assert names and names <= recorded, (rule["uid"], names)
