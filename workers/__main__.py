"""Start a worker: ``python -m workers [--model NAME ...] [--burst]``.

Loads the configured models once, fails jobs orphaned by dead workers, then serves one RQ queue
per model until SIGINT/SIGTERM (RQ finishes the current job first on the first signal).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import time
import uuid

import torch
from redis import Redis
from redis.exceptions import RedisError

from config.logs import configure_logging
from config.settings import Settings
from engine.registry import ModelRegistry
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from ops.outputs import reconciler
from store.model_cache import ModelCache
from workers.runtime import WorkerRuntime
from workers.worker import ModelWorker

log = logging.getLogger("workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--model", action="append", help="serve only this model (repeatable)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host-pid-random)")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("worker", fmt=settings.log_format, level=settings.log_level)
    if settings.redis_url is None:
        parser.error("INTERP_REDIS_URL is not set (the stack launcher sets it for the embedded Redis)")
    models = settings.models
    if args.model:
        unknown = sorted(set(args.model) - set(models))
        if unknown:
            parser.error(f"not configured in INTERP_MODELS: {', '.join(unknown)}")
        models = {name: models[name] for name in args.model}

    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)
    registry = ModelRegistry.load(models, device=settings.device, dtype=settings.dtype,
                                  locate=ModelCache(settings.model_cache).locate)
    timeout = settings.redis_timeout_seconds
    decoded = Redis.from_url(settings.redis_url, decode_responses=True,
                             socket_timeout=timeout, socket_connect_timeout=timeout)
    raw = Redis.from_url(settings.redis_url)
    store = JobStore(decoded, ttl_seconds=settings.job_ttl_seconds,
                     restart_grace_seconds=settings.worker_heartbeat_ttl_seconds, reconcile=reconciler(settings))
    name = args.name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    runtime = WorkerRuntime(settings=settings, registry=registry, store=store, worker_name=name)
    directory = WorkerDirectory(decoded, ttl_seconds=settings.worker_heartbeat_ttl_seconds)
    worker = ModelWorker(runtime, directory, connection=raw)
    worker.start_heartbeat()
    reaped = store.reap_orphans()
    if reaped:
        log.warning("failed %d job(s) left running by dead workers: %s", len(reaped), ", ".join(reaped))
    log.info("worker %s serving %s", name, ", ".join(registry.names()))
    try:
        stopped = serve(worker, decoded, burst=args.burst)
    finally:
        worker.stop_heartbeat()
    return 0 if stopped else 1


def serve(worker: ModelWorker, redis: Redis, *, burst: bool) -> bool:
    """Run RQ's loop until stopped; when Redis went away under it, wait for Redis and run it again.

    RQ retries a lost connection only while it waits for a job; anywhere else (a Redis call between
    jobs) its loop ends. Returns whether the worker stopped as asked (False: RQ's loop ended on
    an error while Redis answered, which a supervisor should see as a crash).
    """
    while True:
        try:
            worker.work(burst=burst, with_scheduler=False)
        except RedisError as exc:  # from RQ's teardown, when Redis is still away
            log.warning("worker loop ended: %s", exc)
        if burst or getattr(worker, "_stop_requested", False):
            return True
        if not wait_for_redis(redis):
            return False
        with contextlib.suppress(RedisError):
            worker.register_death()  # RQ refuses to start a worker whose name looks alive
        log.info("Redis is back; worker %s serves again", worker.name)


def wait_for_redis(redis: Redis) -> bool:
    """Wait until Redis answers again; False when it answered at once (it was never away)."""
    delay, waited = 0.2, False
    while True:
        try:
            redis.ping()
            return waited
        except RedisError as exc:
            if not waited:
                log.warning("Redis is unavailable (%s); waiting for it", exc)
            waited = True
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


if __name__ == "__main__":
    raise SystemExit(main())
