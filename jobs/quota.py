"""`JobQuota`: a cap on each tenant's queued + running jobs, shared by every API process.

Each tenant has a sorted set of its job ids (score: when the slot was taken). Admission is one Lua
script, so two submissions racing for the last slot cannot both win: it drops ids whose job has
ended or expired, counts the rest, and takes a slot for the new id when there is room. The slot is
taken just before the job record is written (in the submission's transaction); an id whose record
does not exist yet counts for `PENDING_SECONDS`, which covers a submission in flight and lets a
submission that failed half-way give its slot back by itself. Nothing has to remove ids when jobs
end, so the job state machine does not know about quotas.
"""

from __future__ import annotations

from typing import cast

from redis import Redis

from jobs.store import JOB_PREFIX

ACTIVE_PREFIX = "interp:tenant-jobs:"
PENDING_SECONDS = 30

# KEYS[1]: the tenant's set. ARGV: cap, job id, job key prefix, pending seconds, set TTL (s).
# Returns -1 when admitted, else the number of active jobs.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[1])
local active = 0
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local id, since = members[i], tonumber(members[i + 1])
  local status = redis.call('HGET', ARGV[3] .. id, 'status')
  if status == 'queued' or status == 'running' or (not status and now - since < tonumber(ARGV[4])) then
    active = active + 1
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
if active >= cap then return active end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return -1
"""


class TooManyJobsError(Exception):
    """The tenant already has its cap of queued + running jobs."""

    def __init__(self, tenant: str, active: int, cap: int) -> None:
        super().__init__(f"tenant {tenant!r} has {active} queued or running jobs; the limit is {cap}")
        self.tenant, self.active, self.cap = tenant, active, cap


class JobQuota:
    """Admit a tenant's new job only while it has fewer than ``cap`` queued or running.

    Args:
        redis: a client with ``decode_responses=True``.
        ttl_seconds: how long an idle tenant's set is kept (the job retention is plenty).
    """

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._admit = redis.register_script(_ADMIT)

    def admit(self, tenant: str, job_id: str, cap: int) -> None:
        """Take a slot for ``job_id``.

        Raises:
            TooManyJobsError: ``cap`` jobs of the tenant are queued or running.
        """
        result = int(cast(int, self._admit(keys=[ACTIVE_PREFIX + tenant],
                                           args=[cap, job_id, JOB_PREFIX, PENDING_SECONDS, self.ttl_seconds])))
        if result >= 0:
            raise TooManyJobsError(tenant, result, cap)

    def active(self, tenant: str) -> int:
        """How many slots the tenant holds now (ended jobs included until the next admission)."""
        return int(cast(int, self.redis.zcard(ACTIVE_PREFIX + tenant)))
