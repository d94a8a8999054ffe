"""`WorkerRuntime`: the resident state a worker hands to every job it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from config.settings import Settings
from engine.registry import ModelRegistry
from jobs.store import JobStore
from ops.context import Resident, Stores

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    """Everything a job needs besides its payload.

    Attributes:
        settings: the stack's settings.
        registry: the models resident in this worker.
        store: the job store.
        worker_name: this worker's name, recorded on the jobs it claims.
    """

    settings: Settings
    registry: ModelRegistry
    store: JobStore
    worker_name: str

    def resident(self, model: str, tenant: str, job_id: str | None = None) -> Resident:
        """What an operation runs on: the model (`UnknownModelError` when not held), the tenant's stores.

        Raises:
            UnknownModelError: this worker does not hold ``model``.
        """
        return Resident(lm=self.registry.get(model), runtime=self.registry.runtime(model), settings=self.settings,
                        stores=Stores.of(self.settings, tenant), job_id=job_id,
                        record_output=self._recorder(job_id) if job_id is not None else None)

    def _recorder(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        """Records, in the job's record, what it is about to publish (`ops.outputs`); best effort."""
        def record(pending: dict[str, Any]) -> None:
            try:
                self.store.set_pending(job_id, pending)
            except RedisError as exc:  # the job goes on; only a death in the next instant would orphan
                log.warning("job %s: pending output not recorded (Redis unavailable): %s", job_id, exc)
        return record
