"""Unit tests do no file or network I/O: this conftest fails a unit test that tries.

The rule (README, "Development": ``tests/unit`` has no I/O): a unit test feeds the pure core
literal values (bytes, lines, dataclasses) and checks what comes back.  A test about files,
sockets, a database or a subprocess's files belongs in tests/integration (or tests/e2e for the
CLI as a user runs it).

The autouse fixture :func:`_no_io` patches, for the duration of each unit test (its fixtures
included):

* sockets: ``socket.socket.connect``/``connect_ex``/``bind``/``sendto``,
  ``socket.create_connection`` and ``socket.getaddrinfo`` (so no TCP, UDP or DNS);
* file writes: ``open``/``io.open`` (hence ``Path.open``, ``write_text``, ``gzip.open`` …) with
  a mode that writes (``w``, ``a``, ``x``, ``+``), ``os.open`` with a flag that creates or writes,
  and ``os.mkdir``/``makedirs``/``remove``/``unlink``/``rmdir``/``rename``/``replace``/
  ``truncate``/``utime``/``symlink``/``link`` (hence ``tmp_path``, ``Path.touch``, ``tempfile``).

Each raises :class:`UnitTestIOError` naming what was tried.  Reading files stays allowed: the
package's data (lexicons, SQL, migrations) and the test data named in :mod:`tests.paths`.
``socket.socketpair`` stays allowed too (an asyncio event loop wakes itself through one).  Not
watched: what a subprocess does (a unit test that starts one checks what it prints, no more).
Hypothesis keeps no example database here (it would write ``.hypothesis/``): a failing property
test shows its falsifying example rather than this guard's error.
"""

from __future__ import annotations

import builtins
import io
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("unit-no-io", database=None)
settings.load_profile("unit-no-io")

_WRITE_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC | getattr(os, "O_TMPFILE", 0)
)
_WRITE_MODES = frozenset("wax+")
_OS_WRITES = (
    "mkdir",
    "makedirs",
    "remove",
    "unlink",
    "rmdir",
    "rename",
    "replace",
    "truncate",
    "utime",
    "symlink",
    "link",
)
_SOCKET_METHODS = ("connect", "connect_ex", "bind", "sendto")


class UnitTestIOError(AssertionError):
    """A unit test tried file or network I/O (see the module docstring)."""


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        shown = ", ".join(repr(a) for a in args[:2])
        raise UnitTestIOError(
            f"unit tests do no file or network I/O (tests/unit/conftest.py): {what}({shown}); "
            "give the code the data itself, or move the test to tests/integration"
        )

    return refused


@pytest.fixture(autouse=True)
def _no_io(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_open = io.open
    real_os_open = os.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if _WRITE_MODES & set(mode):
            _refuse("open")(file, mode)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS:
            _refuse("os.open")(path, flags)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name in _OS_WRITES:
        monkeypatch.setattr(os, name, _refuse(f"os.{name}"))
    for name in _SOCKET_METHODS:
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", _refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse("socket.getaddrinfo"))
    yield
