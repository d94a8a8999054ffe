"""`ModelWorker`: an RQ `SimpleWorker` that keeps its models resident and beats a heartbeat.

`SimpleWorker` runs jobs in its own process: a forking worker would lose the resident model
(and CUDA does not survive a fork). RQ's own worker TTL is far too coarse to notice a killed
worker quickly, so a daemon thread writes a heartbeat every couple of seconds; the job store
fails a running job as soon as its worker's heartbeat expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import torch
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from jobs.directory import WorkerDirectory
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``; None elsewhere)."""
    try:
        pages = int(open("/proc/self/statm").read().split()[1])  # noqa: SIM115 (one short read)
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class ModelJob(Job):
    """An RQ job whose function receives the worker's `WorkerRuntime` as first argument."""

    runtime: WorkerRuntime | None = None

    def _execute(self) -> Any:
        if self.runtime is None:
            raise RuntimeError("ModelJob executed outside a ModelWorker")
        assert self.func is not None
        return self.func(self.runtime, *self.args, **self.kwargs)


class ModelWorker(SimpleWorker):
    """Serve the queues of the models in ``runtime.registry``.

    Args:
        runtime: resident models, job store and settings.
        directory: where heartbeats are written.
        connection: a Redis client with ``decode_responses=False`` (RQ's requirement).
    """

    job_class = ModelJob

    def __init__(self, runtime: WorkerRuntime, directory: WorkerDirectory, connection: Any) -> None:
        queues = [
            Queue(runtime.settings.queue_name(name), connection=connection, serializer=JSONSerializer)
            for name in runtime.registry.names()
        ]
        super().__init__(
            queues, connection=connection, name=runtime.worker_name,
            serializer=JSONSerializer, job_class=ModelJob,
        )
        self.runtime = runtime
        self.directory = directory
        self._stop_beating = threading.Event()
        self._beater: threading.Thread | None = None

    def execute_job(self, job: Job, queue: Queue) -> None:
        assert isinstance(job, ModelJob)
        job.runtime = self.runtime
        super().execute_job(job, queue)

    def heartbeat_info(self) -> dict[str, Any]:
        """What the API learns about this worker: models (with shapes and resident bytes), pid, memory."""
        models = {
            lm.name: {
                "architecture": lm.architecture,
                "n_layers": lm.n_layers,
                "hidden_size": lm.hidden_size,
                "dtype": str(lm.dtype).removeprefix("torch."),
                "device": str(lm.device),
                "parameter_bytes": lm.parameter_bytes,
            }
            for lm in self.runtime.registry
        }
        info: dict[str, Any] = {
            "name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
            "models": models, "time": time.time(),
        }
        rss = resident_bytes()
        if rss is not None:
            info["rss_bytes"] = rss
        if torch.cuda.is_available():
            info["cuda_allocated_bytes"] = torch.cuda.memory_allocated()
        return info

    def start_heartbeat(self) -> None:
        """Beat once now (so readiness is immediate), then from a daemon thread."""
        self.directory.beat(self.name, self.heartbeat_info())
        interval = self.runtime.settings.worker_heartbeat_seconds

        def beat_forever() -> None:
            while not self._stop_beating.wait(interval):
                try:
                    self.directory.beat(self.name, self.heartbeat_info())
                except Exception as exc:  # Redis may be away for a while; keep trying
                    log.warning("heartbeat failed: %s", exc)

        self._beater = threading.Thread(target=beat_forever, name="heartbeat", daemon=True)
        self._beater.start()

    def stop_heartbeat(self) -> None:
        self._stop_beating.set()
        try:
            self.directory.remove(self.name, self.runtime.registry.names())
        except Exception as exc:
            log.warning("could not deregister worker: %s", exc)
