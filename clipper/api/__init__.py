"""The clipper's HTTP API (FastAPI): :func:`create_app`."""

from __future__ import annotations

from clipper.api.app import create_app

__all__ = ["create_app"]
