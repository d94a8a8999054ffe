"""Every error as RFC 9457 `application/problem+json`, with the right status and field.

Routes and operations raise `ops.errors.ProblemError`s, turned into problems by the same
`ops.errors.to_problem` the worker uses for a job's error; library exceptions (validation, Redis
down, unknown routes) are mapped here, once. A 500 is a bug: it is logged with its traceback and
answered as a problem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine.registry import UnknownModelError
from ops.errors import ProblemError, classify, invalid_fields, to_problem, type_of
from schemas.problems import PROBLEM_MEDIA_TYPE, Problem

log = logging.getLogger(__name__)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI, *, retry_after_seconds: int) -> None:
    """Register the exception handlers that turn every error into a problem."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(to_problem(exc, instance=request.url.path), exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(to_problem(invalid_fields(list(exc.errors())), instance=request.url.path))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 400:
            # FastAPI's only 400: a body it cannot decode (not UTF-8). Invalid input is a 422 everywhere.
            problem = Problem(type=type_of("Invalid request"), title="Invalid request", status=422,
                              detail=f"body: {exc.detail} (send UTF-8 JSON)", field="body",
                              instance=request.url.path)
            return problem_response(problem)
        if exc.status_code == 405:
            # Starlette lists the methods of the first route matching the path; list every route's.
            headers["Allow"] = ", ".join(allowed_methods(request))
        title = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}.get(
            exc.status_code, "HTTP error")
        problem = Problem(type=type_of(title), title=title, status=exc.status_code, detail=str(exc.detail),
                          instance=request.url.path)
        return problem_response(problem, headers)

    async def on_unknown_model(request: Request, exc: Exception) -> JSONResponse:
        problem = classify(exc)
        assert problem is not None
        return problem_response(to_problem(problem, instance=request.url.path))

    async def on_redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis unavailable: %s", exc)
        problem = Problem(
            type=type_of("Service unavailable"), title="Service unavailable", status=503,
            detail="the job store (Redis) is not answering; retry shortly", instance=request.url.path,
        )
        return problem_response(problem, {"Retry-After": str(retry_after_seconds)})

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        problem = Problem(type=type_of("Internal error"), title="Internal error", status=500,
                          detail=f"{type(exc).__name__}: this is a bug; please report it",
                          instance=request.url.path)
        return problem_response(problem)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(UnknownModelError, on_unknown_model)
    app.add_exception_handler(RedisConnectionError, on_redis_down)
    app.add_exception_handler(RedisTimeoutError, on_redis_down)
    app.add_exception_handler(Exception, on_bug)


def leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every endpoint route, inside the routers FastAPI keeps whole (included without a prefix)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from leaf_routes(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's (for a 405's ``Allow``)."""
    methods: set[str] = set()
    for route in leaf_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem answers for the given statuses."""
    descriptions = {
        400: "Bad request", 401: "Missing or invalid API key", 404: "Unknown model, job or route",
        409: "Conflict with the resource's state", 413: "Request body too large",
        422: "Invalid request; `field` names the offending field",
        429: "The tenant's request rate or job cap is exceeded; retry after `Retry-After` seconds",
        500: "A bug: reported as a problem, never as a bare traceback",
        503: "Redis or a worker is unavailable; retry after `Retry-After` seconds",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
