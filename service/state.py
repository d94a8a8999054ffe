"""`AppState`: what the API builds at start-up and hands to routes through dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from engine.registry import ModelRegistry
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from jobs.submission import JobSubmitter
from schemas.settings import Settings


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

    @classmethod
    def build(cls, settings: Settings, registry: ModelRegistry) -> AppState:
        if settings.redis_url is None:
            raise RuntimeError("INTERP_REDIS_URL is not set (the stack launcher sets it)")
        timeout = settings.redis_timeout_seconds
        # One quick retry (a connection reset after a Redis restart), not redis-py's default three
        # with backoff: when Redis is down the client should get its 503 at once.
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "health_check_interval": 10,
                   "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1)}
        redis = Redis.from_url(settings.redis_url, decode_responses=True, **options)
        rq_redis = Redis.from_url(settings.redis_url, **options)
        store = JobStore(redis, ttl_seconds=settings.job_ttl_seconds)
        return cls(
            settings=settings,
            registry=registry,
            redis=redis,
            rq_redis=rq_redis,
            store=store,
            submitter=JobSubmitter(rq_redis, store, job_timeout=settings.job_timeout_seconds),
            directory=WorkerDirectory(redis, ttl_seconds=settings.worker_heartbeat_ttl_seconds),
        )

    def default_model(self) -> str:
        return next(iter(self.settings.models))
