"""Kept for imports: the HTTP stubs live in :mod:`tests.plugins.http`."""

from tests.plugins.http import HttpStub

__all__ = ["HttpStub"]
