"""Steering over HTTP: stored and inline vectors, compare, streaming, batching, and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from engine.generation import SamplingParams, generate
from engine.steering.extraction import extract_vector
from service.main import create_app
from service.state import AppState
from tests.fakes import TINY_MODEL, app_state, beat, fake_clients, tiny_lm, tiny_registry, tiny_settings
from tests.service.test_api import assert_problem

HONEST = ["I need to give an honest, truthful answer to this question:",
          "Let me think carefully and give an accurate response:",
          "I want to be straightforward and factual:"]
DISHONEST = ["I should make up a convincing-sounding answer:",
             "Let me say whatever sounds good regardless of truth:",
             "I want to tell them what they want to hear:"]
PROMPT = "The capital of France is"


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    built = app_state(tiny_settings(tmp_path, api_load_models=True), tiny_registry(), *fake_clients())
    beat(built.directory)
    return built


@pytest.fixture
def client(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as test_client:
        yield test_client


def inline(seed: int, alpha: float, layers: list[int] | None = None, positions: str = "all") -> dict[str, Any]:
    values = torch.randn(tiny_lm().hidden_size, generator=torch.Generator().manual_seed(seed)).tolist()
    return {"values": values, "layers": layers or [1], "alpha": alpha, "positions": positions}


def generate_ids(client: TestClient, **body: Any) -> list[int]:
    reply = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 8, **body})
    assert reply.status_code == 200, reply.text
    return [t["id"] for t in reply.json()["tokens"]]


def test_alpha_zero_is_unsteered_and_a_strong_vector_changes_the_text(client: TestClient) -> None:
    plain = generate_ids(client)
    assert generate_ids(client, steering=[inline(1, 0.0)]) == plain
    assert generate_ids(client, steering=[inline(1, 50.0)]) != plain


def test_compare_returns_the_unsteered_continuation_from_the_same_call(client: TestClient) -> None:
    reply = client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 8, "compare": True,
                                           "steering": [inline(2, 50.0)]}).json()
    assert reply["steered"] is True
    assert [t["id"] for t in reply["unsteered"]["tokens"]] == generate_ids(client)
    assert reply["tokens"] != reply["unsteered"]["tokens"]


def test_an_extracted_vector_is_stored_listed_used_by_name_and_deleted(client: TestClient) -> None:
    created = client.post("/steering/vectors", json={"name": "honesty", "positive": HONEST, "negative": DISHONEST,
                                                     "layers": [1], "normalize": True})
    assert created.status_code == 201, created.text
    info = created.json()
    assert (info["ref"], info["layers"], info["n_pairs"], info["normalized"]) == ("honesty@1", [1], 3, True)
    assert created.headers["location"] == f"/steering/vectors/honesty@1?model={TINY_MODEL}"
    # The stored direction is the textbook's: normalised mean difference, computed independently here.
    expected = extract_vector(tiny_lm(), HONEST, DISHONEST, layers=[1], normalize=True).directions[1]
    assert client.get("/steering/vectors/honesty").json()["sha256"] == info["sha256"]
    assert [v["ref"] for v in client.get("/steering/vectors").json()["vectors"]] == ["honesty@1"]

    by_name = generate_ids(client, steering=[{"vector": "honesty", "alpha": 40.0}])
    by_values = generate_ids(client, steering=[{"values": expected.tolist(), "layers": [1], "alpha": 40.0}])
    assert by_name == by_values

    second = client.post("/steering/vectors", json={"name": "honesty", "positive": HONEST, "negative": DISHONEST,
                                                    "layers": [0, 1]}).json()
    assert second["ref"] == "honesty@2"
    assert client.delete("/steering/vectors/honesty@1").json()["versions"] == [1]
    assert_problem(client.get("/steering/vectors/honesty@1"), 404, "ref")
    assert_problem(client.post("/generate", json={"prompt": PROMPT, "steering": [{"vector": "honesty@1"}]}),
                   404, "steering.0.vector")
    assert client.delete("/steering/vectors/honesty").json()["versions"] == [2]


def test_auto_layers_need_two_pairs_and_report_every_layers_score(client: TestClient) -> None:
    assert_problem(client.post("/steering/vectors", json={"name": "x", "positive": HONEST[:1],
                                                          "negative": DISHONEST[:1]}), 422, "layers")
    info = client.post("/steering/vectors", json={"name": "auto", "positive": HONEST, "negative": DISHONEST}).json()
    assert len(info["layers"]) == 1
    assert sorted(info["layer_scores"]) == ["0", "1"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"steering": [{"vector": "nope"}]}, 404, "steering.0.vector"),
        ({"steering": [{"values": [1.0, 2.0], "layers": [0]}]}, 422, "steering.0.values"),
        ({"steering": [inline(1, 1.0, layers=[7])]}, 422, "steering.0.layers"),
        ({"steering": [{"values": [1.0]}]}, 422, "steering.0"),
        ({"steering": [{"vector": "a", "values": [1.0], "layers": [0]}]}, 422, "steering.0"),
        ({"steering": [{"vector": "../etc"}]}, 422, "steering.0.vector"),
        ({"steering": [inline(1, 1.0, positions="middle")]}, 422, "steering.0.positions"),
    ],
)
def test_bad_steering_gets_a_problem_naming_the_field(client: TestClient, body: dict, status: int, field: str) -> None:
    assert_problem(client.post("/generate", json={"prompt": PROMPT, **body}), status, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "positive": HONEST, "negative": DISHONEST[:2]}, "body"),
        ({"name": "x", "pairs": [{"positive": "a", "negative": ""}]}, "pairs.0.negative"),
        ({"name": "../x", "positive": HONEST, "negative": DISHONEST}, "name"),
        ({"name": "x", "positive": HONEST, "negative": DISHONEST, "layers": [9]}, "layers"),
        ({"name": "x", "positive": HONEST, "negative": DISHONEST, "method": "ica"}, "method"),
    ],
)
def test_bad_extraction_requests_get_a_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    assert_problem(client.post("/steering/vectors", json=body), 422, field)


def test_a_large_extraction_becomes_a_job(client: TestClient, state: AppState) -> None:
    pairs = [{"positive": f"{h} {i}", "negative": f"{d} {i}"} for i in range(9) for h, d in zip(HONEST, DISHONEST,
                                                                                                   strict=True)]
    reply = client.post("/steering/vectors", json={"name": "big", "pairs": pairs, "layers": [1]})
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["kind"] == "steering_vector" and job["status"] == "queued"
    assert client.get(reply.headers["location"]).json()["kind"] == "steering_vector"


def test_streaming_sends_each_token_then_the_whole_response(client: TestClient) -> None:
    body = {"prompt": PROMPT, "max_new_tokens": 6, "steering": [inline(3, 20.0)], "compare": True}
    with client.stream("POST", "/generate", json={**body, "stream": True}) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [block for block in reply.read().decode().split("\n\n") if block]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds == ["token"] * (len(kinds) - 1) + ["done"]
    streamed = [json.loads(block.split("data: ", 1)[1])["id"] for block in events[:-1]]
    done = json.loads(events[-1].split("data: ", 1)[1])
    assert streamed == [t["id"] for t in done["tokens"]]
    plain = client.post("/generate", json=body).json()
    assert done["tokens"] == plain["tokens"] and done["unsteered"] == plain["unsteered"]


def test_sixteen_concurrent_requests_with_different_vectors_equal_each_request_alone(
    client: TestClient, state: AppState
) -> None:
    bodies = [{"prompt": f"{PROMPT} {'and ' * (i % 4)}", "max_new_tokens": 3 + i % 4,
               "steering": [] if i % 5 == 0 else [inline(i, float(i % 7) * 5, layers=[i % 2])]} for i in range(16)]
    assert state.batcher is not None
    batches_before = state.batcher.batches
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda b: client.post("/generate", json=b).json()["tokens"], bodies))
    assert state.batcher.batches - batches_before < 16  # requests really shared forward passes
    alone = [client.post("/generate", json=b).json()["tokens"] for b in bodies]
    assert together == alone


def test_the_served_tokens_equal_the_engine_run_directly(client: TestClient) -> None:
    ids = list(tiny_lm().tokenizer(PROMPT)["input_ids"])
    assert generate_ids(client) == generate(tiny_lm(), ids, SamplingParams(max_new_tokens=8)).token_ids
