"""`POST /edit`: write facts with ROME or MEMIT as a job; its result is a new model variant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.editing import EditRequest
from schemas.jobs import EditJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import ProblemError, problem_responses
from service.routes.erase import known_layers
from service.state import AppState
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["editing"])


def check_layers(state: AppState, model: str, body: EditRequest) -> None:
    """422 for layers out of range or a ROME edit spread over several layers."""
    layers = body.hyperparameters.layers
    if layers is None:
        return
    field = "hyperparameters.layers"
    if layers != sorted(set(layers)):
        raise ProblemError(422, "Invalid request", f"layers must be distinct and ascending; got {layers}", field=field)
    if body.method == "rome" and len(layers) != 1:
        raise ProblemError(422, "Invalid request", f"ROME edits exactly one layer; got {len(layers)}", field=field)
    n_layers = known_layers(state, model)
    if n_layers is not None and (bad := [layer for layer in layers if layer >= n_layers]):
        raise ProblemError(422, "Invalid request", f"layers {bad} are out of range: {model} has blocks "
                           f"0..{n_layers - 1}", field=field)


def check_texts(state: AppState, model: str, body: EditRequest) -> None:
    """422 naming the fact and field whose text is too long, or whose subject cannot be found."""
    if model not in state.registry:
        return  # the worker checks it: the API holds no tokenizer for this model
    tokenizer, limit = state.registry.get(model).tokenizer, state.settings.max_prompt_tokens
    for index, fact in enumerate(body.requests):
        texts = {"prompt": fact.prompt.format(fact.subject), "target_new": fact.target_new}
        texts |= {f"paraphrases.{i}": p for i, p in enumerate(fact.paraphrases)}
        texts |= {f"neighborhood.{i}.prompt": n.prompt for i, n in enumerate(fact.neighborhood)}
        for name, text in texts.items():
            n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if not 0 < n_tokens <= limit:
                raise ProblemError(422, "Invalid request", f"fact {index}: {name} has {n_tokens} tokens; 1 to "
                                   f"{limit} are allowed", field=f"requests.{index}.{name}")


@router.post(
    "/edit",
    response_model=EditJob,
    status_code=202,
    summary="Write facts into the model with ROME or MEMIT (job); the result is stored as a model variant",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def edit(
    body: EditRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    check_variant(state, caller, name, body.variant)
    limit = settings.max_rome_requests if body.method == "rome" else settings.max_edit_requests
    if len(body.requests) > limit:
        raise ProblemError(422, "Invalid request", f"{len(body.requests)} facts; {body.method} takes at most "
                           f"{limit} per request" + (" (use memit for more)" if body.method == "rome" else ""),
                           field="requests")
    check_layers(state, name, body)
    check_texts(state, name, body)
    record, created = submit_job(state, caller, kind="edit", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
