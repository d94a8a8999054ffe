"""`WorkerRuntime`: the resident state a worker hands to every job it runs."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from engine.registry import ModelRegistry
from jobs.store import JobStore
from ops.context import Resident, Stores


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
                        stores=Stores.of(self.settings, tenant), job_id=job_id)
