"""One request can never hurt another: a poison request beside eight ordinary ones of another tenant.

Each poison is a request the API lets through today (with temperature > 0, where sampling used to
raise for the whole shared batch). All nine are held until they are queued and then share one
batch: the ordinary requests all succeed with the tokens each gets alone, and the poison one gets
a 4xx problem naming the field that fed it, never a 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from engine.generation import GenerationRow, SamplingParams
from engine.steering.extraction import SteeringVector
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, tiny_lm
from tests.service.test_api import assert_problem
from tests.service.test_tenants_api import A, B, keyed_state

HIDDEN = tiny_lm().hidden_size
SAMPLED = {"temperature": 1.0, "seed": 1}


def inline(value: float, alpha: float = 1.0) -> dict[str, Any]:
    return {"values": [value] * HIDDEN, "layers": [1], "alpha": alpha}


#: name -> (the poison body, the field its problem names: a prefix, since a schema may name the index too).
POISONS: dict[str, tuple[dict[str, Any], str]] = {
    "values of 1e38 with alpha 1000": ({"steering": [inline(1e38, 1000.0)], **SAMPLED}, "steering.0.alpha"),
    "values of 1e39, beyond float32": ({"steering": [inline(1e39)], **SAMPLED}, "steering.0.values"),
    "NaN values": ({"steering": [inline(float("nan"))], **SAMPLED}, "steering.0.values"),
    "Infinity values": ({"steering": [inline(float("inf"))], **SAMPLED}, "steering.0.values"),
    "two finite vectors that overflow only together": ({"steering": [inline(2e38), inline(2e38)], **SAMPLED},
                                                       "steering.0.values"),
    "a seed of 2**64": ({"seed": 2**64, "temperature": 1.0}, "seed"),
    "a temperature so small the distribution overflows": ({"temperature": 1e-45, "seed": 1}, "temperature"),
}

ORDINARY = [{"prompt": f"The capital of France is{' and' * (i % 3)}", "max_new_tokens": 4 + i % 4,
             **({"temperature": 0.8, "seed": 100 + i} if i % 2 else {})} for i in range(8)]


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    return keyed_state(tmp_path)


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    # A 500 must come back as a response to assert on, not as the server's exception in the test.
    with TestClient(create_app(state=state), raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    """POST /generate with the body as Python's JSON writes it (NaN and Infinity included, as a client may send)."""
    return client.post("/generate", content=json.dumps({"prompt": "Hi there", **body}).encode(),
                       headers={**headers, "Content-Type": "application/json"})


def in_one_batch(client: TestClient, state: AppState, calls: list[Callable[[], Any]]) -> list[Any]:
    """Make the calls concurrently, held until every one is queued (or answered), so they share one batch.

    A plug request blocks the model's compute thread on its first token while the calls queue up.
    """
    batcher = state.batcher
    assert batcher is not None and client.portal is not None
    release, before = threading.Event(), batcher.batches
    plug_ids = tiny_lm().tokenizer("Hold on")["input_ids"]

    def hold(token: int) -> None:  # on the model's thread: it computes nothing until released
        release.wait(60)

    plug = client.portal.start_task_soon(batcher.generate, TINY_MODEL, [GenerationRow(
        plug_ids, SamplingParams(max_new_tokens=1), on_token=hold)])
    wait_for(lambda: batcher.batches == before + 1)  # the plug's batch is running
    with ThreadPoolExecutor(len(calls)) as pool:
        futures: list[Future[Any]] = [pool.submit(call) for call in calls]
        wait_for(lambda: batcher.waiting(TINY_MODEL) + sum(f.done() for f in futures) == len(calls))
        release.set()
        results = [f.result() for f in futures]
    plug.result(timeout=60)
    assert batcher.batches <= before + 2  # the plug's batch, then at most one more: they shared it
    return results


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


ALONE: dict[int, list[int]] = {}


def alone(client: TestClient, index: int) -> list[int]:
    """The tokens ordinary request ``index`` gets on its own (the tiny model is deterministic: computed once)."""
    if index not in ALONE:
        reply = post(client, A, ORDINARY[index])
        assert reply.status_code == 200, reply.text
        ALONE[index] = [t["id"] for t in reply.json()["tokens"]]
    return ALONE[index]


def assert_fails_alone(client: TestClient, state: AppState, body: dict[str, Any], field: str) -> dict[str, Any]:
    """Send ``body`` as tenant B in one batch with the eight ordinary requests of tenant A; return its problem."""
    calls = [lambda b=b: post(client, A, b) for b in ORDINARY] + [lambda: post(client, B, body)]
    *ordinary, bad = in_one_batch(client, state, calls)
    assert [r.status_code for r in ordinary] == [200] * 8, [r.text for r in ordinary if r.status_code != 200]
    assert [[t["id"] for t in r.json()["tokens"]] for r in ordinary] == [alone(client, i) for i in range(8)]
    problem = assert_problem(bad, 422)
    assert problem["field"].startswith(field), problem
    return problem


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_poison_request_fails_alone_and_the_eight_requests_beside_it_get_their_tokens(
    client: TestClient, state: AppState, poison: str
) -> None:
    assert_fails_alone(client, state, *POISONS[poison])


def test_a_stored_vector_that_alpha_scales_beyond_float32_is_refused_before_any_pass(
    client: TestClient, state: AppState
) -> None:
    huge = SteeringVector(model=TINY_MODEL, directions={1: torch.full((HIDDEN,), 1e36)}, method="mean_diff",
                          reading="last", n_pairs=2, normalized=False, norms={1: 1e36}, accuracy={1: None},
                          layer_scores={1: 0.5})
    state.stores("team-b").vectors.save("huge", huge)
    problem = assert_fails_alone(client, state, {"steering": [{"vector": "huge", "alpha": 1000.0}], **SAMPLED},
                                 "steering.0.alpha")
    assert problem["detail"].startswith("alpha 1000 times value 1e+36 (index 0) is 1e+39, beyond")


def test_a_streamed_poison_request_gets_its_problem_in_its_error_event_and_streamed_neighbours_finish(
    client: TestClient, state: AppState
) -> None:
    body, field = POISONS["two finite vectors that overflow only together"]

    def stream(headers: dict[str, str], body: dict[str, Any]) -> list[tuple[str, Any]]:
        with client.stream("POST", "/generate", headers=headers, json={"prompt": "Hi there", **body,
                                                                     "stream": True}) as reply:
            assert reply.status_code == 200
            blocks = [b for b in reply.read().decode().split("\n\n") if b]
        return [(b.split("\n")[0].removeprefix("event: "), json.loads(b.split("data: ", 1)[1])) for b in blocks]

    calls = [lambda b=b: stream(A, b) for b in ORDINARY[:4]] + [lambda: stream(B, body)]
    *ordinary, bad = in_one_batch(client, state, calls)
    for index, events in enumerate(ordinary):
        kinds = [kind for kind, _ in events]
        assert kinds == ["token"] * (len(kinds) - 1) + ["done"]
        assert [data["id"] for _, data in events[:-1]] == alone(client, index)
    (kind, problem), = bad
    assert kind == "error" and problem["status"] == 422 and problem["field"].startswith(field), problem
    assert "the steered activations were not finite at step 0" in problem["detail"]
