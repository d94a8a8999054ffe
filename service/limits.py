"""`BodyGuard`: an ASGI middleware that caps request bodies and treats every body as JSON.

The cap is checked against ``Content-Length`` first and then against the bytes actually
received (a chunked upload cannot slip past it). Every endpoint takes JSON, so a body sent with
curl's default form content type (``curl -d '{...}'``) is read as JSON instead of being refused.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.problems import PROBLEM_MEDIA_TYPE

_FORM = b"application/x-www-form-urlencoded"


class BodyGuard:
    """Refuse bodies over ``max_bytes`` with 413, and relabel form-encoded bodies as JSON."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = []
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, send)
                return
            if name == b"content-type" and value.split(b";")[0].strip() == _FORM:
                value = b"application/json"
            headers.append((name, value))
        if not any(name == b"content-type" for name, _ in headers):
            headers.append((b"content-type", b"application/json"))
        scope = {**scope, "headers": headers}

        # Read the body ourselves (it is at most max_bytes), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        payload = json.dumps({
            "type": "urn:interp:problem:request-too-large", "title": "Request too large", "status": 413,
            "detail": f"the request body exceeds the limit of {self.max_bytes} bytes "
                      "(INTERP_MAX_BODY_BYTES)",
            "field": "body", "instance": scope.get("path"),
        }).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": payload})
