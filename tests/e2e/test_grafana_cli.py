"""``chatpulse grafana build [--check] [--out DIR]`` and ``chatpulse grafana push`` as a user runs them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from grafana.build import PROVISIONING_DIR
from tests.e2e.cli import run_cli


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


class FakeGrafana:
    """Grafana's HTTP API as far as push uses it; records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((method, self.path, body, self.headers["Authorization"]))
                status, reply = fake.route(method, self.path.split("?")[0])
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def route(self, method: str, path: str) -> tuple[int, Any]:
        if (method, path) == ("GET", "/api/folders/chatpulse"):
            return 404, {"message": "folder not found"}
        if (method, path) == ("GET", "/api/v1/provisioning/contact-points"):
            return 200, []
        return 200, {"status": "success"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    yield fake
    fake.close()


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
