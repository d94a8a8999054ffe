"""Job records as wire views, and the 202 response every job-submitting route returns."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Response

from jobs.store import JobRecord
from schemas.jobs import JOB_VIEWS, JobBase, Progress
from schemas.problems import Problem


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
        "result": record.result,
        "error": Problem.model_validate(record.error) if record.error else None,
        "links": {"self": f"/jobs/{record.id}", "cancel": f"/jobs/{record.id}/cancel"},
    })


def accepted(response: Response, record: JobRecord, *, retry_after: int, replayed: bool) -> None:
    """Set the headers of a 202: where to poll, and when."""
    response.status_code = 202
    response.headers["Location"] = f"/jobs/{record.id}"
    response.headers["Retry-After"] = str(retry_after)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
