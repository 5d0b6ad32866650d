"""The CLI's shape: every command of the README exists and has --help."""

from __future__ import annotations

import pytest

from chatpulse.app.cli import build_parser, main

COMMANDS = [
    ["migrate"],
    ["collect"],
    ["replay"],
    ["score"],
    ["detect"],
    ["clipper", "serve"],
    ["clipper", "worker"],
    ["clipper", "add-vod"],
    ["record"],
    ["grafana", "build"],
    ["grafana", "push"],
    ["up"],
    ["demo"],
    ["doctor"],
    ["forget"],
    ["eval"],
    ["models", "export"],
    ["report"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chatpulse " + " ".join(command))


def test_flags_map_onto_settings() -> None:
    args = build_parser().parse_args(
        [
            "--log-level",
            "debug",
            "collect",
            "--channel",
            "a",
            "--channel",
            "B",
            "--metrics-port",
            "0",
        ]
    )
    assert args.log_level == "debug"
    assert args.channels == ["a", "B"]
    assert args.metrics_port == 0


def test_bad_flag_value_exits_2_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--log-level", "loud", "doctor"]) == 2
    assert "CHATPULSE_LOG_LEVEL" in capsys.readouterr().err
