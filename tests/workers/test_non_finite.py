"""Nothing non-finite is stored or served: a NaN artifact is refused naming the input that made it, and a
result with a NaN fails its job with a problem instead of being written as JSON no client can parse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import ops.edit
import ops.erase
import store.variants
from engine.components import AffineEraser, LowRankDelta
from engine.runtime import editable_modules
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from ops.registry import JOBS
from schemas.jobs import JobStatus
from store.variants import VariantStore
from tests.fakes import TINY_MODEL, beat, fake_clients, queued_job, tiny_lm, tiny_registry, tiny_settings
from tests.workers.test_erase_task import EXAMPLES
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

FACT = {"prompt": "The capital of {} is", "subject": "France", "target_new": " Rome", "target_true": " Paris"}


def runtime_for(tmp_path: Path) -> WorkerRuntime:
    redis, _ = fake_clients()
    settings = tiny_settings(tmp_path)
    beat(WorkerDirectory(redis, ttl_seconds=60), "w")
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=JobStore(redis, ttl_seconds=3600),
                         worker_name="w")


def run(runtime: WorkerRuntime, kind: str, body: dict[str, Any]) -> Any:
    job_id = queued_job(runtime.store, kind=kind, payload=body)
    run_job(runtime, job_id, kind, body)
    record = runtime.store.get(job_id)
    assert record is not None
    return record


def test_an_edit_whose_weights_come_out_nan_stores_nothing_and_names_the_overridden_hyperparameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_for(tmp_path)
    lm = tiny_lm()
    module = next(iter(editable_modules(lm)))
    nan_delta = LowRankDelta(module, torch.full((1, 64), float("nan")), torch.zeros(32, 1))
    monkeypatch.setattr(ops.edit, "compute_rome", lambda *args, **kwargs: nan_delta)
    body = {"name": "moved", "method": "rome", "requests": [FACT], "evaluate": True,
            "hyperparameters": {"v_steps": 2, "mom2_samples": 64, "n_templates": 1, "kl_factor": 500.0}}

    record = run(runtime, "edit", body)

    assert record.status is JobStatus.failed
    assert (record.error["status"], record.error["field"]) == (422, "hyperparameters")
    assert "non-finite" in record.error["detail"] and "kl_factor=500.0" in record.error["detail"]
    assert VariantStore(runtime.settings.variant_store).list(TINY_MODEL) == []


def test_an_erasure_whose_eraser_comes_out_nan_stores_nothing_and_names_the_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_for(tmp_path)
    real = ops.erase.erase_concept

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)
        for eraser in outcome.erasers.values():
            assert isinstance(eraser, AffineEraser)
            eraser.proj_left[0, 0] = float("nan")
        return outcome

    monkeypatch.setattr(ops.erase, "erase_concept", poisoned)
    record = run(runtime, "erase", {"name": "no-city", "examples": EXAMPLES, "layers": [1], "batch_size": 8})

    assert record.status is JobStatus.failed
    assert (record.error["status"], record.error["field"]) == (422, "examples")
    assert "non-finite" in record.error["detail"]
    assert VariantStore(runtime.settings.variant_store).list(TINY_MODEL) == []


class NanResult:
    """A result whose data holds a NaN deep inside (what a trace with an absurd noise scale produced)."""

    def model_dump(self, mode: str) -> dict[str, Any]:
        return {"grids": [{"probabilities": [[0.5, float("nan")]]}], "p_clean": 0.9}


@pytest.mark.parametrize("kind", [op.kind for op in JOBS])
def test_a_result_with_a_nan_fails_its_job_naming_where_and_nothing_invalid_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    runtime = runtime_for(tmp_path)
    op = next(o for o in JOBS if o.kind == kind)
    monkeypatch.setattr(op, "check", lambda request, facts: request)
    monkeypatch.setattr(op, "run", lambda request, at, progress: NanResult())
    monkeypatch.setattr(op, "request", type("AnyRequest", (), {"model_validate": staticmethod(lambda data: data)}))
    job_id = queued_job(runtime.store, kind=kind, payload={})

    run_job(runtime, job_id, kind, {})

    raw = runtime.store.redis.hgetall(runtime.store.key(job_id))
    json.loads(raw["error"], parse_constant=lambda name: pytest.fail(f"{name} in a stored error"))
    assert "result" not in raw
    error = json.loads(raw["error"])
    assert (raw["status"], error["status"], error["title"]) == ("failed", 422, "Non-finite result")
    assert "grids.0.probabilities.0.1" in error["detail"]


def test_the_job_store_refuses_to_write_a_nan_result(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    job_id = queued_job(runtime.store)
    with pytest.raises(ValueError, match="JSON compliant"):
        runtime.store.finish(job_id, JobStatus.succeeded, result={"p": float("nan")})


def test_a_variant_stored_with_a_nan_before_stores_checked_is_refused_as_unservable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_for(tmp_path)
    hidden = tiny_lm().hidden_size
    broken = AffineEraser(1, torch.randn(hidden, 1), torch.randn(1, hidden), torch.zeros(hidden))
    broken.bias[0] = float("nan")
    monkeypatch.setattr(store.variants, "check_finite", lambda *args: None)  # as an older build wrote it
    VariantStore(runtime.settings.variant_store).save(TINY_MODEL, "old", [broken], method="leace", hidden_size=hidden)
    monkeypatch.undo()

    record = run(runtime, "score", {"texts": ["The capital of France is Paris."], "variant": "old"})

    assert record.status is JobStatus.failed
    assert (record.error["status"], record.error["title"], record.error["field"]) == (
        409, "Variant cannot be served", "variant")
    assert "non-finite" in record.error["detail"]
