"""`AsyncJobReader`: the API's non-blocking read of job records (the hot path of polling).

Same record, same orphan rule as `JobStore.get`, over ``redis.asyncio`` so that a slow Redis
delays only the requests that need it and polling costs no thread hop.
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis as AsyncRedis

from jobs.store import JOB_PREFIX, REAP_SCRIPT, RUNNING_SET, JobRecord, reap_args
from schemas.jobs import JobStatus


class AsyncJobReader:
    """Read jobs without blocking the event loop.

    Args:
        redis: an asyncio client with ``decode_responses=True``.
        ttl_seconds: retention after a job ends (used when failing an orphaned job).
    """

    def __init__(self, redis: AsyncRedis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._reap = redis.register_script(REAP_SCRIPT)

    async def get(self, job_id: str) -> JobRecord | None:
        """Read a job, first failing it if it is running on a worker that has died."""
        key = JOB_PREFIX + job_id
        raw = cast(dict[str, str], await self.redis.hgetall(key))
        if not raw:
            return None
        record = JobRecord.from_hash(raw)
        if record.status is JobStatus.running and await self._reap(
            keys=[key, RUNNING_SET], args=reap_args(job_id, self.ttl_seconds)
        ):
            record = JobRecord.from_hash(cast(dict[str, str], await self.redis.hgetall(key)))
        return record
