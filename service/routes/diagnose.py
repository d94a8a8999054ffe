"""`POST /diagnose`: attribution, logit lens and causal tracing read into one report with fixes, as a job."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.diagnosis import DiagnoseRequest
from schemas.jobs import DiagnoseJob
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import problem_responses
from service.request_checks import check_at_most, invalid
from service.submit import submit_job

router = APIRouter(tags=["debugging"])


@router.post(
    "/diagnose",
    response_model=DiagnoseJob,
    status_code=202,
    summary="Diagnose a wrong (or right) answer: attribution, lens and tracing, with fixes as requests (job)",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def diagnose(
    body: DiagnoseRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    settings = state.settings
    check_at_most(body.samples, settings.max_trace_samples, "samples")
    if body.subject is not None and body.subject not in body.prompt:
        raise invalid("the subject must occur in the prompt", "subject")
    if name in state.registry:
        lm = state.registry.get(name)
        n_tokens = len(lm.tokenizer(body.prompt)["input_ids"])
        if n_tokens > settings.max_trace_tokens:
            raise invalid(f"the prompt has {n_tokens} tokens; a diagnosis traces at most {settings.max_trace_tokens}",
                          "prompt")
        if not lm.tokenizer(body.expected, add_special_tokens=False)["input_ids"]:
            raise invalid("the expected answer encodes to no tokens", "expected")
        runs = len({"mlp", *body.kinds}) * lm.n_layers * n_tokens * body.samples
        if runs > settings.max_trace_evaluations:
            raise invalid(f"the trace needs {runs} restored runs; the limit is {settings.max_trace_evaluations}: "
                          "use fewer `samples` or `kinds`", "samples")
    record, created = submit_job(state, caller, kind="diagnose", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=settings.retry_after_seconds, replayed=not created)
