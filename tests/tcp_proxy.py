"""Kept for imports: the proxy lives in :mod:`tests.plugins.proxy`."""

from tests.plugins.proxy import TcpProxy

__all__ = ["TcpProxy"]
