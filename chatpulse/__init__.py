"""chatpulse: observability for live-stream chat.

What the services share lives here: settings, the database pool and migration runner, the
``chatpulse`` CLI, logging, metrics helpers and the embedded database.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("chatpulse")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
