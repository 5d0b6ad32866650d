"""The suite's own databases: prefixed, dropped after the run, leftovers of killed runs swept.

The outer test runs pytest on the inner test in a child process with its own prefix, after
planting the database of a "killed" run (no one holds its lock) and one of a run still going
(this process holds its lock).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import LOCK_CLASS, ROOT

INNER = "CHATPULSE_TEST_INNER_RECORD"


def _databases(admin_url: str, prefix: str) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.skipif(INNER not in os.environ, reason="run by test_run_drops_its_databases")
def test_inner_uses_a_database(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    Path(os.environ[INNER]).write_text(str(row[0]))


def test_run_drops_its_databases(admin_url: str, tmp_path: Path) -> None:
    prefix = f"cp_dbtest_{os.getpid()}_"
    dead, alive = f"{prefix}0000beef_x", f"{prefix}0000cafe_x"
    record = tmp_path / "inner.txt"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, 0xCAFE))
        try:
            for name in (dead, alive):
                conn.execute(f'CREATE DATABASE "{name}"')
            env = {**os.environ, "CHATPULSE_TEST_DB_PREFIX": prefix, INNER: str(record)}
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                 f"{Path(__file__).relative_to(ROOT)}::test_inner_uses_a_database"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            used = record.read_text()
            assert used.startswith(prefix), used
            # The inner run's databases (the template and the test's) are gone, the killed
            # run's leftover too; the live run's database stays.
            assert _databases(admin_url, prefix) == {alive}
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{dead}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{alive}" WITH (FORCE)')


def test_bad_prefix_is_refused() -> None:
    env = {**os.environ, "CHATPULSE_TEST_DB_PREFIX": "bad-prefix;"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co",
         str(Path(__file__).relative_to(ROOT))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "CHATPULSE_TEST_DB_PREFIX" in proc.stdout + proc.stderr
