"""`GET /ui`: the debugger page, and its script and style sheet, served from this package.

Four static files (``ui_assets/``), no build step and nothing fetched from elsewhere: the page
talks only to this API, which its Content-Security-Policy enforces (``'self'`` for scripts, styles
and connections; no inline script). The page carries no data, so it is served without an API key;
the key, when the deployment sets one, is typed into the page and sent with each of its requests.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["debugging"])

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ASSETS = {"app.js": "text/javascript; charset=utf-8", "render.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-cache"}


@cache
def asset(name: str) -> bytes:
    """The bytes of one file in ``ui_assets`` (read once per process)."""
    return resources.files("service.views").joinpath("ui_assets", name).read_bytes()


# Not in the OpenAPI spec: a page for people, served without a key, not an operation for clients.
@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
def debugger_page() -> Response:
    """The debugger page: attribution, logit lens, tracing, diagnosis; models, variants and vectors."""
    return Response(asset("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/ui/assets/{name}", include_in_schema=False)
def debugger_asset(name: Annotated[Literal["app.js", "render.js", "app.css"], Path()]) -> Response:
    return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)
