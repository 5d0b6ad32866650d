"""``chatpulse grafana build [--check] [--out DIR]`` and ``chatpulse grafana push`` as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grafana.build import PROVISIONING_DIR
from tests.e2e.cli import run_cli
from tests.plugins.http import HttpServerStub


def test_build_then_check_passes_and_an_edit_fails_the_check(tmp_path: Path) -> None:
    out = tmp_path / "provisioning"
    built = run_cli("grafana", "build", "--out", str(out))
    assert built.returncode == 0, built.stderr
    for rel in (
        "datasources/chatpulse.yaml",
        "dashboards/chatpulse.yaml",
        "dashboards/chatpulse/overview.json",
        "alerting/rules.yaml",
        "alerting/contact-points.yaml",
        "alerting/policies.yaml",
    ):
        assert (out / rel).read_text() == (PROVISIONING_DIR / rel).read_text(), rel
    assert run_cli("grafana", "build", "--check", "--out", str(out)).returncode == 0

    board = out / "dashboards/chatpulse/emotes.json"
    board.write_text(board.read_text().replace("Top emotes", "Top emotes (edited)"))
    failed = run_cli("grafana", "build", "--check", "--out", str(out))
    assert failed.returncode == 1
    assert "differs dashboards/chatpulse/emotes.json" in failed.stderr

    assert run_cli("grafana", "build", "--out", str(out)).returncode == 0
    (out / "alerting/old-rule.yaml").write_text("apiVersion: 1\n")
    stale = run_cli("grafana", "build", "--check", "--out", str(out))
    assert stale.returncode == 1 and "stale alerting/old-rule.yaml" in stale.stderr


def test_committed_provisioning_passes_the_ci_check() -> None:
    result = run_cli("grafana", "build", "--check")
    assert result.returncode == 0, result.stderr


class FakeGrafana(HttpServerStub):
    """Grafana's HTTP API as far as push uses it; records every request."""

    def __init__(self) -> None:
        super().__init__(lambda request: self.route(request.method, request.path.split("?")[0]))

    @property
    def requests(self) -> list[tuple[str, str, Any, str | None]]:
        """(method, path, JSON body or None, Authorization header) per request, in order."""
        return [
            (
                r.method,
                r.path,
                json.loads(r.body) if r.body else None,
                next((v for k, v in r.headers.items() if k.lower() == "authorization"), None),
            )
            for r in self.received
        ]

    def route(self, method: str, path: str) -> tuple[int, Any]:
        if (method, path) == ("GET", "/api/folders/chatpulse"):
            return 404, {"message": "folder not found"}
        if (method, path) == ("GET", "/api/v1/provisioning/contact-points"):
            return 200, []
        return 200, {"status": "success"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana() as fake:
        yield fake


def test_push_sends_dashboards_rules_contact_point_and_policy(grafana: FakeGrafana) -> None:
    env = {
        "CHATPULSE_GRAFANA_URL": grafana.url,
        "CHATPULSE_GRAFANA_TOKEN": "glsa_test",
        "CHATPULSE_WEBHOOK_TOKEN": "tok-123",
        "CHATPULSE_WEBHOOK_HMAC_SECRET": "hmac-456",
    }
    result = run_cli("grafana", "push", env=env)
    assert result.returncode == 0, result.stderr
    calls = [(m, p.split("?")[0]) for m, p, _, _ in grafana.requests]
    assert ("POST", "/api/folders") in calls
    assert calls.count(("POST", "/api/dashboards/db")) == 12
    groups = [p for m, p in calls if m == "PUT" and "/rule-groups/" in p]
    assert sorted(groups) == [
        f"/api/v1/provisioning/folder/chatpulse/rule-groups/chatpulse-{g}"
        for g in ("chat", "hype", "pipeline")
    ]
    assert all(auth == "Bearer glsa_test" for _, _, _, auth in grafana.requests)
    (cp,) = [
        b
        for m, p, b, _ in grafana.requests
        if p == "/api/v1/provisioning/contact-points" and m == "POST"
    ]
    assert cp["settings"]["authorization_credentials"] == "tok-123"
    assert cp["settings"]["hmacConfig"]["secret"] == "hmac-456"
    assert "$__env" not in json.dumps(cp)
    (tree,) = [b for m, p, b, _ in grafana.requests if p == "/api/v1/provisioning/policies"]
    assert tree["routes"][0]["receiver"] == "chatpulse-clipper"
    hype_group = next(
        b for m, p, b, _ in grafana.requests if p.endswith("/rule-groups/chatpulse-hype")
    )
    assert hype_group["interval"] == 30
    assert hype_group["rules"][0]["folderUID"] == "chatpulse"


def test_push_without_webhook_secrets_is_a_config_error(grafana: FakeGrafana) -> None:
    result = run_cli("grafana", "push", env={"CHATPULSE_GRAFANA_URL": grafana.url})
    assert result.returncode == 2
    assert "CHATPULSE_WEBHOOK_TOKEN" in result.stderr
    assert grafana.requests == []
