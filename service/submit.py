"""Submitting a job from a route: queue choice, worker check, idempotency conflicts, the 202."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from jobs.quota import TooManyJobsError
from jobs.record import JobRecord
from jobs.submission import IdempotencyConflictError
from ops.errors import ProblemError
from ops.operation import JobOperation
from service.auth import Caller
from service.jobviews import accepted
from service.state import AppState


def submit_job(
    state: AppState, caller: Caller, *, kind: str, model: str, payload: dict[str, Any], idempotency_key: str | None,
    as_sent: dict[str, Any] | None = None,
) -> tuple[JobRecord, bool]:
    """Enqueue a job of the caller's tenant (which the worker reads and writes stores as) on the model's
    queue; 503 when no worker serves the model, 409 on key reuse, 429 at the tenant's job cap.
    ``as_sent``: the request before its check pinned references (what idempotency compares)."""
    if not state.has_worker(model):
        # Accepting work that nobody can run would leave it queued with no end in sight.
        raise ProblemError(503, "No worker", f"no live worker serves model {model!r}; retry shortly",
                           headers={"Retry-After": str(state.settings.retry_after_seconds * 5)})
    try:
        return state.submitter.submit(kind=kind, model=model, queue=state.settings.queue_name(model),
                                      payload=payload, idempotency_key=idempotency_key, tenant=caller.tenant,
                                      request_id=caller.request_id, max_active=state.max_active_jobs,
                                      as_sent=as_sent)
    except IdempotencyConflictError as exc:
        raise ProblemError(409, "Idempotency conflict", str(exc), field="Idempotency-Key",
                           job_id=exc.job_id) from exc
    except TooManyJobsError as exc:
        raise ProblemError(429, "Too many jobs", f"{exc}; wait for some to end (or cancel them)",
                           headers={"Retry-After": str(state.settings.retry_after_seconds * 5)},
                           active=exc.active, limit=exc.cap) from exc


def submit(state: AppState, caller: Caller, op: JobOperation[Any, Any], sent: Any, checked: Any, *, model: str,
           idempotency_key: str | None) -> Response:
    """Queue a checked request (its references pinned) as a job of ``op``; the 202 naming the job.

    Args:
        sent: the request as the client sent it (a retry with the same idempotency key compares this).
        checked: what ``op.check`` made of it: the job's payload.
    """
    record, created = submit_job(state, caller, kind=op.kind, model=model, payload=checked.model_dump(mode="json"),
                                 idempotency_key=idempotency_key, as_sent=sent.model_dump(mode="json"))
    return accepted(record, retry_after=state.settings.retry_after_seconds, replayed=not created)
