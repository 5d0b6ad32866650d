"""Layers only point down: the core imports no service, services import no application code,
and services import each other only along the edges declared in ``ALLOWED`` below.

Every import is checked, also those inside functions and under ``TYPE_CHECKING``: a lazy
import is still a dependency.  docs/architecture.md draws the same table.
"""

from __future__ import annotations

import ast
import inspect
import pkgutil
import re
from importlib import import_module
from pathlib import Path

import pytest

import chatpulse.core.errors as errors_module
from chatpulse.core.errors import ChatpulseError

ROOT = Path(__file__).resolve().parents[2]

CORE = "chatpulse.core"
APP = "chatpulse.app"
SERVICES = (
    "collector",
    "scorer",
    "detector",
    "clipper",
    "grafana",
    "bus",
    "analytics",
    "forecast",
    "topics",
)

#: The service-to-service edges that may exist (importer -> imported).  Anything not listed
#: is a back-edge.  The bus moves the collector's events, so it builds on the collector.
ALLOWED: dict[str, frozenset[str]] = {
    "bus": frozenset({"collector"}),
    "analytics": frozenset(),
    "forecast": frozenset(),
    "topics": frozenset(),
    "collector": frozenset(),
    "scorer": frozenset(),
    "detector": frozenset(),
    # The clip API is the one HTTP app; it also serves GET /ask (topics).
    "clipper": frozenset({"topics"}),
    "grafana": frozenset(),
}


def _layer(module: str) -> str | None:
    """``core``, ``app``, a service's name, or None for code outside the packages."""
    if module == CORE or module.startswith(CORE + "."):
        return "core"
    if module == APP or module.startswith(APP + "."):
        return "app"
    top = module.partition(".")[0]
    if top in SERVICES:
        return top
    if module in ("chatpulse", "chatpulse.demo_data", "chatpulse.sql"):
        return "core"  # the version string and package data
    return None


def _modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("chatpulse", *SERVICES):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from pkg import module`` imports pkg.module
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def _back_edge(importer: str, imported: str) -> str | None:
    """Why ``importer -> imported`` breaks the layering, or None when it is allowed."""
    src, dst = _layer(importer), _layer(imported)
    if dst is None or src == dst:
        return None
    if src == "core":
        return f"the core imports {dst}"
    if dst == "app":
        return f"{src} imports the application layer"
    if src == "app" or dst == "core":
        return None
    assert src is not None
    if dst not in ALLOWED[src]:
        return f"{src} -> {dst} is not in ALLOWED"
    return None


def _violations() -> list[str]:
    known = {name for name, _ in _modules()}
    found = []
    for module, path in _modules():
        for line, imported in _imports(module, path):
            if imported.partition(".")[0] not in ("chatpulse", *SERVICES):
                continue
            if imported not in known and imported.rpartition(".")[0] in known:
                imported = imported.rpartition(".")[0]  # ``from m import name``: the module m
            why = _back_edge(module, imported)
            if why:
                rel = path.relative_to(ROOT)
                found.append(f"{rel}:{line}: {module} imports {imported} ({why})")
    return sorted(set(found))


def test_no_module_imports_against_the_layers() -> None:
    violations = _violations()
    assert not violations, "back-edges:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("importer", "imported", "said"),
    [
        ("chatpulse.core.settings", "collector.sources.websocket", "the core imports collector"),
        ("chatpulse.core.db", "chatpulse.app.cli", "the core imports app"),
        ("grafana.dashboards", "scorer.backends.base", "grafana -> scorer"),
        ("clipper.worker", "collector.app", "clipper -> collector"),
        ("detector.runner", "chatpulse.app.commands.detect", "imports the application layer"),
    ],
)
def test_each_kind_of_back_edge_is_caught(importer: str, imported: str, said: str) -> None:
    why = _back_edge(importer, imported)
    assert why is not None and said in why


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("chatpulse.app.stack", "collector.app"),
        ("collector.writer", "chatpulse.core.db"),
        ("scorer.loop", "scorer.backends"),
        ("chatpulse.core.migrate", "chatpulse.core.db"),
    ],
)
def test_downward_imports_are_allowed(importer: str, imported: str) -> None:
    assert _back_edge(importer, imported) is None


def test_imports_inside_functions_are_seen() -> None:
    # chatpulse.core.settings validates ws_mapping with a function-level import.
    settings = ROOT / "chatpulse" / "core" / "settings.py"
    assert "chatpulse.core.mapping" in {m for _, m in _imports("chatpulse.core.settings", settings)}


def test_every_exception_class_is_in_the_one_tree() -> None:
    """Every public exception class of the packages derives from ChatpulseError and is drawn in
    the tree of chatpulse.core.errors' docstring."""
    strays, undrawn = [], []
    tree = errors_module.__doc__ or ""
    for top in ("chatpulse", *SERVICES):
        package = import_module(top)
        for info in pkgutil.walk_packages(package.__path__, top + "."):
            if info.name.startswith("scorer.backends.") and info.name.endswith("_backend"):
                continue  # need the ml/onnx extras' libraries
            if info.name.startswith("chatpulse.sql") or info.name.startswith(
                "grafana.provisioning"
            ):
                continue
            module = import_module(info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == info.name
                    and not name.startswith("_")
                ):
                    if not issubclass(obj, ChatpulseError):
                        strays.append(f"{info.name}.{name}")
                    elif not re.search(rf"(?m)^[ │├└─]*{name}\b", tree):
                        undrawn.append(f"{info.name}.{name}")
    assert not strays, f"derive these from chatpulse.core.errors.ChatpulseError: {strays}"
    assert not undrawn, f"draw these in chatpulse/core/errors.py's tree: {undrawn}"
