"""One module per resource: webhooks, clips, health."""

from __future__ import annotations

__all__: list[str] = []
