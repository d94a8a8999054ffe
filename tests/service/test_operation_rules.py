"""One home per operation, seen from outside: a job runs on the version checked at submission, and a rule
gives the same problem whether the API catches it or, not holding the model, leaves it to the worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from rq import Queue
from rq.serializers import JSONSerializer

from config.settings import DEFAULT_TENANT
from engine.components import AffineEraser
from engine.registry import ModelRegistry
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, run_enqueued, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem
from tests.service.test_erase_api import EXAMPLES

TEXTS = ["The capital of France is Paris.", "Hi there"]
FACT = {"prompt": "{} is located in", "subject": "The Eiffel Tower", "target_new": " Rome"}


def eraser(seed: int, hidden: int | None = None) -> AffineEraser:
    hidden = hidden or tiny_lm().hidden_size
    g = torch.Generator().manual_seed(seed)
    return AffineEraser(1, torch.randn(hidden, 2, generator=g), torch.randn(2, hidden, generator=g),
                        torch.zeros(hidden))


def make_state(tmp_path: Path, *, api_holds_model: bool, **overrides: Any) -> AppState:
    """The API's state: holding the tiny model (checks see its tokenizer and shape), or not (nor a worker's
    report of its depth: every shape check is left to the worker)."""
    registry = tiny_registry() if api_holds_model else ModelRegistry()
    state = app_state(tiny_settings(tmp_path, **overrides), registry, *fake_clients())
    beat(state.directory)
    return state


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    return make_state(tmp_path, api_holds_model=True)


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def finished(client: TestClient, state: AppState, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, run the job as a worker holding the model would, and return the finished job."""
    reply = client.post(path, json=body)
    assert reply.status_code == 202, reply.text
    run_enqueued(state, reply.json()["id"], registry=tiny_registry())
    job: dict[str, Any] = client.get(f"/jobs/{reply.json()['id']}").json()
    return job


def test_a_job_runs_on_the_variant_version_checked_at_submission_not_one_published_before_it_starts(
    client: TestClient, state: AppState
) -> None:
    variants = state.stores(DEFAULT_TENANT).variants
    variants.save(TINY_MODEL, "x", [eraser(1)], method="leace", hidden_size=tiny_lm().hidden_size)
    reply = client.post("/score", json={"texts": TEXTS, "variant": "x"})
    assert reply.status_code == 202, reply.text
    queue = Queue(state.settings.queue_name(TINY_MODEL), connection=state.rq_redis, serializer=JSONSerializer)
    (queued,) = queue.jobs
    assert queued.args[2]["variant"] == "x@1"  # the payload carries the pinned version

    variants.save(TINY_MODEL, "x", [eraser(2)], method="leace", hidden_size=tiny_lm().hidden_size)  # x@2, now latest
    run_enqueued(state, reply.json()["id"], registry=tiny_registry())
    job = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "succeeded", job
    assert job["result"]["variant"] == "x@1"
    on_v1 = finished(client, state, "/score", {"texts": TEXTS, "variant": "x@1"})["result"]
    on_v2 = finished(client, state, "/score", {"texts": TEXTS, "variant": "x@2"})["result"]
    assert job["result"]["texts"] == on_v1["texts"]  # computed on x@1 ...
    assert job["result"]["texts"] != on_v2["texts"]  # ... which is not what the newer version gives


def test_a_variant_named_without_a_version_reports_the_version_it_ran_on(client: TestClient,
                                                                         state: AppState) -> None:
    variants = state.stores(DEFAULT_TENANT).variants
    for seed in (1, 2):
        variants.save(TINY_MODEL, "x", [eraser(seed)], method="leace", hidden_size=tiny_lm().hidden_size)
    job = finished(client, state, "/attribute", {"prompt": "The capital of France is", "variant": "x",
                                                  "max_evaluations": 8, "rule": "gauss_legendre", "n_steps": 4})
    assert job["status"] == "succeeded", job
    assert job["result"]["variant"] == "x@2"


