"""`RequestTelemetry`: request ids, one structured log line and one latency sample per request.

Pure ASGI (no ``BaseHTTPMiddleware``) and outermost, outside even Starlette's error middleware
(`TelemetryApp`), so it times and logs everything, the body guard's 413s and the 500 of an
unhandled error included (whose log line then carries the request id too):

- the request id is the client's ``X-Request-ID`` when it is a plain token (letters, digits and
  ``._:-``, at most 128 characters), otherwise a new random one; it is answered in the response's
  ``X-Request-ID``, put in the log context of everything logged while serving the request, and
  kept in the jobs the request submits (``request.state.request_id``);
- the route is the matched route's *template* (``/jobs/{job_id}``), the label of the latency
  histogram and a field of the log line;
- the access line (``message: "request"``) carries method, route, status, duration_ms, and the
  tenant once the key is checked; never the key, nor the query string.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logs import log_context

log = logging.getLogger("service.access")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(scope: Scope) -> str:
    """The client's request id if it is a plain token, else a fresh one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if REQUEST_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RouteTemplate:
    """One route as the telemetry matches it: its path pattern, template and methods."""

    regex: re.Pattern[str]
    template: str
    methods: frozenset[str] | None


def route_table(app: Any) -> list[RouteTemplate]:
    """Every route of a FastAPI app (included routers flattened), in matching order."""
    table = []
    for route in iter_route_contexts(getattr(app, "routes", [])):
        regex, template = getattr(route, "path_regex", None), route.path_format
        if regex is not None and template is not None:
            table.append(RouteTemplate(regex, template, frozenset(route.methods) if route.methods else None))
    return table


def route_template(table: list[RouteTemplate], scope: Scope) -> str:
    """The template of the route serving ``scope``: the first whose path and method match, else the
    first whose path matches (a 405), else ``unmatched`` (a 404)."""
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    partial = None
    for route in table:
        if route.regex.match(path):
            if route.methods is None or scope["method"] in route.methods:
                return route.template
            partial = partial or route.template
    return partial or "unmatched"


class RequestTelemetry:
    """Assign request ids, log one JSON line per request, and feed the latency histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[RouteTemplate] | None = None  # built on the first request, when every route exists

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope)
        # Inner layers copy the scope but share this dict: what routes put in request.state is seen here.
        request_state: dict[str, Any] = scope.setdefault("state", {})
        request_state["request_id"] = request_id
        if self._table is None:
            self._table = route_table(scope.get("app"))
        route = route_template(self._table, scope)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        status = 500  # what the server answers if the app fails before starting a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
            await send(message)

        with log_context(request_id=request_id, route=route):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                interp = getattr(getattr(scope.get("app"), "state", None), "interp", None)
                if interp is not None:
                    interp.metrics.observe(method, route, status, seconds)
                log.info("request", extra={"method": method, "status": status,
                                           "duration_ms": round(seconds * 1000, 3),
                                           **({"tenant": request_state["tenant"]} if "tenant" in request_state
                                              else {})})


class TelemetryApp(FastAPI):
    """A FastAPI app wrapped, outermost, in `RequestTelemetry`.

    ``add_middleware`` would put it inside Starlette's error middleware, which answers unhandled
    errors itself: their 500 would go out without ``X-Request-ID`` and be logged without the id.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return RequestTelemetry(super().build_middleware_stack())
