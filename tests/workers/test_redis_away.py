"""A job computing while Redis is away: progress is skipped, the end is recorded once Redis returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

import workers.tasks
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from schemas.jobs import JobStatus
from tests.fakes import beat, fake_clients, queued_job, tiny_registry, tiny_settings
from workers.context import JobContext
from workers.runtime import WorkerRuntime
from workers.tasks import run_job


class Outage:
    """Makes chosen JobStore methods fail with a connection error the first ``times`` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: JobStore, methods: list[str], times: int) -> None:
        self.failures: dict[str, int] = {}
        for name in methods:
            real = getattr(store, name)

            def flaky(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
                if self.failures.get(_name, 0) < times:
                    self.failures[_name] = self.failures.get(_name, 0) + 1
                    raise RedisConnectionError("Connection refused")
                return _real(*args, **kwargs)

            monkeypatch.setattr(store, name, flaky)


@pytest.fixture
def runtime(tmp_path: Path) -> WorkerRuntime:
    decoded, _ = fake_clients()
    store = JobStore(decoded, ttl_seconds=3600)
    beat(WorkerDirectory(decoded, ttl_seconds=60), "w1")
    return WorkerRuntime(settings=tiny_settings(tmp_path), registry=tiny_registry(), store=store, worker_name="w1")


def test_a_job_that_ends_during_an_outage_records_its_result_when_redis_returns(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(workers.tasks.time, "sleep", waits.append)
    payload = {"model": None, "texts": ["The capital of France is Paris.", "Hi there"], "batch_size": 1}
    job_id = queued_job(runtime.store, payload=payload)
    # Redis goes away once the job is running: every progress write, cancel check and the first
    # three attempts to record the end fail.
    outage = Outage(monkeypatch, runtime.store, ["set_progress", "cancel_requested", "finish"], times=3)

    run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.succeeded
    assert record.result is not None and len(record.result["texts"]) == 2
    assert outage.failures == {"set_progress": 3, "cancel_requested": 3, "finish": 3}
    assert waits == [0.1, 0.2, 0.4]  # backing off between attempts


def test_a_worker_gives_up_recording_after_its_patience(runtime: WorkerRuntime,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 10_000, 200))
    monkeypatch.setattr(workers.tasks.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(workers.tasks.time, "sleep", lambda seconds: None)
    job_id = queued_job(runtime.store)
    Outage(monkeypatch, runtime.store, ["finish"], times=10_000)
    with pytest.raises(RedisConnectionError):
        workers.tasks.finish_patiently(runtime.store, job_id, JobStatus.succeeded, result={})


def test_progress_and_cancel_checks_do_not_fail_a_job_while_redis_is_away(runtime: WorkerRuntime,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = queued_job(runtime.store)
    runtime.store.claim(job_id, "w1")
    Outage(monkeypatch, runtime.store, ["set_progress", "cancel_requested"], times=1)
    context = JobContext(job_id=job_id, store=runtime.store)
    context.progress.report(0.5, "halfway")  # neither write nor check reaches Redis: no exception
    context.progress.report(0.75, "later")  # Redis is back: the record catches up
    record = runtime.store.get(job_id)
    assert record is not None and (record.fraction, record.stage) == (0.75, "later")
