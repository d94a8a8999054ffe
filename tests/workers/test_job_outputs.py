"""A job's outcome matches what it stored: a worker that dies around publishing a version never orphans it.

The worker dies (a `Killed` raised where the process would stop) after its version became visible but
before the job was finished, or just before the version became visible; a reaper (the API's, a
starting worker's, or a client's poll) then settles the job from what the store holds.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import store.versioned
from jobs.directory import WorkerDirectory
from jobs.reader import AsyncJobReader
from jobs.record import new_job_id
from jobs.store import JobStore
from jobs.submission import hash_request
from ops.outputs import reconciler
from schemas.jobs import JobStatus
from store.variants import VariantStore
from tests.fakes import TINY_MODEL, async_twin, beat, fake_clients, tiny_registry, tiny_settings
from tests.workers.test_erase_task import EXAMPLES
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

BODY = {"name": "no-city", "examples": EXAMPLES, "layers": [1], "batch_size": 8}


class Killed(BaseException):
    """Where the worker process stops (kill -9): nothing after it runs, no handler sees it."""


def runtime_for(tmp_path: Path, retries: int = 0) -> tuple[WorkerRuntime, WorkerDirectory]:
    redis, _ = fake_clients()
    settings = tiny_settings(tmp_path, job_retries=retries)
    directory = WorkerDirectory(redis, ttl_seconds=60)
    beat(directory, "w")
    store = JobStore(redis, ttl_seconds=settings.job_ttl_seconds, reconcile=reconciler(settings))
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=store, worker_name="w"), directory


def queued(runtime: WorkerRuntime, retries: int = 0) -> str:
    job_id = new_job_id()
    mapping: Any = runtime.store.initial_mapping(job_id, "erase", TINY_MODEL, hash_request("erase", TINY_MODEL, BODY),
                                                 queue=runtime.settings.queue_name(TINY_MODEL), retries=retries)
    runtime.store.redis.hset(runtime.store.key(job_id), mapping=mapping)
    return job_id


def versions(runtime: WorkerRuntime) -> list[str]:
    return [m["ref"] for m in VariantStore(runtime.settings.variant_store).list(TINY_MODEL)]


def die_after_publishing(runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, job_id: str) -> None:
    """Run the job; the worker dies once its version is visible, before the job is finished."""
    def killed(*args: Any, **kwargs: Any) -> bool:
        raise Killed

    monkeypatch.setattr(runtime.store, "finish", killed)
    with pytest.raises(Killed):
        run_job(runtime, job_id, "erase", BODY)
    monkeypatch.undo()


def test_a_job_whose_worker_dies_after_publishing_is_reported_with_that_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, directory = runtime_for(tmp_path)
    job_id = queued(runtime)
    die_after_publishing(runtime, monkeypatch, job_id)
    assert versions(runtime) == ["no-city@1"]
    assert runtime.store.get(job_id).status is JobStatus.running  # type: ignore[union-attr]
    directory.remove("w", [TINY_MODEL])  # its heartbeat expires

    assert runtime.store.reap_orphans() == [job_id]

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.succeeded, record
    assert record.result is not None and record.result["variant"]["ref"] == "no-city@1"
    assert versions(runtime) == ["no-city@1"]


def test_a_job_whose_worker_dies_before_publishing_fails_and_leaves_no_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, directory = runtime_for(tmp_path)
    job_id = queued(runtime)
    real_rename = os.rename

    def rename(source: Any, target: Any) -> None:
        if Path(source).name.startswith(store.versioned.TMP_PREFIX):
            raise Killed  # the version was about to become visible
        real_rename(source, target)

    monkeypatch.setattr(store.versioned.os, "rename", rename)
    with pytest.raises(Killed):
        run_job(runtime, job_id, "erase", BODY)
    monkeypatch.undo()
    assert json.loads(runtime.store.redis.hget(runtime.store.key(job_id), "pending"))["ref"] == "no-city@1"
    directory.remove("w", [TINY_MODEL])

    assert runtime.store.reap_orphans() == [job_id]

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error is not None and record.error["type"] == "urn:interp:problem:worker-lost"
    assert versions(runtime) == []
    assert not [p for p in (runtime.settings.variant_store / TINY_MODEL / "no-city").iterdir() if p.is_dir()]


def test_a_job_with_retries_left_is_not_run_again_once_its_version_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, directory = runtime_for(tmp_path, retries=1)
    job_id = queued(runtime, retries=1)
    die_after_publishing(runtime, monkeypatch, job_id)
    directory.remove("w", [TINY_MODEL])

    runtime.store.reap_orphans()

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.succeeded  # not queued again for a second version
    assert versions(runtime) == ["no-city@1"]


def test_a_client_polling_the_dead_job_sees_it_succeeded_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, directory = runtime_for(tmp_path)
    job_id = queued(runtime)
    die_after_publishing(runtime, monkeypatch, job_id)
    directory.remove("w", [TINY_MODEL])
    reader = AsyncJobReader(async_twin(runtime.store.redis), ttl_seconds=runtime.settings.job_ttl_seconds,
                            reconcile=reconciler(runtime.settings))

    record = asyncio.run(reader.get(job_id))

    assert record is not None and record.status is JobStatus.succeeded
    assert record.result is not None and record.result["variant"]["ref"] == "no-city@1"


def test_a_version_another_job_published_under_that_number_is_not_taken_for_the_dead_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, directory = runtime_for(tmp_path)
    job_id = queued(runtime)
    die_after_publishing(runtime, monkeypatch, job_id)
    variants = VariantStore(runtime.settings.variant_store)
    theirs = variants.load(TINY_MODEL, "no-city@1")
    variants.save(TINY_MODEL, "no-city", list(theirs.components), method="leace", hidden_size=32,
                  provenance={"job_id": "someone-else"})  # no-city@2
    pending = json.loads(runtime.store.redis.hget(runtime.store.key(job_id), "pending"))
    runtime.store.redis.hset(runtime.store.key(job_id), "pending", json.dumps({**pending, "ref": "no-city@2"}))
    directory.remove("w", [TINY_MODEL])

    runtime.store.reap_orphans()

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
