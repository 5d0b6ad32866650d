"""``/metrics``: one-shot commands serve none unless asked; a taken port is handled per origin."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from chatpulse.core.errors import ConfigError
from chatpulse.core.metrics import serve_metrics
from chatpulse.core.settings import Settings, load_settings
from tests.helpers import free_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket holds for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _defaulted(port: int) -> Settings:
    """Settings whose metrics_port has the value ``port`` but counts as not set by the user."""
    base = load_settings()
    values = {**base.model_dump(), "metrics_port": port, "metrics_host": "127.0.0.1"}
    fields = set(base.model_fields_set) - {"metrics_port"}
    return Settings.model_construct(_fields_set=fields, **values)


def _explicit(port: int) -> Settings:
    return load_settings(overrides={"metrics_port": port, "metrics_host": "127.0.0.1"})


def test_one_shot_serves_nothing_on_the_default_port(taken_port: int) -> None:
    # The default port is held by a long-running service: a one-shot command neither fails
    # nor binds.
    assert serve_metrics(_defaulted(taken_port), CollectorRegistry(), one_shot=True) is False


def test_one_shot_serves_when_the_port_is_set() -> None:
    port = free_port()
    registry = CollectorRegistry()
    Counter("cp_test_one_shot", "test", registry=registry).inc()
    assert serve_metrics(_explicit(port), registry, one_shot=True) is True
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert "cp_test_one_shot_total 1.0" in r.read().decode()


def test_service_on_a_taken_default_port_warns_and_runs_on(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="chatpulse.core.metrics"):
        assert serve_metrics(_defaulted(taken_port), CollectorRegistry()) is False
    assert any("default metrics port is taken" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("one_shot", [False, True])
def test_explicit_taken_port_stops_with_the_setting_named(taken_port: int, one_shot: bool) -> None:
    with pytest.raises(ConfigError, match="metrics_port"):
        serve_metrics(_explicit(taken_port), CollectorRegistry(), one_shot=one_shot)
