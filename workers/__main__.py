"""Start a worker: ``python -m workers [--model NAME ...] [--burst]``.

Loads the configured models once, fails jobs orphaned by dead workers, then serves one RQ queue
per model until SIGINT/SIGTERM (RQ finishes the current job first on the first signal).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import uuid

import torch
from redis import Redis

from engine.registry import ModelRegistry
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from schemas.settings import Settings
from workers.runtime import WorkerRuntime
from workers.worker import ModelWorker

log = logging.getLogger("workers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--model", action="append", help="serve only this model (repeatable)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host-pid-random)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(name)s: %(message)s")

    settings = Settings()
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
                                  cache_dir=settings.model_cache)
    timeout = settings.redis_timeout_seconds
    decoded = Redis.from_url(settings.redis_url, decode_responses=True,
                             socket_timeout=timeout, socket_connect_timeout=timeout)
    raw = Redis.from_url(settings.redis_url)
    store = JobStore(decoded, ttl_seconds=settings.job_ttl_seconds)
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
        worker.work(burst=args.burst, with_scheduler=False)
    finally:
        worker.stop_heartbeat()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
