"""`AppState`: what the API builds at start-up and hands to routes through dependencies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from config.settings import Settings
from engine.registry import ModelRegistry
from jobs.directory import WorkerDirectory
from jobs.reader import AsyncJobReader
from jobs.store import JobStore
from jobs.submission import JobSubmitter
from ops.context import Stores
from ops.outputs import reconciler
from service.auth import KeyRing
from service.batcher import GenerationBatcher
from service.metrics import Metrics
from service.rate_limit import RateLimiter


@dataclass
class AppState:
    """The API's resources.

    Attributes:
        settings: the stack's settings.
        registry: models resident in the API for the synchronous endpoints (may be empty).
        redis: decoded client for the job store and worker directory.
        rq_redis: raw client for RQ.
    """

    settings: Settings
    registry: ModelRegistry
    redis: Redis
    rq_redis: Redis
    store: JobStore
    submitter: JobSubmitter
    directory: WorkerDirectory
    reader: AsyncJobReader
    batcher: GenerationBatcher | None = None
    # model -> monotonic time until which a live worker was last confirmed (see has_worker)
    _worker_seen_until: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, registry: ModelRegistry) -> AppState:
        if settings.redis_url is None:
            raise RuntimeError("INTERP_REDIS_URL is not set (the stack launcher sets it)")
        timeout = settings.redis_timeout_seconds
        # One quick retry (a connection reset after a Redis restart), not redis-py's default three
        # with backoff: when Redis is down the client should get its 503 at once.
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                   "health_check_interval": 10}
        backoff = ExponentialBackoff(cap=0.05, base=0.01)
        redis = Redis.from_url(settings.redis_url, decode_responses=True, retry=Retry(backoff, 1), **options)
        rq_redis = Redis.from_url(settings.redis_url, retry=Retry(backoff, 1), **options)
        # Right after a Redis restart every heartbeat has expired: reap nothing until workers beat again.
        grace = settings.worker_heartbeat_ttl_seconds
        reconcile = reconciler(settings)  # a dead job's published version becomes its result (ops.outputs)
        store = JobStore(redis, ttl_seconds=settings.job_ttl_seconds, restart_grace_seconds=grace, reconcile=reconcile)
        aredis = AsyncRedis.from_url(settings.redis_url, decode_responses=True, retry=AsyncRetry(backoff, 1),
                                     **options)
        return cls(
            settings=settings,
            registry=registry,
            redis=redis,
            rq_redis=rq_redis,
            store=store,
            submitter=JobSubmitter(rq_redis, store, job_timeout=settings.job_timeout_seconds,
                                   retries=settings.job_retries),
            directory=WorkerDirectory(redis, ttl_seconds=settings.worker_heartbeat_ttl_seconds),
            reader=AsyncJobReader(aredis, ttl_seconds=settings.job_ttl_seconds, restart_grace_seconds=grace,
                                  reconcile=reconcile),
        )

    def stores(self, tenant: str) -> Stores:
        """One tenant's variants and vectors, shared with the workers on disk."""
        return Stores.of(self.settings, tenant)

    @cached_property
    def keyring(self) -> KeyRing:
        """The configured API keys, each with its tenant."""
        return KeyRing(self.settings.api_keys)

    @cached_property
    def limiter(self) -> RateLimiter:
        """Per-tenant request rate, on the asyncio client; enforced only when keys are configured."""
        rate = self.settings.rate_limit_per_second if self.settings.keys_configured else 0.0
        return RateLimiter(self.reader.redis, rate=rate, burst=self.settings.rate_limit_burst)

    @cached_property
    def metrics(self) -> Metrics:
        """This API process's Prometheus registry: request latencies and the stack's gauges."""
        return Metrics(self)

    @property
    def max_active_jobs(self) -> int:
        """Each tenant's cap on queued + running jobs (0: none); enforced only when keys are configured."""
        return self.settings.max_active_jobs_per_tenant if self.settings.keys_configured else 0

    def has_worker(self, model: str) -> bool:
        """Whether a live worker serves ``model``. A yes is trusted for one heartbeat interval, so
        a burst of submissions costs one directory read, not one each; a no is always re-checked."""
        now = time.monotonic()
        if self._worker_seen_until.get(model, 0.0) > now:
            return True
        if self.directory.live(model):
            self._worker_seen_until[model] = now + self.settings.worker_heartbeat_seconds
            return True
        return False

    def default_model(self) -> str:
        return next(iter(self.settings.models))
