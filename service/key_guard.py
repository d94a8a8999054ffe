"""`KeyGuard`: with keys configured, a keyed route without a valid ``X-API-Key`` is a 401 before its body is read.

Authentication is a dependency of every keyed router (`service.deps.get_caller`), but FastAPI reads
and parses a route's body before it runs any dependency: malformed JSON without a key was answered
422, telling a caller without a key about what it sent, and an unauthenticated upload was read in
full. This pure ASGI layer runs outside the body guard, finds the route a request is for, and, when
that route takes a key, checks the key first, answering exactly the problem the dependency would
(`service.deps.unauthorized`). Routes without a key (probes, the page, the docs, ``/metrics`` with
its own rule) and requests no route serves (404, 405) pass as before; the dependency still runs
for the routes it guards, so the tenant and its rate limit come from the same place as ever.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ops.errors import to_problem
from service.auth import API_KEY_HEADER
from service.deps import get_caller, unauthorized
from service.problems import problem_response

_HEADER = API_KEY_HEADER.lower().encode("latin-1")

#: A keyed route as the guard matches it: its path pattern and methods.
KeyedRoute = tuple[re.Pattern[str], frozenset[str]]


def keyed_routes(app: Any) -> list[KeyedRoute]:
    """The routes that need a key: those whose dependencies (the router's included) hold `get_caller`."""
    return [(route.path_regex, frozenset(route.methods or ())) for route in iter_route_contexts(app.routes)
            if any(getattr(d, "dependency", None) is get_caller for d in getattr(route, "dependencies", None) or ())]


def needs_key(routes: list[KeyedRoute], scope: Scope) -> bool:
    """Whether the request is for a keyed route (its path and method match one)."""
    path, root = scope["path"], scope.get("root_path", "")
    path = path[len(root):] if root and path.startswith(root) else path
    return any(scope["method"] in methods and regex.match(path) for regex, methods in routes)


class KeyGuard:
    """Refuse a keyed route's request without a valid key (401) before anything reads its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._keyed: list[KeyedRoute] | None = None  # found on the first request, when every route exists

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope.get("app")
        state = getattr(getattr(app, "state", None), "interp", None)
        if scope["type"] != "http" or state is None or not state.keyring.enabled:
            await self.app(scope, receive, send)
            return
        if self._keyed is None:
            self._keyed = keyed_routes(app)
        if needs_key(self._keyed, scope):
            given = next((value.decode("latin-1") for name, value in scope["headers"] if name == _HEADER), None)
            if state.keyring.tenant_for(given) is None:
                refusal = unauthorized()
                response = problem_response(to_problem(refusal, instance=Request(scope).url.path), refusal.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
