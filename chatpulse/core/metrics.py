"""Serving a process's Prometheus metrics (each service declares its own on a registry)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from chatpulse.core.errors import ConfigError
from chatpulse.core.settings import Settings

__all__ = ["metrics_port_explicit", "serve_metrics"]

log = logging.getLogger(__name__)


def metrics_port_explicit(settings: Settings) -> bool:
    """Whether ``metrics_port`` was set (flag, environment or config file), not defaulted."""
    return "metrics_port" in settings.model_fields_set


def serve_metrics(
    settings: Settings, registry: CollectorRegistry, *, one_shot: bool = False
) -> bool:
    """Serve ``registry`` on ``/metrics`` at ``metrics_host:metrics_port`` (0: not at all).

    ``one_shot``: a command that ends by itself (``replay``, ``score --until-idle``, ...) serves
    only when ``metrics_port`` was set explicitly, so that it can run beside a long-running
    service that holds the default port.  A port that cannot be bound raises
    :class:`ConfigError` naming the setting when it was set explicitly; a taken default port
    is logged as a warning and the service runs on without ``/metrics``.  Returns whether
    ``/metrics`` is served.
    """
    explicit = metrics_port_explicit(settings)
    if not settings.metrics_port or (one_shot and not explicit):
        return False
    where = f"{settings.metrics_host}:{settings.metrics_port}"
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        if explicit:
            raise ConfigError(
                f"metrics_port (CHATPULSE_METRICS_PORT / --metrics-port): cannot serve /metrics "
                f"on {where}: {exc} (use another port, or 0)"
            ) from exc
        log.warning(
            "metrics not served: the default metrics port is taken; running on without "
            "/metrics (set metrics_port / CHATPULSE_METRICS_PORT to another port, or 0)",
            extra={"address": where, "error": str(exc)},
        )
        return False
    log.info("metrics served", extra={"url": f"http://{where}/metrics"})
    return True
