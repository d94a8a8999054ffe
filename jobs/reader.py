"""`AsyncJobReader`: the API's non-blocking read of job records (the hot path of polling).

Same record, same orphan rule as `JobStore.get`, over ``redis.asyncio`` so that a slow Redis
delays only the requests that need it and polling costs no thread hop.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError

from jobs.record import JobRecord
from jobs.store import (
    FINISH_SCRIPT,
    JOB_PREFIX,
    REAP_SCRIPT,
    RUNNING_SET,
    Reconcile,
    finish_args,
    just_restarted,
    reap_args,
    settle,
)
from schemas.jobs import JobStatus


class AsyncJobReader:
    """Read jobs without blocking the event loop.

    Args:
        redis: an asyncio client with ``decode_responses=True``.
        ttl_seconds: retention after a job ends (used when failing an orphaned job).
        restart_grace_seconds: reap no job within this long of a Redis start (`jobs.store.just_restarted`).
        reconcile: checks whether a dead job's pending output was published (`jobs.store.JobStore`).
    """

    def __init__(self, redis: AsyncRedis, *, ttl_seconds: int, restart_grace_seconds: float = 0.0,
                 reconcile: Reconcile | None = None) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.restart_grace_seconds = restart_grace_seconds
        self.reconcile = reconcile
        self._reap = redis.register_script(REAP_SCRIPT)
        self._finish = redis.register_script(FINISH_SCRIPT)

    async def get(self, job_id: str) -> JobRecord | None:
        """Read a job, first failing it if it is running on a worker that has died."""
        key = JOB_PREFIX + job_id
        raw = cast(dict[str, str], await self.redis.hgetall(key))
        if not raw:
            return None
        record = JobRecord.from_hash(raw)
        if record.status is JobStatus.running and await self._reap_if_orphaned(job_id):
            record = JobRecord.from_hash(cast(dict[str, str], await self.redis.hgetall(key)))
        return record

    async def _reap_if_orphaned(self, job_id: str) -> bool:
        keys = [JOB_PREFIX + job_id, RUNNING_SET]
        if self.restart_grace_seconds > 0:
            if not await self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds, dry_run=True)):
                return False
            try:
                info = cast(dict[str, Any], await self.redis.info("server"))
            except ResponseError:  # INFO disabled (some managed Redis): assume no recent restart
                info = {}
            if just_restarted(info, self.restart_grace_seconds):
                return False
        code = await self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds))
        if code == 4:  # it was publishing an output: was it published? (a few small file reads)
            result = settle(self.reconcile, cast(dict[str, str], await self.redis.hgetall(keys[0])))
            if result is not None:
                return bool(await self._finish(keys=keys, args=finish_args(
                    job_id, JobStatus.succeeded, self.ttl_seconds, result=result, only_from=(JobStatus.running,))))
            code = await self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds, ignore_pending=True))
        return bool(code)
