"""The `erase` task on the tiny model: progress per batch, cooperative cancel, refusals, the stored variant."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from schemas.erasure import ErasureResult
from schemas.jobs import JobStatus
from store.variants import VariantStore
from tests.fakes import TINY_MODEL, beat, fake_clients, queued_job, tiny_lm, tiny_registry, tiny_settings
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

EXAMPLES = [{"text": f"{s} {e}", "label": label} for s, (label, endings) in itertools.product(
    ["The capital of France", "The quick brown fox", "Interpretability", "One, two, three", "The lazy dog"],
    {"city": ["is Paris.", "is in France."], "animal": ["is a fox.", "jumps over the dog."]}.items())
    for e in endings]


class RecordingStore(JobStore):
    """Records every progress report; requests a cancel at the n-th batch of activations read."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, cancel_at_batch: int | None = None) -> None:
        super().__init__(redis, ttl_seconds=ttl_seconds)
        self.reports: list[tuple[float, str]] = []
        self.cancel_at_batch = cancel_at_batch

    def set_progress(self, job_id: str, fraction: float, stage: str) -> None:
        super().set_progress(job_id, fraction, stage)
        self.reports.append((fraction, stage))
        batches = sum(stage == "reading activations" and f > 0 for f, stage in self.reports)
        if self.cancel_at_batch is not None and batches == self.cancel_at_batch:
            self.request_cancel(job_id)


def runtime_for(tmp_path: Path, cancel_at_batch: int | None = None) -> WorkerRuntime:
    clients = fake_clients()
    settings = tiny_settings(tmp_path)
    store = RecordingStore(clients[0], ttl_seconds=settings.job_ttl_seconds, cancel_at_batch=cancel_at_batch)
    beat(WorkerDirectory(clients[0], ttl_seconds=60), "w")
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=store, worker_name="w")


def run_erase(runtime: WorkerRuntime, **payload: Any) -> tuple[str, Any]:
    body = {"name": "no-city", "examples": EXAMPLES, "layers": [1], "batch_size": 4, **payload}
    job_id = queued_job(runtime.store, kind="erase", payload=body)
    run_job(runtime, job_id, "erase", body)
    record = runtime.store.get(job_id)
    assert record is not None
    return job_id, record


def test_an_erase_job_reports_progress_after_every_batch_and_stores_the_variant(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    job_id, record = run_erase(runtime, layers="all", held_out=0.2)
    assert record.status is JobStatus.succeeded, record.error
    assert isinstance(runtime.store, RecordingStore)
    reading = [f for f, stage in runtime.store.reports if stage == "reading activations" and f > 0]
    assert len(reading) == -(-len(EXAMPLES) // 4)  # one report per batch of 4 texts
    fractions = [f for f, _ in runtime.store.reports]
    assert fractions == sorted(fractions)
    assert [stage for _, stage in runtime.store.reports][-2:] == ["canaries", "storing"]
    assert (record.fraction, record.stage) == (1.0, "done")
    result = ErasureResult.model_validate(record.result)
    assert [layer.layer for layer in result.layers] == list(range(tiny_lm().n_layers))
    assert result.variant.ref == "no-city@1" and result.n_examples == len(EXAMPLES)
    stored = VariantStore(runtime.settings.variant_store).load(TINY_MODEL, "no-city@1")
    assert [c.site for c in stored.components] == ["block.0", "block.1"]
    assert stored.manifest["provenance"]["job_id"] == job_id
    assert stored.manifest["hyperparameters"]["layers"] == [0, 1]


def test_a_cancel_stops_the_job_at_the_next_batch_and_stores_nothing(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, cancel_at_batch=2)
    _, record = run_erase(runtime)
    assert record.status is JobStatus.canceled
    assert isinstance(runtime.store, RecordingStore)
    assert sum(stage == "reading activations" and f > 0 for f, stage in runtime.store.reports) == 2
    assert VariantStore(runtime.settings.variant_store).list(TINY_MODEL) == []


@pytest.mark.parametrize(("payload", "reason"), [
    ({"examples": []}, "at least two labelled examples"),
    ({"examples": [{"text": "Hi", "label": 1}, {"text": "Ho", "label": 1}]}, "two classes"),
    ({"layers": [9]}, "out of range"),
    ({"variant": "ghost"}, "no variant 'ghost'"),
])
def test_a_refused_request_fails_the_job_with_a_4xx_and_the_reason(tmp_path: Path, payload: dict[str, Any],
                                                                   reason: str) -> None:
    _, record = run_erase(runtime_for(tmp_path), **payload)
    assert record.status is JobStatus.failed
    assert record.error is not None and record.error["status"] in (404, 422)
    assert reason in record.error["detail"]
