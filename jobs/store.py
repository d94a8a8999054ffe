"""`JobStore`: the authoritative record of every job, one Redis hash per job.

RQ carries jobs to workers; this record is what clients see. It exists because RQ's own status
cannot say three things the protocol needs: a running job whose cancellation was requested,
a job canceled while running (RQ would call it finished), and a job whose worker died (RQ notices
only after the job timeout plus a minute). State changes that depend on the current state are
Lua scripts, so the API and a worker racing on one job cannot both win.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, cast

from redis import Redis
from redis.exceptions import ResponseError
from rq import Queue

from config.settings import DEFAULT_TENANT
from jobs.record import JobRecord
from schemas.jobs import JobStatus

JOB_PREFIX = "interp:job:"
RUNNING_SET = "interp:jobs:running"
WORKER_PREFIX = "interp:worker:"
# Deployment-wide counters of jobs submitted and ended, by status (read by /metrics).
STATS_KEY = "interp:stats:jobs"

# queued -> running, unless the job was canceled or claimed meanwhile.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1], 'worker', ARGV[2],
           'stage', 'starting')
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"""

# Finish a job once: from one of the states in ARGV[9] (comma-separated) -> a terminal state.
FINISH_SCRIPT = _FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(',' .. ARGV[9] .. ',', ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ended_at', ARGV[2], 'expires_at', ARGV[3],
           'stage', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
if ARGV[1] == 'succeeded' then redis.call('HSET', KEYS[1], 'fraction', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('SREM', KEYS[2], ARGV[8])
redis.call('HINCRBY', ARGV[10], ARGV[1], 1)
return 1
"""

# Progress only for a job that is still running (never resurrects an expired or ended record).
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'fraction', ARGV[1], 'stage', ARGV[2])
return 1
"""

# running with a dead worker -> queued again at the front of its RQ queue while it has retries left
# (returns 2), else failed (returns 1). The worker's heartbeat key is the proof of life. With
# ARGV[9] == '1' nothing changes: 3 says the job is orphaned (the caller checks Redis's uptime first).
# A job that recorded a pending output (a version it was publishing) is left as it is, returning 4,
# unless ARGV[10] == '1': the caller checks the store and either succeeds it or reaps it with that flag.
REAP_SCRIPT = _REAP = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then redis.call('SREM', KEYS[2], ARGV[6]) return 0 end
if status ~= 'running' then return 0 end
local worker = redis.call('HGET', KEYS[1], 'worker')
if redis.call('EXISTS', ARGV[1] .. worker) == 1 then return 0 end
if ARGV[9] == '1' then return 3 end
if ARGV[10] ~= '1' and redis.call('HEXISTS', KEYS[1], 'pending') == 1 then return 4 end
local retries = tonumber(redis.call('HGET', KEYS[1], 'retries') or '0') or 0
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') or 0
local queue = redis.call('HGET', KEYS[1], 'queue')
if attempts < retries and queue and redis.call('HGET', KEYS[1], 'cancel_requested') ~= '1' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', attempts + 1, 'fraction', '0', 'stage',
             'queued again after its worker ' .. worker .. ' was lost (retry ' .. (attempts + 1) .. ' of '
             .. retries .. ')')
  redis.call('HDEL', KEYS[1], 'worker', 'started_at')
  redis.call('SREM', KEYS[2], ARGV[6])
  redis.call('LPUSH', ARGV[8] .. queue, ARGV[6])
  redis.call('HINCRBY', ARGV[7], 'retried', 1)
  return 2
end
redis.call('HSET', KEYS[1], 'status', 'failed', 'ended_at', ARGV[2], 'expires_at', ARGV[3],
           'stage', 'failed', 'error', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SREM', KEYS[2], ARGV[6])
redis.call('HINCRBY', ARGV[7], 'failed', 1)
return 1
"""


# A running job's pending output: what it is publishing to a store, and the result it will report.
_PENDING = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'pending', ARGV[1])
return 1
"""

#: Checks a store for a dead job's pending output: the job's result when the output was published, else None.
Reconcile = Callable[[JobRecord, dict[str, Any]], dict[str, Any] | None]


def reap_args(job_id: str, ttl_seconds: int, *, dry_run: bool = False,
              ignore_pending: bool = False) -> list[str | int]:
    """Arguments of the reap script: requeueing or failing now, with a `worker-lost` problem."""
    now = time.time()
    problem = {
        "type": "urn:interp:problem:worker-lost",
        "title": "Worker lost",
        "status": 500,
        "detail": "the worker running this job stopped sending heartbeats (it crashed or was "
        "killed); submit the job again",
    }
    return [WORKER_PREFIX, repr(now), repr(now + ttl_seconds), json.dumps(problem), ttl_seconds, job_id, STATS_KEY,
            Queue.redis_queue_namespace_prefix, "1" if dry_run else "0", "1" if ignore_pending else "0"]


def just_restarted(info: dict[str, Any], grace_seconds: float) -> bool:
    """Whether Redis (its ``INFO server``) started less than ``grace_seconds`` ago.

    Heartbeat keys expire by the clock, also while Redis is down: right after a restart from its
    append-only file every worker looks dead until its next beat. Reaping then would fail (or rerun)
    jobs that live workers are still computing, so nothing is reaped until they had time to beat.
    """
    return grace_seconds > 0 and float(info.get("uptime_in_seconds", grace_seconds)) < grace_seconds


def finish_args(job_id: str, status: JobStatus, ttl_seconds: int, *, result: dict[str, Any] | None = None,
                error: dict[str, Any] | None = None,
                only_from: tuple[JobStatus, ...] = (JobStatus.running, JobStatus.queued)) -> list[str | int]:
    """Arguments of the finish script (keys: the job's hash and the running set)."""
    now = time.time()
    return [
        status.value,
        repr(now),
        repr(now + ttl_seconds),
        "done" if status is JobStatus.succeeded else status.value,
        # Strict JSON: what is stored is served as is, and NaN is not JSON.
        json.dumps(result, allow_nan=False) if result is not None else "",
        json.dumps(error, allow_nan=False) if error is not None else "",
        ttl_seconds,
        job_id,
        ",".join(s.value for s in only_from),
        STATS_KEY,
    ]


def settle(reconcile: Reconcile | None, raw: dict[str, str]) -> dict[str, Any] | None:
    """The result a dead job's published output stands for, or None (no reconciler, nothing published)."""
    if reconcile is None or not raw.get("pending"):
        return None
    return reconcile(JobRecord.from_hash(raw), json.loads(raw["pending"]))


class JobStore:
    """Create, read and move jobs through their states.

    Args:
        redis: a client with ``decode_responses=True``.
        ttl_seconds: how long a job and its result are kept after it ends.
        restart_grace_seconds: reap no job within this long of a Redis start (the workers'
            heartbeat TTL; see `just_restarted`); 0 reaps at once.
        reconcile: checks whether a dead job's pending output was published (see `set_pending`);
            None reaps such a job like any other.
    """

    def __init__(self, redis: Redis, *, ttl_seconds: int, restart_grace_seconds: float = 0.0,
                 reconcile: Reconcile | None = None) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.restart_grace_seconds = restart_grace_seconds
        self.reconcile = reconcile
        self._pending = redis.register_script(_PENDING)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._reap = redis.register_script(_REAP)
        self._progress = redis.register_script(_PROGRESS)

    @staticmethod
    def key(job_id: str) -> str:
        return JOB_PREFIX + job_id

    def initial_mapping(self, job_id: str, kind: str, model: str, request_hash: str, *,
                        tenant: str = DEFAULT_TENANT, request_id: str | None = None, queue: str | None = None,
                        retries: int = 0) -> dict[str, str]:
        """The hash of a new queued job (written by the caller, in the enqueue transaction).

        Args:
            queue: the RQ queue carrying it, where a reaper puts it back for a retry.
            retries: how many times it is queued again when its worker dies (0: it fails then).
        """
        now = time.time()
        extra = {"request_id": request_id} if request_id else {}
        if queue is not None and retries > 0:
            extra |= {"queue": queue, "retries": str(retries), "attempts": "0"}
        return {
            "id": job_id,
            "kind": kind,
            "model": model,
            "status": JobStatus.queued.value,
            "fraction": "0",
            "stage": "queued",
            "created_at": repr(now),
            "expires_at": repr(now + self.ttl_seconds),
            "request_hash": request_hash,
            "tenant": tenant,
            **extra,
        }

    def get(self, job_id: str) -> JobRecord | None:
        """Read a job, first failing it if it is running on a worker that has died."""
        raw = self._read(job_id)
        if not raw:
            return None
        record = JobRecord.from_hash(raw)
        if record.status is JobStatus.running and self.reap_if_orphaned(job_id):
            record = JobRecord.from_hash(self._read(job_id))
        return record

    def _read(self, job_id: str) -> dict[str, str]:
        # The client decodes responses, so every key and value is a str.
        return cast(dict[str, str], self.redis.hgetall(self.key(job_id)))

    def claim(self, job_id: str, worker: str) -> bool:
        """Move a queued job to running on ``worker``; False when it was canceled meanwhile."""
        return bool(self._claim(keys=[self.key(job_id), RUNNING_SET], args=[repr(time.time()), worker, job_id]))

    def set_progress(self, job_id: str, fraction: float, stage: str) -> None:
        self._progress(keys=[self.key(job_id)], args=[repr(min(max(fraction, 0.0), 1.0)), stage])

    def set_pending(self, job_id: str, pending: dict[str, Any]) -> None:
        """Record what a running job is about to publish (its store entry and its result), before publishing it.

        If the worker dies between publishing and finishing, a reaper finds the entry and reports the
        job with this result (`reconcile`) instead of failing it and leaving the entry orphaned.
        """
        self._pending(keys=[self.key(job_id)], args=[json.dumps(pending, allow_nan=False)])

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self.key(job_id), "cancel_requested") == "1"

    def request_cancel(self, job_id: str) -> None:
        self.redis.hset(self.key(job_id), "cancel_requested", "1")

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        only_from: tuple[JobStatus, ...] = (JobStatus.running, JobStatus.queued),
    ) -> bool:
        """Move a job to a terminal state once; False when it had already ended.

        Args:
            only_from: the states it may be finished from; the API cancels with ``(queued,)`` so
                that a job a worker claimed meanwhile is left to stop at its next batch.
        """
        return bool(self._finish(keys=[self.key(job_id), RUNNING_SET],
                                 args=finish_args(job_id, status, self.ttl_seconds, result=result, error=error,
                                                  only_from=only_from)))

    def reap_if_orphaned(self, job_id: str) -> bool:
        """Requeue (retries left) or fail a running job whose worker no longer sends heartbeats. True if it did."""
        keys = [self.key(job_id), RUNNING_SET]
        if self.restart_grace_seconds > 0:
            if not self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds, dry_run=True)):
                return False
            try:
                info = cast(dict[str, Any], self.redis.info("server"))
            except ResponseError:  # INFO disabled (some managed Redis): assume no recent restart
                info = {}
            if just_restarted(info, self.restart_grace_seconds):
                return False
        code = self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds))
        if code == 4:  # it was publishing an output: was it published?
            raw = self._read(job_id)
            result = settle(self.reconcile, raw)
            if result is not None:
                return self.finish(job_id, JobStatus.succeeded, result=result, only_from=(JobStatus.running,))
            code = self._reap(keys=keys, args=reap_args(job_id, self.ttl_seconds, ignore_pending=True))
        return bool(code)

    def reap_orphans(self) -> list[str]:
        """Fail every running job whose worker has died; returns their ids."""
        running = cast(set[str], self.redis.smembers(RUNNING_SET))
        return [job_id for job_id in running if self.reap_if_orphaned(job_id)]
