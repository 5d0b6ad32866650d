"""The clipper's exceptions, in one place.

::

    ChatpulseError
    └── ClipperError             anything the clipper raises on purpose
        ├── WebhookError         a request the API refuses (carries the HTTP status and reason)
        ├── MediaNotReady        the clip's end is not recorded yet: retry later, no attempt used
        ├── MediaError           no media covers the clip, or it cannot be read (final)
        ├── CutError             FFmpeg or ffprobe failed (retried with backoff)
        ├── CutStopped           FFmpeg was stopped by a shutdown (job released, no attempt used)
        └── StorageError         the clip could not be stored (retried with backoff)
"""

from __future__ import annotations

from chatpulse.core.errors import ChatpulseError

__all__ = [
    "ClipperError",
    "CutError",
    "CutStopped",
    "MediaError",
    "MediaNotReady",
    "StorageError",
    "WebhookError",
]


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
