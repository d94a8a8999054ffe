"""`POST /score`: per-token log-probabilities of texts, as a job."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.jobs import ScoreJob
from schemas.scoring import ScoreRequest
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import ProblemError, problem_responses
from service.submit import submit_job
from service.variants import check_variant

router = APIRouter(tags=["scoring"])


@router.post(
    "/score",
    response_model=ScoreJob,
    status_code=202,
    summary="Score texts: per-token log-probabilities (job)",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def score(
    body: ScoreRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    check_variant(state, caller, name, body.variant)
    if len(body.texts) > settings.max_score_texts:
        raise ProblemError(422, "Invalid request",
                           f"{len(body.texts)} texts; the limit is {settings.max_score_texts}", field="texts")
    if body.batch_size is not None and body.batch_size > settings.max_batch_size:
        raise ProblemError(422, "Invalid request",
                           f"batch_size {body.batch_size} exceeds the limit {settings.max_batch_size}",
                           field="batch_size")
    if name in state.registry:
        # Check token limits here, where the client gets a 422, rather than in a failed job.
        tokenizer = state.registry.get(name).tokenizer
        for index, text in enumerate(body.texts):
            n_tokens = len(tokenizer(text)["input_ids"])
            if n_tokens > settings.max_prompt_tokens:
                raise ProblemError(422, "Invalid request",
                                   f"text {index} has {n_tokens} tokens; the limit is {settings.max_prompt_tokens}",
                                   field=f"texts.{index}")
    record, created = submit_job(state, caller, kind="score", model=name,
                                 payload=body.model_dump(mode="json"), idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
