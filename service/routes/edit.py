"""`POST /edit`: write facts with ROME or MEMIT as a job; its result is a new model variant."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.editing import EditRequest
from schemas.jobs import EditJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import problem_responses
from service.request_checks import LabelledTexts, check_count, check_layers_in_range, check_token_counts, invalid
from service.state import AppState
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["editing"])


def check_edit_layers(state: AppState, model: str, body: EditRequest) -> None:
    """422 for layers repeated, unordered, out of range, or a ROME edit spread over several layers."""
    layers = body.hyperparameters.layers
    if layers is None:
        return
    field = "hyperparameters.layers"
    if layers != sorted(set(layers)):
        raise invalid(f"layers must be distinct and ascending; got {layers}", field)
    if body.method == "rome" and len(layers) != 1:
        raise invalid(f"ROME edits exactly one layer; got {len(layers)}", field)
    check_layers_in_range(state, model, layers, field)


def fact_texts(body: EditRequest) -> LabelledTexts:
    """Every text the edit job tokenizes, fact by fact, by field (``requests.0.prompt``)."""
    texts: dict[str, tuple[str, str]] = {}
    for index, fact in enumerate(body.requests):
        named = {"prompt": fact.prompt.format(fact.subject), "target_new": fact.target_new}
        named |= {f"paraphrases.{i}": p for i, p in enumerate(fact.paraphrases)}
        named |= {f"neighborhood.{i}.prompt": n.prompt for i, n in enumerate(fact.neighborhood)}
        texts |= {f"requests.{index}.{name}": (f"fact {index}: {name}", text) for name, text in named.items()}
    return texts


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
    check_count(len(body.requests), limit, "requests", noun="facts",
                rule=f"{body.method} takes at most {limit} per request"
                + (" (use memit for more)" if body.method == "rome" else ""))
    check_edit_layers(state, name, body)
    # Counted bare: a target is encoded after its prompt, and a piece with no token of its own fails the job.
    check_token_counts(state, name, fact_texts(body), minimum=1, add_special_tokens=False)
    record, created = submit_job(state, caller, kind="edit", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