#: (path, body, field): requests a check refuses only with the model's tokenizer or shape in hand.
REFUSED = [
    ("/trace", {"prompt": "The Eiffel Tower is in Paris", "subject": "Eiffel", "layers": [7], "samples": 1},
     "layers"),
    ("/trace", {"method": "activation_patching", "prompt": "The Eiffel Tower is in Paris",
                "corrupted_prompt": "The Colosseum", "samples": 1}, "corrupted_prompt"),
    ("/trace", {"prompt": "The Eiffel Tower is in", "subject": "Eiffel", "answer": " Paris and Rome", "samples": 1,
                "layers": [0], "tokens": [-1]}, "answer"),
    ("/score", {"texts": ["fine", "The capital of France is Paris. " * 8]}, "texts.1"),
    ("/attribute", {"prompt": "The capital of France is", "target": {"kind": "next_token", "token": 10**6}},
     "target.token"),
    ("/attribute", {"prompt": "The capital of France is", "baseline": 10**6}, "baseline"),
    ("/erase", {"name": "e", "examples": EXAMPLES, "layers": [9]}, "layers"),
    ("/edit", {"name": "e", "method": "rome", "requests": [FACT], "hyperparameters": {"layers": [5]}},
     "hyperparameters.layers"),
    ("/diagnose", {"prompt": "The Eiffel Tower is in", "expected": " Paris", "samples": 1,
                   "kinds": ["residual", "mlp", "attention"]}, None),
]


@pytest.mark.parametrize(("path", "body", "field"), REFUSED, ids=[f"{p}:{f}" for p, _, f in REFUSED])
def test_a_request_refused_at_submission_is_refused_with_the_same_problem_by_the_worker(
    tmp_path: Path, path: str, body: dict[str, Any], field: str | None
) -> None:
    limits = {"max_prompt_tokens": 24, "max_trace_evaluations": 40}
    holding = make_state(tmp_path / "holding", api_holds_model=True, **limits)
    with TestClient(create_app(state=holding)) as client:
        at_submission = assert_problem(client.post(path, json=body), 422, field)
    remote = make_state(tmp_path / "remote", api_holds_model=False, **limits)
    with TestClient(create_app(state=remote)) as client:
        reply = client.post(path, json=body)
        assert reply.status_code == 202, reply.text  # the API cannot tell: it holds no tokenizer, knows no depth
        run_enqueued(remote, reply.json()["id"], registry=tiny_registry())
        job = client.get(f"/jobs/{reply.json()['id']}").json()
    assert job["status"] == "failed"
    in_the_worker = job["error"]
    keys = ("type", "title", "status", "field", "detail")
    assert {k: in_the_worker.get(k) for k in keys} == {k: at_submission.get(k) for k in keys}


def test_a_variant_made_for_another_model_is_the_same_409_at_submission_and_in_the_worker(tmp_path: Path) -> None:
    answers = []
    for name, holds in (("holding", True), ("remote", False)):
        state = make_state(tmp_path / name, api_holds_model=holds)
        state.stores(DEFAULT_TENANT).variants.save(TINY_MODEL, "wide", [eraser(1, hidden=64)], method="leace",
                                                    hidden_size=64)
        with TestClient(create_app(state=state)) as client:
            reply = client.post("/score", json={"texts": TEXTS, "variant": "wide"})
            if holds:
                answers.append(assert_problem(reply, 409, "variant"))
                continue
            assert reply.status_code == 202, reply.text
            run_enqueued(state, reply.json()["id"], registry=tiny_registry())
            answers.append(client.get(f"/jobs/{reply.json()['id']}").json()["error"])
    at_submission, in_the_worker = answers
    assert at_submission["title"] == "Variant does not fit the model"
    assert {k: in_the_worker[k] for k in ("type", "title", "status", "field", "detail")} == \
        {k: at_submission[k] for k in ("type", "title", "status", "field", "detail")}


def test_a_retry_with_the_same_key_after_a_newer_version_is_published_is_the_same_job(client: TestClient,
                                                                                       state: AppState) -> None:
    variants = state.stores(DEFAULT_TENANT).variants
    variants.save(TINY_MODEL, "x", [eraser(1)], method="leace", hidden_size=tiny_lm().hidden_size)
    body, headers = {"texts": TEXTS, "variant": "x"}, {"Idempotency-Key": "retry-1"}
    first = client.post("/score", json=body, headers=headers)
    variants.save(TINY_MODEL, "x", [eraser(2)], method="leace", hidden_size=tiny_lm().hidden_size)
    again = client.post("/score", json=body, headers=headers)  # the client's retry: the same request it sent
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
