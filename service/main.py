"""The FastAPI application: `create_app` wires settings, resources, routes and error mapping.

Run it with ``python -m service`` (uvicorn) or as part of the whole stack with
``python -m launcher``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from config.settings import Settings
from engine.registry import ModelRegistry
from service.auth import optional_key_security
from service.batcher import GenerationBatcher
from service.deps import get_caller
from service.key_guard import KeyGuard
from service.limits import BodyGuard
from service.problems import install_problem_handlers, problem_responses
from service.routes import generate, health, jobs, lens, metrics, models, operations, vectors
from service.state import AppState
from service.telemetry import TelemetryApp
from service.views import attribution_page, ui
from store.model_cache import ModelCache

log = logging.getLogger(__name__)

API_VERSION = "0.1.0"
DESCRIPTION = """Explain, steer, edit and erase inside transformer language models.

Long work runs as jobs: a POST answers `202 Accepted` with `Location: /jobs/{id}`; poll that URL
(optionally with `?wait=N` to long-poll) until `status` is `succeeded`, `failed` or `canceled`.
Every error is `application/problem+json` (RFC 9457); `field` names the offending input."""


def operation_id(route: APIRoute) -> str:
    """Stable operationIds: the route function's name (``get_job``), not path-derived noise."""
    return route.name


async def reap_forever(state: AppState, interval: float) -> None:
    """Fail jobs whose worker died, even when no client is polling them."""
    while True:
        await asyncio.sleep(interval)
        try:
            reaped = await run_in_threadpool(state.store.reap_orphans)
            if reaped:
                log.warning("failed %d job(s) whose worker died: %s", len(reaped), ", ".join(reaped))
        except RedisError as exc:
            log.debug("reaper: redis unavailable: %s", exc)


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    """Build the application.

    Args:
        settings: configuration; read from the environment when omitted.
        state: prebuilt resources (tests); built at start-up from ``settings`` when omitted.
    """
    settings = state.settings if state is not None else (settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = state
        if built is None:
            registry = ModelRegistry()
            if settings.api_load_models:
                registry = await run_in_threadpool(
                    ModelRegistry.load, settings.models, device=settings.device, dtype=settings.dtype,
                    locate=ModelCache(settings.model_cache).locate,
                )
            built = AppState.build(settings, registry)
        app.state.interp = built
        if built.batcher is None and len(built.registry):
            built.batcher = GenerationBatcher(built.registry, max_batch=settings.max_generation_batch)
        if built.batcher is not None:
            built.batcher.start()
        # Everything allocated so far (torch, transformers, the model) lives as long as the process:
        # move it out of the cyclic GC's reach, or a full collection pauses every request for ~1 s.
        gc.collect()
        gc.freeze()
        reaper = asyncio.create_task(reap_forever(built, settings.worker_heartbeat_seconds * 2))
        try:
            yield
        finally:
            reaper.cancel()
            if built.batcher is not None:
                await built.batcher.stop()
                built.batcher = None

    # Every request gets an id, a JSON log line and a latency sample (`service.telemetry`).
    app = TelemetryApp(
        title="Interpretability service",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Every route can answer these; documenting them app-wide keeps FastAPI's own 422 shape out.
        responses=problem_responses(422, 500),
    )
    install_problem_handlers(app, retry_after_seconds=settings.retry_after_seconds)
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    # Outside the body guard: with keys set, a keyed route without a valid key is a 401 before its body is read.
    app.add_middleware(KeyGuard)
    # Liveness and readiness probes carry no key; every other route requires one when keys are set,
    # and counts against its tenant's rate limit (`get_caller`).
    # The debugger page holds no data (it asks for the key and sends it with its own requests).
    # /metrics takes a key (unless INTERP_METRICS_PUBLIC) but no rate limit.
    app.include_router(health.router)
    app.include_router(ui.router)
    app.include_router(metrics.router)
    for module in (models, generate, vectors, operations, lens, jobs, attribution_page):
        app.include_router(module.router, dependencies=[Depends(get_caller)],
                           responses=problem_responses(401, 429))
    app.openapi = lambda: optional_key_security(FastAPI.openapi(app))  # type: ignore[method-assign]
    return app
