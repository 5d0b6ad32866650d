"""The wheel ships every package, the migrations and the Grafana provisioning files."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_python_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {pkg: ROOT / path for pkg, path in config["package-dir"].items()}
    found = set()
    for top in ("chatpulse", "collector", "scorer", "clipper", "grafana"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    for pkg, path in mapped.items():
        assert (path / "__init__.py").is_file()
        found.add(pkg)
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert mapped["chatpulse.sql"] == ROOT / "sql"
