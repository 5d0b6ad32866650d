"""Serving a process's Prometheus metrics (each service declares its own on a registry)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from chatpulse.errors import ConfigError
from chatpulse.settings import Settings

__all__ = ["serve_metrics"]

log = logging.getLogger(__name__)


def serve_metrics(
    settings: Settings, registry: CollectorRegistry, *, required: bool = True
) -> None:
    """Serve ``registry`` on ``/metrics`` at ``metrics_host:metrics_port`` (0: not at all).

    A port that cannot be bound raises :class:`ConfigError` naming the setting, or, when
    ``required`` is false (a service whose work matters more than its metrics), logs a warning.
    """
    if not settings.metrics_port:
        return
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        if required:
            raise ConfigError(
                f"metrics_port (CHATPULSE_METRICS_PORT): cannot serve /metrics on {where}: {exc} "
                "(use another port, or 0)"
            ) from exc
        log.warning("metrics not served", extra={"address": where, "error": str(exc)})
        return
    log.info("metrics served", extra={"url": f"http://{where}/metrics"})
