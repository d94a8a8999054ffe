"""`run_job`: the one function RQ calls; it moves the job record and dispatches by kind.

The API enqueues ``workers.tasks.run_job`` by import path with JSON arguments
``(job_id, kind, payload)``. The worker's job class passes its `WorkerRuntime` first, so tasks
reach the resident models without module globals.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
from redis.exceptions import RedisError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from config.logs import log_context, update_context
from config.settings import DEFAULT_TENANT
from engine.registry import UnknownModelError
from jobs.store import JobStore
from schemas.jobs import JobStatus
from store.integrity import CorruptEntryError
from store.versioned import EntryNotFoundError
from workers.attribution import run_attribute
from workers.context import JobCanceledError, JobContext
from workers.diagnosis import run_diagnose
from workers.editing import run_edit
from workers.erasure import run_erase
from workers.runtime import WorkerRuntime
from workers.scoring import run_score
from workers.steering import run_extract_vector
from workers.tracing import run_trace

log = logging.getLogger(__name__)

# How long a worker waits for Redis to record a job's end before it gives up on the job.
FINISH_PATIENCE_SECONDS = 600.0

Task = Callable[[WorkerRuntime, JobContext, str, dict[str, Any]], dict[str, Any]]

TASKS: dict[str, Task] = {"score": run_score, "steering_vector": run_extract_vector, "attribute": run_attribute,
                        "erase": run_erase, "edit": run_edit, "trace": run_trace, "diagnose": run_diagnose}


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


def problem(title: str, status: int, detail: str, kind: str) -> dict[str, Any]:
    return {"type": f"urn:interp:problem:{kind}", "title": title, "status": status, "detail": detail}


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
        task = TASKS[kind]
        context.check_canceled()
        result = task(runtime, context, model, payload)
    except JobCanceledError:
        end(JobStatus.canceled, error=problem(
            "Canceled", 409, "the job was canceled at the client's request", "canceled"))
        return
    except JobTimeoutException:
        end(JobStatus.failed, error=problem(
            "Job timed out", 504, f"the job exceeded {runtime.settings.job_timeout_seconds} s", "timeout"))
        raise
    except UnknownModelError as exc:
        end(JobStatus.failed, error=problem("Unknown model", 404, str(exc), "unknown-model"))
        return
    except EntryNotFoundError as exc:  # deleted between submission and run
        end(JobStatus.failed, error={
            **problem("Unknown variant", 404, str(exc), "unknown-variant"), "field": "variant"})
        return
    except CorruptEntryError as exc:  # a stored variant or vector is damaged: reported, never used
        end(JobStatus.failed, error=problem("Corrupt stored entry", 409, str(exc), "corrupt-entry"))
        return
    except ValueError as exc:  # the engine refused the request's values: the client's mistake
        error = problem("Invalid request", 422, str(exc), "invalid-request")
        if isinstance(field := getattr(exc, "field", None), str):  # e.g. a hyperparameter override
            error["field"] = field
        end(JobStatus.failed, error=error)
        return
    except Exception as exc:
        if out_of_memory(exc):
            # The request asked for more than this worker holds; the worker itself is fine.
            log.warning("job %s ran out of memory: %s", job_id, exc)
            release_memory()
            end(JobStatus.failed, error=problem(
                "Out of memory", 507, f"the job needed more memory than the worker has ({type(exc).__name__}); ask "
                "for less: a smaller internal_batch_size or batch_size, fewer texts or targets, or, for Integrated "
                "Gradients on a bfloat16 worker, precision: model (no float32 copy of the weights)", "out-of-memory"))
            return
        log.exception("job %s failed", job_id)
        end(JobStatus.failed, error={
            **problem("Job failed", 500, f"{type(exc).__name__}: {exc}", "job-failed"),
            "traceback_tail": traceback.format_exc(limit=3)[-2000:],
        })
        raise
    end(JobStatus.succeeded, result=result)
