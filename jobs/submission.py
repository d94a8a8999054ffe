"""Submitting jobs: the job record and the RQ message are written in one transaction.

The API enqueues by import path (``workers.tasks.run_job``) and never imports the workers.
An ``Idempotency-Key`` maps to the first job made with it *by the same tenant*, so a retried
POST gets that job back; the same key with a different request body is a conflict. A tenant's
new job is admitted only while it has fewer queued + running jobs than its cap (`jobs.quota`).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, cast

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from config.settings import DEFAULT_TENANT
from jobs.quota import ACTIVE_PREFIX, JobQuota
from jobs.record import JobRecord, new_job_id
from jobs.store import STATS_KEY, JobStore

TASK_PATH = "workers.tasks.run_job"
IDEMPOTENCY_PREFIX = "interp:idem:"


def idempotency_key_name(tenant: str, key: str) -> str:
    """The Redis key binding one tenant's Idempotency-Key to its job: tenants never share keys."""
    return f"{IDEMPOTENCY_PREFIX}{tenant}:{key}"


class IdempotencyConflictError(Exception):
    """The Idempotency-Key was already used for a different request."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for a different request (job {job_id})")
        self.job_id = job_id


def hash_request(kind: str, model: str, payload: dict[str, Any]) -> str:
    canonical = json.dumps({"kind": kind, "model": model, "payload": payload}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class JobSubmitter:
    """Put jobs on the per-model RQ queues.

    Args:
        rq_redis: a client with ``decode_responses=False``, as RQ requires.
        store: the job store (its own decoded client).
        job_timeout: seconds a worker may spend on one job before it is failed.
        retries: how many times a job is queued again when its worker dies (0: it fails then).
    """

    def __init__(self, rq_redis: Redis, store: JobStore, *, job_timeout: int, retries: int = 0) -> None:
        self.rq_redis = rq_redis
        self.store = store
        self.job_timeout = job_timeout
        self.retries = retries
        self.quota = JobQuota(store.redis, ttl_seconds=store.ttl_seconds)

    def submit(
        self,
        *,
        kind: str,
        model: str,
        queue: str,
        payload: dict[str, Any],
        idempotency_key: str | None = None,
        tenant: str = DEFAULT_TENANT,
        request_id: str | None = None,
        max_active: int = 0,
        as_sent: dict[str, Any] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Create and enqueue a job, or return the job an idempotency key already names.

        Args:
            tenant: who owns the job (and whose idempotency keys are looked up).
            request_id: the submitting request's id, kept in the record.
            max_active: the tenant's cap on queued + running jobs; 0 for none. A replayed
                idempotent request is answered even at the cap.
            as_sent: the request as the client sent it, when ``payload`` is its checked form (references
                pinned): idempotency compares what clients send, so a retry after a newer version of a
                referenced variant was published is the same request, not a conflict.

        Returns:
            The job record and whether it was created by this call.

        Raises:
            IdempotencyConflictError: the key was used for a different request.
            TooManyJobsError: the tenant is at its cap.
        """
        request_hash = hash_request(kind, model, as_sent if as_sent is not None else payload)
        job_id = new_job_id()
        idem = idempotency_key_name(tenant, idempotency_key) if idempotency_key is not None else None
        if idempotency_key is not None and idem is not None:
            existing = self._claim_key(idem, job_id)
            if existing is not None:
                record = self._wait_for_record(existing)
                if record is not None:
                    if record.request_hash != request_hash:
                        raise IdempotencyConflictError(idempotency_key, existing)
                    return record, False
                # The earlier job has expired: the key now names the new one.
                self.store.redis.set(idem, job_id, ex=self.store.ttl_seconds)
        rq_queue = Queue(queue, connection=self.rq_redis, serializer=JSONSerializer)
        try:
            if max_active > 0:
                self.quota.admit(tenant, job_id, max_active)
            mapping = self.store.initial_mapping(job_id, kind, model, request_hash, tenant=tenant,
                                                 request_id=request_id, queue=queue, retries=self.retries)
            with self.rq_redis.pipeline() as pipe:
                pipe.multi()  # one MULTI/EXEC for record and message; RQ joins an open transaction
                key = self.store.key(job_id)
                pipe.hset(key, mapping=cast(Any, mapping))
                pipe.expire(key, self.store.ttl_seconds)
                pipe.hincrby(STATS_KEY, "submitted", 1)
                rq_queue.enqueue_call(
                    TASK_PATH,
                    args=(job_id, kind, payload),
                    job_id=job_id,
                    # RQ logs the description when it starts and ends a job; its default is the call with
                    # its arguments, and a payload can be megabytes of user text.
                    description=f"{kind} job {job_id}",
                    timeout=self.job_timeout,
                    result_ttl=60,  # the result lives in the job record, not in RQ
                    failure_ttl=self.store.ttl_seconds,
                    pipeline=pipe,
                )
                pipe.execute()
        except Exception:
            if idem is not None:
                self.store.redis.delete(idem)
            if max_active > 0:  # give the slot back (it would lapse by itself after a while)
                self.store.redis.zrem(ACTIVE_PREFIX + tenant, job_id)
            raise
        return JobRecord.from_hash(mapping), True

    def _wait_for_record(self, job_id: str, timeout: float = 0.5) -> JobRecord | None:
        """The job a key names. The key is bound before the record is written and the record
        always outlives the key, so a key without a record is a submission in flight: wait briefly.
        """
        deadline = time.monotonic() + timeout
        while True:
            record = self.store.get(job_id)
            if record is not None or time.monotonic() >= deadline:
                return record
            time.sleep(0.02)

    def _claim_key(self, key: str, job_id: str) -> str | None:
        """Bind the Redis key ``key`` to ``job_id``; return the job it already named, if any."""
        if self.store.redis.set(key, job_id, nx=True, ex=self.store.ttl_seconds):
            return None
        existing = self.store.redis.get(key)
        return str(existing) if existing is not None else None

    def cancel_queued(self, queue: str, job_id: str) -> None:
        """Take a queued job off its RQ queue (the record is already canceled)."""
        Queue(queue, connection=self.rq_redis, serializer=JSONSerializer).remove(job_id)
