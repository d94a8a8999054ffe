"""`POST /score`: per-token log-probabilities of texts, as a job."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.jobs import ScoreJob
from schemas.scoring import ScoreRequest
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import problem_responses
from service.request_checks import check_batch_size, check_count, check_token_counts
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
    check_count(len(body.texts), settings.max_score_texts, "texts")
    check_batch_size(body.batch_size, settings.max_batch_size)
    # Counted as the job encodes them, special tokens included; the schema already refuses an empty text.
    check_token_counts(state, name, {f"texts.{i}": (f"text {i}", text) for i, text in enumerate(body.texts)},
                       minimum=0, add_special_tokens=True)
    record, created = submit_job(state, caller, kind="score", model=name,
                                 payload=body.model_dump(mode="json"), idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
