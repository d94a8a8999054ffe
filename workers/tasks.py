"""`run_job`: the one function RQ calls; it moves the job record and dispatches by kind.

The API enqueues ``workers.tasks.run_job`` by import path with JSON arguments
``(job_id, kind, payload)``. The worker's job class passes its `WorkerRuntime` first, so tasks
reach the resident models without module globals.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from rq import get_current_job
from rq.timeouts import JobTimeoutException

from engine.registry import UnknownModelError
from engine.variant_store import VariantNotFoundError
from schemas.jobs import JobStatus
from workers.attribution import run_attribute
from workers.context import JobCanceledError, JobContext
from workers.diagnosis import run_diagnose
from workers.erasure import run_erase
from workers.runtime import WorkerRuntime
from workers.scoring import run_score
from workers.steering import run_extract_vector
from workers.tracing import run_trace

log = logging.getLogger(__name__)

Task = Callable[[WorkerRuntime, JobContext, str, dict[str, Any]], dict[str, Any]]

TASKS: dict[str, Task] = {"score": run_score, "steering_vector": run_extract_vector, "attribute": run_attribute,
                        "erase": run_erase, "trace": run_trace, "diagnose": run_diagnose}


def problem(title: str, status: int, detail: str, kind: str) -> dict[str, Any]:
    return {"type": f"urn:interp:problem:{kind}", "title": title, "status": status, "detail": detail}


def run_job(runtime: WorkerRuntime, job_id: str, kind: str, payload: dict[str, Any]) -> None:
    """Run one job to a terminal state in the job store; never leaves it `running`."""
    store = runtime.store
    if not store.claim(job_id, runtime.worker_name):
        log.info("job %s was canceled or already taken; skipping", job_id)
        return
    context = JobContext(job_id=job_id, store=store, rq_job=get_current_job())
    record = store.get(job_id)
    model = record.model if record else ""
    try:
        task = TASKS[kind]
        context.check_canceled()
        result = task(runtime, context, model, payload)
    except JobCanceledError:
        store.finish(job_id, JobStatus.canceled, error=problem(
            "Canceled", 409, "the job was canceled at the client's request", "canceled"))
        return
    except JobTimeoutException:
        store.finish(job_id, JobStatus.failed, error=problem(
            "Job timed out", 504, f"the job exceeded {runtime.settings.job_timeout_seconds} s", "timeout"))
        raise
    except UnknownModelError as exc:
        store.finish(job_id, JobStatus.failed, error=problem("Unknown model", 404, str(exc), "unknown-model"))
        return
    except VariantNotFoundError as exc:  # deleted between submission and run
        store.finish(job_id, JobStatus.failed, error={
            **problem("Unknown variant", 404, str(exc), "unknown-variant"), "field": "variant"})
        return
    except ValueError as exc:  # the engine refused the request's values: the client's mistake
        store.finish(job_id, JobStatus.failed, error=problem("Invalid request", 422, str(exc), "invalid-request"))
        return
    except Exception as exc:
        log.exception("job %s failed", job_id)
        store.finish(job_id, JobStatus.failed, error={
            **problem("Job failed", 500, f"{type(exc).__name__}: {exc}", "job-failed"),
            "traceback_tail": traceback.format_exc(limit=3)[-2000:],
        })
        raise
    store.finish(job_id, JobStatus.succeeded, result=result)
