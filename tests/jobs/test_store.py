"""The job store's state machine, run for real on fakeredis (its Lua scripts included)."""

from __future__ import annotations

import time

import fakeredis
import pytest

from jobs.directory import WorkerDirectory
from jobs.store import RUNNING_SET, JobStore
from schemas.jobs import JobStatus
from tests.fakes import beat, queued_job

TTL = 3600


@pytest.fixture
def store() -> JobStore:
    return JobStore(fakeredis.FakeRedis(decode_responses=True), ttl_seconds=TTL)


@pytest.fixture
def directory(store: JobStore) -> WorkerDirectory:
    return WorkerDirectory(store.redis, ttl_seconds=10)


def test_a_new_job_is_queued_with_no_progress(store: JobStore) -> None:
    job_id = queued_job(store)
    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.queued
    assert (record.fraction, record.stage) == (0.0, "queued")
    assert record.started_at is None and record.worker is None


def test_an_unknown_job_reads_as_none(store: JobStore) -> None:
    assert store.get("0" * 32) is None


def test_claim_moves_a_queued_job_to_running_exactly_once(store: JobStore) -> None:
    job_id = queued_job(store)
    assert store.claim(job_id, "w1") is True
    assert store.claim(job_id, "w2") is False
    record = store.redis.hgetall(store.key(job_id))
    assert record["status"] == "running"
    assert record["worker"] == "w1"  # the second claim did not steal it
    assert float(record["started_at"]) == pytest.approx(time.time(), abs=5)
    assert store.redis.smembers(RUNNING_SET) == {job_id}


def test_a_job_canceled_while_queued_cannot_be_claimed(store: JobStore) -> None:
    job_id = queued_job(store)
    store.request_cancel(job_id)
    assert store.finish(job_id, JobStatus.canceled) is True
    assert store.claim(job_id, "w1") is False
    assert store.redis.hget(store.key(job_id), "status") == "canceled"
    assert store.redis.smembers(RUNNING_SET) == set()


def test_a_missing_job_cannot_be_claimed(store: JobStore) -> None:
    assert store.claim("f" * 32, "w1") is False
    assert store.redis.smembers(RUNNING_SET) == set()


def test_finish_happens_once_and_starts_the_expiry_clock(store: JobStore) -> None:
    job_id = queued_job(store)
    store.claim(job_id, "w1")
    before = time.time()
    assert store.finish(job_id, JobStatus.succeeded, result={"answer": 42}) is True
    assert store.finish(job_id, JobStatus.failed, error={"title": "late"}) is False

    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.succeeded  # the second finish changed nothing
    assert record.result == {"answer": 42} and record.error is None
    assert (record.fraction, record.stage) == (1.0, "done")
    assert record.ended_at is not None and record.expires_at is not None
    assert before <= record.ended_at <= time.time()
    assert record.expires_at == pytest.approx(record.ended_at + TTL)
    assert TTL - 5 <= store.redis.ttl(store.key(job_id)) <= TTL
    assert job_id not in store.redis.smembers(RUNNING_SET)


def test_a_failed_job_keeps_its_problem(store: JobStore) -> None:
    job_id = queued_job(store)
    store.claim(job_id, "w1")
    problem = {"type": "urn:x", "title": "Boom", "status": 500}
    assert store.finish(job_id, JobStatus.failed, error=problem)
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error == problem and record.result is None
    assert record.stage == "failed"


@pytest.mark.parametrize(("reported", "stored"), [(-0.5, 0.0), (0.25, 0.25), (1.0, 1.0), (7.0, 1.0)])
def test_progress_is_clamped_to_the_unit_interval(
    store: JobStore, directory: WorkerDirectory, reported: float, stored: float
) -> None:
    directory.beat("w1", {"models": {}})
    job_id = queued_job(store)
    store.claim(job_id, "w1")
    store.set_progress(job_id, reported, "scoring")
    record = store.get(job_id)
    assert record is not None
    assert (record.fraction, record.stage) == (stored, "scoring")


def test_progress_never_touches_a_job_that_is_not_running(store: JobStore) -> None:
    ended = queued_job(store)
    store.claim(ended, "w1")
    store.finish(ended, JobStatus.succeeded, result={"ok": True})
    store.set_progress(ended, 0.5, "late")
    record = store.get(ended)
    assert record is not None and (record.fraction, record.stage) == (1.0, "done")

    store.set_progress("gone", 0.5, "late")  # an expired record is not resurrected as a partial hash
    assert store.redis.exists(store.key("gone")) == 0


def test_a_cancel_meant_for_a_queued_job_does_not_end_one_a_worker_just_claimed(
    store: JobStore, directory: WorkerDirectory
) -> None:
    directory.beat("w1", {"models": {}})
    job_id = queued_job(store)
    store.claim(job_id, "w1")
    assert not store.finish(job_id, JobStatus.canceled, only_from=(JobStatus.queued,))
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.running


def test_cancel_is_only_a_request_until_the_job_finishes(store: JobStore, directory: WorkerDirectory) -> None:
    beat(directory, "w1")
    job_id = queued_job(store)
    store.claim(job_id, "w1")
    assert store.cancel_requested(job_id) is False
    store.request_cancel(job_id)
    assert store.cancel_requested(job_id) is True
    record = store.get(job_id)
    assert record is not None and record.cancel_requested and record.status is JobStatus.running


def test_reading_a_running_job_whose_worker_is_dead_fails_it(store: JobStore) -> None:
    job_id = queued_job(store)
    store.claim(job_id, "ghost")  # no heartbeat key for "ghost"

    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.failed
    assert record.error is not None
    assert record.error["type"] == "urn:interp:problem:worker-lost"
    assert record.error["status"] == 500
    assert record.ended_at is not None
    assert job_id not in store.redis.smembers(RUNNING_SET)
    assert store.redis.ttl(store.key(job_id)) > 0


def test_a_running_job_with_a_live_worker_is_left_alone(store: JobStore, directory: WorkerDirectory) -> None:
    beat(directory, "alive")
    job_id = queued_job(store)
    store.claim(job_id, "alive")

    assert store.reap_orphans() == []
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.running
    assert store.redis.smembers(RUNNING_SET) == {job_id}


def test_reap_orphans_fails_only_the_jobs_of_dead_workers(store: JobStore, directory: WorkerDirectory) -> None:
    beat(directory, "alive")
    alive_job, dead_job = queued_job(store), queued_job(store)
    store.claim(alive_job, "alive")
    store.claim(dead_job, "dead")

    assert store.reap_orphans() == [dead_job]
    assert store.redis.hget(store.key(dead_job), "status") == "failed"
    assert store.redis.hget(store.key(alive_job), "status") == "running"
    assert store.redis.smembers(RUNNING_SET) == {alive_job}
    assert store.reap_orphans() == []  # reaping is idempotent


def test_reap_orphans_forgets_running_jobs_whose_record_expired(store: JobStore) -> None:
    job_id = queued_job(store)
    store.claim(job_id, "ghost")
    store.redis.pexpire(store.key(job_id), 1)
    time.sleep(0.01)

    assert store.reap_orphans() == []  # nothing to fail: the record is gone
    assert store.redis.smembers(RUNNING_SET) == set()
    assert store.get(job_id) is None


def test_a_worker_that_stops_beating_loses_its_job(store: JobStore) -> None:
    directory = WorkerDirectory(store.redis, ttl_seconds=0.05)
    beat(directory, "brief")
    job_id = queued_job(store)
    store.claim(job_id, "brief")
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.running

    time.sleep(0.1)  # the heartbeat key's TTL runs out
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert directory.live("tiny") == []
