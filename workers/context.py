"""`JobContext`: what a running task may do with its job: report progress, notice a cancel."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError
from rq.job import Job

from config.settings import DEFAULT_TENANT
from jobs.store import JobStore

log = logging.getLogger(__name__)


class JobCanceledError(Exception):
    """Raised inside a task at a safe point after the client asked to cancel the job."""


@dataclass
class JobContext:
    """Progress reporting and cooperative cancellation for one running job.

    Args:
        job_id: the job's id.
        store: the job store.
        rq_job: the RQ job; progress is mirrored into its meta for RQ tooling.
        tenant: the tenant that submitted the job: its variants and vectors are the ones the task
            may read, and the ones it creates go to its namespace (see `workers.variants`).
        request_id: the id of the HTTP request that submitted the job.
    """

    job_id: str
    store: JobStore
    rq_job: Job | None = None
    tenant: str = DEFAULT_TENANT
    request_id: str | None = None

    def report(self, fraction: float, stage: str) -> None:
        """Record progress, then honour a pending cancel.

        Progress is best effort: while Redis is away the job computes on, and the next report after
        Redis returns brings the record up to date.
        """
        try:
            self.store.set_progress(self.job_id, fraction, stage)
            if self.rq_job is not None:
                self.rq_job.meta["progress"] = {"fraction": fraction, "stage": stage}
                self.rq_job.save_meta()
        except RedisError as exc:
            log.warning("progress of job %s not recorded (Redis unavailable): %s", self.job_id, exc)
        self.check_canceled()

    def check_canceled(self) -> None:
        """Raise `JobCanceledError` when a cancel was requested; call between batches."""
        try:
            requested = self.store.cancel_requested(self.job_id)
        except RedisError:
            return  # nobody can request a cancel while Redis is away; the next batch checks again
        if requested:
            raise JobCanceledError(self.job_id)
