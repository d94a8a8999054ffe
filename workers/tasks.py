"""`run_job`: the one function RQ calls; it moves the job record and runs the job's operation.

The API enqueues ``workers.tasks.run_job`` by import path with JSON arguments
``(job_id, kind, payload)``. The worker's job class passes its `WorkerRuntime` first, so jobs reach
the resident models without module globals. A job runs exactly as the API checked it: the payload is
validated into the operation's request, checked again with every fact (the same check, so the same
problem as at submission), and run; whatever it raises becomes the job's problem through
`ops.errors`, the function the API answers with.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
import traceback
from typing import Any

import torch
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from config.logs import log_context, update_context
from config.settings import DEFAULT_TENANT
from engine.progress import CanceledError
from jobs.store import JobStore
from ops.errors import ProblemError, classify, to_problem
from ops.operation import dump_result
from ops.registry import job_kind
from schemas.jobs import JobStatus
from workers.context import JobContext
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# How long a worker waits for Redis to record a job's end before it gives up on the job.
FINISH_PATIENCE_SECONDS = 600.0

def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says the device ran out of memory (CUDA's error, or the CPU allocator's)."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def release_memory() -> None:
    """Give back what a failed job's tensors held, so the worker serves the next job with all of it."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def problem(error: ProblemError) -> dict[str, Any]:
    """A job's error as stored: the problem object, without empty members."""
    return to_problem(error).model_dump(exclude_none=True)


def finish_patiently(store: JobStore, job_id: str, status: JobStatus, **outcome: Any) -> None:
    """Record how a job ended, waiting out a Redis outage (up to `FINISH_PATIENCE_SECONDS`).

    A job that computed through an outage keeps its result: giving up would leave the record
    `running` with a live worker, which no reaper would ever fail.
    """
    deadline = time.monotonic() + FINISH_PATIENCE_SECONDS
    delay = 0.1
    while True:
        try:
            store.finish(job_id, status, **outcome)
            return
        except RedisError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s ended %s but Redis is unavailable (%s); retrying in %.1f s", job_id,
                        status.value, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def run_job(runtime: WorkerRuntime, job_id: str, kind: str, payload: dict[str, Any]) -> None:
    """Run one job to a terminal state in the job store; never leaves it `running`.

    Everything logged meanwhile carries the job's id, and its tenant and request id once read.
    """
    with log_context(job_id=job_id, kind=kind):
        _run(runtime, job_id, kind, payload)


def _run(runtime: WorkerRuntime, job_id: str, kind: str, payload: dict[str, Any]) -> None:
    store = runtime.store
    end = functools.partial(finish_patiently, store, job_id)
    if not store.claim(job_id, runtime.worker_name):
        log.info("job %s was canceled or already taken; skipping", job_id)
        return
    record = store.get(job_id)
    model = record.model if record else ""
    # The job's tenant decides which variants and vectors it reads and where it stores new ones.
    context = JobContext(job_id=job_id, store=store, rq_job=get_current_job(),
                         tenant=record.tenant if record else DEFAULT_TENANT,
                         request_id=record.request_id if record else None)
    update_context(tenant=context.tenant, request_id=context.request_id)
    try:
        op = job_kind(kind)
        progress = context.progress
        progress.check()
        at = runtime.resident(model, context.tenant, job_id)
        request = op.check(op.request.model_validate(payload), at.facts)
        result = dump_result(op.run(request, at, progress))
    except CanceledError:
        end(JobStatus.canceled, error=problem(ProblemError(
            409, "Canceled", "the job was canceled at the client's request")))
        return
    except JobTimeoutException:
        end(JobStatus.failed, error=problem(ProblemError(
            504, "Job timed out", f"the job exceeded {runtime.settings.job_timeout_seconds} s", slug="timeout")))
        raise
    except Exception as exc:
        if (refused := classify(exc)) is not None:  # the request cannot run: the client's to fix
            end(JobStatus.failed, error=problem(refused))
            return
        if out_of_memory(exc):
            # The request asked for more than this worker holds; the worker itself is fine.
            log.warning("job %s ran out of memory: %s", job_id, exc)
            release_memory()
            end(JobStatus.failed, error=problem(ProblemError(
                507, "Out of memory", f"the job needed more memory than the worker has ({type(exc).__name__}); "
                "ask for less: a smaller internal_batch_size or batch_size, fewer texts or targets, or, for "
                "Integrated Gradients on a bfloat16 worker, precision: model (no float32 copy of the weights)")))
            return
        log.exception("job %s failed", job_id)
        end(JobStatus.failed, error={
            **problem(ProblemError(500, "Job failed", f"{type(exc).__name__}: {exc}")),
            "traceback_tail": traceback.format_exc(limit=3)[-2000:],
        })
        raise
    end(JobStatus.succeeded, result=result)
