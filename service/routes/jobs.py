"""Job status (with long-poll) and cancellation."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from ops.errors import ProblemError
from ops.registry import Job
from schemas.jobs import JobStatus
from service.deps import CallerDep, JobId, StateDep
from service.jobviews import job_response, unknown_job, visible
from service.problems import problem_responses

router = APIRouter(tags=["jobs"])



@router.get(
    "/jobs/{job_id}",
    response_model=Job,
    summary="Job status, progress and result",
    responses=problem_responses(401, 404, 422, 503),
)
async def get_job(
    job_id: JobId,
    state: StateDep,
    caller: CallerDep,
    wait: Annotated[float, Query(ge=0, allow_inf_nan=False, description="Wait up to this many seconds for the "
                                 "job to end (long-poll; capped by the server).")] = 0.0,
) -> Response:
    deadline = time.monotonic() + min(wait, state.settings.max_wait_seconds)
    # The asyncio reader: a slow Redis delays only the requests that need it, with no thread hop.
    record = visible(await state.reader.get(job_id), caller)
    delay = 0.02
    while record is not None and not record.status.terminal and time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 1.5, 0.25)
        record = visible(await state.reader.get(job_id), caller)
    if record is None:
        raise unknown_job(job_id)
    headers = None if record.status.terminal else {"Retry-After": str(state.settings.retry_after_seconds)}
    return job_response(record, headers=headers)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=Job,
    status_code=202,
    summary="Cancel a job (cooperative: a running job stops at its next batch)",
    responses=problem_responses(401, 404, 409, 422, 503),
)
def cancel_job(job_id: JobId, state: StateDep, caller: CallerDep) -> Response:
    record = visible(state.store.get(job_id), caller)
    if record is None:
        raise unknown_job(job_id)
    if record.status.terminal:
        raise ProblemError(409, "Job already ended", f"job {job_id} is {record.status.value}; nothing to cancel",
                           field="job_id")
    state.store.request_cancel(job_id)
    if record.status is JobStatus.queued and state.store.finish(
        job_id, JobStatus.canceled, only_from=(JobStatus.queued,),
        error={"type": "urn:interp:problem:canceled", "title": "Canceled", "status": 409,
               "detail": "the job was canceled before it started"},
    ):
        state.submitter.cancel_queued(state.settings.queue_name(record.model), job_id)
    updated = state.store.get(job_id)
    if updated is None:
        raise unknown_job(job_id)
    return job_response(updated, status_code=202)
