"""Job records as wire views, and the 202 response every job-submitting route returns.

`render_job` is the hot path of polling: it writes the view's JSON directly, splicing in the
stored result and error text without parsing them, instead of validating a Pydantic model twice
(once to build it, once as the response model). A test holds it equal to `job_view`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import Response

from jobs.record import JobRecord
from ops.errors import NotFoundError, ProblemError
from ops.registry import JOB_VIEWS
from schemas.jobs import JobBase, Progress
from schemas.problems import Problem
from service.auth import Caller


def unknown_job(job_id: str) -> ProblemError:
    """The 404 of a job that never existed, has expired, or is another tenant's."""
    return NotFoundError("Unknown job", f"no job {job_id!r} (it never existed or has expired)", "job_id")


def visible(record: JobRecord | None, caller: Caller) -> JobRecord | None:
    """The record if the caller's tenant owns it; another tenant's job is as unknown as a missing one."""
    return record if record is not None and record.tenant == caller.tenant else None


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def job_view(record: JobRecord) -> JobBase:
    """Convert a stored job into its typed view (`ScoreJob`, ...)."""
    view = JOB_VIEWS[record.kind]
    return view.model_validate({
        "id": record.id,
        "kind": record.kind,
        "model": record.model,
        "status": record.status,
        "progress": Progress(fraction=record.fraction, stage=record.stage),
        "created_at": _time(record.created_at),
        "started_at": _time(record.started_at),
        "ended_at": _time(record.ended_at),
        "expires_at": _time(record.expires_at),
        "cancel_requested": record.cancel_requested,
        "request_id": record.request_id,
        "result": record.result,
        "error": Problem.model_validate(record.error) if record.error else None,
        "links": {"self": f"/jobs/{record.id}", "cancel": f"/jobs/{record.id}/cancel"},
    })


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=UTC).isoformat().replace("+00:00", "Z")


def render_job(record: JobRecord) -> bytes:
    """The JSON of ``job_view(record)``, fast."""
    head = {
        "id": record.id,
        "kind": record.kind,
        "model": record.model,
        "status": record.status.value,
        "progress": {"fraction": record.fraction, "stage": record.stage},
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
        "expires_at": _iso(record.expires_at),
        "cancel_requested": record.cancel_requested,
        "request_id": record.request_id,
        "links": {"self": f"/jobs/{record.id}", "cancel": f"/jobs/{record.id}/cancel"},
    }
    text = json.dumps(head, separators=(",", ":"))
    return (f'{text[:-1]},"error":{record.error_json or "null"},"result":{record.result_json or "null"}}}').encode()


def job_response(record: JobRecord, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(render_job(record), status_code=status_code, headers=headers, media_type="application/json")


def accepted(record: JobRecord, *, retry_after: int, replayed: bool) -> Response:
    """The 202 for a submitted job: the job, where to poll it (Location), and when (Retry-After)."""
    headers = {"Location": f"/jobs/{record.id}", "Retry-After": str(retry_after)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return job_response(record, status_code=202, headers=headers)
