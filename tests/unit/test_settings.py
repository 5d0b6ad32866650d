"""Settings: sources, precedence, validation messages, secrets."""

from __future__ import annotations

import pytest

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import describe_settings, load_settings, redact_url
from tests.paths import ROOT


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CHATPULSE_"):
            monkeypatch.delenv(key)


def test_channels_from_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATPULSE_CHANNELS", "#NymN, forsen  xqc,nymn")
    assert load_settings().channels == ["nymn", "forsen", "xqc"]


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("CHATPULSE_METRICS_PORT", "lots", "CHATPULSE_METRICS_PORT"),
        ("CHATPULSE_METRICS_PORT", "70000", "CHATPULSE_METRICS_PORT"),
        ("CHATPULSE_DATABASE_URL", "mysql://x/y", "CHATPULSE_DATABASE_URL"),
        ("CHATPULSE_TWITCH_IRC_URL", "http://example", "CHATPULSE_TWITCH_IRC_URL"),
        ("CHATPULSE_RETENTION", "90d", "CHATPULSE_RETENTION"),
        ("CHATPULSE_CHANNELS", "bad name!", "CHATPULSE_CHANNELS"),
        ("CHATPULSE_SCORER_BACKEND", "gpt", "CHATPULSE_SCORER_BACKEND"),
        ("CHATPULSE_CLIP_STORAGE", "s3://", "CHATPULSE_CLIP_STORAGE"),
        ("CHATPULSE_FLUSH_INTERVAL_S", "0", "CHATPULSE_FLUSH_INTERVAL_S"),
    ],
)
def test_bad_setting_raises_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)


def test_secret_values_never_in_error_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATPULSE_WEBHOOK_TOKEN", "hunter2-token")
    monkeypatch.setenv("CHATPULSE_DATABASE_URL", "postgresql://u:pa55word@db/chat")
    s = load_settings()
    assert "hunter2" not in repr(s) and "pa55word" not in repr(s)
    monkeypatch.setenv("CHATPULSE_METRICS_PORT", "nope")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "hunter2" not in str(err.value) and "pa55word" not in str(err.value)


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://u:secret@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_every_setting_is_documented() -> None:
    rows = describe_settings()
    assert all(env.startswith("CHATPULSE_") and desc for _, env, _, desc in rows)
    readme = (ROOT / "README.md").read_text()
    missing = [env for _, env, _, _ in rows if env not in readme]
    assert missing == []


def test_readme_settings_table_is_generated_from_the_code() -> None:
    from chatpulse.core.settings import settings_table

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block == settings_table(), (
        "run: python -m chatpulse.core.settings and paste into README.md"
    )
