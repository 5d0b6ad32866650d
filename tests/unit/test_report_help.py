"""``chatpulse report --help`` says the time format and where the report goes by default."""

from __future__ import annotations

import contextlib
import io

import pytest

from chatpulse.app.cli import main


def test_report_help_names_time_format_and_default_output() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    assert done.value.code == 0
    text = " ".join(out.getvalue().split())  # argparse wraps lines
    assert "RFC 3339" in text and "2024-01-06T16:00:00Z" in text
    assert "default: report.html" in text
