"""load_migrations refuses a migrations folder it cannot read unambiguously."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatpulse.core.errors import MigrationError
from chatpulse.core.migrate import load_migrations


def test_bad_migration_layout_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_a.postgres.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="common file and backend files"):
        load_migrations(tmp_path)
    (tmp_path / "0001_a.postgres.sql").unlink()
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="not understood"):
        load_migrations(tmp_path)
