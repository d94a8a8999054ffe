"""`POST /trace`: causal tracing or activation patching over a (kind x layer x token) grid, as a job."""

from __future__ import annotations

from fastapi import APIRouter, Response

from config.settings import Settings
from engine.loading import LoadedModel
from schemas.jobs import TraceJob
from schemas.tracing import TraceRequest
from service.deps import CallerDep, IdempotencyKey, StateDep, resolve_model
from service.jobviews import accepted
from service.problems import problem_responses
from service.request_checks import check_at_most, invalid
from service.routes.lens import token_id
from service.submit import submit_job

router = APIRouter(tags=["debugging"])


def check_grid_request(settings: Settings, body: TraceRequest, *, n_tokens: int, n_layers: int | None,
                       samples: int) -> None:
    """Refuse, with the field, a grid the job would only fail on (sizes, ranges, the window)."""
    if n_tokens > settings.max_trace_tokens:
        raise invalid(f"the prompt has {n_tokens} tokens; traces allow {settings.max_trace_tokens}", "prompt")
    check_at_most(samples, settings.max_trace_samples, "samples")
    if body.tokens is not None and (bad := [t for t in body.tokens if not -n_tokens <= t < n_tokens]):
        raise invalid(f"tokens {bad} are outside the prompt's {n_tokens} tokens", "tokens")
    if n_layers is None:
        return
    if body.layers is not None and (bad := [layer for layer in body.layers if not 0 <= layer < n_layers]):
        raise invalid(f"layers {bad} are out of range: the model has blocks 0..{n_layers - 1}", "layers")
    rows = len(set(body.layers)) if body.layers else n_layers
    columns = len(set(body.tokens)) if body.tokens else n_tokens
    runs = len(set(body.kinds)) * rows * columns * samples
    if runs > settings.max_trace_evaluations:
        raise invalid(f"the grid needs {runs} restored runs (kinds x layers x tokens x samples); the limit is "
                      f"{settings.max_trace_evaluations}: restrict `layers`, `tokens`, `kinds` or `samples`",
                      "samples" if samples > 1 else "tokens")


def check_resident(lm: LoadedModel, settings: Settings, body: TraceRequest) -> None:
    """Checks that need the tokenizer and the model's shape."""
    prompt_ids = list(lm.tokenizer(body.prompt)["input_ids"])
    if body.method == "causal_trace":
        at = body.prompt.find(body.subject or "")
        if body.subject is None or at < 0:
            raise invalid("the subject must occur in the prompt", "subject")
    else:
        corrupted = list(lm.tokenizer(body.corrupted_prompt or "")["input_ids"])
        if len(corrupted) != len(prompt_ids):
            raise invalid(f"the corrupted prompt has {len(corrupted)} tokens and the prompt {len(prompt_ids)}; "
                          "activation patching needs equal lengths", "corrupted_prompt")
    samples = body.samples if body.method == "causal_trace" else 1
    check_grid_request(settings, body, n_tokens=len(prompt_ids), n_layers=lm.n_layers, samples=samples)
    if body.answer is not None:
        token_id(lm, body.answer, "answer")


@router.post(
    "/trace",
    response_model=TraceJob,
    status_code=202,
    summary="Causal tracing or activation patching (job): which activations carry the answer",
    responses=problem_responses(401, 404, 409, 413, 422, 503),
)
def trace(
    body: TraceRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    name = resolve_model(state, body.model)
    if body.method == "causal_trace" and body.subject is None:
        raise invalid("causal_trace corrupts the subject: give `subject`", "subject")
    if body.method == "activation_patching" and body.corrupted_prompt is None:
        raise invalid("activation_patching runs a corrupted prompt: give `corrupted_prompt`", "corrupted_prompt")
    check_at_most(body.samples, state.settings.max_trace_samples, "samples")
    if name in state.registry:
        check_resident(state.registry.get(name), state.settings, body)
    record, created = submit_job(state, caller, kind="trace", model=name, payload=body.model_dump(mode="json"),
                                 idempotency_key=idempotency_key)
    return accepted(record, retry_after=state.settings.retry_after_seconds, replayed=not created)
