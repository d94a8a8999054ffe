"""`POST /erase`: fit a concept eraser (LEACE) as a job; its result is a new model variant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.erasure import EraseRequest
from schemas.jobs import EraseJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import ProblemError, problem_responses
from service.state import AppState
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["erasure"])


def known_layers(state: AppState, model: str) -> int | None:
    """The model's block count, from the API's copy or a live worker's report (None: unknown yet)."""
    if model in state.registry:
        return state.registry.get(model).n_layers
    for worker in state.directory.live(model):
        n_layers = worker.get("models", {}).get(model, {}).get("n_layers")
        if isinstance(n_layers, int):
            return n_layers
    return None


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
    if len(body.examples) > settings.max_erasure_examples:
        raise ProblemError(422, "Invalid request", f"{len(body.examples)} examples; the limit is "
                           f"{settings.max_erasure_examples}", field="examples")
    if body.batch_size is not None and body.batch_size > settings.max_batch_size:
        raise ProblemError(422, "Invalid request", f"batch_size {body.batch_size} exceeds the limit "
                           f"{settings.max_batch_size}", field="batch_size")
    if body.layers != "all":
        if not body.layers or len(set(body.layers)) != len(body.layers):
            raise ProblemError(422, "Invalid request", "give one or more distinct layers, or `all`", field="layers")
        n_layers = known_layers(state, name)
        if n_layers is not None and (bad := [layer for layer in body.layers if layer >= n_layers]):
            raise ProblemError(422, "Invalid request", f"layers {bad} are out of range: {name} has blocks "
                               f"0..{n_layers - 1}", field="layers")
    if name in state.registry:
        tokenizer = state.registry.get(name).tokenizer
        for index, example in enumerate(body.examples):
            n_tokens = len(tokenizer(example.text)["input_ids"])
            if not 0 < n_tokens <= settings.max_prompt_tokens:
                raise ProblemError(422, "Invalid request", f"example {index} has {n_tokens} tokens; 1 to "
                                   f"{settings.max_prompt_tokens} are allowed", field=f"examples.{index}.text")
    record, created = submit_job(state, caller, kind="erase", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
