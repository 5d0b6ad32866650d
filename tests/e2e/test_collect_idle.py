"""The compose stack with an empty channel list: the collector idles with one line, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.e2e.cli import chatpulse_exe, run_cli


def _env_example() -> dict[str, str]:
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def test_collector_of_the_compose_file_idles_without_channels(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["collector"]["command"]
    example = _env_example()
    assert example["CHATPULSE_CHANNELS"] == ""  # what a user who fills in nothing runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
    env.update(
        {
            "CHATPULSE_CHANNELS": "",
            "CHATPULSE_DATA_DIR": str(tmp_path / "d"),
            # a database that is not there: idling must not need one
            "CHATPULSE_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "CHATPULSE_METRICS_PORT": "0",
        }
    )
    proc = subprocess.Popen(
        [*chatpulse_exe(), *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the collector says something
        assert "no channel to collect" in first and "CHATPULSE_CHANNELS" in first, first
        assert proc.poll() is None  # still running: no exit, so no restart loop
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert rest.strip() == "", rest  # that one line, nothing else


def test_collect_without_channels_by_hand_still_exits_2() -> None:
    done = run_cli("collect", env={"CHATPULSE_METRICS_PORT": "0"})
    assert done.returncode == 2
    assert "CHATPULSE_CHANNELS" in done.stderr
