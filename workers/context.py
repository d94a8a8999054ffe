"""`JobContext`: what a running task may do with its job: report progress, notice a cancel."""

from __future__ import annotations

from dataclasses import dataclass

from rq.job import Job

from jobs.store import JobStore


class JobCanceledError(Exception):
    """Raised inside a task at a safe point after the client asked to cancel the job."""


@dataclass
class JobContext:
    """Progress reporting and cooperative cancellation for one running job.

    Args:
        job_id: the job's id.
        store: the job store.
        rq_job: the RQ job; progress is mirrored into its meta for RQ tooling.
    """

    job_id: str
    store: JobStore
    rq_job: Job | None = None

    def report(self, fraction: float, stage: str) -> None:
        """Record progress, then honour a pending cancel."""
        self.store.set_progress(self.job_id, fraction, stage)
        if self.rq_job is not None:
            self.rq_job.meta["progress"] = {"fraction": fraction, "stage": stage}
            self.rq_job.save_meta()
        self.check_canceled()

    def check_canceled(self) -> None:
        """Raise `JobCanceledError` when a cancel was requested; call between batches."""
        if self.store.cancel_requested(self.job_id):
            raise JobCanceledError(self.job_id)
