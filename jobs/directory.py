"""`WorkerDirectory`: which workers are alive, and for which models, from their heartbeats.

Each worker refreshes a key with a short TTL from a background thread, which keeps beating
while the main thread computes (torch releases the GIL). A worker killed with SIGKILL simply
stops beating; its key expires within the TTL and its running job is then failed by the store.
"""

from __future__ import annotations

import json
from typing import Any, cast

from redis import Redis

from jobs.store import WORKER_PREFIX

MODEL_WORKERS_PREFIX = "interp:workers:"


class WorkerDirectory:
    """Heartbeats of workers, read by the API for readiness and the model list.

    Args:
        redis: a client with ``decode_responses=True``.
        ttl_seconds: a worker that has not beaten for this long is dead.
    """

    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)

    def beat(self, worker: str, info: dict[str, Any]) -> None:
        """Record that ``worker`` is alive and serves ``info['models']``."""
        with self.redis.pipeline() as pipe:
            pipe.set(WORKER_PREFIX + worker, json.dumps(info), px=self.ttl_ms)
            for model in info.get("models", {}):
                pipe.sadd(MODEL_WORKERS_PREFIX + model, worker)
            pipe.execute()

    def remove(self, worker: str, models: list[str]) -> None:
        """Forget a worker that is shutting down cleanly."""
        with self.redis.pipeline() as pipe:
            pipe.delete(WORKER_PREFIX + worker)
            for model in models:
                pipe.srem(MODEL_WORKERS_PREFIX + model, worker)
            pipe.execute()

    def live(self, model: str) -> list[dict[str, Any]]:
        """Heartbeat payloads of the live workers for ``model``; forgets the dead ones."""
        names = sorted(cast(set[str], self.redis.smembers(MODEL_WORKERS_PREFIX + model)))
        if not names:
            return []
        payloads = self.redis.mget([WORKER_PREFIX + name for name in names])
        dead = [name for name, payload in zip(names, payloads, strict=True) if payload is None]
        if dead:
            self.redis.srem(MODEL_WORKERS_PREFIX + model, *dead)
        return [json.loads(p) for p in payloads if p is not None]
