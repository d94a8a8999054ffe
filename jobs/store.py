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
import uuid
from dataclasses import dataclass
from typing import Any, cast

from redis import Redis

from schemas.jobs import JobStatus

JOB_PREFIX = "interp:job:"
RUNNING_SET = "interp:jobs:running"
WORKER_PREFIX = "interp:worker:"

# queued -> running, unless the job was canceled or claimed meanwhile.
_CLAIM = """
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1], 'worker', ARGV[2],
           'stage', 'starting')
redis.call('SADD', KEYS[2], ARGV[3])
return 1
"""

# Finish a job once: from one of the states in ARGV[9] (comma-separated) -> a terminal state.
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or not string.find(',' .. ARGV[9] .. ',', ',' .. status .. ',', 1, true) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'ended_at', ARGV[2], 'expires_at', ARGV[3],
           'stage', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
if ARGV[1] == 'succeeded' then redis.call('HSET', KEYS[1], 'fraction', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('SREM', KEYS[2], ARGV[8])
return 1
"""

# Progress only for a job that is still running (never resurrects an expired or ended record).
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'fraction', ARGV[1], 'stage', ARGV[2])
return 1
"""

# running with a dead worker -> failed. The worker's heartbeat key is the proof of life.
REAP_SCRIPT = _REAP = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then redis.call('SREM', KEYS[2], ARGV[6]) return 0 end
if status ~= 'running' then return 0 end
local worker = redis.call('HGET', KEYS[1], 'worker')
if redis.call('EXISTS', ARGV[1] .. worker) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'ended_at', ARGV[2], 'expires_at', ARGV[3],
           'stage', 'failed', 'error', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SREM', KEYS[2], ARGV[6])
return 1
"""


@dataclass
class JobRecord:
    """A job as stored in Redis. Times are UNIX seconds."""

    id: str
    kind: str
    model: str
    status: JobStatus
    fraction: float
    stage: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    expires_at: float | None = None
    worker: str | None = None
    cancel_requested: bool = False
    result_json: str | None = None
    error_json: str | None = None
    request_hash: str | None = None

    @property
    def result(self) -> dict[str, Any] | None:
        # Kept as the stored JSON text: the API splices it into responses without parsing it.
        return json.loads(self.result_json) if self.result_json else None

    @property
    def error(self) -> dict[str, Any] | None:
        return json.loads(self.error_json) if self.error_json else None

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> JobRecord:
        def number(key: str) -> float | None:
            return float(raw[key]) if raw.get(key) else None

        return cls(
            id=raw["id"],
            kind=raw["kind"],
            model=raw["model"],
            status=JobStatus(raw["status"]),
            fraction=float(raw.get("fraction") or 0.0),
            stage=raw.get("stage") or raw["status"],
            created_at=float(raw["created_at"]),
            started_at=number("started_at"),
            ended_at=number("ended_at"),
            expires_at=number("expires_at"),
            worker=raw.get("worker") or None,
            cancel_requested=raw.get("cancel_requested") == "1",
            result_json=raw.get("result") or None,
            error_json=raw.get("error") or None,
            request_hash=raw.get("request_hash") or None,
        )


def reap_args(job_id: str, ttl_seconds: int) -> list[str | int]:
    """Arguments of the reap script: failing now, with a `worker-lost` problem."""
    now = time.time()
    problem = {
        "type": "urn:interp:problem:worker-lost",
        "title": "Worker lost",
        "status": 500,
        "detail": "the worker running this job stopped sending heartbeats (it crashed or was "
        "killed); submit the job again",
    }
    return [WORKER_PREFIX, repr(now), repr(now + ttl_seconds), json.dumps(problem), ttl_seconds, job_id]


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """Create, read and move jobs through their states.

    Args:
        redis: a client with ``decode_responses=True``.
        ttl_seconds: how long a job and its result are kept after it ends.
    """

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._reap = redis.register_script(_REAP)
        self._progress = redis.register_script(_PROGRESS)

    @staticmethod
    def key(job_id: str) -> str:
        return JOB_PREFIX + job_id

    def initial_mapping(self, job_id: str, kind: str, model: str, request_hash: str) -> dict[str, str]:
        """The hash of a new queued job (written by the caller, in the enqueue transaction)."""
        now = time.time()
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
        now = time.time()
        return bool(
            self._finish(
                keys=[self.key(job_id), RUNNING_SET],
                args=[
                    status.value,
                    repr(now),
                    repr(now + self.ttl_seconds),
                    "done" if status is JobStatus.succeeded else status.value,
                    json.dumps(result) if result is not None else "",
                    json.dumps(error) if error is not None else "",
                    self.ttl_seconds,
                    job_id,
                    ",".join(s.value for s in only_from),
                ],
            )
        )

    def reap_if_orphaned(self, job_id: str) -> bool:
        """Fail a running job whose worker no longer sends heartbeats. True if it did."""
        return bool(self._reap(keys=[self.key(job_id), RUNNING_SET], args=reap_args(job_id, self.ttl_seconds)))

    def reap_orphans(self) -> list[str]:
        """Fail every running job whose worker has died; returns their ids."""
        running = cast(set[str], self.redis.smembers(RUNNING_SET))
        return [job_id for job_id in running if self.reap_if_orphaned(job_id)]
