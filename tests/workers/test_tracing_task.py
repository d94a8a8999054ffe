"""The `trace` and `diagnose` tasks end to end on the tiny model, through `run_job` and a fake Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from redis import Redis

from engine.generation import GenerationRow, SamplingParams, generate_batch
from engine.pass_plan import Steering
from jobs.directory import WorkerDirectory
from jobs.store import JobStore
from schemas.diagnosis import DiagnosisReport
from schemas.editing import EditRequest
from schemas.jobs import JobStatus
from schemas.tracing import TraceResult
from tests.fakes import TINY_MODEL, beat, fake_clients, queued_job, tiny_lm, tiny_registry, tiny_settings
from workers.runtime import WorkerRuntime
from workers.tasks import run_job

PROMPT = "The capital of France is Paris and the"
SUBJECT = "France"


class RecordingStore(JobStore):
    """Records every progress report; can request a cancel at the n-th report of a stage."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, cancel_at: tuple[str, int] | None = None) -> None:
        super().__init__(redis, ttl_seconds=ttl_seconds)
        self.reports: list[tuple[float, str]] = []
        self.cancel_at = cancel_at

    def set_progress(self, job_id: str, fraction: float, stage: str) -> None:
        super().set_progress(job_id, fraction, stage)
        self.reports.append((fraction, stage))
        if self.cancel_at and sum(s == self.cancel_at[0] for _, s in self.reports) == self.cancel_at[1]:
            self.request_cancel(job_id)


@pytest.fixture
def runtime(tmp_path: Path) -> WorkerRuntime:
    return recording_runtime(tmp_path)


def recording_runtime(tmp_path: Path, cancel_at: tuple[str, int] | None = None, **settings: Any) -> WorkerRuntime:
    clients: tuple[Redis, Redis] = fake_clients()
    config = tiny_settings(tmp_path, **settings)
    store = RecordingStore(clients[0], ttl_seconds=config.job_ttl_seconds, cancel_at=cancel_at)
    beat(WorkerDirectory(clients[0], ttl_seconds=60), "w")
    return WorkerRuntime(settings=config, registry=tiny_registry(), store=store, worker_name="w")


def run(runtime: WorkerRuntime, kind: str, body: dict[str, Any]) -> tuple[JobStatus, dict[str, Any] | None, Any]:
    job_id = queued_job(runtime.store, kind=kind, payload=body)
    run_job(runtime, job_id, kind, body)
    record = runtime.store.get(job_id)
    assert record is not None
    return record.status, record.result, record.error


def test_a_causal_trace_job_returns_every_grid_with_its_effects(runtime: WorkerRuntime) -> None:
    status, result, error = run(runtime, "trace", {"prompt": PROMPT, "subject": SUBJECT, "samples": 2, "window": 1})
    assert status is JobStatus.succeeded, error
    trace = TraceResult.model_validate(result)
    n_tokens = len(trace.tokens)
    assert [g.kind for g in trace.grids] == ["residual", "mlp", "attention"]
    assert trace.layers == [0, 1] and trace.positions == list(range(n_tokens))
    assert trace.subject is not None and trace.first_difference == trace.subject.start
    assert len(trace.p_corrupted_samples) == 2
    assert trace.p_corrupted == pytest.approx(sum(trace.p_corrupted_samples) / 2)
    for grid in trace.grids:
        assert len(grid.probabilities) == 2 and all(len(row) == n_tokens for row in grid.probabilities)
        for row_p, row_e in zip(grid.probabilities, grid.indirect_effects, strict=True):
            assert row_e == pytest.approx([p - trace.p_corrupted for p in row_p], abs=1e-7)
    # The last layer's residual at the last token is the clean answer's probability, whatever the noise.
    assert trace.grids[0].probabilities[-1][-1] == pytest.approx(trace.p_clean, abs=1e-6)
    answer = ranked_tokens(PROMPT)[0]
    assert trace.answer.id == answer and trace.noise_scale is not None and trace.noise_scale > 0


def test_an_activation_patching_job_reports_the_first_difference(runtime: WorkerRuntime) -> None:
    tokenizer = tiny_lm().tokenizer
    clean = tokenizer("The capital of France is")["input_ids"]
    other = tokenizer("The capital of seven is")["input_ids"]
    assert len(clean) == len(other)
    status, result, error = run(runtime, "trace", {
        "method": "activation_patching", "prompt": "The capital of France is",
        "corrupted_prompt": "The capital of seven is", "kinds": ["residual"]})
    assert status is JobStatus.succeeded, error
    trace = TraceResult.model_validate(result)
    differ = next(i for i, (a, b) in enumerate(zip(clean, other, strict=True)) if a != b)
    assert trace.first_difference == differ and trace.corrupted_tokens is not None and trace.samples == 1
    assert trace.grids[0].indirect_effects[0][:differ] == [0.0] * differ


def test_a_trace_reports_progress_per_pass_and_honours_a_cancel(tmp_path: Path) -> None:
    runtime = recording_runtime(tmp_path, cancel_at=("tracing", 3))
    status, _, error = run(runtime, "trace", {"prompt": PROMPT, "subject": SUBJECT, "samples": 2, "window": 1})
    assert status is JobStatus.canceled, error
    assert isinstance(runtime.store, RecordingStore)
    assert sum(stage == "tracing" for _, stage in runtime.store.reports) == 3


