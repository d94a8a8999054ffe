"""`POST /logit-lens`: what the model would predict after each block (synchronous)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from ops.lens import OPERATION as LENS
from schemas.lens import LogitLensRequest, LogitLensResponse
from service.deps import CallerDep, StateDep, resident_for
from service.problems import problem_responses

router = APIRouter(tags=["debugging"])


@router.post(
    "/logit-lens",
    response_model=LogitLensResponse,
    summary="Logit lens: decode the residual stream after every block (synchronous)",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
async def read_logit_lens(body: LogitLensRequest, state: StateDep, caller: CallerDep) -> Response:
    started = time.perf_counter()
    at = resident_for(state, caller, body.model)
    assert state.batcher is not None  # resident_for answers 503 without one
    checked = LENS.check(body, at.facts)
    reading = await state.batcher.run(at.model, LENS.read, checked, at)  # on the model's compute thread

    def respond() -> bytes:  # up to layers x positions x top_k tokens: off the event loop
        return LENS.describe(checked, at, reading, started).model_dump_json().encode()

    return Response(await run_in_threadpool(respond), media_type="application/json")
