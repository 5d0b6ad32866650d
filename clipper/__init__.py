"""The clipper: Grafana alert webhooks and manual requests become FFmpeg highlight clips.

``clipper.api`` (FastAPI app), ``clipper.worker`` (the job worker), ``clipper.recorder`` (the
rolling live recording), ``clipper.segments`` (the pure cut planning), ``clipper.webhook``
(authentication and payload), ``clipper.storage`` (local directory, S3).
"""

from __future__ import annotations

__all__: list[str] = []
