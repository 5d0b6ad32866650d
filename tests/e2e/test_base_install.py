"""``pip install .`` without extras runs every base command (issue 13, item 4).

Builds the wheel from a copy of the source tree (printing no setuptools warnings), installs it
into a fresh virtual environment that gets only the base dependencies (from whatever index
pip is configured with), checks that numpy is not there, and runs migrate, replay, score,
detect, eval and report in it against a real database; then a model backend, which exits 2
naming the extra to install.  About a minute with a warm pip cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FIXTURES, ROOT
from tests.helpers import write_irc_log

pytestmark = pytest.mark.base_install

_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench", "docs"
)


def _run(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def test_base_install_runs_every_base_command(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_SKIP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATPULSE_", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip"]

    built = _run([*pip, "wheel", "-v", "--no-deps", "-w", str(tmp_path / "dist"), str(src)], env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    log = built.stdout + built.stderr
    assert "Package would be ignored" not in log
    assert "SetuptoolsDeprecationWarning" not in log
    wheel = next((tmp_path / "dist").glob("chatpulse-*.whl"))

    target = tmp_path / "venv"
    venv.create(target, with_pip=False, system_site_packages=False)
    python = str(target / "bin" / "python")
    installed = _run([*pip, "--python", python, "install", "-q", "--no-compile", str(wheel)], env)
    assert installed.returncode == 0, installed.stderr[-3000:]
    no_numpy = _run([python, "-c", "import numpy"], env)
    assert no_numpy.returncode != 0 and "No module named 'numpy'" in no_numpy.stderr

    chat = write_irc_log(tmp_path / "nymn.log")
    env.update(
        {
            "CHATPULSE_DATABASE_URL": db_url,
            "CHATPULSE_DATA_DIR": str(tmp_path / "data"),
            "CHATPULSE_EMOTE_PROVIDERS": "",
        }
    )
    exe = str(target / "bin" / "chatpulse")
    report = tmp_path / "report.html"
    labelled = FIXTURES / "labelled-chat" / "chat_sentiment.csv"
    # No CHATPULSE_METRICS_PORT: one-shot commands serve no /metrics, so none can clash.
    for args, expect in [
        (["migrate"], r""),
        (["replay", str(chat)], r"798"),
        (["score", "--until-idle"], r"scored 798 messages with lexicon@"),
        (["detect", "--until-idle"], r"emote bursts"),
        (["eval", "sentiment", str(labelled)], r"(?i)macro"),
        (["report", "--channel", "nymn", "--out", str(report)], r""),
    ]:
        done = _run([exe, *args], env)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        assert re.search(expect, done.stdout), (args, done.stdout)
    assert "<svg" in report.read_text()
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM chat.messages), (SELECT count(*) FROM chat.message_scores)"
        ).fetchone()
    assert row == (798, 798)

    # Streams and audiences run on the base install; clustering says it needs the extra.
    done = _run([exe, "analyze", "--until-idle"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 streams recomputed" in done.stdout
    assert "pip install 'chatpulse[analytics]'" in done.stderr

    for backend, extra in (("onnx", "onnx"), ("transformers", "ml")):
        done = _run([exe, "score", "--until-idle", "--backend", backend], env)
        assert done.returncode == 2, done.stderr[-3000:]
        assert f"pip install 'chatpulse[{extra}]'" in done.stderr
        assert "Traceback" not in done.stderr
