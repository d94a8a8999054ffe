"""Tasks run as their job's tenant: variants and vectors are read from and written to its store only,
and everything a job logs carries its id, tenant and request id."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from config.logs import JsonFormatter
from config.settings import DEFAULT_TENANT
from engine.components import AffineEraser
from jobs.directory import WorkerDirectory
from jobs.store import JobStore, new_job_id
from jobs.submission import hash_request
from schemas.jobs import JobStatus
from store.versioned import EntryNotFoundError
from tests.fakes import TINY_MODEL, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.workers.test_erase_task import EXAMPLES
from workers.context import JobContext
from workers.diagnosis import stage
from workers.runtime import WorkerRuntime
from workers.steering import vector_store
from workers.tasks import run_job
from workers.variants import load_variant, on_variant, variant_store


def runtime_for(tmp_path: Path) -> WorkerRuntime:
    redis, _ = fake_clients()
    settings = tiny_settings(tmp_path)
    beat(WorkerDirectory(redis, ttl_seconds=60), "w")
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=JobStore(redis, ttl_seconds=3600),
                         worker_name="w")


def queued(store: JobStore, kind: str, payload: dict[str, Any], tenant: str, request_id: str | None = None) -> str:
    job_id = new_job_id()
    mapping: Any = store.initial_mapping(job_id, kind, TINY_MODEL, hash_request(kind, TINY_MODEL, payload),
                                         tenant=tenant, request_id=request_id)
    store.redis.hset(store.key(job_id), mapping=mapping)
    return job_id


def run(runtime: WorkerRuntime, kind: str, payload: dict[str, Any], tenant: str,
        request_id: str | None = None) -> Any:
    job_id = queued(runtime.store, kind, payload, tenant, request_id)
    run_job(runtime, job_id, kind, payload)
    return runtime.store.get(job_id)


def context(runtime: WorkerRuntime, tenant: str) -> JobContext:
    return JobContext(job_id="j", store=runtime.store, tenant=tenant)


def test_an_erase_job_stores_its_variant_in_its_tenants_store_only(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    body = {"name": "no-city", "examples": EXAMPLES, "layers": [1], "batch_size": 8}
    record = run(runtime, "erase", body, "team-a")
    assert record.status is JobStatus.succeeded, record.error
    assert [m["ref"] for m in variant_store(runtime, context(runtime, "team-a")).list(TINY_MODEL)] == ["no-city@1"]
    assert variant_store(runtime, context(runtime, "team-b")).list(TINY_MODEL) == []
    assert variant_store(runtime, context(runtime, DEFAULT_TENANT)).list(TINY_MODEL) == []
    assert (runtime.settings.variant_store / "_tenants" / "team-a" / TINY_MODEL / "no-city" / "1").is_dir()
    # A child made by the same tenant finds its parent; another tenant naming it gets a 404.
    child = run(runtime, "erase", {**body, "variant": "no-city@1"}, "team-a")
    assert child.status is JobStatus.succeeded and child.result["variant"]["parent"] == "no-city@1"
    theirs = run(runtime, "erase", {**body, "variant": "no-city@1"}, "team-b")
    assert theirs.status is JobStatus.failed and (theirs.error["status"], theirs.error["field"]) == (404, "variant")


def test_a_job_reads_only_its_tenants_variant(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    hidden = tiny_lm().hidden_size
    eraser = AffineEraser(1, torch.randn(hidden, 2), torch.randn(2, hidden), torch.zeros(hidden))
    variant_store(runtime, context(runtime, "team-a")).save(TINY_MODEL, "v", [eraser], method="leace",
                                                            hidden_size=hidden)
    assert load_variant(runtime, context(runtime, "team-a"), TINY_MODEL, "v").ref == "v@1"
    with pytest.raises(EntryNotFoundError), on_variant(runtime, context(runtime, "team-b"), TINY_MODEL, "v"):
        pass
    score = {"texts": ["The capital of France is Paris."], "variant": "v"}
    assert run(runtime, "score", score, "team-a").result["variant"] == "v@1"
    failed = run(runtime, "score", score, "team-b")
    assert failed.status is JobStatus.failed and failed.error["title"] == "Unknown variant"


def test_an_extraction_job_stores_its_vector_in_its_tenants_store(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    body = {"name": "honesty", "positive": ["Be honest:", "Tell the truth:"], "negative": ["Lie:", "Make it up:"],
            "layers": [1]}
    assert run(runtime, "steering_vector", body, "team-b").status is JobStatus.succeeded
    assert [m["name"] for m in vector_store(runtime, context(runtime, "team-b")).list(TINY_MODEL)] == ["honesty"]
    assert vector_store(runtime, context(runtime, DEFAULT_TENANT)).list(TINY_MODEL) == []


def test_a_diagnosis_stage_keeps_the_jobs_tenant_and_request_id(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    parent = JobContext(job_id="j", store=runtime.store, tenant="team-a", request_id="r-1")
    child = stage(parent, 0.1, 0.5, "attribution")
    assert (child.tenant, child.request_id, child.job_id) == ("team-a", "r-1", "j")


def test_what_a_job_logs_carries_its_id_tenant_and_request_id(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("worker"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        # A failure inside the task (a worker without models) is logged with its traceback.
        payload = {"texts": ["hi"], "batch_size": 1}
        job_id = queued(runtime.store, "score", payload, "team-a", "req-77")
        runtime.registry = None  # type: ignore[assignment]
        with pytest.raises(AttributeError):
            run_job(runtime, job_id, "score", payload)
    finally:
        root.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(e for e in entries if e["level"] == "ERROR")
    assert (failure["job_id"], failure["tenant"], failure["request_id"], failure["process"]) == (
        job_id, "team-a", "req-77", "worker")
    assert "AttributeError" in failure["exception"]
    assert runtime.store.get(job_id).status is JobStatus.failed  # type: ignore[union-attr]
