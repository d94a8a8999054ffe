"""Jobs and tenants in Redis: the record keeps its tenant and request id, the per-tenant cap is exact
under races and heals itself, and the deployment-wide counters count every ending."""

from __future__ import annotations

import threading
import time
from typing import cast

import fakeredis
import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from config.settings import DEFAULT_TENANT
from jobs.quota import ACTIVE_PREFIX, PENDING_SECONDS, JobQuota, TooManyJobsError
from jobs.record import new_job_id
from jobs.store import STATS_KEY, JobStore
from jobs.submission import JobSubmitter
from schemas.jobs import JobStatus
from tests.fakes import fake_clients, queued_job

TTL = 3600
QUEUE = "interp.model.tiny"


@pytest.fixture
def submitter() -> JobSubmitter:
    redis, rq_redis = fake_clients()
    return JobSubmitter(rq_redis, JobStore(redis, ttl_seconds=TTL), job_timeout=60)


def submit(submitter: JobSubmitter, tenant: str, cap: int = 0, **kwargs: str) -> str:
    record, _ = submitter.submit(kind="score", model="tiny", queue=QUEUE, payload={"texts": ["hi"]}, tenant=tenant,
                                 max_active=cap, **kwargs)
    return record.id


def test_a_job_record_keeps_its_tenant_and_request_id(submitter: JobSubmitter) -> None:
    job_id = submit(submitter, "team-a", request_id="req-42")
    record = submitter.store.get(job_id)
    assert record is not None and (record.tenant, record.request_id) == ("team-a", "req-42")
    # A record written before tenants existed belongs to the default tenant.
    old = queued_job(submitter.store)
    submitter.store.redis.hdel(submitter.store.key(old), "tenant")
    assert cast(JobStore, submitter.store).get(old).tenant == DEFAULT_TENANT  # type: ignore[union-attr]


def test_the_cap_counts_queued_and_running_jobs_and_forgets_ended_ones(submitter: JobSubmitter) -> None:
    store = submitter.store
    first, second = submit(submitter, "a", cap=2), submit(submitter, "a", cap=2)
    with pytest.raises(TooManyJobsError) as refused:
        submit(submitter, "a", cap=2)
    assert (refused.value.active, refused.value.cap) == (2, 2)
    assert Queue(QUEUE, connection=submitter.rq_redis, serializer=JSONSerializer).count == 2  # nothing enqueued
    assert store.claim(first, "w1")  # running still counts
    with pytest.raises(TooManyJobsError):
        submit(submitter, "a", cap=2)
    store.finish(first, JobStatus.failed, error={"title": "x"})
    submit(submitter, "a", cap=2)
    store.redis.delete(store.key(second))  # an expired record (long after submission) frees its slot too
    store.redis.zadd(ACTIVE_PREFIX + "a", {second: time.time() - 7 * 86400})
    submit(submitter, "a", cap=2)
    assert submitter.quota.active("a") == 2


def test_concurrent_submissions_never_exceed_the_cap() -> None:
    server = fakeredis.FakeServer()
    admitted: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(12)

    def one(i: int) -> None:
        # Each thread its own clients, as separate API processes would have.
        redis = fakeredis.FakeRedis(server=server, decode_responses=True)
        sub = JobSubmitter(fakeredis.FakeRedis(server=server), JobStore(redis, ttl_seconds=TTL), job_timeout=60)
        barrier.wait()
        try:
            admitted.append(submit(sub, "a", cap=5))
        except TooManyJobsError:
            refused.append(str(i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(refused)) == (5, 7)


def test_a_slot_taken_by_a_submission_that_never_wrote_its_record_lapses() -> None:
    redis = fakeredis.FakeRedis(decode_responses=True)
    quota = JobQuota(redis, ttl_seconds=TTL)
    ghost = new_job_id()
    quota.admit("a", ghost, 1)  # slot taken, record never written (the API died in between)
    with pytest.raises(TooManyJobsError):
        quota.admit("a", new_job_id(), 1)  # in flight: it still counts
    redis.zadd(ACTIVE_PREFIX + "a", {ghost: time.time() - PENDING_SECONDS - 1})
    quota.admit("a", new_job_id(), 1)


def test_the_counters_count_submissions_and_every_ending(submitter: JobSubmitter) -> None:
    store = submitter.store
    ids = [submit(submitter, "a") for _ in range(4)]
    for job_id in ids[:3]:
        assert store.claim(job_id, "dead-worker")
    store.finish(ids[0], JobStatus.succeeded, result={})
    store.finish(ids[0], JobStatus.failed)  # already ended: not counted twice
    store.finish(ids[1], JobStatus.canceled)
    assert store.reap_if_orphaned(ids[2])  # its worker never beat: failed by the reaper
    store.finish(ids[3], JobStatus.canceled, only_from=(JobStatus.queued,))
    assert store.redis.hgetall(STATS_KEY) == {"submitted": "4", "succeeded": "1", "canceled": "2", "failed": "1"}
