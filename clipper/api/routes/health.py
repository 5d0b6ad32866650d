"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clipper import jobs
from clipper.api.deps import State
from clipper.api.models import HealthOut
from clipper.metrics import refresh_queue_metrics

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def healthz(state: State, response: Response) -> HealthOut:
    """200 when the database answers, 503 otherwise."""
    try:
        assert state.pool is not None
        async with state.pool.connection(timeout=2) as conn:
            await jobs.ping(conn)
    except Exception:
        response.status_code = 503
        return HealthOut(status="unhealthy", database="unreachable")
    return HealthOut(status="ok", database="ok")


@router.get("/metrics", response_class=Response, include_in_schema=True)
async def metrics(state: State) -> Response:
    """Prometheus metrics; clip counts and queue depth are read from the database now."""
    if state.pool is not None:
        try:
            async with state.pool.connection(timeout=2) as conn:
                await refresh_queue_metrics(state.metrics, conn)
        except Exception:  # still serve the in-process metrics when the database is down
            pass
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
