"""The API's input and output models (kept apart: what a client sends is not what it gets)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clipper.jobs import ClipRow

__all__ = [
    "ClipIn",
    "ClipList",
    "ClipOut",
    "ErrorOut",
    "HealthOut",
    "IgnoredAlert",
    "WebhookOut",
]

_MAX_CLIP = timedelta(hours=6)


class ClipIn(BaseModel):
    """A manual clip: ``channel`` and either a moment ``at`` (cut with pre- and post-roll) or
    a range ``start``..``end``."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(pattern=r"^[a-z0-9_][a-z0-9_.\-]{0,99}$", description="Channel login")
    at: datetime | None = Field(default=None, description="Moment to cut around (UTC)")
    start: datetime | None = Field(default=None, description="Range start (with end)")
    end: datetime | None = Field(default=None, description="Range end (with start)")
    pre_roll_s: float | None = Field(default=None, ge=0, le=3600, description="With at")
    post_roll_s: float | None = Field(default=None, ge=0, le=3600, description="With at")
    reencode: bool = Field(default=False, description="Frame-accurate re-encode")

    @model_validator(mode="after")
    def _one_form(self) -> ClipIn:
        for name in ("at", "start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. Z)")
        if self.at is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("give either at, or start and end, not both")
        elif self.start is None or self.end is None:
            raise ValueError("give at, or start and end")
        elif not self.start < self.end:
            raise ValueError("end must be after start")
        elif self.end - self.start > _MAX_CLIP:
            raise ValueError("a clip is at most 6 hours long")
        return self


class ClipOut(BaseModel):
    """A clip job and, once done, its result."""

    id: int
    channel: str | None
    trigger: str
    status: str
    start_at: datetime
    end_at: datetime
    requested_at: datetime
    attempts: int
    location: str | None
    thumbnail: str | None
    duration_s: float | None
    error: str | None
    finished_at: datetime | None
    reencode: bool
    media: str | None
    hype_moment_id: int | None

    @classmethod
    def of(cls, row: ClipRow) -> ClipOut:
        return cls(
            id=row.id,
            channel=row.channel,
            trigger=row.trigger,
            status=row.status,
            start_at=row.start_at,
            end_at=row.end_at,
            requested_at=row.requested_at,
            attempts=row.attempts,
            location=row.location,
            thumbnail=row.thumbnail,
            duration_s=row.duration_s,
            error=row.error,
            finished_at=row.finished_at,
            reencode=row.reencode,
            media=row.media,
            hype_moment_id=row.hype_moment_id,
        )


class ClipList(BaseModel):
    """A page of clips, newest first; pass ``next_before`` as ``before`` for the next page."""

    clips: list[ClipOut]
    next_before: int | None


class IgnoredAlert(BaseModel):
    """An alert of the notification that makes no clip, and why."""

    fingerprint: str
    reason: str


class WebhookOut(BaseModel):
    """What a webhook delivery did."""

    queued: list[ClipOut]
    duplicates: list[int] = Field(description="Ids of clips these alerts already made")
    ignored: list[IgnoredAlert]


class HealthOut(BaseModel):
    status: str
    database: str


class ErrorOut(BaseModel):
    detail: str
