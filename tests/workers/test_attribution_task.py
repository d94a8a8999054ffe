"""The `attribute` task end to end on the tiny model: IG and SHAP results keep their promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from schemas.attribution import AttributionResult
from schemas.jobs import JobStatus
from tests.fakes import beat, fake_clients, queued_job, tiny_registry, tiny_settings
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

PROMPT = "Interpretability asks what a model computes."


@pytest.fixture
def runtime(tmp_path: Path) -> WorkerRuntime:
    clients: tuple[Redis, Redis] = fake_clients()
    settings = tiny_settings(tmp_path)
    store = JobStore(clients[0], ttl_seconds=settings.job_ttl_seconds)
    beat(WorkerDirectory(clients[0], ttl_seconds=60), "w")
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=store, worker_name="w")


def attribute(runtime: WorkerRuntime, **payload: Any) -> AttributionResult:
    body = {"prompt": PROMPT, **payload}
    job_id = queued_job(runtime.store, kind="attribute", payload=body)
    run_job(runtime, job_id, "attribute", body)
    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.succeeded, record and record.error
    return AttributionResult.model_validate(record.result)


def test_adaptive_ig_on_the_next_token_reaches_its_tolerance_and_says_so(runtime: WorkerRuntime) -> None:
    result = attribute(runtime, tolerance=0.01)
    target = result.targets[0]
    assert result.method == "integrated_gradients" and result.rule == "adaptive"
    assert result.precision == "float32"
    assert len(result.attributions) == 1 and len(result.attributions[0]) == len(result.inputs)
    assert target.relative_error is not None and target.relative_error <= 0.01
    assert target.completeness_error == pytest.approx(
        abs(target.attribution_sum - (target.f_input - target.f_baseline)))  # type: ignore[operator]
    assert target.attribution_change is not None
    assert 0 < target.probability <= 1


def test_a_continuation_is_explained_token_by_token_in_one_job(runtime: WorkerRuntime) -> None:
    result = attribute(runtime, target={"kind": "continuation", "text": " It computes."}, rule="riemann_trapezoid",
                       n_steps=64)
    assert len(result.targets) == len(result.attributions) > 1
    assert [t.position for t in result.targets] == list(range(len(result.targets)))


def test_word_aggregation_keeps_every_targets_sum(runtime: WorkerRuntime) -> None:
    tokens = attribute(runtime, rule="riemann_trapezoid", n_steps=32)
    words = attribute(runtime, rule="riemann_trapezoid", n_steps=32, aggregate="word")
    assert len(words.inputs) < len(tokens.inputs)
    assert words.targets[0].attribution_sum == pytest.approx(tokens.targets[0].attribution_sum, rel=1e-9)
    assert "".join(w.text for w in words.inputs) == PROMPT


def test_shap_reports_its_base_value_and_local_accuracy(runtime: WorkerRuntime) -> None:
    result = attribute(runtime, method="shap", max_evals=100, objective="prob")
    target = result.targets[0]
    assert target.base_value is not None and target.f_baseline is None
    assert result.precision is None  # SHAP runs the served model as it is
    assert target.local_accuracy_error is not None and target.local_accuracy_error < 1e-6
    assert target.attribution_sum + target.base_value == pytest.approx(target.f_input, abs=1e-6)


def test_a_generated_target_explains_each_greedy_token(runtime: WorkerRuntime) -> None:
    result = attribute(runtime, target={"kind": "generate", "n_tokens": 3}, rule="gauss_legendre", n_steps=16)
    assert 1 <= len(result.targets) <= 3


class RecordingStore(JobStore):
    """A job store that records every progress report and can request a cancel after the n-th."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, cancel_after: int | None = None) -> None:
        super().__init__(redis, ttl_seconds=ttl_seconds)
        self.reports: list[tuple[float, str]] = []
        self.cancel_after = cancel_after

    def set_progress(self, job_id: str, fraction: float, stage: str) -> None:
        super().set_progress(job_id, fraction, stage)
        self.reports.append((fraction, stage))
        chunks = sum(stage == "attributing" for _, stage in self.reports)
        if self.cancel_after is not None and chunks == self.cancel_after:
            self.request_cancel(job_id)


def recording_runtime(tmp_path: Path, cancel_after: int | None = None) -> WorkerRuntime:
    clients: tuple[Redis, Redis] = fake_clients()
    settings = tiny_settings(tmp_path)
    store = RecordingStore(clients[0], ttl_seconds=settings.job_ttl_seconds, cancel_after=cancel_after)
    beat(WorkerDirectory(clients[0], ttl_seconds=60), "w")
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=store, worker_name="w")


def run_recorded(runtime: WorkerRuntime, **payload: Any) -> tuple[JobStatus, list[tuple[float, str]]]:
    body = {"prompt": PROMPT, **payload}
    job_id = queued_job(runtime.store, kind="attribute", payload=body)
    run_job(runtime, job_id, "attribute", body)
    record = runtime.store.get(job_id)
    assert record is not None and isinstance(runtime.store, RecordingStore)
    return record.status, [r for r in runtime.store.reports if r[1] == "attributing"]


def test_integrated_gradients_reports_progress_after_every_chunk_and_it_only_grows(tmp_path: Path) -> None:
    # 16 Gauss-Legendre nodes and the two ends are 18 alphas: 6 chunks of 3.
    status, chunks = run_recorded(recording_runtime(tmp_path), rule="gauss_legendre", n_steps=16,
                                  internal_batch_size=3)
    fractions = [f for f, _ in chunks]
    assert status is JobStatus.succeeded
    assert len(chunks) == 6
    assert fractions == sorted(fractions) and 0 < fractions[0] < fractions[-1] < 1


def test_shap_reports_progress_after_every_forward_pass(tmp_path: Path) -> None:
    status, chunks = run_recorded(recording_runtime(tmp_path), method="shap", max_evals=200)
    assert status is JobStatus.succeeded
    assert len(chunks) >= 3


@pytest.mark.parametrize("payload", [
    {"rule": "gauss_legendre", "n_steps": 16, "internal_batch_size": 3},
    {"rule": "adaptive", "n_steps": 16, "internal_batch_size": 2, "tolerance": 1e-9, "max_evaluations": 64},
    {"method": "shap", "max_evals": 200},
], ids=["fixed rule", "adaptive rule", "shap"])
def test_a_cancel_takes_effect_before_the_next_chunk(tmp_path: Path, payload: dict[str, Any]) -> None:
    # The cancel is requested while the second chunk reports its progress: no third chunk may run.
    status, chunks = run_recorded(recording_runtime(tmp_path, cancel_after=2), **payload)
    assert status is JobStatus.canceled
    assert len(chunks) == 2


@pytest.mark.parametrize("max_evals", [200, 2000], ids=["explainer-driven", "masks known ahead"])
def test_shap_progress_advances_with_the_masks_evaluated_not_in_one_jump(tmp_path: Path, max_evals: int) -> None:
    # 2000 covers this prompt's whole cluster tree, so every mask is evaluated up front; 200 does not.
    status, chunks = run_recorded(recording_runtime(tmp_path), method="shap", max_evals=max_evals)
    fractions = [f for f, _ in chunks]
    assert status is JobStatus.succeeded
    assert fractions == sorted(fractions) and len(set(fractions)) >= 5
    assert fractions[0] < 0.25 and fractions[-1] >= 0.98
    assert max(b - a for a, b in zip([0.0, *fractions], fractions, strict=False)) <= 0.5  # no one step does it all
