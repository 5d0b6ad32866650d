"""The exceptions chatpulse raises on purpose: one tree, rooted here.

Every class below derives from :class:`ChatpulseError`, so a caller (the ``chatpulse`` command
first of all) can tell "chatpulse refused, with a message" from a bug.  The classes of the
core and the clipper are defined in this module; a service's own classes live beside the code
that raises them (the module is named on the right) and derive from a class here.  Some also
derive from :class:`ValueError`, so that code that catches that keeps working.

::

    ChatpulseError
    ├── ConfigError              a setting is missing or invalid (the CLI exits with code 2)
    │   └── MissingExtraError    a backend's extra is not installed       scorer.backends
    ├── DatabaseError            the database cannot be reached or is in an unexpected state
    │   ├── MigrationError       a migration failed or the schema is newer than this code
    │   └── DatabaseUnavailable  not reachable now: spool and retry       collector.writer.classify
    ├── CodecError               bytes that are no encoding of events     collector.codec
    ├── SpoolError               the spool cannot do what was asked       collector.spool
    │   ├── SpoolFullError       appending would pass max_bytes           collector.spool
    │   └── SpoolLockedError     another process holds the spool          collector.spool
    ├── IrcParseError            a malformed IRC line or body             collector.irc
    │   └── RecentMessagesError  a recent-messages error body             collector.irc
    ├── FormatError              a chat log file not in the asked format  collector.formats
    │   └── MissingInputError    the file lacks what only the user gives  collector.formats
    ├── EmoteFormatError         an emote provider answer of bad shape    collector.emotes
    ├── TwitchAuthError          Twitch rejected the login                collector.sources.twitch
    ├── BackendError             a scoring backend cannot load or run     scorer.backends.base
    │   └── MissingExtraError    (also a ConfigError, see above)          scorer.backends
    ├── QueryFileError           a named-query file of bad layout         chatpulse.core.queries
    ├── MacroError               SQL Grafana would reject                 grafana.macros
    ├── BusUnavailable           NATS cannot be reached or has no JetStream  bus.common
    ├── NoVectorsError           the database has no pgvector (exit 2)    topics.store
    └── ClipperError             anything the clipper raises on purpose
        ├── WebhookError         a request the API refuses (carries the HTTP status and reason)
        ├── MediaNotReady        the clip's end is not recorded yet: retry later, no attempt used
        ├── MediaError           no media covers the clip, or it cannot be read (final)
        ├── CutError             FFmpeg or ffprobe failed (retried with backoff)
        ├── CutStopped           FFmpeg was stopped by a shutdown (job released, no attempt used)
        └── StorageError         the clip could not be stored (retried with backoff)

``tests/unit/test_layers.py`` checks that every exception class in the packages is in this tree.
"""

from __future__ import annotations

__all__ = [
    "ChatpulseError",
    "ClipperError",
    "ConfigError",
    "CutError",
    "CutStopped",
    "DatabaseError",
    "MediaError",
    "MediaNotReady",
    "MigrationError",
    "StorageError",
    "WebhookError",
]


class ChatpulseError(Exception):
    """Base class of every error chatpulse raises on purpose."""


class ConfigError(ChatpulseError):
    """A setting is missing or invalid.  The message names the setting."""


class DatabaseError(ChatpulseError):
    """The database cannot be reached or is in a state chatpulse cannot work with."""


class MigrationError(DatabaseError):
    """A migration failed, or the database holds a schema newer than this code knows."""


class ClipperError(ChatpulseError):
    """Base class of the clipper's errors."""


class WebhookError(ClipperError):
    """The API refuses a request: ``status`` is the HTTP status, the message the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MediaNotReady(ClipperError):
    """The media does not reach the clip's end yet; the job waits and is tried again."""


class MediaError(ClipperError):
    """No media covers the clip (or it is unreadable); retrying will not help."""


class CutError(ClipperError):
    """FFmpeg or ffprobe failed; the message holds the tail of its stderr."""


class CutStopped(ClipperError):
    """FFmpeg was asked to stop (worker shutdown) before the cut finished."""


class StorageError(ClipperError):
    """Writing the clip to its storage failed."""
