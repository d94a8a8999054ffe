"""`JobContext`: where a running job's progress goes and how it learns of a cancel, both through Redis.

An operation sees only an `engine.progress.Progress` (`JobContext.progress`): every report records
the job's progress and then checks for a cancel, which raises `CanceledError` at that safe point.
Both are best effort while Redis is away: the job computes on, and the next report after Redis
returns brings the record up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq.job import Job

from config.settings import DEFAULT_TENANT
from engine.progress import Progress
from jobs.store import JobStore

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """Progress reporting and cooperative cancellation for one running job.

    Args:
        job_id: the job's id.
        store: the job store.
        rq_job: the RQ job; progress is mirrored into its meta for RQ tooling.
        tenant: the tenant that submitted the job: its variants and vectors are the ones the job
            may read, and the ones it creates go to its namespace.
        request_id: the id of the HTTP request that submitted the job.
    """

    job_id: str
    store: JobStore
    rq_job: Job | None = None
    tenant: str = DEFAULT_TENANT
    request_id: str | None = None

    def record(self, fraction: float, stage: str) -> None:
        """Record progress (skipped, with a warning, while Redis is unavailable)."""
        try:
            self.store.set_progress(self.job_id, fraction, stage)
            if self.rq_job is not None:
                self.rq_job.meta["progress"] = {"fraction": fraction, "stage": stage}
                self.rq_job.save_meta()
        except RedisError as exc:
            log.warning("progress of job %s not recorded (Redis unavailable): %s", self.job_id, exc)

    def cancel_requested(self) -> bool:
        """Whether the client asked to cancel (no while Redis is away: nobody can ask meanwhile)."""
        try:
            return self.store.cancel_requested(self.job_id)
        except RedisError:
            return False

    @property
    def progress(self) -> Progress:
        """The job's progress, as the operation reports it."""
        return Progress(on_progress=self.record, should_stop=self.cancel_requested)
