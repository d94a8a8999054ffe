"""The fast job renderer writes exactly what the typed job view says."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from jobs.record import JobRecord
from ops.registry import Job
from schemas.jobs import JobStatus
from service.jobviews import job_view, render_job

# As a worker stores it: `ScoreResult.model_dump(mode="json")`, every field present.
RESULT = {"texts": [{"tokens": [{"id": 1, "text": "a", "logprob": None}, {"id": 2, "text": " b", "logprob": -1.5}],
                     "total_logprob": -1.5, "mean_logprob": -1.5}], "variant": None, "elapsed_seconds": 0.25}
PROBLEM = {"type": "urn:interp:problem:job-failed", "title": "Job failed", "status": 500, "detail": "boom",
           "traceback_tail": "..."}


@pytest.mark.parametrize(
    "record",
    [
        JobRecord(id="a" * 32, kind="score", model="m", status=JobStatus.queued, fraction=0.0, stage="queued",
                  created_at=1_795_000_000.123456, expires_at=1_795_600_000.0),
        JobRecord(id="b" * 32, kind="score", model="m", status=JobStatus.running, fraction=0.5, stage="scoring",
                  created_at=1_795_000_000.0, started_at=1_795_000_001.5, cancel_requested=True),
        JobRecord(id="c" * 32, kind="score", model="m", status=JobStatus.succeeded, fraction=1.0, stage="done",
                  created_at=1_795_000_000.0, started_at=1.0e9, ended_at=1.1e9, expires_at=1.2e9,
                  result_json=json.dumps(RESULT)),
        JobRecord(id="d" * 32, kind="score", model="m", status=JobStatus.failed, fraction=0.3, stage="failed",
                  created_at=1_795_000_000.0, error_json=json.dumps(PROBLEM)),
    ],
    ids=["queued", "running", "succeeded", "failed"],
)
def test_the_rendered_json_equals_the_validated_job_view(record: JobRecord) -> None:
    rendered = render_job(record)
    assert TypeAdapter(Job).validate_json(rendered) == job_view(record)
    # Byte for byte apart from the problem, whose unset optional fields are left out rather than null.
    as_view = job_view(record).model_dump(mode="json")
    as_rendered = json.loads(rendered)
    assert {k: v for k, v in as_rendered.items() if k != "error"} == {k: v for k, v in as_view.items() if k != "error"}
    assert as_rendered["error"] == (record.error and {k: v for k, v in as_view["error"].items() if v is not None})
