"""The shape of a JSON WebSocket source's field mapping (the ``ws_mapping`` setting).

Pure data and validation, no I/O: :mod:`chatpulse.core.settings` validates the setting with it,
and :mod:`collector.sources.websocket` reads frames with it (the path syntax is described
there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

__all__ = ["FieldMapping", "JsonScalar", "TimeFormat"]

#: How ``FieldMapping.time`` is read.  ``auto``: a number (or numeric string) is epoch
#: seconds, milliseconds, microseconds or nanoseconds chosen by its magnitude; any other string
#: is ISO 8601 / RFC 3339 (a missing offset means UTC).  ``rfc3339``: a string with an offset.
TimeFormat = Literal["auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us"]
_TIME_FORMATS: tuple[str, ...] = get_args(TimeFormat)

# Keys of a mapping that hold paths, and the subset that may use the ``*`` wildcard.
_PATH_KEYS = (
    "text",
    "id",
    "time",
    "user_id",
    "user_login",
    "user_name",
    "channel",
    "kind",
    "bits",
    "reply_parent_id",
    "badges",
    "filter_path",
    "items",
)
_WILDCARD_KEYS = frozenset({"text", "items"})

JsonScalar = str | int | float | bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldMapping:
    """Where each :class:`~collector.events.ChatMessage` field lives in a JSON frame.

    Every field but ``text`` is optional.  A missing ``id`` gets a
    :func:`~collector.events.deterministic_message_id`; a missing ``time`` means "when the
    frame arrived" (such messages cannot be deduplicated on replay, since that time differs);
    a missing ``channel`` falls back to the source's channel.  ``badges`` may point at an
    object (``{"moderator": "1"}``) or an array of names.

    ``filter_path``/``filter_value`` select which objects are chat messages: an object is one
    when the value at ``filter_path`` equals ``filter_value`` (JSON equality, so ``1`` is not
    ``true``), or, when ``filter_value`` is unset, when ``filter_path`` is present.  Other
    objects are ignored.  ``items`` points at an array of messages in a batching frame; a frame
    without it carries no messages.  Without ``items`` a frame that is a JSON array is a batch,
    and a frame that is an object is one message.

    Construction validates: a bad value raises :class:`ValueError` naming the key.
    """

    text: str
    id: str | None = None
    time: str | None = None
    user_id: str | None = None
    user_login: str | None = None
    user_name: str | None = None
    channel: str | None = None
    kind: str | None = None
    bits: str | None = None
    reply_parent_id: str | None = None
    badges: str | None = None
    time_format: TimeFormat = "auto"
    platform: str = "generic"
    filter_path: str | None = None
    filter_value: JsonScalar | None = None
    items: str | None = None

    def __post_init__(self) -> None:
        for key in _PATH_KEYS:
            path = getattr(self, key)
            if path is None and key != "text":
                continue
            if not isinstance(path, str) or not path:
                raise ValueError(f"mapping key {key!r}: expected a dotted path, got {path!r}")
            segments = path.split(".")
            if any(not seg for seg in segments):
                raise ValueError(f"mapping key {key!r}: empty segment in path {path!r}")
            if "*" in segments and key not in _WILDCARD_KEYS:
                raise ValueError(
                    f"mapping key {key!r}: '*' is allowed only in 'text' and 'items' ({path!r})"
                )
        if self.time_format not in _TIME_FORMATS:
            raise ValueError(
                f"mapping key 'time_format': {self.time_format!r} is not one of "
                + ", ".join(_TIME_FORMATS)
            )
        if not isinstance(self.platform, str) or not self.platform.strip():
            raise ValueError(f"mapping key 'platform': expected a name, got {self.platform!r}")
        if self.filter_value is not None:
            if self.filter_path is None:
                raise ValueError("mapping key 'filter_value': needs 'filter_path'")
            if not isinstance(self.filter_value, str | int | float | bool):
                raise ValueError(
                    f"mapping key 'filter_value': expected a string, number or boolean, "
                    f"got {self.filter_value!r}"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMapping:
        """Build a mapping from an object whose keys are this class's field names.

        Raises :class:`ValueError` naming the first unknown, missing or invalid key.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"mapping: expected an object, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ValueError(f"mapping: unknown key {key!r} (known: {', '.join(known)})")
        if "text" not in data:
            raise ValueError("mapping: missing required key 'text'")
        for key in (*_PATH_KEYS, "time_format", "platform"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(
                    f"mapping key {key!r}: expected a string, got {type(value).__name__}"
                )
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> FieldMapping:
        """Build a mapping from a JSON object (see :meth:`from_dict`); raises :class:`ValueError`."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"mapping: not valid JSON: {exc}") from None
        return cls.from_dict(data)
