"""A job whose worker dies: run again while it has retries (`INTERP_JOB_RETRIES`), then failed.

And the guard after a Redis restart: heartbeats expire by the clock while Redis is down, so a
Redis back from its append-only file would make every live worker look dead; nothing is reaped
until the workers had one heartbeat TTL to beat again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.directory import WorkerDirectory
from jobs.reader import AsyncJobReader
from jobs.store import RUNNING_SET, JobStore
from jobs.submission import JobSubmitter
from schemas.jobs import JobStatus
from tests.fakes import beat

QUEUE, TTL = "interp.model.tiny", 3600


def deployment(retries: int, grace: float = 0.0) -> tuple[JobStore, JobSubmitter, Queue]:
    server = fakeredis.FakeServer()
    store = JobStore(fakeredis.FakeRedis(server=server, decode_responses=True), ttl_seconds=TTL,
                     restart_grace_seconds=grace)
    raw = fakeredis.FakeRedis(server=server)
    submitter = JobSubmitter(raw, store, job_timeout=60, retries=retries)
    return store, submitter, Queue(QUEUE, connection=raw, serializer=JSONSerializer)


def start_on_a_worker_that_dies(store: JobStore, queue: Queue, job_id: str, worker: str) -> None:
    """What a worker does before it is killed: take the message off the queue and claim the job."""
    assert queue.pop_job_id() == job_id
    beat(WorkerDirectory(store.redis, ttl_seconds=60), worker)
    assert store.claim(job_id, worker)
    store.redis.delete(f"interp:worker:{worker}")  # SIGKILL: its heartbeat is gone


def submit(submitter: JobSubmitter) -> str:
    record, _ = submitter.submit(kind="score", model="tiny", queue=QUEUE, payload={"texts": ["a"]})
    return record.id


def test_a_job_whose_worker_died_is_queued_again_at_the_front_until_its_retries_are_spent() -> None:
    store, submitter, queue = deployment(retries=2)
    job_id, later = submit(submitter), None
    for attempt in (1, 2):
        start_on_a_worker_that_dies(store, queue, job_id, f"w{attempt}")
        later = later or submit(submitter)  # another job waits behind it
        assert store.reap_orphans() == [job_id]
        record = store.get(job_id)
        assert record is not None and record.status is JobStatus.queued
        assert f"worker w{attempt} was lost (retry {attempt} of 2)" in record.stage
        assert (record.worker, record.started_at, record.error) == (None, None, None)
        assert queue.job_ids == [job_id, later]  # first in line again, after the job it had overtaken
        assert job_id not in store.redis.smembers(RUNNING_SET)
    start_on_a_worker_that_dies(store, queue, job_id, "w3")
    assert store.reap_orphans() == [job_id]
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error is not None and record.error["type"] == "urn:interp:problem:worker-lost"
    assert queue.job_ids == [later]


def test_without_retries_a_job_whose_worker_died_fails_when_it_is_read() -> None:
    store, submitter, queue = deployment(retries=0)
    job_id = submit(submitter)
    start_on_a_worker_that_dies(store, queue, job_id, "w1")
    record = store.get(job_id)  # the read itself reaps
    assert record is not None and record.status is JobStatus.failed
    assert queue.job_ids == []


def test_a_job_whose_cancel_was_requested_is_not_run_again() -> None:
    store, submitter, queue = deployment(retries=3)
    job_id = submit(submitter)
    start_on_a_worker_that_dies(store, queue, job_id, "w1")
    store.request_cancel(job_id)
    assert store.reap_orphans() == [job_id]
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert queue.job_ids == []


@pytest.mark.parametrize(("uptime", "reaped"), [(3, False), (30, True)])
def test_nothing_is_reaped_within_a_heartbeat_ttl_of_a_redis_start(monkeypatch: pytest.MonkeyPatch, uptime: int,
                                                                   reaped: bool) -> None:
    store, submitter, queue = deployment(retries=0, grace=10.0)
    job_id = submit(submitter)
    start_on_a_worker_that_dies(store, queue, job_id, "w1")
    asked: list[str] = []

    def info(section: str) -> dict[str, Any]:
        asked.append(section)
        return {"uptime_in_seconds": uptime}

    monkeypatch.setattr(store.redis, "info", info)
    record = store.get(job_id)
    assert record is not None and (record.status is JobStatus.failed) is reaped
    assert asked == ["server"]
    # A job whose worker is alive costs no INFO at all.
    other = submit(submitter)
    assert queue.pop_job_id() == other
    beat(WorkerDirectory(store.redis, ttl_seconds=60), "alive")
    store.claim(other, "alive")
    assert store.get(other) is not None and asked == ["server"]


@pytest.mark.parametrize(("uptime", "reaped"), [(3, False), (30, True)])
def test_the_api_read_path_waits_out_a_redis_start_too(monkeypatch: pytest.MonkeyPatch, uptime: int,
                                                       reaped: bool) -> None:
    store, submitter, queue = deployment(retries=0)
    job_id = submit(submitter)
    start_on_a_worker_that_dies(store, queue, job_id, "w1")
    server = store.redis.connection_pool.connection_kwargs["server"]
    reader = AsyncJobReader(fakeredis.FakeAsyncRedis(server=server, decode_responses=True), ttl_seconds=TTL,
                            restart_grace_seconds=10.0)

    async def info(section: str) -> dict[str, Any]:
        return {"uptime_in_seconds": uptime}

    monkeypatch.setattr(reader.redis, "info", info)
    record = asyncio.run(reader.get(job_id))
    assert record is not None and (record.status is JobStatus.failed) is reaped
