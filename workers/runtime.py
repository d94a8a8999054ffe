"""`WorkerRuntime`: the resident state a worker hands to every task it runs."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from engine.registry import ModelRegistry
from jobs.store import JobStore


@dataclass
class WorkerRuntime:
    """Everything a task needs besides its payload.

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
