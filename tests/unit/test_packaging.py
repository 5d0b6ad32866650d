"""The wheel ships every package, the migrations and the Grafana provisioning files."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.paths import ROOT

#: The repository's top-level Python packages, as found (sql/ ships as chatpulse.sql through
#: package-dir; tests/ does not ship).
TOP_PACKAGES = sorted(
    init.parent.name
    for init in ROOT.glob("*/__init__.py")
    if init.parent.name not in {"sql", "tests"}
)


def test_every_python_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {pkg: ROOT / path for pkg, path in config["package-dir"].items()}
    found = set()
    for top in TOP_PACKAGES:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    for pkg, path in mapped.items():
        assert (path / "__init__.py").is_file()
        found.add(pkg)
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert mapped["chatpulse.sql"] == ROOT / "sql"


def test_every_data_directory_is_listed_in_pyproject() -> None:
    # setuptools prints a "Package would be ignored" block for each directory of package data
    # that is not listed.
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for top in TOP_PACKAGES:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found.add(".".join(path.parent.relative_to(ROOT).parts))
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_named_query_files_ship_in_the_wheel() -> None:
    # sql/queries/ has no __init__.py: it ships only as a listed package of the mapped sql/.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "chatpulse.sql.queries" in config["packages"]
    assert "**/*.sql" in config["package-data"]["chatpulse.sql"]
    assert list((ROOT / "sql" / "queries").glob("*.sql"))


def test_license_is_an_spdx_string_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert all((ROOT / f).is_file() for f in project["license-files"])


# Imports every module a base command may load, with the extras' libraries made unimportable,
# then runs `score` with each model backend: exit 2 naming the extra to install.
_BLOCKED_RUN = r"""
import contextlib, importlib, io, pkgutil, sys

BLOCKED = {"numpy", "torch", "onnxruntime", "tokenizers", "transformers", "onnx", "sklearn", "plotly"}
MODEL_BACKENDS = {"scorer.backends.transformers_backend", "scorer.backends.onnx_backend"}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Blocker())
failed = []
for top in ("chatpulse", "collector", "scorer", "detector", "clipper", "grafana", "bus", "analytics", "forecast", "topics"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name in MODEL_BACKENDS:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
assert not failed, failed
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
assert not loaded, loaded

from chatpulse.app.cli import main

for backend, extra in (("onnx", "onnx"), ("transformers", "ml")):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["score", "--backend", backend, "--database-url", "postgresql://x@127.0.0.1:1/x"])
    assert code == 2, (backend, code, err.getvalue())
    assert f"pip install 'chatpulse[{extra}]'" in err.getvalue(), err.getvalue()
    assert "CHATPULSE_SCORER_BACKEND" in err.getvalue(), err.getvalue()
for argv in (["forecast", "--until-idle"], ["eval", "forecast"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([*argv, "--database-url", "postgresql://x@127.0.0.1:1/x"])
    assert code == 2, (argv, code, err.getvalue())
    assert "pip install 'chatpulse[forecast]'" in err.getvalue(), err.getvalue()
print("ok")
"""


def test_base_commands_import_without_the_extras_libraries() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_image_build_copies_what_the_build_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    needed = [project["readme"], *project["license-files"]]
    copied = " ".join(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
    ).split()
    assert all(name in copied for name in needed), needed
