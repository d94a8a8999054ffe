"""`POST /generate`: synchronous generation, steered or not, on the base model or a variant, batched."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from engine.generation import GenerationOutput, GenerationRow, SamplingParams
from engine.loading import LoadedModel
from engine.prompts import EmptyPromptError, PromptTooLongError, decode, encode_prompt
from schemas.generation import Continuation, GeneratedToken, GenerateRequest, GenerateResponse, Usage
from service.deps import CallerDep, StateDep, resolve_model
from service.problems import ProblemError, problem_responses
from service.steering import resolve_steering
from service.variants import load_variant

router = APIRouter(tags=["generation"])

SSE_DOC = {"text/event-stream": {"schema": {"type": "string"}, "example": 'event: token\ndata: {"id": 7042, '
                                 '"text": " Paris"}\n\nevent: done\ndata: {...GenerateResponse...}\n\n'}}


def continuation(lm: LoadedModel, output: GenerationOutput) -> Continuation:
    return Continuation(text=output.text, finish_reason=output.finish_reason,
                        tokens=[GeneratedToken(id=t, text=decode(lm.tokenizer, [t])) for t in output.token_ids])


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Generate a continuation, optionally steered (synchronous; `stream` for server-sent events)",
    responses={**problem_responses(401, 404, 413, 422, 503), 200: {"content": SSE_DOC}},
)
async def generate_text(body: GenerateRequest, state: StateDep, caller: CallerDep) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    if name not in state.registry or state.batcher is None:
        raise ProblemError(503, "Model not resident",
                           f"model {name!r} is not loaded in the API process (INTERP_API_LOAD_MODELS)",
                           headers={"Retry-After": str(settings.retry_after_seconds)})
    if body.max_new_tokens > settings.max_new_tokens:
        raise ProblemError(422, "Invalid request",
                           f"max_new_tokens is {body.max_new_tokens}; the limit is {settings.max_new_tokens}",
                           field="max_new_tokens")
    lm = state.registry.get(name)
    field = "messages" if body.messages is not None else "prompt"
    try:
        prompt_ids = encode_prompt(
            lm.tokenizer,
            prompt=body.prompt,
            messages=[m.model_dump() for m in body.messages] if body.messages else None,
            max_tokens=settings.max_prompt_tokens,
        )
    except (PromptTooLongError, EmptyPromptError, ValueError) as exc:
        raise ProblemError(422, "Invalid request", str(exc), field=field) from exc
    steering = resolve_steering(lm, state.vector_store(caller.tenant), body.steering)
    variant = load_variant(state, caller, lm, body.variant)
    components = variant.components if variant is not None else ()
    params = SamplingParams(max_new_tokens=body.max_new_tokens, temperature=body.temperature,
                            top_p=body.top_p, seed=body.seed)
    rows = [GenerationRow(prompt_ids, params, steering, variant=components)]
    if body.compare:
        # The same call, the same batch, the same variant, no steering.
        rows.append(GenerationRow(prompt_ids, params, [], variant=components))
    started = time.perf_counter()

    def respond(outputs: list[GenerationOutput]) -> GenerateResponse:
        main = continuation(lm, outputs[0])
        return GenerateResponse(
            model=name, text=main.text, tokens=main.tokens, finish_reason=main.finish_reason,
            usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(outputs[0].token_ids)),
            steered=bool(steering), unsteered=continuation(lm, outputs[1]) if body.compare else None,
            variant=variant.ref if variant is not None else None,
            elapsed_seconds=time.perf_counter() - started,
        )

    if not body.stream:
        outputs = await state.batcher.generate(name, rows)
        return Response(respond(outputs).model_dump_json(), media_type="application/json")
    return StreamingResponse(stream_events(lm, state.batcher.generate(name, rows), rows[0], respond),
                             media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def stream_events(
    lm: LoadedModel,
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
        yield f"event: token\ndata: {json.dumps({'id': token, 'text': decode(lm.tokenizer, [token])})}\n\n"
    try:
        outputs = task.result()
    except Exception as exc:  # the batch failed: tell the client in-band, the status line is long gone
        problem = {"type": "urn:interp:problem:internal-error", "title": "Internal error", "status": 500,
                   "detail": f"{type(exc).__name__}: generation failed"}
        yield f"event: error\ndata: {json.dumps(problem)}\n\n"
        return
    yield f"event: done\ndata: {respond(outputs).model_dump_json()}\n\n"
