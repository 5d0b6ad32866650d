"""The exceptions chatpulse raises, in one place.

::

    ChatpulseError
    ├── ConfigError          a setting is missing or invalid (the CLI exits with code 2)
    ├── DatabaseError        the database cannot be reached or is in an unexpected state
    │   └── MigrationError   a migration failed or the schema is newer than this code
    └── NotReadyError        a command whose implementation has not landed yet
"""

from __future__ import annotations

__all__ = ["ChatpulseError", "ConfigError", "DatabaseError", "MigrationError", "NotReadyError"]


class ChatpulseError(Exception):
    """Base class of every error chatpulse raises on purpose."""


class ConfigError(ChatpulseError):
    """A setting is missing or invalid.  The message names the setting."""


class DatabaseError(ChatpulseError):
    """The database cannot be reached or is in a state chatpulse cannot work with."""


class MigrationError(DatabaseError):
    """A migration failed, or the database holds a schema newer than this code knows."""


class NotReadyError(ChatpulseError):
    """A command that exists in the CLI but whose implementation has not landed yet."""
