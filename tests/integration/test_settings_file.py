"""Settings from a TOML file (``--config``/``CHATPULSE_CONFIG``): precedence and errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CHATPULSE_"):
            monkeypatch.delenv(key)


def test_flag_beats_environment_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'batch_size = 10\nqueue_size = 500\nchannels = ["Forsen"]\nclip_pre_roll_s = 5\n'
    )
    monkeypatch.setenv("CHATPULSE_QUEUE_SIZE", "700")
    monkeypatch.setenv("CHATPULSE_BATCH_SIZE", "20")
    s = load_settings(cfg, overrides={"batch_size": 30, "log_level": None})
    assert (s.batch_size, s.queue_size, s.channels, s.clip_pre_roll_s) == (30, 700, ["forsen"], 5.0)
    assert s.log_level == "info"


def test_unknown_toml_key_and_missing_file_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("bach_size = 3\n")
    with pytest.raises(ConfigError, match="bach_size"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "missing.toml")
    cfg.write_text("batch_size = [\n")
    with pytest.raises(ConfigError, match="CHATPULSE_CONFIG"):
        load_settings(cfg)
