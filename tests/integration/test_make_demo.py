"""``make demo`` installs once: a second run with an up-to-date venv only starts the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.paths import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_installs_once(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()

    def plan() -> str:
        done = subprocess.run(
            ["make", "-n", "demo", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "pip" in plan()  # first run: installs
    stamp = venv / ".installed"
    stamp.touch()
    later = time.time() + 3600  # newer than every source file
    os.utime(stamp, (later, later))
    again = plan()
    assert "pip" not in again and "chatpulse demo" in again
