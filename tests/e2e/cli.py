"""Run the installed ``chatpulse`` command as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def chatpulse_exe() -> list[str]:
    exe = shutil.which("chatpulse", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "chatpulse.app.cli"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``chatpulse ARGS`` with a clean CHATPULSE_* environment plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHATPULSE_")}
    base.update(env or {})
    return subprocess.run(
        [*chatpulse_exe(), *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=timeout,
        cwd=cwd,
    )
