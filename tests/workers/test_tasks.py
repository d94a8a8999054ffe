"""`run_job` on the tiny model over a fake Redis: every way a job can end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

import engine.scoring
import ops.score
from jobs.directory import WorkerDirectory
from jobs.store import RUNNING_SET, JobStore
from jobs.submission import JobSubmitter
from schemas.jobs import JobStatus
from schemas.scoring import ScoreResult
from tests.fakes import TINY_MODEL, beat, fake_clients, queued_job, tiny_lm, tiny_registry, tiny_settings
from workers.runtime import WorkerRuntime
from workers.tasks import run_job
from workers.worker import ModelWorker

WORKER = "worker-1"
TEXTS = [
    "The capital of France is Paris.",
    "Hi",
    "Interpretability asks what a model computes, and how.",
    "The quick brown fox.",
]


@pytest.fixture
def clients() -> tuple[Redis, Redis]:
    return fake_clients()


@pytest.fixture
def runtime(tmp_path: Path, clients: tuple[Redis, Redis]) -> WorkerRuntime:
    settings = tiny_settings(tmp_path)
    store = JobStore(clients[0], ttl_seconds=settings.job_ttl_seconds)
    beat(WorkerDirectory(clients[0], ttl_seconds=60), WORKER)  # the worker is alive
    return WorkerRuntime(settings=settings, registry=tiny_registry(), store=store, worker_name=WORKER)


def score_job(runtime: WorkerRuntime, texts: list[str] = TEXTS, batch_size: int = 2) -> tuple[str, dict[str, Any]]:
    payload = {"model": None, "texts": texts, "batch_size": batch_size}
    return queued_job(runtime.store, payload=payload), payload


def reference_logprobs(text: str) -> tuple[list[int], list[float]]:
    """log p(token_i | tokens_<i) from one unpadded forward pass, in float64."""
    lm = tiny_lm()
    ids = lm.tokenizer(text)["input_ids"]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    return ids, [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]


def test_a_score_job_succeeds_with_the_models_log_probabilities(runtime: WorkerRuntime) -> None:
    job_id, payload = score_job(runtime)

    run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.succeeded
    assert (record.fraction, record.stage, record.worker) == (1.0, "done", WORKER)
    assert record.error is None
    assert job_id not in runtime.store.redis.smembers(RUNNING_SET)
    result = ScoreResult.model_validate(record.result)
    assert len(result.texts) == len(TEXTS)  # in the caller's order, whatever the batching did
    for text, view in zip(TEXTS, result.texts, strict=True):
        ids, expected = reference_logprobs(text)
        assert [t.id for t in view.tokens] == ids
        assert "".join(t.text for t in view.tokens) == text
        assert view.tokens[0].logprob is None
        got = [t.logprob for t in view.tokens[1:]]
        assert got == pytest.approx(expected, abs=1e-5)
        assert view.total_logprob == pytest.approx(sum(expected), abs=1e-4)
        if expected:
            assert view.mean_logprob == pytest.approx(sum(expected) / len(expected), abs=1e-5)
        else:
            assert view.mean_logprob is None


def test_a_single_token_text_has_no_log_probability(runtime: WorkerRuntime) -> None:
    lm = tiny_lm()
    text = next(t for t in ("a", "T", "x") if len(lm.tokenizer(t)["input_ids"]) == 1)
    job_id, payload = score_job(runtime, texts=[text], batch_size=1)
    run_job(runtime, job_id, "score", payload)
    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.succeeded
    view = ScoreResult.model_validate(record.result).texts[0]
    assert [t.logprob for t in view.tokens] == [None]
    assert (view.total_logprob, view.mean_logprob) == (0.0, None)


def test_a_cancel_requested_before_the_job_starts_ends_it_canceled(runtime: WorkerRuntime) -> None:
    job_id, payload = score_job(runtime)
    runtime.store.request_cancel(job_id)

    run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.canceled
    assert record.result is None
    assert record.error is not None and record.error["type"] == "urn:interp:problem:canceled"
    assert record.ended_at is not None


def test_a_cancel_requested_while_running_stops_at_the_next_batch(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, payload = score_job(runtime, batch_size=1)  # four batches
    batches: list[int] = []
    real_score_batch = engine.scoring.score_batch

    def counting(lm: Any, batch: Any) -> Any:
        batches.append(len(batch))
        return real_score_batch(lm, batch)

    store = runtime.store
    real_set_progress = store.set_progress

    def set_progress(jid: str, fraction: float, stage: str) -> None:
        real_set_progress(jid, fraction, stage)
        if fraction > 0:  # the client cancels after the first batch is done
            store.request_cancel(jid)

    monkeypatch.setattr(engine.scoring, "score_batch", counting)
    monkeypatch.setattr(store, "set_progress", set_progress)

    run_job(runtime, job_id, "score", payload)

    record = store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.canceled
    assert record.result is None
    assert record.cancel_requested
    assert batches == [1]  # the other three batches never ran
    assert record.fraction == pytest.approx(0.25)
    assert job_id not in store.redis.smembers(RUNNING_SET)


def test_an_exception_in_the_task_fails_the_job_and_propagates(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any) -> dict[str, Any]:
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(ops.score.OPERATION, "run", explode)
    job_id, payload = score_job(runtime)

    with pytest.raises(RuntimeError, match="out of cheese"):
        run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.failed
    assert record.result is None
    assert record.error is not None
    assert record.error["type"] == "urn:interp:problem:job-failed"
    assert record.error["status"] == 500
    assert "RuntimeError: out of cheese" in record.error["detail"]
    assert job_id not in runtime.store.redis.smembers(RUNNING_SET)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 28.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                                                "allocate memory: you tried to allocate 30064771072 bytes.")])
def test_running_out_of_memory_fails_the_job_with_advice_and_keeps_the_worker_serving(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def greedy(*args: Any) -> dict[str, Any]:
        raise error

    monkeypatch.setattr(ops.score.OPERATION, "run", greedy)
    job_id, payload = score_job(runtime)
    run_job(runtime, job_id, "score", payload)  # does not raise: the worker goes on to the next job
    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed and record.error is not None
    assert record.error["type"] == "urn:interp:problem:out-of-memory" and record.error["status"] == 507
    assert "internal_batch_size" in record.error["detail"] and "precision: model" in record.error["detail"]
    assert job_id not in runtime.store.redis.smembers(RUNNING_SET)


def test_an_invalid_payload_fails_the_job_as_the_clients_mistake(runtime: WorkerRuntime) -> None:
    job_id = queued_job(runtime.store)
    run_job(runtime, job_id, "score", {"texts": []})  # refused values are a 422, not a worker crash
    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error is not None and record.error["status"] == 422


def test_a_job_for_a_model_the_worker_lacks_fails_with_unknown_model(runtime: WorkerRuntime) -> None:
    job_id = queued_job(runtime.store, model="absent", payload={"texts": ["hi"]})
    run_job(runtime, job_id, "score", {"texts": ["hi"]})
    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error is not None and record.error["type"] == "urn:interp:problem:unknown-model"


def test_a_job_canceled_while_queued_is_skipped(runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id, payload = score_job(runtime)
    runtime.store.request_cancel(job_id)
    assert runtime.store.finish(job_id, JobStatus.canceled)
    ran: list[Any] = []

    def task(*args: Any) -> dict[str, Any]:
        ran.append(args)
        return {}

    monkeypatch.setattr(ops.score.OPERATION, "run", task)

    run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None
    assert record.status is JobStatus.canceled
    assert record.worker is None and record.started_at is None
    assert ran == []


def test_a_model_worker_runs_an_enqueued_job_with_its_runtime(
    runtime: WorkerRuntime, clients: tuple[Redis, Redis]
) -> None:
    submitter = JobSubmitter(clients[1], runtime.store, job_timeout=60)
    payload = {"model": None, "texts": TEXTS[:2], "batch_size": 1}
    record, _ = submitter.submit(kind="score", model=TINY_MODEL, queue=runtime.settings.queue_name(TINY_MODEL),
                                 payload=payload)
    worker = ModelWorker(runtime, WorkerDirectory(clients[0], ttl_seconds=60), connection=clients[1])

    worker.work(burst=True, with_scheduler=False)

    done = runtime.store.get(record.id)
    assert done is not None
    assert done.status is JobStatus.succeeded, done.error
    assert len(ScoreResult.model_validate(done.result).texts) == 2
    queue = Queue(runtime.settings.queue_name(TINY_MODEL), connection=clients[1], serializer=JSONSerializer)
    assert queue.job_ids == []
    rq_job = queue.fetch_job(record.id)
    assert rq_job is not None and rq_job.meta["progress"] == {"fraction": 1.0, "stage": "scoring"}


def test_a_job_that_times_out_fails_with_a_timeout_problem_and_propagates(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_slow(*args: Any) -> dict[str, Any]:
        raise JobTimeoutException("took too long")

    monkeypatch.setattr(ops.score.OPERATION, "run", too_slow)
    job_id, payload = score_job(runtime)

    with pytest.raises(JobTimeoutException):
        run_job(runtime, job_id, "score", payload)

    record = runtime.store.get(job_id)
    assert record is not None and record.status is JobStatus.failed
    assert record.error is not None
    assert (record.error["type"], record.error["status"]) == ("urn:interp:problem:timeout", 504)
