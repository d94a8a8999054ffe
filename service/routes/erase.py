"""`POST /erase`: fit a concept eraser (LEACE) as a job; its result is a new model variant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.erasure import EraseRequest
from schemas.jobs import EraseJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import problem_responses
from service.request_checks import check_batch_size, check_count, check_layers_in_range, check_token_counts, invalid
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["erasure"])


@router.post(
    "/erase",
    response_model=EraseJob,
    status_code=202,
    summary="Erase a concept with LEACE (job); the result is stored as a model variant",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def erase(
    body: EraseRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    check_variant(state, caller, name, body.variant)
    check_count(len(body.examples), settings.max_erasure_examples, "examples")
    check_batch_size(body.batch_size, settings.max_batch_size)
    if body.layers != "all":
        if not body.layers or len(set(body.layers)) != len(body.layers):
            raise invalid("give one or more distinct layers, or `all`", "layers")
        check_layers_in_range(state, name, body.layers, "layers")
    # An example that reads as no tokens has no activation to fit on: 1 token at least.
    check_token_counts(state, name, {f"examples.{i}.text": (f"example {i}", example.text)
                                     for i, example in enumerate(body.examples)},
                       minimum=1, add_special_tokens=True)
    record, created = submit_job(state, caller, kind="erase", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