def test_a_trace_beyond_the_limits_fails_as_invalid(tmp_path: Path) -> None:
    runtime = recording_runtime(tmp_path, max_trace_evaluations=10)
    status, _, error = run(runtime, "trace", {"prompt": PROMPT, "subject": SUBJECT, "samples": 2})
    assert status is JobStatus.failed and error["status"] == 422 and "restored runs" in error["detail"]
    status, _, error = run(runtime, "trace", {"prompt": PROMPT, "subject": "Germany"})
    assert status is JobStatus.failed and error["status"] == 422 and "subject" in error["detail"]


def ranked_tokens(prompt: str) -> list[int]:
    lm = tiny_lm()
    with torch.inference_mode():
        logits = lm.model(torch.tensor([lm.tokenizer(prompt)["input_ids"]])).logits[0, -1]
    return [int(t) for t in logits.argsort(descending=True)]


def single_token_text(token: int) -> str:
    """The text of ``token`` if it encodes back to exactly that token."""
    tokenizer = tiny_lm().tokenizer
    text = str(tokenizer.decode([token]))
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == [token]
    return text


def diagnose(runtime: WorkerRuntime, **payload: Any) -> DiagnosisReport:
    status, result, error = run(runtime, "diagnose", {"prompt": PROMPT, "subject": SUBJECT, "samples": 2,
                                                      "window": 1, "attribution_evaluations": 16, **payload})
    assert status is JobStatus.succeeded, error
    return DiagnosisReport.model_validate(result)


def test_a_diagnosis_of_a_wrong_answer_locates_it_and_proposes_runnable_fixes(runtime: WorkerRuntime) -> None:
    ranked = [t for t in ranked_tokens(PROMPT)[1:12]
              if tiny_lm().tokenizer(tiny_lm().tokenizer.decode([t]), add_special_tokens=False)["input_ids"] == [t]]
    expected = ranked[0]
    report = diagnose(runtime, expected=single_token_text(expected), variant_name="fixed")
    assert report.prediction.token.id == ranked_tokens(PROMPT)[0] and report.prediction.rank == 1
    assert report.expected.token.id == expected and report.expected.rank > 1
    assert not report.decision.correct
    assert [layer.layer for layer in report.lens] == [0, 1]
    assert report.lens[-1].predicted_rank == 1 and report.lens[-1].expected_rank == report.expected.rank
    assert report.subject.text == SUBJECT and report.subject.start <= report.subject_mlp.position < report.subject.end
    assert report.attribution.targets[0].id == report.prediction.token.id
    assert all(d.attribution > 0 for d in report.driving_tokens)
    edit, steer = report.suggestions
    assert edit.kind == "edit" and edit.endpoint == "/edit" and edit.verified is None
    body = EditRequest.model_validate(edit.body)  # a body /edit accepts as it is
    assert body.name == "fixed" and body.method == "rome" and body.variant is None
    (request,) = body.requests
    assert request.prompt.format(request.subject) == PROMPT
    assert request.target_new == report.expected.token.text
    assert request.target_true == report.prediction.token.text
    assert body.hyperparameters.layers == [report.subject_mlp.last_token_peak_layer]
    # The steering body, run as /generate would run it, gives what the report says it gives.
    assert steer.kind == "steering" and steer.endpoint == "/generate"
    (spec,) = steer.body["steering"]
    lm = tiny_lm()
    assert len(spec["values"]) == lm.hidden_size and spec["positions"] == "prompt"
    vector = torch.tensor(spec["values"], dtype=torch.float32)
    row = GenerationRow(lm.tokenizer(steer.body["prompt"])["input_ids"], SamplingParams(max_new_tokens=1),
                        [Steering(spec["layers"][0], vector, spec["alpha"], "prompt")])
    (output,) = generate_batch(lm, [row], tiny_registry().runtime(TINY_MODEL))
    assert (output.token_ids[0] == expected) == steer.verified
    assert report.summary and report.trace.grids[1].kind == "mlp"


def test_a_diagnosis_of_a_right_answer_proposes_nothing(runtime: WorkerRuntime) -> None:
    report = diagnose(runtime, expected=single_token_text(ranked_tokens(PROMPT)[0]), kinds=["mlp"])
    assert report.decision.correct and report.suggestions == []
    assert report.expected.rank == 1 and report.decision.lost_at is None
    assert [g.kind for g in report.trace.grids] == ["mlp"]


def test_a_diagnosis_without_a_subject_traces_the_most_driving_token(runtime: WorkerRuntime) -> None:
    status, result, error = run(runtime, "diagnose", {"prompt": PROMPT, "expected": " Paris", "samples": 1,
                                                      "kinds": ["mlp"], "attribution_evaluations": 16})
    assert status is JobStatus.succeeded, error
    report = DiagnosisReport.model_validate(result)
    assert report.subject.end == report.subject.start + 1
    assert report.subject.start == next(d.position for d in report.driving_tokens
                                        if d.position < len(report.tokens) - 1)


def test_a_diagnosis_reports_every_stage_in_order(tmp_path: Path) -> None:
    runtime = recording_runtime(tmp_path)
    diagnose(runtime, expected=" Paris", kinds=["mlp"])
    assert isinstance(runtime.store, RecordingStore)
    fractions = [f for f, _ in runtime.store.reports]
    stages = [s.split(":")[0] for _, s in runtime.store.reports]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] < 1.0
    for name in ("predicting", "attribution", "tracing", "suggestions"):
        assert name in stages
