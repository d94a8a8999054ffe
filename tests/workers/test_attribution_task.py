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
    assert target.local_accuracy_error is not None and target.local_accuracy_error < 1e-6
    assert target.attribution_sum + target.base_value == pytest.approx(target.f_input, abs=1e-6)


def test_a_generated_target_explains_each_greedy_token(runtime: WorkerRuntime) -> None:
    result = attribute(runtime, target={"kind": "generate", "n_tokens": 3}, rule="gauss_legendre", n_steps=16)
    assert 1 <= len(result.targets) <= 3
