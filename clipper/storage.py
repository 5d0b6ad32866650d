"""Where finished clips go: a local directory or S3 (any S3-compatible store).

Keys are built by :func:`clip_key` from the clip's id, its validated channel and its start
time, never from raw request text.  :meth:`Storage.put` returns the clip's location, stored
in ``chat.clips.location``: a file path, or ``s3://bucket/key``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from chatpulse.core.errors import StorageError
from clipper.webhook import CHANNEL_RE

__all__ = ["LocalStorage", "S3Storage", "Storage", "clip_key", "open_storage"]


def clip_key(clip_id: int, channel: str | None, start: datetime, suffix: str) -> str:
    """``<channel>/<start>-clip<id><suffix>``; an unusable channel becomes ``_``."""
    safe = channel if channel and CHANNEL_RE.match(channel) else "_"
    stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe}/{stamp}-clip{int(clip_id)}{suffix}"


class Storage(Protocol):
    """Somewhere to put a finished file."""

    async def put(self, src: Path, key: str, content_type: str) -> str:
        """Store ``src`` under ``key``; return its location.  Raises :class:`StorageError`."""
        ...


class LocalStorage:
    """A directory; files appear atomically (written aside, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, src: Path, key: str, content_type: str) -> str:
        dest = self.root / key
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
            await asyncio.to_thread(shutil.copyfile, src, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            raise StorageError(f"cannot write {dest}: {exc}") from exc
        return str(dest)


class S3Storage:
    """``s3://bucket/prefix`` through boto3 (``endpoint_url`` for MinIO, R2, …)."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    async def put(self, src: Path, key: str, content_type: str) -> str:
        full = f"{self.prefix}/{key}" if self.prefix else key
        try:
            await asyncio.to_thread(
                self._client.upload_file,
                str(src),
                self.bucket,
                full,
                ExtraArgs={"ContentType": content_type},
            )
        except Exception as exc:  # boto3 raises botocore ClientError, S3UploadFailedError, …
            raise StorageError(f"cannot upload to s3://{self.bucket}/{full}: {exc}") from exc
        return f"s3://{self.bucket}/{full}"


def open_storage(target: str, endpoint_url: str | None = None) -> Storage:
    """The storage for ``target``: ``s3://bucket/prefix`` or a directory path."""
    if target.startswith("s3://"):
        parts = urlsplit(target)
        return S3Storage(parts.netloc, parts.path, endpoint_url)
    return LocalStorage(Path(target))
