"""`POST /attribute`: Integrated Gradients or SHAP over input tokens, as a job."""

from __future__ import annotations

from fastapi import APIRouter, Response

from engine.attribution.inputs import baseline_id, prepare_input, resolve_next_token
from engine.prompts import EmptyPromptError, PromptTooLongError
from schemas.attribution import AttributeRequest, NextTokenTarget
from schemas.jobs import AttributeJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import ProblemError, problem_responses
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["attribution"])


@router.post(
    "/attribute",
    response_model=AttributeJob,
    status_code=202,
    summary="Attribute the output to input tokens (job); see GET /jobs/{id} and /jobs/{id}/view",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def attribute(
    body: AttributeRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    check_variant(state, caller, name, body.variant)
    if name in state.registry:
        # Refuse here, with the field, what the job would only fail on later.
        lm = state.registry.get(name)
        field = "messages" if body.messages is not None else "prompt"
        try:
            prepared = prepare_input(lm.tokenizer, prompt=body.prompt,
                                     messages=[m.model_dump() for m in body.messages] if body.messages else None,
                                     max_tokens=state.settings.max_prompt_tokens)
        except (PromptTooLongError, EmptyPromptError, ValueError) as exc:
            raise ProblemError(422, "Invalid request", str(exc), field=field) from exc
        if body.method == "integrated_gradients":
            try:
                baseline_id(lm, body.baseline)
            except ValueError as exc:
                raise ProblemError(422, "Invalid request", str(exc), field="baseline") from exc
        if isinstance(body.target, NextTokenTarget) and body.target.token is not None:
            try:
                resolve_next_token(lm, prepared.input_ids, body.target.token)
            except ValueError as exc:
                raise ProblemError(422, "Invalid request", str(exc), field="target.token") from exc
    record, created = submit_job(state, caller, kind="attribute", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=state.settings.retry_after_seconds, replayed=not created)
