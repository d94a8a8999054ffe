"""`GET /metrics`: Prometheus text exposition of this API process and the stack (`service.metrics`).

When keys are configured it needs one (any tenant's: the figures are the deployment's, no
tenant's data), unless ``INTERP_METRICS_PUBLIC`` is set, for a scraper on a trusted network. It is
not rate limited and needs no Redis to answer (Redis-derived series are left out and
``interp_redis_up`` is 0 when Redis is down). Left out of the OpenAPI spec: it is for Prometheus,
not for API clients.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from service.deps import StateDep, authenticate

router = APIRouter(tags=["observability"])


async def metrics_access(request: Request, state: StateDep) -> None:
    """Authenticate a scrape like any request, unless the metrics are configured public."""
    if not state.settings.metrics_public:
        await authenticate(request, state, request.headers.get("X-API-Key"))


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_access)])
async def read_metrics(state: StateDep) -> Response:
    body = await run_in_threadpool(state.metrics.render)  # reads Redis: off the event loop
    return Response(body, media_type=CONTENT_TYPE_LATEST)
