"""Wire types of the job protocol: status, progress and one typed job view per kind."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from schemas.attribution import AttributionResult
from schemas.diagnosis import DiagnosisReport
from schemas.editing import EditResult
from schemas.erasure import ErasureResult
from schemas.problems import Problem
from schemas.scoring import ScoreResult
from schemas.steering import VectorInfo
from schemas.tracing import TraceResult


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled)


class Progress(BaseModel):
    fraction: float = Field(ge=0.0, le=1.0, description="Share of the work done, 0 to 1.")
    stage: str = Field(description="What the job is doing now, e.g. `queued`, `scoring`, `done`.")


class JobBase(BaseModel):
    """Fields every job carries, whatever its kind."""

    id: str
    model: str
    status: JobStatus
    progress: Progress
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    expires_at: datetime | None = Field(
        default=None, description="When the job and its result are deleted."
    )
    cancel_requested: bool = False
    request_id: str | None = Field(default=None, description="The `X-Request-ID` of the request that submitted "
                                   "the job (the client's, or one the API made); it is in the logs of both sides.")
    error: Problem | None = Field(default=None, description="Why the job failed or was canceled.")
    links: dict[str, str] = Field(default_factory=dict, description="`self` and `cancel` URLs.")


class ScoreJob(JobBase):
    """A `POST /score` job."""

    kind: Literal["score"] = "score"
    result: ScoreResult | None = None


class VectorJob(JobBase):
    """A `POST /steering/vectors` job (large extractions)."""

    kind: Literal["steering_vector"] = "steering_vector"
    result: VectorInfo | None = None


class AttributeJob(JobBase):
    """A `POST /attribute` job."""

    kind: Literal["attribute"] = "attribute"
    result: AttributionResult | None = None


class EraseJob(JobBase):
    """A `POST /erase` job: its result is the stored variant and the erasure report."""

    kind: Literal["erase"] = "erase"
    result: ErasureResult | None = None


class EditJob(JobBase):
    """A `POST /edit` job: its result is the stored variant and the evaluation report."""

    kind: Literal["edit"] = "edit"
    result: EditResult | None = None


class TraceJob(JobBase):
    """A `POST /trace` job: causal tracing or activation patching."""

    kind: Literal["trace"] = "trace"
    result: TraceResult | None = None


class DiagnoseJob(JobBase):
    """A `POST /diagnose` job: attribution, logit lens and tracing in one report."""

    kind: Literal["diagnose"] = "diagnose"
    result: DiagnosisReport | None = None
