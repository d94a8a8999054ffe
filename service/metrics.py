"""Prometheus metrics of one API process (`GET /metrics`).

Measured here, per API process:

- ``interp_http_request_duration_seconds{method, route, status}``: a histogram of request
  latency by route *template* (``/jobs/{job_id}``, never the raw path, so ids cannot blow up the
  label set; ``unmatched`` for paths no route serves);
- ``interp_model_parameter_bytes{model}``: bytes of the model parameters resident in this process;
- ``process_*``: this process's memory, CPU and file descriptors (prometheus_client's collector).

Read from Redis at each scrape, so they describe the whole deployment (every API process reports
the same values: aggregate them with ``max``, not ``sum``):

- ``interp_queue_depth{model}``: jobs waiting in each model's queue;
- ``interp_jobs{status="queued"|"running"}``: jobs now in those states;
- ``interp_jobs_submitted_total``, ``interp_jobs_ended_total{status}`` and
  ``interp_jobs_retried_total`` (queued again after their worker was lost): counters since the
  Redis data began (they survive API restarts, not a Redis wipe);
- ``interp_workers{model}``: live workers per model, from their heartbeats;
- ``interp_worker_model_parameter_bytes{worker, model}`` and ``interp_worker_rss_bytes{worker}``:
  what each live worker reports in its heartbeat;
- ``interp_redis_up``: 1 when Redis answered this scrape (the Redis-derived series are absent
  when it did not).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue

from jobs.store import RUNNING_SET, STATS_KEY

if TYPE_CHECKING:
    from service.state import AppState

log = logging.getLogger(__name__)

# Long-polls may hold a request for up to INTERP_MAX_WAIT_SECONDS (30 s by default).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ENDED = ("succeeded", "failed", "canceled")


class StackCollector(Collector):
    """Gauges and counters read at scrape time from the API's models and from Redis."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        resident = GaugeMetricFamily("interp_model_parameter_bytes",
                                     "Bytes of model parameters resident in this API process.", labels=["model"])
        for lm in self.state.registry:
            resident.add_metric([lm.name], lm.parameter_bytes)
        yield resident
        up = GaugeMetricFamily("interp_redis_up", "1 when Redis answered this scrape.")
        try:
            families = self._from_redis()
        except RedisError as exc:
            log.warning("metrics: redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_redis(self) -> list[Metric]:
        state, settings = self.state, self.state.settings
        depth = GaugeMetricFamily("interp_queue_depth", "Jobs waiting in each model's queue.", labels=["model"])
        queued = 0
        for model in settings.models:
            count = Queue(settings.queue_name(model), connection=state.rq_redis).count
            depth.add_metric([model], count)
            queued += count
        jobs = GaugeMetricFamily("interp_jobs", "Jobs now queued or running.", labels=["status"])
        jobs.add_metric(["queued"], queued)
        jobs.add_metric(["running"], int(cast(int, state.redis.scard(RUNNING_SET))))
        stats = cast(dict[str, str], state.redis.hgetall(STATS_KEY))
        submitted = CounterMetricFamily("interp_jobs_submitted", "Jobs submitted, deployment-wide.")
        submitted.add_metric([], float(stats.get("submitted", 0)))
        ended = CounterMetricFamily("interp_jobs_ended", "Jobs ended, by final status, deployment-wide.",
                                    labels=["status"])
        for status in ENDED:
            ended.add_metric([status], float(stats.get(status, 0)))
        retried = CounterMetricFamily("interp_jobs_retried", "Jobs queued again after their worker was lost.")
        retried.add_metric([], float(stats.get("retried", 0)))
        workers = GaugeMetricFamily("interp_workers", "Live workers per model (heartbeats).", labels=["model"])
        worker_bytes = GaugeMetricFamily("interp_worker_model_parameter_bytes",
                                         "Bytes of model parameters resident in each live worker.",
                                         labels=["worker", "model"])
        worker_rss = GaugeMetricFamily("interp_worker_rss_bytes", "Resident memory of each live worker.",
                                       labels=["worker"])
        seen: dict[str, dict[str, Any]] = {}
        for model in settings.models:
            live = state.directory.live(model)
            workers.add_metric([model], len(live))
            for info in live:
                seen[str(info.get("name"))] = info
        for name, info in sorted(seen.items()):
            for model, facts in sorted(info.get("models", {}).items()):
                if isinstance(facts.get("parameter_bytes"), int):
                    worker_bytes.add_metric([name, model], facts["parameter_bytes"])
            if isinstance(info.get("rss_bytes"), int):
                worker_rss.add_metric([name], info["rss_bytes"])
        return [depth, jobs, submitted, ended, retried, workers, worker_bytes, worker_rss]


class Metrics:
    """One API process's registry (no global default registry: two apps in one process stay apart).

    Args:
        state: the API's resources, read at scrape time.
    """

    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.latency = Histogram("interp_http_request_duration_seconds",
                                 "HTTP request latency by method, route template and status.",
                                 ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(StackCollector(state))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format (reads Redis: call it off the event loop)."""
        return generate_latest(self.registry)
