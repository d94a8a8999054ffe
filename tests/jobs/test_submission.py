"""Submitting jobs: record and RQ message together, and idempotency keys."""

from __future__ import annotations

from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobs.record import JobRecord
from jobs.store import JobStore
from jobs.submission import TASK_PATH, IdempotencyConflictError, JobSubmitter, idempotency_key_name
from schemas.jobs import JobStatus
from tests.fakes import fake_clients

QUEUE = "interp.model.tiny"
PAYLOAD: dict[str, Any] = {"texts": ["hello world"], "model": None, "batch_size": None}
TTL = 3600


@pytest.fixture
def clients() -> tuple[Redis, Redis]:
    return fake_clients()


@pytest.fixture
def store(clients: tuple[Redis, Redis]) -> JobStore:
    return JobStore(clients[0], ttl_seconds=TTL)


@pytest.fixture
def submitter(clients: tuple[Redis, Redis], store: JobStore) -> JobSubmitter:
    return JobSubmitter(clients[1], store, job_timeout=123)


def rq_queue(clients: tuple[Redis, Redis]) -> Queue:
    return Queue(QUEUE, connection=clients[1], serializer=JSONSerializer)


def submit(
    submitter: JobSubmitter, payload: dict[str, Any] = PAYLOAD, key: str | None = None
) -> tuple[JobRecord, bool]:
    return submitter.submit(kind="score", model="tiny", queue=QUEUE, payload=payload, idempotency_key=key)


def test_submit_writes_the_record_and_the_rq_job_on_the_named_queue(
    clients: tuple[Redis, Redis], store: JobStore, submitter: JobSubmitter
) -> None:
    record, created = submit(submitter)

    assert created is True
    stored = store.get(record.id)
    assert stored is not None
    assert (stored.status, stored.kind, stored.model) == (JobStatus.queued, "score", "tiny")
    assert stored.request_hash == record.request_hash
    assert 0 < store.redis.ttl(store.key(record.id)) <= TTL

    queue = rq_queue(clients)
    assert queue.job_ids == [record.id]
    job = queue.fetch_job(record.id)
    assert job is not None
    assert job.func_name == TASK_PATH
    assert job.args == [record.id, "score", PAYLOAD]
    assert job.timeout == 123
    # Nothing landed on another model's queue.
    assert Queue("interp.model.other", connection=clients[1], serializer=JSONSerializer).job_ids == []


def test_each_submission_without_a_key_is_a_new_job(clients: tuple[Redis, Redis], submitter: JobSubmitter) -> None:
    first, _ = submit(submitter)
    second, created = submit(submitter)
    assert created is True and first.id != second.id
    assert rq_queue(clients).job_ids == [first.id, second.id]


def test_the_same_key_and_payload_return_the_same_job(
    clients: tuple[Redis, Redis], submitter: JobSubmitter
) -> None:
    first, created_first = submit(submitter, key="k-1")
    again, created_again = submit(submitter, key="k-1")

    assert (created_first, created_again) == (True, False)
    assert again.id == first.id
    assert rq_queue(clients).job_ids == [first.id]  # enqueued once


def test_the_same_key_with_another_payload_is_a_conflict(
    clients: tuple[Redis, Redis], submitter: JobSubmitter
) -> None:
    first, _ = submit(submitter, key="k-1")
    with pytest.raises(IdempotencyConflictError) as raised:
        submit(submitter, payload={**PAYLOAD, "texts": ["something else"]}, key="k-1")
    assert raised.value.job_id == first.id
    assert rq_queue(clients).job_ids == [first.id]


def test_a_key_whose_job_expired_names_a_new_job(
    clients: tuple[Redis, Redis], store: JobStore, submitter: JobSubmitter
) -> None:
    first, _ = submit(submitter, key="k-1")
    store.redis.delete(store.key(first.id))  # the record's TTL ran out

    second, created = submit(submitter, key="k-1")
    assert created is True and second.id != first.id
    assert store.redis.get(idempotency_key_name("default", "k-1")) == second.id
    assert store.get(second.id) is not None
    # And the key keeps naming it.
    third, created_third = submit(submitter, key="k-1")
    assert (third.id, created_third) == (second.id, False)


def test_a_failed_enqueue_releases_the_key(
    store: JobStore, submitter: JobSubmitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(Queue, "enqueue_call", broken)
    with pytest.raises(ConnectionError):
        submit(submitter, key="k-1")
    assert store.redis.get(idempotency_key_name("default", "k-1")) is None
    assert list(store.redis.scan_iter("interp:job:*")) == []  # no record without its message


def test_cancel_queued_takes_the_job_off_its_queue(
    clients: tuple[Redis, Redis], submitter: JobSubmitter
) -> None:
    first, _ = submit(submitter)
    second, _ = submit(submitter)
    submitter.cancel_queued(QUEUE, first.id)
    assert rq_queue(clients).job_ids == [second.id]
