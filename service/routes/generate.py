"""`POST /generate`: synchronous generation, steered or not, on the base model or a variant, batched."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from transformers import PreTrainedTokenizerBase

from engine.generation import GenerationOutput, GenerationRow
from engine.prompts import decode
from ops.errors import classify, to_problem
from ops.generate import OPERATION as GENERATE
from schemas.generation import GenerateRequest, GenerateResponse
from service.deps import CallerDep, StateDep, resident_for
from service.problems import problem_responses

log = logging.getLogger(__name__)
router = APIRouter(tags=["generation"])

SSE_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example": 'event: token\ndata: {"id": 7042, '
                                 '"text": " Paris"}\n\nevent: done\ndata: {...GenerateResponse...}\n\n'}}


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Generate a continuation, optionally steered (synchronous; `stream` for server-sent events)",
    responses={**problem_responses(401, 404, 409, 413, 422, 503), 200: {"content": SSE_DOC}},
)
async def generate_text(body: GenerateRequest, state: StateDep, caller: CallerDep) -> Response:
    at = resident_for(state, caller, body.model)
    assert state.batcher is not None  # resident_for answers 503 without one
    prepared = GENERATE.prepare(body, at)
    pending = state.batcher.generate(at.model, prepared.rows)
    if not body.stream:
        try:
            outputs = await pending
        except Exception as exc:  # this request alone failed its batch (the batcher reran the others)
            if (problem := classify(exc)) is None:
                raise
            raise problem from exc
        return Response(GENERATE.respond(prepared, at, outputs).model_dump_json(), media_type="application/json")
    return StreamingResponse(stream_events(at.lm.tokenizer, pending, prepared.rows[0],
                                           lambda outputs: GENERATE.respond(prepared, at, outputs)),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def stream_events(
    tokenizer: PreTrainedTokenizerBase,
    pending: Awaitable[list[GenerationOutput]],
    row: GenerationRow,
    respond: Callable[[list[GenerationOutput]], GenerateResponse],
) -> AsyncIterator[str]:
    """Server-sent events: one `token` event per generated token, then `done` (or `error`)."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[int | None] = asyncio.Queue()

    def on_token(token: int) -> None:  # called on the model's thread: hand over to the event loop
        loop.call_soon_threadsafe(tokens.put_nowait, token)

    row.on_token = on_token
    task = asyncio.ensure_future(pending)
    task.add_done_callback(lambda _: tokens.put_nowait(None))
    while (token := await tokens.get()) is not None:
        yield f"event: token\ndata: {json.dumps({'id': token, 'text': decode(tokenizer, [token])})}\n\n"
    try:
        done = respond(task.result()).model_dump_json()
    except Exception as exc:  # tell the client in-band, with the problem's own status: the status line is long gone
        yield f"event: error\ndata: {json.dumps(stream_problem(exc))}\n\n"
        return
    yield f"event: done\ndata: {done}\n\n"


def stream_problem(exc: Exception) -> dict[str, Any]:
    """The problem object a stream's `error` event carries: the request's own problem, or a bug's 500."""
    if (problem := classify(exc)) is not None:
        return to_problem(problem, instance="/generate").model_dump(exclude_none=True)
    log.error("a streamed generation failed", exc_info=exc)
    return {"type": "urn:interp:problem:internal-error", "title": "Internal error", "status": 500,
            "detail": f"{type(exc).__name__}: generation failed", "instance": "/generate"}
