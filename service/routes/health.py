"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from schemas.models import Health, Readiness
from service.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the API process answers")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Redis answers and every configured model has a live worker",
    responses={503: {"model": Readiness, "description": "Not ready; see `detail`"}},
)
def readyz(state: StateDep) -> JSONResponse:
    workers = {name: 0 for name in state.settings.models}
    try:
        state.redis.ping()
        redis_ok = True
        for name in workers:
            workers[name] = len(state.directory.live(name))
    except RedisError:
        redis_ok = False
    missing = [name for name, count in workers.items() if count == 0]
    if not redis_ok:
        detail = "Redis is not answering"
    elif missing:
        detail = f"no live worker for {', '.join(missing)}"
    else:
        detail = None
    body = Readiness(status="not_ready" if detail else "ready", redis=redis_ok, workers=workers, detail=detail)
    headers = {"Retry-After": str(state.settings.retry_after_seconds)} if detail else None
    return JSONResponse(body.model_dump(), status_code=503 if detail else 200, headers=headers)
