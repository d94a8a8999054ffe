"""`POST /generate`: synchronous generation on a model resident in the API process."""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from engine.generation import SamplingParams, generate
from engine.prompts import EmptyPromptError, PromptTooLongError, decode, encode_prompt
from schemas.generation import GeneratedToken, GenerateRequest, GenerateResponse, Usage
from service.deps import StateDep, resolve_model
from service.problems import ProblemError, problem_responses

router = APIRouter(tags=["generation"])


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Generate a continuation (synchronous)",
    responses=problem_responses(401, 404, 413, 422, 503),
)
async def generate_text(body: GenerateRequest, state: StateDep) -> GenerateResponse:
    name = resolve_model(state, body.model)
    settings = state.settings
    if name not in state.registry:
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
    params = SamplingParams(max_new_tokens=body.max_new_tokens, temperature=body.temperature,
                            top_p=body.top_p, seed=body.seed)

    def run() -> GenerateResponse:
        started = time.perf_counter()
        with state.registry.lock(name):  # one pass per model at a time; the CPU has no spare cores
            output = generate(lm, prompt_ids, params)
        return GenerateResponse(
            model=name,
            text=output.text,
            tokens=[GeneratedToken(id=t, text=decode(lm.tokenizer, [t])) for t in output.token_ids],
            finish_reason=output.finish_reason,
            usage=Usage(prompt_tokens=len(prompt_ids), completion_tokens=len(output.token_ids)),
            elapsed_seconds=time.perf_counter() - started,
        )

    return await run_in_threadpool(run)
